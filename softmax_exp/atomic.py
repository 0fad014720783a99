"""Files written whole or not at all: written under a temporary name beside the target, then renamed.

A reader (another job of a sweep, the next run) sees the old file or the new one, never half of one; a
writer stopped by an exception, Ctrl-C included, leaves no temporary file. Folders are built the same way
in a staging folder beside their place (:func:`staged_dir`). The temporary name carries the
writer's pid (``.<name>.<pid><suffix>``), so what a killed writer left can be told apart from a live one's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write; when the block ends normally the
    file is flushed to disk and renamed onto ``path``; when it raises, the file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def fsync(path: str | os.PathLike) -> None:
    """Flush a file's (or a folder's) content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_dir(parent: str | os.PathLike, prefix: str) -> Iterator[Path]:
    """A new temporary folder ``<parent>/<prefix><random>`` to build something in and rename into place
    from inside the block; whatever is still in it when the block ends (normally or not) is removed."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


TEMP_PREFIX = "softmax_exp-"
_swept = [False]


@contextmanager
def temp_dir(purpose: str) -> Iterator[Path]:
    """A temporary folder in the system's temp dir, named ``softmax_exp-<pid>-<purpose>-<random>`` and
    removed when the block ends. The first call of a process removes the folders that killed processes
    (SIGKILL, out of memory) left there: the pid in their name is no longer alive."""
    if not _swept[0]:
        _swept[0] = True
        remove_dead_temp_dirs()
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{purpose}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_dead_temp_dirs(folder: str | os.PathLike | None = None) -> list[Path]:
    """Remove this package's temporary folders (see :func:`temp_dir`) whose process is gone; return them."""
    import psutil

    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = path.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
