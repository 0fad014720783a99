"""Everything MLflow, one module a concern, and none of Hydra or of the config (the job layer hands it what
to record):

- ``settings``: the tracking options (the ``tracking`` config group's schema);
- ``store``: the store's URI, one client per URI whose calls wait out a locked SQLite file, experiments;
- ``run``: one run with batched metrics, params, tags and artifacts, ended once and never left RUNNING;
- ``http``: a tracking server: bounded retries, one line while it does not answer and when it failed;
- ``owners``: which process owns a run and whether it still lives; ``provenance``: git and versions;
- ``resume``: the earlier runs a training's or a sweep's fingerprint finds;
- ``job``: a training's run from lookup to end (reuse, reopen from a checkpoint, or start; metrics,
  checkpoints, artifacts);
- ``logged_model``: the classifier as an MLflow model (softmax_exp.serving is its pyfunc), ``registry``
  the Model Registry, ``views`` the UI's saved views, ``links`` the UI's pages, ``tags`` every tag's name;
- ``mlflow_internals``: every use of MLflow's private API, tied to the MLflow versions tested.

mlflow itself is imported on first use only (it costs seconds), so an untracked training never pays for it.
"""

from softmax_exp.tracking.job import RunSpec, TrackedJob
from softmax_exp.tracking.owners import (
    HEARTBEAT_TAG,
    HOST_TAG,
    PID_START_TAG,
    PID_TAG,
    is_stale,
    owner_alive,
    owner_tags,
)
from softmax_exp.tracking.provenance import environment_tags
from softmax_exp.tracking.resume import JobRunningElsewhere
from softmax_exp.tracking.run import FAILURE_TAG, PARENT_TAG, Run
from softmax_exp.tracking.store import (
    DB_NAME,
    Store,
    TrackingError,
    check_reachable,
    child_runs,
    default_artifact_root,
    default_uri,
    get_client,
    get_or_create_experiment,
    resolve_tracking_uri,
)

__all__ = [
    "DB_NAME", "FAILURE_TAG", "HEARTBEAT_TAG", "HOST_TAG", "PARENT_TAG", "PID_START_TAG", "PID_TAG",
    "JobRunningElsewhere", "Run", "RunSpec", "Store", "TrackedJob", "TrackingError", "check_reachable",
    "child_runs", "default_artifact_root", "default_uri", "environment_tags", "get_client",
    "get_or_create_experiment", "is_stale", "owner_alive", "owner_tags", "resolve_tracking_uri",
]
