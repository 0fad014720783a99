"""What made a run: who, from which program, at which git commit (and whether the tree had uncommitted
changes), with which library versions; as the tags MLflow's UI shows (``mlflow.user``,
``mlflow.source.*``) and the project's own (``softmax_exp.*``)."""

from __future__ import annotations

import functools
import getpass
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from softmax_exp.tracking.tags import (
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    SOURCE_NAME_TAG,
    SOURCE_TYPE_TAG,
    USER_TAG,
    version_tag,
)
from softmax_exp.util.paths import project_root


def environment_tags() -> dict[str, str]:
    """The user, the program (the path of the script or module run, relative to the project), the git
    commit and dirty flag, numpy / numba / mlflow versions."""
    commit, dirty = git_state()
    tags = {USER_TAG: _user(), SOURCE_NAME_TAG: _source_name(), SOURCE_TYPE_TAG: "LOCAL",
            GIT_DIRTY_TAG: dirty}
    if commit != "unknown":
        tags[GIT_COMMIT_TAG] = commit
    for pkg in ("numpy", "numba", "mlflow"):
        tags[version_tag(pkg)] = _version(pkg)
    return tags


def git_state() -> tuple[str, str]:
    """(commit, "true" | "false") of the project's checkout; ("unknown", "unknown") outside git."""
    return _git_state(str(project_root()))


@functools.lru_cache(maxsize=4)
def _git_state(root: str) -> tuple[str, str]:
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return commit, str(bool(status.strip())).lower()


def _source_name() -> str:
    program = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else Path("python")
    try:
        return str(program.relative_to(project_root()))
    except ValueError:
        return program.name


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"
