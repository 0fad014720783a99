"""What was done before: the earlier MLflow runs of a job or a sweep, found by their fingerprints.

A job's run carries its config's fingerprint and a sweep's parent the sweep's (both made by
softmax_exp.config.fingerprints) as tags, so rerunning a command finds its earlier runs in the store
whatever output directory Hydra picks:

* a job whose run FINISHED is skipped (its metrics are reused);
* a job whose run was KILLED (or FAILED: a full disk, a time limit) with a checkpoint goes on from the
  checkpoint, in the same run (a run that diverged diverges again at the same step, sooner);
* a run left RUNNING by a process that died (SIGKILL, a reboot) is first marked KILLED, with a reason;
* other unfinished runs of the job are replaced by a new one (the old ones go to MLflow's trash).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from softmax_exp.tracking.owners import is_stale
from softmax_exp.tracking.store import child_runs
from softmax_exp.tracking.tags import (  # noqa: F401 (the resume tags are read from here too)
    CHECKPOINT_TAG,
    FINGERPRINT_TAG,
    HOST_TAG,
    KILLED_TAG,
    PARENT_TAG,
    PID_TAG,
    RESUMED_TAG,
    STOPPED_TAG,
    SUPERSEDED_TAG,
    SWEEP_FINGERPRINT_TAG,
    legacy_name,
    renamed,
)


class JobRunningElsewhere(RuntimeError):
    """The same job is being trained right now by another live process."""


@dataclass
class Earlier:
    """The earlier runs of one job, newest first: what to reuse, resume or replace."""

    finished: Any = None  # a FINISHED run (mlflow Run)
    resumable: Any = None  # a KILLED or FAILED run with a checkpoint
    unfinished: list = field(default_factory=list)  # the other runs that did not finish
    marked_killed: list = field(default_factory=list)  # stale RUNNING runs just marked KILLED


def earlier_runs(client, experiment_id: str, fingerprint: str, parent_run_id: str | None,
                 stale_after_s: float) -> Earlier:
    """The runs of the job ``fingerprint`` in the experiment, children of ``parent_run_id`` (None: runs
    outside any sweep). Stale RUNNING ones are marked KILLED first. In a sweep a live one raises
    JobRunningElsewhere; the same single run may run twice at once. A KILLED or FAILED run with a
    checkpoint is resumable only if no run of the job finished after it started."""
    adopt_legacy_runs(client, experiment_id, FINGERPRINT_TAG, fingerprint)
    runs = client.search_runs([experiment_id], filter_string=f"tags.{FINGERPRINT_TAG} = '{fingerprint}'",
                              max_results=1000, order_by=["attributes.start_time DESC"])
    found = Earlier()
    for run in runs:  # newest first
        if run.data.tags.get(PARENT_TAG) != parent_run_id:
            continue
        if run.info.status == "RUNNING":
            if not is_stale(run, stale_after_s):
                if parent_run_id is None:
                    continue
                tags = run.data.tags
                raise JobRunningElsewhere(
                    f"this job is running in process {tags.get(PID_TAG, '?')} on "
                    f"{tags.get(HOST_TAG, '?')} (run {run.info.run_id}); wait for it to end")
            run = mark_killed(client, run)
            found.marked_killed.append(run)
        if run.info.status == "FINISHED" and STOPPED_TAG in run.data.tags:
            continue  # a pruned training: ended, not a finished one to reuse, nothing to resume
        if run.info.status == "FINISHED":
            found.finished = found.finished or run
        elif (run.info.status in ("KILLED", "FAILED") and CHECKPOINT_TAG in run.data.tags
              and found.resumable is None and found.finished is None):
            found.resumable = run
        else:
            found.unfinished.append(run)
    return found


def mark_killed(client, run, reason: str | None = None):
    """End a stale RUNNING run KILLED, saying why in its ``killed_reason`` tag; return it re-read."""
    tags = run.data.tags
    reason = reason or (f"process {tags.get(PID_TAG, '?')} on {tags.get(HOST_TAG, '?')} "
                        f"stopped without ending the run (found by a later invocation)")
    client.set_tag(run.info.run_id, KILLED_TAG, reason)
    client.set_terminated(run.info.run_id, status="KILLED")
    return client.get_run(run.info.run_id)


def mark_stale_children(client, parent_run_id: str, stale_after_s: float) -> list[str]:
    """Mark KILLED every stale RUNNING child of a sweep's parent run; return their run ids."""
    return [mark_killed(client, run).info.run_id for run in child_runs(client, parent_run_id)
            if is_stale(run, stale_after_s)]


def supersede(client, runs: Iterable, new_run_id: str) -> None:
    """Replace unfinished runs of a job by ``new_run_id``: tag them and move them to MLflow's trash
    (``mlflow gc`` deletes them for good; the UI can restore them)."""
    for run in runs:
        client.set_tag(run.info.run_id, SUPERSEDED_TAG, new_run_id)
        client.delete_run(run.info.run_id)


def sweep_parents(client, experiment_id: str, fingerprint: str) -> list:
    """The live parent runs of the sweep ``fingerprint``, oldest first (ties: by run id)."""
    adopt_legacy_runs(client, experiment_id, SWEEP_FINGERPRINT_TAG, fingerprint)
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.{SWEEP_FINGERPRINT_TAG} = '{fingerprint}'",
                              max_results=100)
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


def adopt_legacy_runs(client, experiment_id: str, tag: str, value: str) -> None:
    """Runs logged before the bookkeeping tags moved under ``mlflow.softmax_exp.*`` (off MLflow's run
    pages) carry them as ``softmax_exp.*``: those whose ``tag`` (by its old name) is ``value`` get every
    bookkeeping tag under its new name too, once, so that resume finds and reads them as any other."""
    from mlflow.entities import RunTag

    runs = client.search_runs([experiment_id], filter_string=f"tags.`{legacy_name(tag)}` = '{value}'",
                              max_results=1000)
    for run in runs:
        if tag in run.data.tags:
            continue
        moved = [RunTag(new, v) for k, v in run.data.tags.items() if (new := renamed(k)) is not None]
        client.log_batch(run.info.run_id, tags=moved)
