"""Files written whole or not at all: written under a temporary name beside the target, then renamed.

A reader (another job of a sweep, the next run) sees the old file or the new one, never half of one; a
writer stopped by an exception, Ctrl-C included, leaves no temporary file. Folders are built the same way
in a staging folder beside their place (:func:`staged_dir`).

A writer stopped by SIGKILL (or the out-of-memory killer, or a reboot) cannot clean up, so every temporary
name ends with its writer's owner tag ``.<pid>@<host>`` (before the suffix). The next writer of the same
target, holding the target's lock (:func:`exclusive_lock`), calls :func:`remove_dead_leftovers`: what a
process that is gone left is removed, a live writer's is left alone. The host is in the tag because a pid
means nothing on another machine or container sharing the folder.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STALE_SECONDS = 3600  # a leftover whose writer cannot be checked (another host) is dead this long after


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (``.<name>.<pid>@<host><suffix>``) for the caller to write;
    when the block ends normally the file is flushed to disk (unless ``sync`` is false: a file that can be
    made again, whole or missing after a crash of the process but not of the machine) and renamed onto
    ``path``; when it raises, the file is removed. An OSError that names no file (a full disk met by a
    writer of an open file) or the temporary one is raised again naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{owner_tag()}{suffix}")
    try:
        yield tmp
        if sync:
            fsync(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename in (None, str(tmp)) and e.errno is not None:
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise
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
    """A new temporary folder ``<parent>/<prefix><random>.<pid>@<host>`` to build something in and rename
    into place from inside the block; whatever is still in it when the block ends (normally or not) is
    removed."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=f".{owner_tag()}", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on the file ``path`` for the block; a second process waits.

    The lock file is created if missing and never removed: removing it while another process waits on it
    would let a third process lock a new file of the same name, and two would hold "the" lock. Raises
    OSError when the file cannot be opened.
    """
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
        yield


def owner_tag(pid: int | None = None) -> str:
    """``<pid>@<host>``, the tag that ends a temporary name: this process's, or that of ``pid`` here."""
    return f"{os.getpid() if pid is None else pid}@{_host()}"


@functools.cache
def _host() -> str:
    # The short host name with only [A-Za-z0-9-], so a tag never holds the "." that ends it.
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "localhost"


def remove_dead_leftovers(folder: str | os.PathLike, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the temporaries ``<prefix>...<.pid@host><suffix>`` in ``folder`` whose writer is gone.

    Call it while holding the lock of the target they were written for. A name tagged by this host is
    removed when its pid is gone (or a zombie, or now a process started after the name was last changed: the
    pid was reused); one tagged by another host, or untagged (older releases), when untouched for
    STALE_SECONDS. A live writer's temporaries, this process's included, are left alone; lock files are
    never touched. Returns what was removed.
    """
    tagged = re.compile(r"\.(\d+)@([A-Za-z0-9-]+)" + re.escape(suffix) + "$")
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        return []
    for name in names:
        if name.endswith(".lock"):
            continue
        path = Path(folder) / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        tag = tagged.search(name)
        if tag and tag[2] == _host():
            dead = _writer_gone(int(tag[1]), st.st_ctime)
        else:
            dead = time.time() - st.st_mtime > STALE_SECONDS
        if dead:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _writer_gone(pid: int, changed: float) -> bool:
    """Whether process ``pid`` of this host, which last changed a temporary at ``changed`` (epoch seconds),
    is gone."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped: writes nothing more
            return True
        return process.create_time() > changed + 1.0  # started after the write: the pid was reused
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # alive, another user's
        return False


TEMP_PREFIX = "softmax_exp-"
_swept = [False]


@contextmanager
def temp_dir(purpose: str) -> Iterator[Path]:
    """A temporary folder in the system's temp dir, ``softmax_exp-<purpose>-<random>.<pid>@<host>``,
    removed when the block ends. The first call of a process removes the ones that processes now gone
    (SIGKILL, out of memory) left there."""
    if not _swept[0]:
        _swept[0] = True
        remove_dead_leftovers(tempfile.gettempdir(), TEMP_PREFIX)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{purpose}-", suffix=f".{owner_tag()}"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
