"""The project's default sweeper: Hydra's basic grid sweeper, composing each job's config once.

Before it launches a batch, Hydra's BasicSweeper composes every job's config to fail early, and the
launcher then composes each job again: two compositions a job (~0.17 s each here; 2 x 100 for a 10 x 10
grid). Two changes, both inside Hydra's plugin interfaces (any launcher still launches):

- A composition fails because of a value, not because of a pair of values, so composing only the jobs that
  bring a value not composed yet (3 of a 3 x 3 grid, 10 of a 10 x 10 one) catches the same errors before
  any job starts.
- A config the check composed is handed to the launcher when it asks for that job's config (once, then
  forgotten), instead of being composed again. The launcher asks the sweeper's config loader, given to it
  in the :class:`~hydra.types.HydraContext`; that loader is wrapped by :class:`ComposedAhead`. A launcher
  that composes in another process (joblib, submitit) gets the wrapper without its configs and composes.

So a 3 x 3 grid composes 9 job configs instead of 14. ``hydra/sweeper=grid`` (conf/hydra/sweeper/grid.yaml).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from softmax_exp.config.hydra_internals import basic_sweeper_class
from softmax_exp.util.secrets import scrub_files


def covering_jobs(batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """Jobs of ``batch`` that together bring every override value of it, few of them: each time the job
    with the most values not brought yet (the first such job on a tie). A 3 x 3 grid gives its diagonal."""
    left = [(job, set(job)) for job in batch]
    seen: set[str] = set()
    chosen = []
    while True:
        best, new = None, 0
        for job, values in left:
            n = len(values - seen)
            if n > new:
                best, new = job, n
        if best is None:
            return chosen
        chosen.append(best)
        seen.update(best)


class ComposedAhead(ConfigLoader):
    """A config loader that answers :meth:`load_sweep_config` with a config composed ahead (by
    :meth:`compose_ahead`, for the same master config and overrides) once, and otherwise asks the loader it
    wraps, as every other method does."""

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader
        self._ahead: dict[tuple[int, tuple[str, ...]], DictConfig] = {}

    def compose_ahead(self, master_config: DictConfig, sweep_overrides: list[str]) -> None:
        self._ahead[(id(master_config), tuple(sweep_overrides))] = self.loader.load_sweep_config(
            master_config, sweep_overrides)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        ahead = self._ahead.pop((id(master_config), tuple(sweep_overrides)), None)
        if ahead is not None:
            return ahead
        return self.loader.load_sweep_config(master_config, sweep_overrides)

    def __getstate__(self) -> dict[str, Any]:  # to another process: without the configs composed here
        return {"loader": self.loader, "_ahead": {}}

    def load_configuration(self, *args: Any, **kwargs: Any) -> DictConfig:
        return self.loader.load_configuration(*args, **kwargs)

    def get_search_path(self) -> Any:
        return self.loader.get_search_path()

    def get_sources(self) -> Any:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.loader.get_group_options(*args, **kwargs)

    def compute_defaults_list(self, *args: Any, **kwargs: Any) -> Any:
        return self.loader.compute_defaults_list(*args, **kwargs)


class GridSweeper(basic_sweeper_class()):  # Hydra's BasicSweeper
    """BasicSweeper composing each job's config once, as described in the module's doc."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.ahead = ComposedAhead(hydra_context.config_loader)
        super().setup(hydra_context=dataclasses.replace(hydra_context, config_loader=self.ahead),
                      task_function=task_function, config=config)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.config is not None
        # BasicSweeper has just written its record of the sweep's config: no URL's password in it
        scrub_files([Path(self.config.hydra.sweep.dir) / "multirun.yaml"])
        for overrides in covering_jobs(batch):
            self.ahead.compose_ahead(self.config, list(overrides))
