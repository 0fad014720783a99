"""The project's Optuna sweeper: a search over Optuna 5's ask-and-tell interface, with a study that lives
in a storage (never in memory only), is shared by every process running the same command, resumes after
a kill, and prunes trials by the val_acc their jobs report.

``hydra/sweeper=optuna`` (its schema and the ``hydra/sweeper/sampler`` group: ``config``, registered in
Hydra's ConfigStore as hydra-optuna-sweeper names them; ``conf/hydra/sweeper/optuna_lr_reg.yaml`` is the
project's search of lr and reg). Each trial's value is what the task function returns, as with every Hydra
sweeper, so it searches any Hydra app. The search itself is softmax_exp.sweep.search (imported when a
search starts: Hydra imports every plugin module at its start, and Optuna costs 0.3 s). It replaces
hydra-optuna-sweeper 1.3, which pins Optuna < 3, keeps its studies in memory and hides the trial from the
job, so that no job can report to a pruner.
"""

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.softmax_exp_optuna_sweeper.config import OptunaSweeperConf

__all__ = ["OptunaSweeper", "OptunaSweeperConf"]


class OptunaSweeper(Sweeper):
    """Hydra's Sweeper interface over softmax_exp.sweep.search.run_search."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings  # checked when the search starts (StudySettings.of)
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def sweep(self, arguments: list[str]) -> None:
        """Run the search (nothing returned, as hydra-optuna-sweeper: the study and
        optimization_results.yaml hold the outcome)."""
        from softmax_exp.sweep.search import run_search  # Optuna: only when a search runs

        assert self.config is not None
        run_search(self.launcher, self.config, arguments)
