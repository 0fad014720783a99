"""softmax_exp.config.hydra_internals, the one module that uses Hydra's private API, against the Hydra
installed."""

from __future__ import annotations

import inspect

import hydra
from hydra._internal import config_loader_impl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

from softmax_exp.config import hydra_internals


def test_the_installed_hydra_is_a_tested_one():
    assert hydra.__version__ in hydra_internals.TESTED_HYDRA, (
        f"Hydra {hydra.__version__} is not one softmax_exp/hydra_internals.py was tested with: check each "
        f"use there, then add it to TESTED_HYDRA")


def test_basic_sweeper_has_what_the_grid_sweeper_overrides_and_uses():
    cls = hydra_internals.basic_sweeper_class()
    assert issubclass(cls, Sweeper) and cls.__name__ == "BasicSweeper"
    setup = ["self", "hydra_context", "task_function", "config"]
    assert list(inspect.signature(cls.setup).parameters) == setup
    assert list(inspect.signature(cls.validate_batch_is_legal).parameters) == ["self", "batch"]
    assert list(inspect.signature(cls.split_arguments).parameters) == ["overrides", "max_batch_size"]


def test_the_grid_sweeper_subclasses_the_basic_sweeper_hydra_uses_after_its_plugin_scan():
    Plugins.instance()  # the scan executes the core plugin modules again: a new BasicSweeper class
    from hydra_plugins.softmax_exp_grid_sweeper.grid_sweeper import GridSweeper

    assert GridSweeper.__mro__[1] is hydra_internals.basic_sweeper_class()
    GridSweeper(max_batch_size=None, params=None)  # its __init__ (BasicSweeper's) accepts the instance


def test_split_sweep_arguments_expands_a_grid_as_the_basic_sweeper_launches_it():
    parsed = OverridesParser.create().parse_overrides(["lr=1e-3,1e-2", "reg=1,2,3", "seed=0"])
    (batch,) = hydra_internals.split_sweep_arguments(parsed)
    assert len(batch) == 6 and batch[0] == ["lr=0.001", "reg=1", "seed=0"]
    assert [len(b) for b in hydra_internals.split_sweep_arguments(parsed, 4)] == [4, 2]


def test_time_config_loading_wraps_the_config_loader():
    cls = config_loader_impl.ConfigLoaderImpl
    original = cls.load_configuration
    assert list(inspect.signature(original).parameters)[:3] == ["self", "config_name", "overrides"]
    try:
        hydra_internals.time_config_loading(lambda fn: ("wrapped", fn))
        assert cls.load_configuration == ("wrapped", original)
    finally:
        cls.load_configuration = original
