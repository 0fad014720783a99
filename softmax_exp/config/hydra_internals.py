"""Every use of Hydra's private API (``hydra._internal``) in the project, in one place.

Hydra 1.3 has no public hook for these three needs, so they lean on its internals:

- :func:`basic_sweeper_class`, Hydra's BasicSweeper, subclassed by the grid sweeper
  (``hydra_plugins/softmax_exp_grid_sweeper``): its ``setup`` and ``validate_batch_is_legal``, and its
  attribute ``config``;
- :func:`split_sweep_arguments`, BasicSweeper's own expansion of sweep overrides into batches of jobs (the
  sweep callback counts a sweep's jobs with it, exactly as the sweeper will launch them);
- :func:`time_config_loading`, which wraps ``ConfigLoaderImpl.load_configuration`` to time Hydra's
  config composition (the benchmark's breakdown, softmax_exp.util.timing).

Hydra's plugin scan executes its core plugin modules again (``exec_module`` on the module already in
``sys.modules``), which makes a new BasicSweeper class: the classes are looked up in their modules when
used, never bound at import. ``tests/test_hydra_internals.py`` checks that the installed Hydra is one of
:data:`TESTED_HYDRA` and that each of these still has the shape used here; a Hydra upgrade starts there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import hydra
from hydra._internal import config_loader_impl
from hydra._internal.core_plugins import basic_sweeper

__all__ = ["TESTED_HYDRA", "basic_sweeper_class", "split_sweep_arguments", "time_config_loading"]

TESTED_HYDRA = ("1.3.2", "1.3.8")  # pyproject.toml: hydra-core>=1.3.2,<1.4
HYDRA_VERSION = hydra.__version__


def basic_sweeper_class() -> type:
    """Hydra's ``BasicSweeper`` as its module holds it now (after the plugin scan: the one Hydra uses)."""
    return basic_sweeper.BasicSweeper


def split_sweep_arguments(overrides: Sequence[Any],
                          max_batch_size: int | None = None) -> list[list[list[str]]]:
    """Parsed overrides (``OverridesParser.parse_overrides``) -> batches of jobs, each job its overrides,
    as Hydra's basic sweeper launches them."""
    return basic_sweeper.BasicSweeper.split_arguments(list(overrides), max_batch_size)


def time_config_loading(wrap: Callable[[Callable], Callable]) -> None:
    """Replace Hydra's config loader's ``load_configuration`` by ``wrap(load_configuration)``."""
    loader = config_loader_impl.ConfigLoaderImpl
    loader.load_configuration = wrap(loader.load_configuration)
