"""The names of the tags a run carries, in one place.

MLflow's own (``mlflow.*``) are what its UI shows: the user, the source and its git commit, the parent of a
sweep's child, the note. The project's tags are of two kinds:

- what a person reads on a run's page, under ``softmax_exp.*`` (a handful at most, and most runs have
  none): why it failed, was killed, stopped early or was superseded, where it resumed, a search's trial
  number, a sweep's best run and Optuna study;
- the bookkeeping that resume, the liveness checks and ``reproduce`` need and no one reads (fingerprints,
  owner process, heartbeat, checkpoint, library versions, Numba threads, git dirty flag, a sweep's ids),
  under :data:`BOOKKEEPING`, ``mlflow.softmax_exp.*``: MLflow's UI keeps ``mlflow.*`` tags, its system
  tags, off run pages and tag columns (:data:`softmax_exp.tracking.mlflow_internals.SYSTEM_TAG_PREFIX`),
  so a run page opens on its metrics, not on fifteen keys cut short. Searches and the API see them all.
"""

from __future__ import annotations

from softmax_exp.tracking.mlflow_internals import SYSTEM_TAG_PREFIX

PREFIX = "softmax_exp."  # read by a person
BOOKKEEPING = SYSTEM_TAG_PREFIX + PREFIX  # read by the code only: off MLflow's run pages

# MLflow's own
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
NOTE_TAG = "mlflow.note.content"

# a run's owner (softmax_exp.tracking.owners)
HOST_TAG = BOOKKEEPING + "host"
PID_TAG = BOOKKEEPING + "pid"
PID_START_TAG = BOOKKEEPING + "pid_start"
HEARTBEAT_TAG = BOOKKEEPING + "heartbeat"

# resume (softmax_exp.tracking.resume)
FINGERPRINT_TAG = BOOKKEEPING + "config_fingerprint"
SWEEP_FINGERPRINT_TAG = BOOKKEEPING + "sweep_fingerprint"
CHECKPOINT_TAG = BOOKKEEPING + "checkpoint"  # artifact path of the run's last checkpoint
KILLED_TAG = PREFIX + "killed_reason"
RESUMED_TAG = PREFIX + "resumed_from_iteration"
SUPERSEDED_TAG = PREFIX + "superseded_by"
ATTEMPT_TAG = BOOKKEEPING + "attempt"

# what ran, how
FAILURE_TAG = PREFIX + "failure_reason"
MODEL_URI_TAG = BOOKKEEPING + "model_uri"  # the run's logged MLflow model (models:/...)
THREADS_TAG = BOOKKEEPING + "numba_threads"
DATASET_TAG = BOOKKEEPING + "dataset_fingerprint"
GIT_DIRTY_TAG = BOOKKEEPING + "git_dirty"
SWEEP_ID_TAG = BOOKKEEPING + "sweep_id"
JOB_NUM_TAG = BOOKKEEPING + "job_num"
# why the training ended early yet healthy (a pruned trial: "pruned at iteration k"); the run is FINISHED
# with its metrics so far, and never reused as a finished training
STOPPED_TAG = PREFIX + "stopped_early"
TRIAL_TAG = PREFIX + "optuna_trial"  # the trial number of a search's job in its Optuna study

# a sweep's parent
SWEEP_DIR_TAG = BOOKKEEPING + "sweep_dir"
NUM_JOBS_TAG = BOOKKEEPING + "num_jobs"
NUM_FAILED_TAG = BOOKKEEPING + "num_failed"
BEST_RUN_ID_TAG = BOOKKEEPING + "best_run_id"
BEST_RUN_NAME_TAG = PREFIX + "best_run_name"
STUDY_STORAGE_TAG = BOOKKEEPING + "optuna_storage"  # a search's Optuna storage (URL or journal file)
STUDY_NAME_TAG = PREFIX + "optuna_study"


def version_tag(package: str) -> str:
    """The tag holding a library's version: ``mlflow.softmax_exp.numpy_version``."""
    return f"{BOOKKEEPING}{package}_version"


def legacy_name(tag: str) -> str:
    """The name a bookkeeping tag had before the bookkeeping moved under :data:`BOOKKEEPING`
    (``mlflow.softmax_exp.config_fingerprint`` was ``softmax_exp.config_fingerprint``)."""
    return PREFIX + tag.removeprefix(BOOKKEEPING)


def renamed(key: str) -> str | None:
    """A run's tag ``key`` as it is named now, if it is a bookkeeping tag under its old name; else None."""
    if not key.startswith(PREFIX):
        return None
    new = BOOKKEEPING + key.removeprefix(PREFIX)
    return new if new in _BOOKKEEPING_TAGS or new.endswith("_version") else None


_BOOKKEEPING_TAGS = {v for k, v in dict(globals()).items()
                     if k.endswith("_TAG") and isinstance(v, str) and v.startswith(BOOKKEEPING)}
