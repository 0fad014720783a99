"""hydra-optuna-sweeper's own tests, ported to the project's sweeper (those that apply to Optuna 5), on that
plugin's example apps (tests/optuna_apps, unchanged): a sweeper for any Hydra app, whose objective is what
the task returns. Where a test's expectation differs, the difference is one the README lists ("The Optuna
sweeper in any Hydra app"), said at the test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import InstantiationException
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.test_utils import TSweepRunner, run_process, run_python_script
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hydra_plugins.softmax_exp_optuna_sweeper.config import MOTPESamplerConfig
from hydra_plugins.softmax_exp_optuna_sweeper.optuna_sweeper import OptunaSweeper
from softmax_exp.sweep import study as st

APPS = Path(__file__).parent / "optuna_apps"
pytestmark = pytest.mark.filterwarnings("ignore:.*version_base.*:UserWarning")


@pytest.fixture
def apps(monkeypatch) -> Path:
    monkeypatch.chdir(APPS)  # as upstream's chdir_plugin_root: the apps' paths are relative
    return APPS


def run_optuna_script(cmd: list[str]) -> tuple[str, str]:
    # upstream runs them with -Werror; Hydra 1.3 warns that these apps give no version_base
    return run_python_script(cmd, allow_warnings=True)


def test_discovery() -> None:
    assert OptunaSweeper.__name__ in [x.__name__ for x in Plugins.instance().discover(Sweeper)]


def check_distribution(expected: BaseDistribution, actual: BaseDistribution) -> None:
    if not isinstance(expected, CategoricalDistribution):
        assert expected == actual
        return
    assert isinstance(actual, CategoricalDistribution)
    assert set(expected.choices) == set(actual.choices)  # shuffle() randomises the order


@pytest.mark.parametrize(("line", "expected"), [
    ("key=choice(1,2)", CategoricalDistribution([1, 2])),
    ("key=choice(true, false)", CategoricalDistribution([True, False])),
    ("key=choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
    ("key=shuffle(range(1,3))", CategoricalDistribution((1, 2))),
    # upstream: IntDistribution(1, 3); here Hydra's range, whose stop is not a value: 1, 2
    ("key=range(1,3)", IntDistribution(1, 2)),
    ("key=interval(1, 5)", FloatDistribution(1, 5)),
    ("key=int(interval(1, 5))", IntDistribution(1, 5)),
    ("key=tag(log, interval(1, 5))", FloatDistribution(1, 5, log=True)),
    ("key=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
    # upstream: FloatDistribution(0.5, 5.5, step=1); Hydra's range gives 0.5 .. 4.5
    ("key=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 4.5, step=1)),
])
def test_create_optuna_distribution_from_override(line: str, expected: Any) -> None:
    parsed = OverridesParser.create().parse_overrides([line])[0]
    check_distribution(expected, st.distribution(parsed))


@pytest.mark.parametrize(("arguments", "expected"), [
    (["key=choice(1,2)"], ({"key": CategoricalDistribution([1, 2])}, [])),
    (["key=5"], ({}, ["key=5"])),
    (["key1=choice(1,2)", "key2=5"], ({"key1": CategoricalDistribution([1, 2])}, ["key2=5"])),
    (["key1=choice(1,2)", "key2=5", "key3=range(1,3)"],
     ({"key1": CategoricalDistribution([1, 2]), "key3": IntDistribution(1, 2)}, ["key2=5"])),
    (["~z"], ({}, ["~z"])),
    (["~z=10"], ({}, ["~z=10"])),
])
def test_create_params_from_overrides(arguments: list[str], expected: Any) -> None:
    # upstream returns (space, fixed params, fixed overrides); here (space, every fixed override as given)
    assert st.search_space({}, arguments) == expected


def test_launch_jobs(hydra_sweep_runner: TSweepRunner) -> None:
    sweep = hydra_sweep_runner(
        calling_file=None, calling_module="hydra.test_utils.a_module", config_path="configs",
        config_name="compose.yaml", task_function=None,
        overrides=["hydra/sweeper=optuna", "hydra/launcher=basic", "hydra.sweeper.n_trials=8",
                   "hydra.sweeper.n_jobs=3"])
    with sweep:
        assert sweep.returns is None
        # here: a search with nothing to search runs n_trials jobs of the same config, each told its value
        journal = Path(sweep.temp_dir) / "optuna.journal"
        study = optuna.load_study(study_name="a_module", storage=st.open_storage(str(journal)))
        assert [t.value for t in study.trials] == [100.0] * 8


@pytest.mark.subprocess  # runs the app in its own Python, as upstream
@pytest.mark.parametrize("with_commandline", [True, False])
def test_optuna_example(with_commandline: bool, tmp_path: Path, apps: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'test.db'}"
    study_name = "test-optuna-example"
    cmd = ["sphere.py", "--multirun", f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=True",
           "hydra.sweeper.n_trials=20", "hydra.sweeper.n_jobs=1", f"hydra.sweeper.storage={storage}",
           f"hydra.sweeper.study_name={study_name}", "hydra/sweeper/sampler=tpe",
           "hydra.sweeper.sampler.seed=123", "~z"]
    if with_commandline:
        cmd += ["x=choice(0, 1, 2)", "y=0"]  # y fixed
    run_optuna_script(cmd)
    returns = OmegaConf.load(tmp_path / "optimization_results.yaml")
    study = optuna.load_study(storage=storage, study_name=study_name)
    best_trial = study.best_trial
    assert isinstance(returns, DictConfig)
    assert returns.name == "optuna"
    assert returns["best_params"]["x"] == best_trial.params["x"]
    if with_commandline:
        assert "y" not in returns["best_params"]
        assert "y" not in best_trial.params
    else:
        assert returns["best_params"]["y"] == best_trial.params["y"]
    assert returns["best_value"] == best_trial.value
    # upstream's bound: the 95th percentile of TPE's best over 1000 seeds
    assert returns["best_value"] <= 2.27


@pytest.mark.subprocess  # runs the app in its own Python, as upstream
@pytest.mark.parametrize("num_trials", [10, 1])
def test_example_with_grid_sampler(tmp_path: Path, num_trials: int, apps: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'test.db'}"
    cmd = ["sphere.py", "--multirun", "--config-dir=conf_tests", "--config-name=test_grid",
           f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=False", f"hydra.sweeper.n_trials={num_trials}",
           "hydra.sweeper.n_jobs=1", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=grid"]
    run_optuna_script(cmd)
    returns = OmegaConf.load(tmp_path / "optimization_results.yaml")
    bv, bx, by, bz = (returns["best_value"], returns["best_params"]["x"], returns["best_params"]["y"],
                      returns["best_params"]["z"])
    if num_trials >= 12:
        assert bv == 1 and abs(bx) == 1 and by == 0
    else:
        assert bx in [-1, 1] and by in [-1, 0]
    assert bz in ["foo", "bar"]
    # and here: the 2 x 2 x 2 grid's points once each, the search ended at the grid's size
    trials = optuna.load_study(storage=storage, study_name="grid").trials
    points = [(t.params["x"], t.params["y"], t.params["z"]) for t in trials]
    assert len(points) == len(set(points)) == min(num_trials, 8)


@pytest.mark.subprocess  # runs the app in its own Python, as upstream
@pytest.mark.parametrize("with_commandline", [True, False])
def test_optuna_multi_objective_example(with_commandline: bool, tmp_path: Path, apps: Path) -> None:
    cmd = ["multi-objective.py", "--multirun", f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=True",
           "hydra.sweeper.n_trials=20", "hydra.sweeper.n_jobs=1", "hydra/sweeper/sampler=random",
           "hydra.sweeper.sampler.seed=123"]
    if with_commandline:
        cmd += ["x=range(0, 5)", "y=range(0, 3)"]
    run_optuna_script(cmd)
    returns = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert returns.name == "optuna"
    assert len(returns["solutions"]) >= 1
    for trial_x in returns["solutions"]:
        allowed = {0} if with_commandline else {0, 0.5}
        assert trial_x["params"]["x"] % 1 in allowed and trial_x["params"]["y"] % 1 in allowed
        for trial_y in returns["solutions"]:  # the trials must not dominate each other
            assert not _dominates(trial_x["values"], trial_y["values"])


def _dominates(values_x: list[float], values_y: list[float]) -> bool:
    pairs = list(zip(values_x, values_y, strict=True))
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


@pytest.mark.subprocess  # runs the app in its own Python, as upstream
def test_optuna_custom_search_space_example(tmp_path: Path, apps: Path) -> None:
    max_z_difference_from_x = 0.3
    cmd = ["custom-search-space-objective.py", "--multirun", f"hydra.sweep.dir={tmp_path}",
           "hydra.job.chdir=True", "hydra.sweeper.n_trials=20", "hydra.sweeper.n_jobs=1",
           "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=123",
           f"max_z_difference_from_x={max_z_difference_from_x}"]
    run_optuna_script(cmd)
    returns = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert returns.name == "optuna"
    assert abs(returns["best_params"]["x"] - returns["best_params"]["z"]) <= max_z_difference_from_x
    assert 0 <= returns["best_params"]["+w"] <= 1


@pytest.mark.subprocess  # runs the app in its own Python, as upstream
@pytest.mark.parametrize("max_failure_rate", [0.5, 1.0])
def test_failure_rate(max_failure_rate: float, tmp_path: Path, apps: Path) -> None:
    cmd = [sys.executable, "sphere.py", "--multirun", f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=True",
           "hydra.sweeper.n_trials=20", "hydra.sweeper.n_jobs=2", "hydra/sweeper/sampler=random",
           "hydra.sweeper.sampler.seed=123", f"hydra.sweeper.max_failure_rate={max_failure_rate}",
           "error=true"]
    out, err = run_process(cmd, print_error=False, raise_exception=False)
    error_string = "RuntimeError: cfg.error is True"
    if max_failure_rate < 1.0:
        assert error_string in err
    else:
        assert error_string not in err


def test_motpe_sampler_removed() -> None:
    with pytest.raises(InstantiationException, match="the 'motpe' sampler was removed in Optuna 4.0"):
        instantiate(OmegaConf.structured(MOTPESamplerConfig))


@pytest.mark.subprocess  # runs the app in its own Python, as upstream
def test_example_with_removed_motpe(tmp_path: Path, apps: Path) -> None:
    cmd = [sys.executable, "multi-objective.py", "--multirun", "--config-dir=conf_tests",
           "--config-name=test_motpe", f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=True",
           "hydra.sweeper.n_trials=20", "hydra.sweeper.n_jobs=1"]
    out, err = run_process(cmd, print_error=False, raise_exception=False)
    assert "motpe" in err
    assert "sampler was removed in Optuna 4.0" in err
