"""Hydra's own sweeper and launcher test suites (hydra.test_utils.launcher_common_tests), run against the
project's grid sweeper (hydra_plugins/softmax_exp_grid_sweeper) on Hydra's test apps, with the basic and the
joblib launchers: it must sweep as Hydra's basic sweeper does, for any app."""

from __future__ import annotations

import pytest
from hydra import version
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)


@pytest.fixture(autouse=True)
def hydra_as_in_a_new_process():
    """The suites expect Hydra's version base unset, as in a new process (an app without version_base: the
    1.1 defaults, each job in its own folder); the project's compose() sets 1.3 in this process."""
    base = version.VersionBase.instance()
    held, base.version_base = base.version_base, version._UNSPECIFIED_
    yield
    base.version_base = held


GRID = "hydra.sweeper._target_=hydra_plugins.softmax_exp_grid_sweeper.grid_sweeper.GridSweeper"


@pytest.mark.parametrize(("launcher_name", "overrides"), [("basic", [GRID]), ("joblib", [GRID])])
class TestGridSweeperLaunches(LauncherTestSuite):
    pass


@pytest.mark.parametrize(("launcher_name", "overrides"),
                         [("basic", [GRID, "hydra.sweeper.max_batch_size=2"])])
class TestGridSweeperWithBatching(BatchedSweeperTestSuite):
    pass


@pytest.mark.parametrize(("task_launcher_cfg", "extra_flags"), [
    pytest.param({}, ["-m", GRID, "hydra/launcher=basic", "hydra/hydra_logging=disabled",
                      "hydra/job_logging=disabled"], id="grid_sweeper_basic_launcher"),
])
class TestGridSweeperIntegration(IntegrationTestSuite):
    pass
