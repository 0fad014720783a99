"""The Optuna sweeper's config schema, as hydra-optuna-sweeper 1.3 names it: ``hydra/sweeper=optuna`` and the
``hydra/sweeper/sampler`` group (tpe, random, cmaes, nsgaii, motpe, qmc, gp, grid), so that an app's config
written for that plugin composes unchanged. What the project adds: ``pruner``, ``pruner_args``; what it
changes (a default study name, a study never in memory only): README "The Optuna sweeper in any Hydra app".

Sampler options left ``None`` are Optuna's own defaults.
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module outside sys.modules, where
# dataclasses cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, List, NoReturn, Optional  # noqa: UP035 (OmegaConf reads typing's)

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


def motpe_removed(*args: Any, **kwargs: Any) -> NoReturn:
    """``hydra/sweeper/sampler=motpe``: Optuna 4 removed MOTPESampler; its TPESampler is multi-objective."""
    raise ValueError("the 'motpe' sampler was removed in Optuna 4.0: use hydra/sweeper/sampler=tpe "
                     "(TPESampler handles multi-objective studies)")


@dataclass
class SamplerConfig:
    _target_: str = MISSING


@dataclass
class TPESamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None  # noqa: UP045
    consider_prior: Optional[bool] = None  # noqa: UP045
    prior_weight: Optional[float] = None  # noqa: UP045
    consider_magic_clip: Optional[bool] = None  # noqa: UP045
    consider_endpoints: Optional[bool] = None  # noqa: UP045
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    warn_independent_sampling: Optional[bool] = None  # noqa: UP045


@dataclass
class RandomSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None  # noqa: UP045


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None  # noqa: UP045
    x0: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045
    sigma0: Optional[float] = None  # noqa: UP045
    independent_sampler: Optional[Any] = None  # noqa: UP045
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    restart_strategy: Optional[Any] = None  # noqa: UP045
    inc_popsize: int = 2
    use_separable_cma: bool = False
    source_trials: Optional[Any] = None  # noqa: UP045


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None  # noqa: UP045
    population_size: int = 50
    mutation_prob: Optional[float] = None  # noqa: UP045
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Optional[Any] = None  # noqa: UP045


@dataclass
class MOTPESamplerConfig(SamplerConfig):
    _target_: str = "hydra_plugins.softmax_exp_optuna_sweeper.config.motpe_removed"


@dataclass
class QMCSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Optional[int] = None  # noqa: UP045
    qmc_type: str = "sobol"
    scramble: bool = False
    independent_sampler: Optional[Any] = None  # noqa: UP045
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConfig(SamplerConfig):
    """Optuna's GPSampler needs PyTorch (the project's ``[torch]`` extra)."""

    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None  # noqa: UP045
    independent_sampler: Optional[Any] = None  # noqa: UP045
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    constraints_func: Optional[Any] = None  # noqa: UP045
    warn_independent_sampling: bool = True


@dataclass
class GridSamplerConfig(SamplerConfig):
    """Its grid is the search space (hydra.sweeper.params and the command line's sweeps), made when the
    search starts: discrete choices and stepped ranges only."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: Optional[int] = None  # noqa: UP045


SAMPLERS = {"tpe": TPESamplerConfig, "random": RandomSamplerConfig, "cmaes": CmaEsSamplerConfig,
            "nsgaii": NSGAIISamplerConfig, "motpe": MOTPESamplerConfig, "qmc": QMCSamplerConfig,
            "gp": GPSamplerConfig, "grid": GridSamplerConfig}


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper`` of a search. README "Hyperparameter search" explains each option."""

    _target_: str = "hydra_plugins.softmax_exp_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])  # noqa: UP006
    _recursive_: bool = False  # the search makes its sampler: seeded once per process, a grid's space
    sampler: Any = MISSING  # hydra/sweeper/sampler=tpe|random|cmaes|nsgaii|qmc|gp|grid
    # of the task's return value: minimize | maximize, or a list of them (a multi-objective study)
    direction: Any = "minimize"
    # an RDB URL (sqlite:///FILE, postgresql://USER@HOST/DB) or a journal file; null: optuna.journal in the
    # sweep folder (a rerun of the same command finds the one of its earlier invocation)
    storage: Optional[Any] = None  # noqa: UP045
    study_name: Optional[str] = None  # noqa: UP045  # null: the app's job name (hydra.job.name)
    n_trials: Any = 20  # the study's trials in total, whichever process runs them
    n_jobs: Any = 2  # trials asked and launched together (the joblib launcher runs them at once)
    # the share of a batch's trials that may fail (their job raised) before the search stops with the error
    max_failure_rate: Any = 0.0
    params: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045 key -> tag(log, interval(a, b)), range, choice, a,b,c
    # a function (cfg, trial) -> None that suggests more parameters (its dotted path)
    custom_search_space: Optional[str] = None  # noqa: UP045
    pruner: str = "none"  # none | median | successive_halving | hyperband (jobs that report to their trial)
    pruner_args: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006  # the pruner's arguments


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="softmax_exp")
for _name, _node in SAMPLERS.items():
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="softmax_exp")
