"""A hyperparameter search as an Optuna study: its settings, its storage, its search space, and the
claiming of its trials by the processes that share it.

The search's sweeper (``hydra_plugins/softmax_exp_optuna_sweeper``) asks the study for a trial, launches
it as a job and tells the study how it ended; the job reports its val_acc to the trial and asks the
pruner (softmax_exp.sweep.trial). Everything the two share is here.

- :class:`StudySettings`: ``hydra.sweeper``'s options, checked (one ConfigError line each).
- :func:`open_storage`: an RDB URL (``sqlite:///...``, ``postgresql://...``) or a journal file (any other
  path): Optuna's own storages. A search is never in memory only.
- :func:`search_space`: the sweeper's params and the command line's sweep overrides, in the syntax of
  Hydra's sweepers (``tag(log, interval(1e-7, 1e-5))``, ``choice(...)``, ``range(...)``, ``a,b,c``), as
  Optuna distributions; the other overrides are fixed.
- :func:`claim_trial`: the next trial of the study for this process, or None when the study has its
  ``n_trials``. ``n_trials`` counts the study's trials, whichever process ran them. Optuna itself caps
  trials per process only (``optimize(n_trials)``; its MaxTrialsCallback can overshoot when two workers
  ask at once), so counting and asking are done under a lock held in the storage itself: PostgreSQL's
  advisory lock, or for a file (SQLite, a journal) Optuna's own journal file lock beside it. A trial left
  RUNNING by a process that died (kill -9, a reboot) is claimed again, with its parameters: its job then
  goes on from its checkpoint in the same MLflow run.
- :func:`study_results`: every trial of the study as the sweep's JobResult rows, whichever process ran it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.utils import get_class, get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

from softmax_exp.config import ConfigError
from softmax_exp.config.overrides import override_key
from softmax_exp.sweep.results import JobResult, StudyRef
from softmax_exp.tracking.owners import owner_gone, owner_tags
from softmax_exp.tracking.tags import HEARTBEAT_TAG, HOST_TAG, PID_TAG
from softmax_exp.util.atomic import atomic_path
from softmax_exp.util.constraints import AnyOf, Integer, OneOf, SettingError, check_values
from softmax_exp.util.secrets import masked, without_password

DIRECTIONS = ("maximize", "minimize")
_STEPS = AnyOf((OneOf(("auto",)), Integer(low=1)), "'auto' or an integer >= 1")
# the arguments each pruner takes (hydra.sweeper.pruner_args), checked before any run: Optuna checks some
# only when a trial asks the pruner, and a bad one then fails every trial after the first
PRUNER_ARGS: dict[str, dict[str, Any]] = {
    "none": {},
    "median": {"n_startup_trials": Integer(low=0), "n_warmup_steps": Integer(low=0),
               "interval_steps": Integer(low=1), "n_min_trials": Integer(low=1)},
    "successive_halving": {"min_resource": _STEPS, "reduction_factor": Integer(low=2),
                           "min_early_stopping_rate": Integer(low=0), "bootstrap_count": Integer(low=0)},
    "hyperband": {"min_resource": Integer(low=1), "max_resource": _STEPS, "reduction_factor": Integer(low=2),
                  "bootstrap_count": Integer(low=0)},
}
PRUNERS = tuple(PRUNER_ARGS)
MAX_SEED = 2**32 - 1  # numpy's RandomState, which Optuna's samplers seed, takes seeds up to this
DEFAULT_STORAGE_FILE = "optuna.journal"  # in the sweep folder when hydra.sweeper.storage is not set
OWNER_ATTR = "softmax_exp:owner"  # the sweeper process that claimed a trial (owner_tags())
HEARTBEAT_ATTR = "softmax_exp:heartbeat"  # renewed by the trial's job at each report
RESULT_ATTR = "softmax_exp:result"  # the trial's JobResult, once its job ended
SEARCH_ATTR = "softmax_exp:search"  # a study's search: pruner, sampler, space (search_identity)
WORKERS_ATTR = "softmax_exp:workers"  # how many processes have joined the study (join_study)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep prints its own lines


@dataclass(frozen=True)
class StudySettings:
    """``hydra.sweeper``'s options, checked. ``storage`` is None for the default (a journal file in the
    sweep folder, or the one of the earlier invocation of the same search). ``directions``: one per value
    the task returns (two or more: a multi-objective study)."""

    study_name: str
    directions: tuple[str, ...]
    n_trials: int
    n_jobs: int
    storage: str | None
    pruner: str
    pruner_args: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    max_failure_rate: float = 0.0
    custom_search_space: str | None = None

    @property
    def direction(self) -> str:
        """The study's direction as sweep.json records it: ``maximize``, or ``minimize,maximize``."""
        return ",".join(self.directions)

    @classmethod
    def of(cls, sweeper: Mapping[str, Any] | DictConfig, job_name: str = "optuna") -> StudySettings:
        """From Hydra's ``hydra.sweeper`` node (``job_name``: the study's name when it gives none, the app's
        ``hydra.job.name``); ConfigError (one line) on a bad value."""
        if isinstance(sweeper, DictConfig):
            sweeper = OmegaConf.to_container(sweeper, resolve=True)
        n_trials, n_jobs = sweeper.get("n_trials"), sweeper.get("n_jobs", 1)
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if type(value) is not int or value < 1:
                raise ConfigError(f"hydra.sweeper.{key} must be an integer >= 1; got {value!r}")
        directions = check_directions(sweeper.get("direction", "minimize"))
        rate = sweeper.get("max_failure_rate", 0.0)
        if type(rate) not in (int, float) or not 0.0 <= rate <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate must be a number from 0 to 1 (the share of a "
                              f"batch's trials that may fail); got {rate!r}")
        pruner = str(sweeper.get("pruner") or "none")
        if pruner not in PRUNERS:
            raise ConfigError(f"hydra.sweeper.pruner must be one of {', '.join(PRUNERS)}; got {pruner!r}")
        if pruner != "none" and len(directions) > 1:
            raise ConfigError(f"hydra.sweeper.pruner={pruner}: Optuna prunes single-objective studies only; "
                              f"give one direction or hydra.sweeper.pruner=none")
        name = sweeper.get("study_name")
        name = job_name if name is None else name
        if not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 512:
            raise ConfigError(f"hydra.sweeper.study_name must be a printable name of at most 512 "
                              f"characters; got {name!r}")
        storage = sweeper.get("storage")
        if storage is not None and (not isinstance(storage, str) or not storage.strip()):
            raise ConfigError(f"hydra.sweeper.storage must be an RDB URL (sqlite:///FILE, postgresql://...) "
                              f"or a journal file path; got {storage!r}")
        custom = sweeper.get("custom_search_space")
        if custom is not None and (not isinstance(custom, str) or not custom.strip()):
            raise ConfigError(f"hydra.sweeper.custom_search_space must be the dotted path of a function "
                              f"(cfg, trial) -> None; got {custom!r}")
        settings = cls(name, directions, n_trials, n_jobs, storage, pruner,
                       dict(sweeper.get("pruner_args") or {}), dict(sweeper.get("sampler") or {}),
                       {str(k): str(v) for k, v in (sweeper.get("params") or {}).items()},
                       float(rate), custom)
        make_pruner(pruner, settings.pruner_args)  # bad pruner_args: one line now
        seed = settings.sampler.get("seed")
        if seed is not None and (type(seed) is not int or not 0 <= seed <= MAX_SEED):
            raise ConfigError(f"hydra.sweeper.sampler.seed (the training's seed unless set) must be an "
                              f"integer from 0 to 2**32 - 1 (numpy's seeds); got {seed!r}: give "
                              f"hydra.sweeper.sampler.seed=N")
        if not settings.is_grid:
            settings.make_sampler(0, {})
        return settings

    @property
    def is_grid(self) -> bool:
        """Whether the sampler is Optuna's GridSampler (its grid is made from the search space)."""
        return self._sampler_class() is optuna.samplers.GridSampler

    def _sampler_class(self) -> Any:
        try:
            return get_class(str(self.sampler.get("_target_") or "optuna.samplers.TPESampler"))
        except Exception:
            return None

    def make_sampler(self, worker: int, space: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
        """The sampler of ``sampler`` (Hydra's instantiate: ``_target_`` and its arguments) for this
        process, the ``worker``-th to join the study: its ``seed`` (if any) plus ``worker``, so a search
        run alone draws as the seed says and processes sharing a study draw differently. A GridSampler's
        grid is ``space`` (:func:`grid_of`)."""
        spec = dict(self.sampler) or {"_target_": "optuna.samplers.TPESampler"}
        if spec.get("seed") is not None:
            spec["seed"] = (int(spec["seed"]) + worker) % (MAX_SEED + 1)
        if self.is_grid:
            spec["search_space"] = grid_of(space)
        try:
            sampler = instantiate(spec, _convert_="all")
        except Exception as e:
            cause = e.__cause__ if e.__cause__ is not None else e  # Hydra's InstantiationException wraps it
            raise ConfigError(f"hydra.sweeper.sampler cannot be made: {_first_line(cause)}") from None
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            raise ConfigError(f"hydra.sweeper.sampler._target_ must be an Optuna sampler (e.g. "
                              f"optuna.samplers.TPESampler); got {spec.get('_target_')!r}")
        return sampler

    def planned_trials(self, space: Mapping[str, Any]) -> int:
        """The study's trials in all: ``n_trials``, or the grid's size if smaller (each point once)."""
        if not self.is_grid:
            return self.n_trials
        return min(self.n_trials, math.prod(len(v) for v in grid_of(space).values()))

    def search_extender(self) -> Any:
        """``custom_search_space``'s function (cfg, trial) -> None, or None; ConfigError if it is not
        found."""
        if self.custom_search_space is None:
            return None
        try:
            return get_method(self.custom_search_space)
        except Exception as e:
            raise ConfigError(f"hydra.sweeper.custom_search_space={self.custom_search_space} is not a "
                              f"function that can be imported: {_first_line(e.__cause__ or e)}") from None

    def as_info(self, storage: str) -> StudyRef:
        """What a job needs to report to its trial (sweep.json's ``study``): the storage as it is recorded,
        without a password."""
        return StudyRef(recorded_storage(storage), self.study_name, self.direction, self.pruner,
                        self.n_trials, dict(self.pruner_args))


def check_directions(direction: Any) -> tuple[str, ...]:
    """``hydra.sweeper.direction`` (minimize, maximize, or a list of them) as a tuple; ConfigError if not."""
    values = list(direction) if isinstance(direction, (list, tuple)) else [direction]
    names = tuple(str(v).lower().removeprefix("direction.") for v in values)
    if not names or any(n not in DIRECTIONS for n in names):
        raise ConfigError(f"hydra.sweeper.direction must be maximize or minimize (of the value the task "
                          f"returns), or a list of them (one per value); got {direction!r}")
    return names


def grid_of(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A GridSampler's grid: each parameter's values (choices, a stepped range's values, a range's ints).
    ConfigError for a continuous interval, which has no grid."""
    grid = {}
    for name, d in space.items():
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            grid[name] = list(d.choices)
        elif isinstance(d, optuna.distributions.IntDistribution) and not d.log:
            grid[name] = list(range(d.low, d.high + 1, d.step))
        elif isinstance(d, optuna.distributions.FloatDistribution) and d.step is not None:
            n = int(round((d.high - d.low) / d.step))
            grid[name] = [d.low + i * d.step for i in range(n + 1)]
        else:
            raise ConfigError(f"{name}: the grid sampler takes choices and ranges only (choice(a, b), "
                              f"range(a, b, step=s)); got "
                              f"{_short(optuna.distributions.distribution_to_json(d))}")
    return grid


def make_pruner(name: str, args: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """The pruner named ``name`` (one of PRUNERS), built with ``args`` (``hydra.sweeper.pruner_args``,
    checked against PRUNER_ARGS first)."""
    kinds = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
             "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
             "hyperband": optuna.pruners.HyperbandPruner}
    try:
        check_values(args, PRUNER_ARGS[name], "hydra.sweeper.pruner_args.", f"the {name} pruner")
        return kinds[name](**args)
    except (TypeError, ValueError) as e:  # SettingError, or Optuna's own checks
        raise ConfigError(str(e) if isinstance(e, SettingError) else
                          f"hydra.sweeper.pruner_args do not suit the {name} pruner: {e}") from None


def stale_seconds(config: DictConfig) -> float:
    """When a silent trial of another host counts as dead: the project's ``tracking.stale_after_min``."""
    return 60.0 * float(config.get("tracking", {}).get("stale_after_min", 60.0))


def default_storage(sweep_dir: str | Path) -> str:
    """The journal file of a search that names no storage: in its sweep folder, absolute."""
    return str((Path(sweep_dir) / DEFAULT_STORAGE_FILE).resolve())


def is_url(storage: str) -> bool:
    return "://" in storage


def absolute_storage(storage: str) -> str:
    """A journal path made absolute (jobs and later invocations run elsewhere); URLs as they are, a
    relative SQLite file made absolute."""
    if not is_url(storage):
        return str(Path(storage).expanduser().resolve())
    if storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        path = storage.removeprefix("sqlite:///")
        if path and path != ":memory:":
            return "sqlite:///" + str(Path(path).resolve())
    return storage


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """Optuna's storage for ``storage`` (see the module's doc); ConfigError in one line if it does not
    open (a server that does not answer, a folder that cannot be written, an unknown scheme)."""
    if not is_url(storage):
        path = Path(storage)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            check_journal(path)
            return JournalStorage(_JournalFile(path))
        except OSError as e:
            raise ConfigError(f"hydra.sweeper.storage: the journal file {storage} cannot be opened "
                              f"({e.strerror or e}); give a writable path or an RDB URL") from None
    scheme = storage.partition("://")[0].partition("+")[0]
    if scheme not in ("sqlite", "postgresql"):
        raise ConfigError(f"hydra.sweeper.storage: {scheme}:// is not supported; give sqlite:///FILE, "
                          f"postgresql://USER@HOST/DB or a journal file path")
    if storage.rstrip("/").endswith(":memory:") or storage in ("sqlite://", "sqlite:///"):
        raise ConfigError("hydra.sweeper.storage: an in-memory SQLite database would lose the study; give "
                          "a file (sqlite:///FILE)")
    try:
        # Optuna creates its tables when it first opens a database: two workers doing so at once on a new
        # database collide in PostgreSQL's catalog, so the opening is done under the storage's lock.
        # get_storage: the RDB storage with Optuna's cache in front, as a study opened by URL has it.
        with storage_lock(storage, "the schema"):
            return optuna.storages.get_storage(optuna.storages.RDBStorage(
                storage, engine_kwargs={"pool_pre_ping": True}))
    except Exception as e:
        raise ConfigError(f"hydra.sweeper.storage {_safe(storage)} does not open: {_first_line(e)}; "
                          f"check the URL and that the database server runs") from None


class _JournalFile(JournalFileBackend):
    """Optuna's journal file, whose failed writes (a full disk) name the file."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), JournalFileOpenLock(str(path)))
        self.path = path

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        try:
            super().append_logs(logs)
        except OSError as e:
            if e.filename is None and e.errno is not None:
                raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(self.path)) from e
            raise


def check_journal(path: Path) -> None:
    """A journal file made whole before a search writes to it, under the journal's own lock (no write is
    half done meanwhile): a last record cut short (a kill or a full disk while it was written) is dropped,
    the file rewritten whole and renamed into place, with a one-line warning; a record that is not JSON
    before the last one is a ConfigError naming the file and the line (the study cannot be read past it).
    Optuna itself would append the next record onto the cut one and fail on every read after."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    lock = JournalFileOpenLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
        *lines, tail = data.split(b"\n")  # tail: what follows the last newline (empty when whole)
        for number, line in enumerate(lines, 1):
            try:
                json.loads(line)
            except ValueError as e:
                problem = f"{type(e).__name__}: {str(e)[:80]}"
                raise ConfigError(f"the Optuna journal {path} has a damaged record at line {number} "
                                  f"({problem}); the study cannot be read past it: move the file away to "
                                  f"start the search again, or repair that line") from None
        if not tail:
            return
        try:
            json.loads(tail)
            whole, what = data + b"\n", "its last record lacked its line end: added"
        except ValueError:
            whole, what = data[: len(data) - len(tail)], "its last record was cut short: dropped"
        with atomic_path(path) as tmp:
            tmp.write_bytes(whole)
        print(f"warning: the Optuna journal {path}: {what} (a kill or a full disk while it was written); the "
              f"study goes on", file=sys.stderr, flush=True)
    finally:
        lock.release()


@dataclass
class SharedStudy:
    """An Optuna study with the storage it lives in (``storage``: as configured, made absolute), the
    storage object, and the study's id there (the storage's trial-level API takes trial ids)."""

    study: optuna.Study
    storage: str
    backend: optuna.storages.BaseStorage
    study_id: int

    def trial_id(self, number: int) -> int:
        return self.backend.get_trial_id_from_study_id_trial_number(self.study_id, number)

    @property
    def name(self) -> str:
        return self.study.study_name


def load_study(info: StudySettings | StudyRef, storage: str, create: bool = False,
               space: Mapping[str, Any] | None = None) -> SharedStudy:
    """The study named in the settings (or a job's sweep.json ``study``) in ``storage``, created if
    ``create`` and missing; ConfigError if it is missing, or holds the other direction. Given the search's
    ``space`` (a search opening its study), the study must be this search's (:func:`check_same_search`)."""
    settings = info if isinstance(info, StudySettings) else None
    info = info.as_info(storage) if isinstance(info, StudySettings) else info
    pruner = make_pruner(info.pruner, info.pruner_args)
    backend = open_storage(storage)
    name, directions = info.study_name, check_directions(info.direction.split(","))
    try:
        if create:
            study = optuna.create_study(storage=backend, study_name=name, directions=list(directions),
                                        pruner=pruner, load_if_exists=True)
        else:
            study = optuna.load_study(study_name=name, storage=backend, pruner=pruner)
    except KeyError:
        raise ConfigError(f"there is no study {name!r} in {_safe(storage)}") from None
    except Exception as e:  # the database went away, a journal that is not one
        raise ConfigError(f"hydra.sweeper.storage {_safe(storage)}: the study cannot be opened: "
                          f"{_first_line(e)}") from None
    held = tuple(d.name.lower() for d in study.directions)
    if held != directions:
        shown = held[0] if len(held) == 1 else f"[{','.join(held)}]"
        raise ConfigError(f"study {name!r} in {_safe(storage)} is set to {' and '.join(held)} its "
                          f"value{'s' if len(held) > 1 else ''}; set hydra.sweeper.direction={shown} or "
                          f"another hydra.sweeper.study_name")
    shared = SharedStudy(study, storage, backend, backend.get_study_id_from_name(name))
    if settings is not None and space is not None:
        check_same_search(shared, search_identity(settings, space))
    return shared


def search_identity(settings: StudySettings, space: Mapping[str, Any]) -> dict[str, Any]:
    """What makes a search this search and not another, kept with its study: its pruner (and the pruner's
    arguments), its sampler and its space. (Not n_trials: the same search with more trials goes on.)"""
    return {"pruner": settings.pruner, "pruner_args": settings.pruner_args,
            "sampler": {k: str(v) for k, v in sorted(settings.sampler.items())},
            "space": {k: optuna.distributions.distribution_to_json(d) for k, d in sorted(space.items())}}


def check_same_search(shared: SharedStudy, identity: dict[str, Any]) -> None:
    """The study must be the one of the search ``identity`` describes: a study another search made (another
    pruner, sampler or space) is a ConfigError naming what differs, before any trial is asked (two spaces
    on one study would fail every trial, and leave a trial RUNNING for ever). A study made before its
    search was recorded is checked on its trials' spaces, then recorded."""
    held = shared.backend.get_study_system_attrs(shared.study_id).get(SEARCH_ATTR)
    where = f"study {shared.name!r} in {_safe(shared.storage)}"
    fix = "give this search another hydra.sweeper.study_name, or another hydra.sweep.dir"
    if held is not None:
        differ = [k for k in ("pruner", "pruner_args", "sampler", "space") if held.get(k) != identity[k]]
        if differ:
            what = ", ".join(f"{k} {_short(held.get(k))} there, {_short(identity[k])} here" for k in differ)
            raise ConfigError(f"{where} belongs to another search ({what}); {fix}")
        return
    space = {k: optuna.distributions.json_to_distribution(v) for k, v in identity["space"].items()}
    for t in shared.study.get_trials(deepcopy=False):
        for k, d in t.distributions.items():
            if k in space:
                try:
                    optuna.distributions.check_distribution_compatibility(d, space[k])
                except ValueError:
                    raise ConfigError(f"{where} searched {k} as {_short(d)}; this search gives it "
                                      f"{_short(space[k])}; {fix}") from None
    shared.backend.set_study_system_attr(shared.study_id, SEARCH_ATTR, identity)


def _short(value: Any, n: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= n else text[:n] + "..."


# ---------------------------------------------------------------------------------------- search space


def search_space(params: Mapping[str, str], arguments: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """(name -> Optuna distribution, fixed overrides) from the sweeper's params and the command line's
    overrides (a command-line value replaces a param of the same key). ConfigError on a sweep Optuna
    cannot sample (a glob, an empty choice)."""
    lines = {override_key(k): f"{k}={v}" for k, v in params.items()}
    parser = OverridesParser.create()
    fixed = []
    for override in parser.parse_overrides(list(arguments)):
        key = override_key(override.get_key_element())
        if override.is_sweep_override():
            lines[key] = override.input_line
        else:
            lines.pop(key, None)
            fixed.append(override.input_line)
    space = {}
    for override in parser.parse_overrides(list(lines.values())):
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed  # an empty space: n_trials jobs of the same config (a custom_search_space's)


def distribution(override: Override) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one sweep override: ``interval(a, b)`` uniform (``tag(log, ...)``:
    log-uniform; both ints: integers), ``range(a, b[, step])`` its values as Hydra lists them (ordered,
    stepped), ``choice(...)`` / ``a,b,c`` categorical."""
    value = override.value()
    key = override.get_key_element()
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        shown = f"{'tag(log, ' if log else ''}interval({value.start}, {value.end}){')' if log else ''}"
        if not (math.isfinite(value.start) and math.isfinite(value.end)):
            raise ConfigError(f"{key}: {shown} is not a finite interval; give finite bounds, e.g. "
                              f"{key}='tag(log, interval(1e-7, 1e-2))'")
        if not value.start < value.end or (log and value.start <= 0):
            raise ConfigError(f"{key}: {shown} is empty" + (" or not positive (a log scale)" if log else ""))
        if isinstance(value.start, int) and isinstance(value.end, int):
            return optuna.distributions.IntDistribution(int(value.start), int(value.end), log=log)
        return optuna.distributions.FloatDistribution(float(value.start), float(value.end), log=log)
    values = list(override.sweep_iterator(transformer=Transformer.encode))
    if not values:
        raise ConfigError(f"{key}: {override.input_line.partition('=')[2]} has no values")
    if isinstance(value, RangeSweep) and not value.shuffle:
        numbers = [float(v) for v in values]
        step = abs(float(value.step))
        if all(isinstance(x, int) for x in (value.start, value.stop, value.step)):
            return optuna.distributions.IntDistribution(int(min(numbers)), int(max(numbers)), step=int(step))
        return optuna.distributions.FloatDistribution(min(numbers), max(numbers), step=step)
    return optuna.distributions.CategoricalDistribution(values)  # choice(...), a,b,c, shuffle(range)


def trial_overrides(params: Mapping[str, Any], fixed: Sequence[str]) -> list[str]:
    """A trial's job: its parameters as overrides (floats in full: the same trial gives the same
    config, hence the same MLflow run on resume), then the fixed overrides."""
    return [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()] + list(fixed)


# ------------------------------------------------------------------------------------------- claiming


@contextlib.contextmanager
def storage_lock(storage: str, study_name: str) -> Iterator[None]:
    """Exclusive among every process sharing the study (see the module's doc); ``study_name`` names the
    lock."""
    if is_url(storage) and storage.startswith("postgresql"):
        key = zlib.crc32(f"softmax_exp:{study_name}".encode()) - 2**31  # a signed 32-bit lock key
        engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        finally:
            engine.dispose()
        return
    path = storage.removeprefix("sqlite:///") if is_url(storage) else storage
    lock = JournalFileOpenLock(f"{path}.claim")  # its own lock file: the journal's stays the journal's
    lock.acquire()  # waits; a lock left by a killed process is broken after its 30 s grace period
    try:
        yield
    finally:
        lock.release()


@dataclass
class Claimed:
    """A trial this process runs: new (asked) or taken over from a process that died (``resumed``)."""

    trial: optuna.Trial
    resumed: bool = False

    @property
    def number(self) -> int:
        return self.trial.number


def join_study(shared: SharedStudy, settings: StudySettings, space: Mapping[str, Any]) -> int:
    """This process joins the search of ``shared``: it is given the next worker number (0 for the first
    process of the study, kept in the study) and its sampler, made once (StudySettings.make_sampler), is
    the study's here. Returns the worker number."""
    with storage_lock(shared.storage, shared.name):
        worker = int(shared.backend.get_study_system_attrs(shared.study_id).get(WORKERS_ATTR, 0))
        shared.backend.set_study_system_attr(shared.study_id, WORKERS_ATTR, worker + 1)
    shared.study.sampler = settings.make_sampler(worker, space)
    return worker


def claim_trial(shared: SharedStudy, n_trials: int, space: Mapping[str, Any],
                stale_after_s: float) -> Claimed | None:
    """The next trial for this process: first a RUNNING one whose owner is gone (its parameters kept),
    else a new one asked of the study's sampler (:func:`join_study`) while the study has fewer than
    ``n_trials``; None when the study is full. Done under :func:`storage_lock`, so no two processes claim
    the same trial and all of them together never make more than ``n_trials``."""
    study = shared.study
    with storage_lock(shared.storage, shared.name):
        trials = study.get_trials(deepcopy=False)
        for t in trials:
            if t.state == optuna.trial.TrialState.RUNNING and trial_owner_gone(t, stale_after_s):
                trial_id = shared.trial_id(t.number)
                shared.backend.set_trial_system_attr(trial_id, OWNER_ATTR, owner_tags())
                # a trial of the study, its parameters already set: wrapped as Study.ask wraps the trial
                # it creates (Optuna has no public call to take over a running trial)
                return Claimed(optuna.Trial(study, trial_id), resumed=True)
        if len(trials) >= n_trials:
            return None
        try:
            trial = study.ask(dict(space))
        except Exception:  # its new trial is left RUNNING, with no parameters and no owner: it fails
            for t in study.get_trials(deepcopy=False)[len(trials):]:
                if t.state == optuna.trial.TrialState.RUNNING and OWNER_ATTR not in t.system_attrs:
                    study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            raise
        shared.backend.set_trial_system_attr(shared.trial_id(trial.number), OWNER_ATTR, owner_tags())
        return Claimed(trial)


def trial_owner_gone(trial: optuna.trial.FrozenTrial, stale_after_s: float) -> bool:
    """A RUNNING trial whose claiming process is dead (this host) or silent for ``stale_after_s``."""
    owner = dict(trial.system_attrs.get(OWNER_ATTR) or {})
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if beat is not None and int(beat) > int(owner.get(HEARTBEAT_TAG, "0") or 0):
        owner[HEARTBEAT_TAG] = str(int(beat))
    started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return owner_gone(owner, stale_after_s, started)


def owner_line(trial: optuna.trial.FrozenTrial) -> str:
    owner = trial.system_attrs.get(OWNER_ATTR) or {}
    return f"process {owner.get(PID_TAG, '?')} on {owner.get(HOST_TAG, '?')}"


# -------------------------------------------------------------------------------------------- results


def record_result(shared: SharedStudy, trial_number: int, result: JobResult) -> None:
    """Keep a trial's JobResult with it (:func:`keep_result`) and tell the study how its job ended:
    COMPLETE with its val_acc, PRUNED, or FAIL."""
    keep_result(shared, trial_number, result)
    if result.status == "PRUNED":
        tell(shared, trial_number, state=optuna.trial.TrialState.PRUNED)
    elif result.status == "FINISHED" and math.isfinite(result.val_acc):
        tell(shared, trial_number, [result.val_acc])
    else:
        tell(shared, trial_number, state=optuna.trial.TrialState.FAIL)


def keep_result(shared: SharedStudy, trial_number: int, result: JobResult) -> None:
    """Keep a project job's JobResult with its trial (the sweep's summary rows), and its MLflow run as user
    attributes (shown by optuna-dashboard)."""
    backend = shared.backend
    trial_id = shared.trial_id(trial_number)
    row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)  # JSON has no NaN
           for k, v in asdict(result).items()}
    backend.set_trial_system_attr(trial_id, RESULT_ATTR, row)
    for key in ("run_id", "run_name", "train_acc", "iterations"):
        if row.get(key) not in (None, ""):
            backend.set_trial_user_attr(trial_id, f"mlflow_{key}" if key.startswith("run") else key, row[key])


def tell(shared: SharedStudy, trial_number: int, values: Sequence[float] | None = None,
         state: optuna.trial.TrialState = optuna.trial.TrialState.COMPLETE) -> None:
    """Study.tell, quietly: values that are not finite make the trial FAIL (as Optuna would, without its
    warning), and the GridSampler's ``Study.stop()`` on its last point (which raises outside
    Study.optimize) is not an error: the search ends when the study holds its trials."""
    if values is not None and not all(math.isfinite(v) for v in values):
        values, state = None, optuna.trial.TrialState.FAIL
    try:
        shared.study.tell(trial_number, values, state=state)
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise


def study_results(shared: SharedStudy, stale_after_s: float) -> list[JobResult]:
    """Every trial of the study as a JobResult (job = trial number): its job's result once it ended;
    RUNNING (in another process) or KILLED (its process died) before that."""
    rows = []
    for t in shared.study.get_trials(deepcopy=False):
        data = t.system_attrs.get(RESULT_ATTR)
        if data:
            row = {k: (math.nan if v is None and k.endswith("acc") else v) for k, v in data.items()}
            rows.append(JobResult.from_dict({**row, "job": t.number}))
            continue
        lr, reg = (float(t.params[k]) if k in t.params else math.nan for k in ("lr", "reg"))
        if t.state == optuna.trial.TrialState.RUNNING:
            gone = trial_owner_gone(t, stale_after_s)
            rows.append(JobResult(t.number, f"trial {t.number}", "KILLED" if gone else "RUNNING", lr, reg,
                                  reason=f"{owner_line(t)} {'died' if gone else 'runs it'}"))
        elif t.state == optuna.trial.TrialState.WAITING:
            continue
        else:  # told by hand, or by another tool
            value = t.value if t.value is not None else math.nan
            status = {"COMPLETE": "FINISHED", "PRUNED": "PRUNED"}.get(t.state.name, "FAILED")
            rows.append(JobResult(t.number, f"trial {t.number}", status, lr, reg, val_acc=value))
    return sorted(rows, key=lambda r: r.job)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _safe(url: str) -> str:
    """A storage URL as it is shown: its password as ``***``."""
    return masked(url)


def recorded_storage(storage: str) -> str:
    """A storage as it is written down (sweep.json, the parent run's tag): without a password."""
    return without_password(storage)


def usable_storage(recorded: str, given: str | None) -> str:
    """The storage to open, from the one recorded (without its password) and the one this process was
    given (``hydra.sweeper.storage``, with it): the given one when it is the recorded one, else the recorded
    one (its password, if it needs one, from the environment: PGPASSWORD, ~/.pgpass)."""
    if given:
        given = absolute_storage(given)
        if recorded_storage(given) == recorded:
            return given
    return recorded


def study_dashboard_command(storage: str) -> str:
    """The command that shows the study in optuna-dashboard, as it can be pasted into a shell: the
    dashboard of this environment (``.venv/bin/optuna-dashboard`` from the project's folder, which is not
    on PATH), the URL without its password (libpq takes it from PGPASSWORD or ~/.pgpass)."""
    exe = Path(sys.executable).with_name("optuna-dashboard")
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    return f"{shlex.quote(str(exe))} {shlex.quote(without_password(storage))}"
