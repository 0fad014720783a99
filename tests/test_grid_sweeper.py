"""The default sweeper (hydra_plugins/softmax_exp_grid_sweeper): the jobs it composes to check a batch, and
the launcher given those configs instead of composing them again. Hydra's real config loader and launcher."""

from __future__ import annotations

import importlib
import itertools
import pickle

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.utils import setup_globals
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf

from hydra_plugins.softmax_exp_grid_sweeper.grid_sweeper import ComposedAhead, GridSweeper, covering_jobs
from softmax_exp.config.compose import register
from softmax_exp.util.paths import CONFIG_DIR

LR = ("lr=1e-3", "lr=1e-2", "lr=1e-1")
REG = ("reg=0", "reg=1e-4", "reg=1e-2")
GRID = [list(job) for job in itertools.product(LR, REG)]


def test_covering_jobs_bring_every_value_once_a_grid_needs():
    cover = covering_jobs(GRID)
    assert cover == [["lr=1e-3", "reg=0"], ["lr=1e-2", "reg=1e-4"], ["lr=1e-1", "reg=1e-2"]]
    big = list(itertools.product([f"lr={i}" for i in range(10)], [f"reg={j}" for j in range(10)]))
    assert len(covering_jobs(big)) == 10
    assert {v for job in covering_jobs(big) for v in job} == {v for job in big for v in job}
    assert covering_jobs([["lr=abc"], ["lr=1e-3"]]) == [["lr=abc"], ["lr=1e-3"]]
    assert covering_jobs([]) == []


@pytest.fixture
def loader(monkeypatch):
    """Hydra's config loader for conf/, counting the job configs it composes (in ``loader.composed``)."""
    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        real = GlobalHydra.instance().config_loader()
        real.composed = []
        compose = real.load_sweep_config

        def counting(master_config, sweep_overrides):
            real.composed.append(list(sweep_overrides))
            return compose(master_config, sweep_overrides)

        monkeypatch.setattr(real, "load_sweep_config", counting)
        yield real


def master(loader):
    sweep = ["lr=1e-3,1e-2,1e-1", "reg=0,1e-4,1e-2", "hydra/launcher=basic"]
    cfg = loader.load_configuration("config", sweep, run_mode=RunMode.MULTIRUN)
    setup_globals()
    return cfg


def test_a_config_composed_ahead_is_handed_out_once_and_is_what_composing_gives(loader):
    cfg = master(loader)
    ahead = ComposedAhead(loader)
    ahead.compose_ahead(cfg, ["lr=1e-2", "reg=0"])
    first = ahead.load_sweep_config(cfg, ["lr=1e-2", "reg=0"])
    again = ahead.load_sweep_config(cfg, ["lr=1e-2", "reg=0"])
    assert loader.composed == [["lr=1e-2", "reg=0"]] * 2  # ahead, then again: not from memory twice
    assert first is not again and first.lr == 0.01
    assert OmegaConf.to_container(first) == OmegaConf.to_container(again)
    other = ahead.load_sweep_config(cfg, ["lr=1e-1", "reg=0"])  # never composed ahead
    assert other.lr == 0.1 and len(loader.composed) == 3


def test_the_launcher_composes_only_the_jobs_the_check_did_not(loader):
    cfg = master(loader)
    sweeper = Plugins.instance().instantiate_sweeper(  # as Hydra does: the default sweeper of conf/
        hydra_context=HydraContext(config_loader=loader, callbacks=None), task_function=print, config=cfg)
    assert type(sweeper).__name__ == GridSweeper.__name__
    sweeper.validate_batch_is_legal(GRID)
    assert loader.composed == covering_jobs(GRID)
    launcher_loader = sweeper.launcher.hydra_context.config_loader  # what the launcher composes with
    configs = [launcher_loader.load_sweep_config(cfg, job) for job in GRID]
    assert len(loader.composed) == 9  # 3 by the check, 6 by the launcher: each job once
    assert [(c.lr, c.reg) for c in configs] == [(float(j[0][3:]), float(j[1][4:])) for j in GRID]


def test_the_loader_goes_to_another_process_without_its_configs():
    """(A joblib sweep, in test_train_sweep.py, sends it to its workers for real.)"""
    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        cfg = master(loader)
        # the class as Hydra's plugin scan left the module (it executes plugin modules again)
        ahead = importlib.import_module(ComposedAhead.__module__).ComposedAhead(loader)
        ahead.compose_ahead(cfg, ["lr=1e-2", "reg=0"])
        copy = pickle.loads(pickle.dumps(ahead))
    assert copy._ahead == {} and len(ahead._ahead) == 1  # the original keeps its config for its launcher
    assert type(copy.loader) is type(loader)
