"""A sweep's results, in files under the sweep directory (works with any launcher).

``sweep.json`` (written before the jobs start) tells every job its sweep id, the number of jobs and the
parent MLflow run. Each job leaves ``result.json`` in its own output directory, whatever happened to it.
At the end the results are gathered into ``summary.csv`` and the course's cross-validation table. Every
file is written atomically: a job or the summary never reads half of one.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from softmax_exp.util.atomic import atomic_path, write_text

SWEEP_FILE = "sweep.json"
RESULT_FILE = "result.json"
SUMMARY_FILE = "summary.csv"
HEATMAP_FILE = "val_acc_heatmap.png"


@dataclass(frozen=True)
class JobResult:
    """One job of a sweep. Accuracies are NaN when the job did not get that far; status is MLflow's
    (FINISHED, FAILED, KILLED), or PRUNED for a trial of a search that its pruner stopped early
    (accuracies so far; RUNNING: a trial another process runs now); reason says why a job failed; note
    says when the job reused an earlier run (skipped), went on from a checkpoint or was pruned; model_uri
    is its logged MLflow model; iterations the SGD updates it made (0: reused, nothing trained); model the
    classifier it trained (``model.name``: softmax, svm), features what it saw (``features.name``),
    register_model the name its config registers a sweep's best under (``tracking.register_model`` as the
    job resolved it; "" for none)."""

    job: int
    run_name: str
    status: str
    lr: float
    reg: float
    train_acc: float = math.nan
    val_acc: float = math.nan
    test_acc: float = math.nan
    reason: str = ""
    run_id: str = ""
    output_dir: str = ""
    sweep_id: str = ""
    note: str = ""
    model_uri: str = ""
    iterations: int = 0
    model: str = "softmax"
    features: str = "pixels"
    register_model: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        """From a result.json's (or a trial's stored) fields; keys it does not know are left out."""
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    @property
    def failed(self) -> bool:
        return self.status not in ("FINISHED", "PRUNED", "RUNNING")

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"


_FIELDS = {f.name for f in fields(JobResult)}


@dataclass(frozen=True)
class StudyRef:
    """A search's Optuna study as its jobs find it (sweep.json's ``study``): where it is stored, its name,
    the direction of its value, its pruner (with the pruner's arguments) and its number of trials."""

    storage: str
    study_name: str
    direction: str
    pruner: str
    n_trials: int
    pruner_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepInfo:
    """``sweep.json``: what every job of a sweep reads, written by the sweep callback before the first.

    sweep_id : tells this sweep's result.json files from another's in the same folder
    name, command : the parent run's name and the command line's overrides
    num_jobs : the jobs the sweeper will launch (None: unknown)
    sweep_keys : the keys the sweep varies (a job's run is named by them)
    fingerprint : the sweep's (softmax_exp.config.fingerprints.sweep_fingerprint)
    parent_run_id, experiment_id, tracking_uri : the parent MLflow run, its experiment and store (None
        untracked)
    view : the key of the sweep's saved view of its jobs; register_model : the registered model's name
    study : a search's study (None for a grid)
    """

    sweep_id: str
    name: str
    command: str
    num_jobs: int | None
    sweep_keys: tuple[str, ...]
    fingerprint: str
    parent_run_id: str | None = None
    experiment_id: str | None = None
    tracking_uri: str | None = None
    view: str | None = None
    register_model: str | None = None
    study: StudyRef | None = None

    def write(self, sweep_dir: str | Path) -> Path:
        """Write ``sweep.json`` into the sweep folder (created if missing), whole or not at all."""
        path = Path(sweep_dir) / SWEEP_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, sweep_dir: str | Path) -> SweepInfo | None:
        """The sweep's ``sweep.json``, or None when there is none (a sweep started without the callback)."""
        path = Path(sweep_dir) / SWEEP_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        study = data.pop("study", None)
        return cls(**{**data, "sweep_keys": tuple(data.get("sweep_keys") or ()),
                      "study": StudyRef(**study) if study else None})


def write_result(output_dir: str | Path, result: JobResult) -> Path:
    """Write a job's ``result.json`` into its output directory."""
    path = Path(output_dir) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(asdict(result), indent=1))


def collect_results(sweep_dir: str | Path, sweep_id: str) -> list[JobResult]:
    """Every ``result.json`` under ``sweep_dir`` that belongs to ``sweep_id``, ordered by job number."""
    results = []
    for path in Path(sweep_dir).rglob(RESULT_FILE):
        data = json.loads(path.read_text())
        if data.get("sweep_id") == sweep_id:
            results.append(JobResult.from_dict(data))
    return sorted(results, key=lambda r: r.job)


def best_result(results: Sequence[JobResult]) -> JobResult | None:
    """The finished job with the highest val_acc (the first such job on ties), or None."""
    ok = [r for r in results if r.finished and math.isfinite(r.val_acc)]
    return max(ok, key=lambda r: r.val_acc) if ok else None


_GRID_KEYS = ("lr", "reg")  # what the course's table and heatmap are drawn over


def variant_of(r: JobResult) -> str:
    """What the job's name says besides lr and reg: the other swept values (``model=svm``,
    ``features.cell_size=4``), "" when the sweep varies lr and reg only."""
    name = r.run_name.split(" #")[0]  # a second run of one name is "<name> #2"
    parts = [p for p in name.split(",") if "=" in p and p.partition("=")[0] not in _GRID_KEYS]
    return ",".join(parts)


def variants_of(results: Sequence[JobResult]) -> list[str]:
    """The variants of the jobs (:func:`variant_of`), in name order."""
    return sorted({variant_of(r) for r in results})


def best_of_each(results: Sequence[JobResult]) -> dict[str, JobResult]:
    """The :func:`best_result` of each variant's jobs (the whole sweep's under "" when only lr and reg
    vary; variants with no finished job left out)."""
    found = {v: best_result([r for r in results if variant_of(r) == v]) for v in variants_of(results)}
    return {v: r for v, r in found.items() if r is not None}


def format_table(results: Sequence[JobResult]) -> str:
    """The course's cross-validation printout: one line per (lr, reg) in sorted order, then the best
    validation accuracy. A failed job's line ends with its status and reason. A sweep of more than lr and
    reg (``-m model=softmax,svm ...``): each line starts with the job's other values (``model=svm lr ...``),
    and each variant's best comes before the sweep's."""
    several = len(variants_of(results)) > 1
    lines = []
    for r in sorted(results, key=lambda r: (variant_of(r), r.lr, r.reg, r.job)):
        prefix = f"{variant_of(r)} " if several else ""
        line = (f"{prefix}lr {r.lr:e} reg {r.reg:e} train accuracy: {r.train_acc:f} "
                f"val accuracy: {r.val_acc:f}")
        if r.failed:
            line += f"  [{r.status}: {r.reason}]"
        elif r.status == "PRUNED":
            line += f"  [PRUNED: {r.note or r.reason}]"
        elif r.status == "RUNNING":
            line += f"  [RUNNING: {r.reason}]"
        lines.append(line)
    if several:
        for variant, best in best_of_each(results).items():
            lines.append(f"best validation accuracy of {variant}: {best.val_acc:f} ({best.run_name})")
    best = best_result(results)
    best_val = best.val_acc if best else -1.0  # the course starts best_val at -1
    lines.append(f"best validation accuracy achieved during cross-validation: {best_val:f}")
    return "\n".join(lines)


def format_note(command: str, results: Sequence[JobResult], versions: Sequence = (), study: str = "") -> str:
    """The sweep in Markdown, for its parent run's note: a table of the jobs (best first, then pruned ones;
    a column for each varied model or feature set), the command, the best job (of each variant, when
    more than lr and reg vary) and the model versions registered; ``study``: a line about a search's Optuna
    study."""
    fields = tuple(f for f in ("features", "model") if len({getattr(r, f) for r in results}) > 1)
    head, rule = "".join(f" {f} |" for f in fields), "---|" * len(fields)
    failed = sum(r.failed for r in results)
    pruned = sum(r.status == "PRUNED" for r in results)
    tested = any(math.isfinite(r.test_acc) for r in results)  # eval_test=true: a column, never chosen by
    test_head, test_rule = (" test_acc |", "---|") if tested else ("", "")
    counts = f"{len(results)} jobs, {failed} failed" + (f", {pruned} pruned" if pruned else "")
    table = [f"| run |{head} lr | reg | train_acc | val_acc |{test_head} status |",
             f"|---|{rule}---|---|---|---|{test_rule}---|"]
    for r in best_first(results):
        test = f" {_acc(r.test_acc)} |" if tested else ""
        variant = "".join(f" {getattr(r, f)} |" for f in fields)
        table.append(f"| {r.run_name} |{variant} {r.lr:g} | {r.reg:g} | {_acc(r.train_acc)} | "
                     f"{_acc(r.val_acc)} |"
                     f"{test} {r.status}{f' ({r.note})' if r.status == 'PRUNED' and r.note else ''} |")
    # MLflow's UI draws a note's table without cell padding ("5e-0710000"): a space after each cell. The
    # table comes first: the run page shows a note's first lines until "Show more" is clicked
    lines = [row if i == 1 else row.replace(" |", f"{CELL_GAP} |") for i, row in enumerate(table)]
    lines += ["", f"**Sweep** `python -m softmax_exp.train -m {command}`: {counts}.",
              *([study] if study else [])]
    registered = {v.source: v for v in versions}
    bests = best_of_each(results) if len(variants_of(results)) > 1 else {"": best_result(results)}
    for variant, best in bests.items():
        if best is None:
            continue
        version = registered.get(best.model_uri)
        lines += ["", f"**Best{f' {variant}' if variant else ''}**: `{best.run_name}` (run {best.run_id}), "
                      f"val_acc {best.val_acc:.4f}, train_acc {_acc(best.train_acc)}"
                      + (f", test_acc {_acc(best.test_acc)}" if tested else "")
                      + (f"; registered as model `{version.name}` version {version.version} (alias `best`)."
                         if version is not None else ".")]
    return "\n".join(lines)


CELL_GAP = "&emsp;"  # an em space (HTML entity: Markdown keeps it) closing each cell of a note's table


def _acc(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "-"


SUMMARY_FIRST = ("run_name", "val_acc", "train_acc", "test_acc", "status", "lr", "reg")


def best_first(results: Sequence[JobResult]) -> list[JobResult]:
    """The jobs as a person reads them: finished ones by val_acc, best first, then the pruned ones (by
    their val_acc when stopped), then those still running, then the failed ones; ties by job number."""
    rank = {"FINISHED": 0, "PRUNED": 1, "RUNNING": 2}
    return sorted(results, key=lambda r: (rank.get(r.status, 3),
                                          -r.val_acc if math.isfinite(r.val_acc) else math.inf, r.job))


def write_summary_csv(path: str | Path, results: Sequence[JobResult]) -> Path:
    """One row per job, :func:`best_first`, under a header naming every column: run_name, val_acc,
    train_acc, test_acc, status, lr and reg first, then the other JobResult fields. An accuracy not
    measured (test_acc without ``eval_test``, a failed job's) is an empty cell, not ``nan``; failed jobs
    have status FAILED and a reason."""
    path = Path(path)
    names = [*SUMMARY_FIRST, *(f.name for f in fields(JobResult) if f.name not in SUMMARY_FIRST)]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        for r in best_first(results):
            writer.writerow({k: "" if isinstance(v, float) and not math.isfinite(v) else v
                             for k, v in asdict(r).items()})
    return path
