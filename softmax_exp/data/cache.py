"""A write-once cache of preprocessed arrays, one folder of .npy files and a meta.json per entry.

Entries live in ``<cache_dir>/<name>-<fingerprint[:16]>/``. An entry is built in a temporary folder
inside cache_dir, every file is fsynced, and the folder is renamed into place in one ``os.rename``,
so an entry either exists complete or not at all. Builders of one entry take an exclusive
``fcntl.flock`` on ``.<entry>.lock``: a second process waits, then memory-maps what the first wrote.
Should two builders still race (say, on a file system without working locks), the loser of the
rename discards its folder and uses the winner's. Entries are read with ``np.load(mmap_mode="r")``.
Memory-mapped files are given their disk blocks up front (``posix_fallocate``), so a full disk is an
ENOSPC error before a byte is written (a write through the map would be a SIGBUS), reported as a
one-line DataError with the temporary folder removed. A builder killed by SIGKILL leaves its temporary
folder (named with its pid, see :mod:`softmax_exp.atomic`): the next builder of that entry removes it.

The fingerprint is the sha256 of the source signature (CIFAR-10: batch file names, sizes and
mtime_ns; image folders: relative paths, sizes and mtime_ns; digits: a content hash), the
preprocessing options and FORMAT_VERSION. Bump FORMAT_VERSION whenever the preprocessing code
changes its output.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from softmax_exp.atomic import exclusive_lock, fsync, remove_dead_leftovers, staged_dir
from softmax_exp.data.errors import DataError
from softmax_exp.data.preprocess import Allocate
from softmax_exp.fingerprint import json_digest

FORMAT_VERSION = 1
META = "meta.json"
Build = Callable[[Allocate], tuple[dict[str, np.ndarray], dict[str, Any]]]


def fingerprint(signature: dict[str, Any], preprocessing: dict[str, Any]) -> str:
    """sha256 hex digest of the source signature, the preprocessing options and FORMAT_VERSION."""
    return json_digest({"format_version": FORMAT_VERSION, "source": signature,
                        "preprocessing": preprocessing})


def entry_path(cache_dir: Path, name: str, fp: str) -> Path:
    """Folder of the cache entry for dataset ``name`` with fingerprint ``fp``."""
    return cache_dir / f"{name}-{fp[:16]}"


def load_or_build(
    cache_dir: Path, name: str, fp: str, build: Build
) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """Memory-map the entry, building it first if it does not exist.

    ``build(allocate)`` returns (arrays, info): arrays maps file stems to arrays (X arrays should
    come from ``allocate(stem, shape, dtype)``, which memory-maps a .npy file in the entry being
    written); info is JSON-able and stored in meta.json. Returns (read-only arrays, meta, entry
    folder).
    """
    entry = entry_path(cache_dir, name, fp)
    if entry.exists():
        return _load(entry, fp)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise DataError(f"cache_dir {cache_dir} is a file; set dataset.cache_dir to a folder")
    with ExitStack() as stack:
        with _reported(cache_dir):
            cache_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(exclusive_lock(cache_dir / f".{entry.name}.lock"))
        if not entry.exists():
            remove_dead_leftovers(cache_dir, f".tmp-{entry.name}-")
            with ExitStack() as staging:  # the staging folder is gone after the rename; else removed
                with _reported(cache_dir):
                    tmp = staging.enter_context(staged_dir(cache_dir, f".tmp-{entry.name}-"))
                _write(tmp, build, fp)
                with _reported(cache_dir):
                    _publish(tmp, entry)
    return _load(entry, fp)


@contextmanager
def _reported(cache_dir: Path) -> Iterator[None]:
    """Turn an OSError of writing into the cache (disk full, read-only, a file in the way) into a
    one-line DataError; reading the source files stays outside this."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise DataError(
            f"cannot write the dataset cache in {cache_dir}: {e.strerror or e}{where}; free space "
            "there, set dataset.cache_dir to a writable folder, or set dataset.cache=false"
        ) from e


def _write(folder: Path, build: Build, fp: str) -> None:
    cache_dir = folder.parent

    def allocate(stem: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        path = folder / f"{stem}.npy"
        with _reported(cache_dir):
            array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            _reserve(path)
        return array

    arrays, info = build(allocate)
    with _reported(cache_dir):
        for stem, array in arrays.items():
            if isinstance(array, np.memmap):
                array.flush()
            else:
                np.save(folder / f"{stem}.npy", array)
        meta = {**info, "arrays": sorted(arrays), "fingerprint": fp}
        meta["format_version"] = FORMAT_VERSION
        (folder / META).write_text(json.dumps(meta, indent=1))
        for path in folder.iterdir():
            fsync(path)
        fsync(folder)


def _reserve(path: Path) -> None:
    """Give the (sparse) file at ``path`` all its disk blocks now: ENOSPC here, not a SIGBUS later
    when a page of its memory map is first written."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # no fallocate here: write as before
            raise
    finally:
        os.close(fd)


def _publish(tmp: Path, entry: Path) -> bool:
    """Rename tmp to entry; False (tmp removed) when another writer's entry is already there."""
    try:
        os.rename(tmp, entry)
    except OSError as e:
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not entry.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    fsync(entry.parent)
    return True


def _load(entry: Path, fp: str) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    try:
        meta = json.loads((entry / META).read_text())
        if meta.get("fingerprint") != fp or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("meta.json belongs to another entry")
        arrays = {
            stem: np.load(entry / f"{stem}.npy", mmap_mode="r", allow_pickle=False)
            for stem in meta["arrays"]
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"cache entry {entry} is damaged ({e}); delete the folder and load again"
        ) from e
    return arrays, meta, entry
