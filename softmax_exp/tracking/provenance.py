"""What made a run: the git commit (and whether the tree had uncommitted changes) and library versions."""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version

from softmax_exp.paths import project_root


def environment_tags() -> dict[str, str]:
    """Tags that pin down the code: git commit and dirty flag, numpy / numba / mlflow versions."""
    commit, dirty = _git_state(str(project_root()))
    tags = {"git_commit": commit, "git_dirty": dirty}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    for pkg in ("numpy", "numba", "mlflow"):
        tags[f"{pkg}_version"] = _version(pkg)
    return tags


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


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"
