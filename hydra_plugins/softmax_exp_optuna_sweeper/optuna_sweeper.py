"""The project's Optuna sweeper: a search over Optuna 5's ask-and-tell interface, with a study that lives
in a storage (never in memory only), is shared by every process running the same command, resumes after
a kill, and prunes trials by the val_acc their jobs report.

``hydra/sweeper=optuna`` (its schema: :class:`OptunaSweeperConf`, registered here in Hydra's ConfigStore;
``conf/hydra/sweeper/optuna_lr_reg.yaml`` is the project's search of lr and reg). The search itself is
softmax_exp.sweep.search (imported when a search starts: Hydra imports every plugin module at its start,
and Optuna costs 0.3 s). It replaces hydra-optuna-sweeper 1.3, which pins Optuna < 3, keeps its studies
in memory and hides the trial from the job, so that no job can report to a pruner.
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module outside sys.modules, where
# dataclasses cannot resolve string annotations.
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 (OmegaConf reads typing's)

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper`` of a search. README "Hyperparameter search" explains each option."""

    _target_: str = "hydra_plugins.softmax_exp_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sampler is made by the search, one per trial (its seed)
    direction: str = "maximize"  # of the returned val_acc: maximize | minimize
    study_name: str = "softmax"
    # an RDB URL (sqlite:///FILE, postgresql://USER@HOST/DB) or a journal file; null: optuna.journal in the
    # sweep folder (a rerun of the same command finds the one of its earlier invocation)
    storage: Any = None
    n_trials: Any = 20  # the study's trials in total, whichever process runs them
    n_jobs: Any = 1  # trials launched together (the joblib launcher runs them at once)
    # Optuna's sampler (Hydra's instantiate); its seed + the trial number seeds each trial's draw
    sampler: Dict[str, Any] = field(  # noqa: UP006
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    pruner: str = "none"  # none | median | successive_halving | hyperband
    pruner_args: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006  # the pruner's arguments (n_startup_trials, ...)
    params: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045 key -> search space: tag(log, interval(a, b)), interval, range, choice, a,b,c


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf,
                             provider="softmax_exp")


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

    def sweep(self, arguments: list[str]) -> Sequence[Any]:
        from softmax_exp.sweep.search import run_search  # Optuna: only when a search runs

        assert self.config is not None
        return run_search(self.launcher, self.config, arguments)
