"""The names of the tags a run carries, in one place.

MLflow's own (``mlflow.*``) are what its UI shows: the user, the source and its git commit, the parent of a
sweep's child, the note. The project's bookkeeping, which no one needs to read to compare runs but which
resume and the liveness checks do, lives under one prefix, ``softmax_exp.*``, so that the UI's tag columns
and the compare view are not cluttered by it.
"""

from __future__ import annotations

PREFIX = "softmax_exp."

# MLflow's own
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
NOTE_TAG = "mlflow.note.content"

# a run's owner (softmax_exp.tracking.owners)
HOST_TAG = PREFIX + "host"
PID_TAG = PREFIX + "pid"
PID_START_TAG = PREFIX + "pid_start"
HEARTBEAT_TAG = PREFIX + "heartbeat"

# resume (softmax_exp.tracking.resume)
FINGERPRINT_TAG = PREFIX + "config_fingerprint"
SWEEP_FINGERPRINT_TAG = PREFIX + "sweep_fingerprint"
CHECKPOINT_TAG = PREFIX + "checkpoint"  # artifact path of the run's last checkpoint
KILLED_TAG = PREFIX + "killed_reason"
RESUMED_TAG = PREFIX + "resumed_from_iteration"
SUPERSEDED_TAG = PREFIX + "superseded_by"
ATTEMPT_TAG = PREFIX + "attempt"

# what ran, how
FAILURE_TAG = PREFIX + "failure_reason"
MODEL_URI_TAG = PREFIX + "model_uri"  # the run's logged MLflow model (models:/...)
THREADS_TAG = PREFIX + "numba_threads"
DATASET_TAG = PREFIX + "dataset_fingerprint"
GIT_DIRTY_TAG = PREFIX + "git_dirty"
SWEEP_ID_TAG = PREFIX + "sweep_id"
JOB_NUM_TAG = PREFIX + "job_num"
# why the training ended early yet healthy (a pruned trial: "pruned at iteration k"); the run is FINISHED
# with its metrics so far, and never reused as a finished training
STOPPED_TAG = PREFIX + "stopped_early"
TRIAL_TAG = PREFIX + "optuna_trial"  # the trial number of a search's job in its Optuna study

# a sweep's parent
SWEEP_DIR_TAG = PREFIX + "sweep_dir"
NUM_JOBS_TAG = PREFIX + "num_jobs"
NUM_FAILED_TAG = PREFIX + "num_failed"
BEST_RUN_ID_TAG = PREFIX + "best_run_id"
BEST_RUN_NAME_TAG = PREFIX + "best_run_name"
STUDY_STORAGE_TAG = PREFIX + "optuna_storage"  # a search's Optuna storage (URL or journal file)
STUDY_NAME_TAG = PREFIX + "optuna_study"


def version_tag(package: str) -> str:
    """The tag holding a library's version: ``softmax_exp.numpy_version``."""
    return f"{PREFIX}{package}_version"
