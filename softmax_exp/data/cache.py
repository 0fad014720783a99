"""A write-once cache of preprocessed arrays, one folder of .npy files and a meta.json per entry.

Entries live in ``<cache_dir>/<name>-<fingerprint[:16]>/``. An entry is built in a temporary folder
inside cache_dir, every file is fsynced, and the folder is renamed into place in one ``os.rename``,
so an entry either exists complete or not at all. Builders of one entry take an exclusive
``fcntl.flock`` on ``.<entry>.lock``: a second process waits, then memory-maps what the first wrote.
Should two builders still race (say, on a file system without working locks), the loser of the
rename discards its folder and uses the winner's. Entries are read with ``np.load(mmap_mode="r")``.
Memory-mapped files are given their disk blocks up front (``posix_fallocate``), so a full disk is an
ENOSPC error before a byte is written (a write through the map would be a SIGBUS), reported as a
one-line DataError with the temporary folder removed.

Every open checks the entry against its meta.json, cheaply (every job of a sweep opens it; X_train of
CIFAR-10 is ~600 MB and is never read whole): each array's file size, shape, dtype and C order, a sha256 of
the arrays up to CHECKSUM_MAX_BYTES (the labels, the mean image), then the caller's ``check`` (the labels
in [0, C), shapes that fit one another). A damaged entry (a truncated or replaced file, an edited
meta.json) is moved aside and built again under the entry's lock, with a one-line warning on stderr; when
it cannot be moved (a read-only cache) it is refused with a one-line DataError naming it. A builder killed
by SIGKILL leaves its temporary folder (named with its pid, see :mod:`softmax_exp.util.atomic`): the next
builder of that entry removes it.

The fingerprint is the sha256 of the source signature (CIFAR-10: batch file names, sizes and
mtime_ns; image folders: relative paths, sizes and mtime_ns; digits: a content hash), the
preprocessing options and FORMAT_VERSION. Bump FORMAT_VERSION whenever the preprocessing code
changes its output or meta.json changes its content.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from softmax_exp.data.errors import DataError
from softmax_exp.data.preprocess import Allocate
from softmax_exp.util.atomic import exclusive_lock, fsync, owner_tag, remove_dead_leftovers, staged_dir
from softmax_exp.util.fingerprint import json_digest

# 2: meta.json's "arrays" maps each file stem to its shape, dtype, file size and (small arrays) sha256.
FORMAT_VERSION = 2
META = "meta.json"
CHECKSUM_MAX_BYTES = 1 << 20  # arrays up to 1 MiB are hashed at every open (CIFAR-10: labels, mean image)
Build = Callable[[Allocate], tuple[dict[str, np.ndarray], dict[str, Any]]]
Check = Callable[[dict[str, np.ndarray], dict[str, Any]], None]


class _Damaged(Exception):
    """An entry that does not match its meta.json; the message says how, in one line."""


def fingerprint(signature: dict[str, Any], preprocessing: dict[str, Any]) -> str:
    """sha256 hex digest of the source signature, the preprocessing options and FORMAT_VERSION."""
    return json_digest({"format_version": FORMAT_VERSION, "source": signature,
                        "preprocessing": preprocessing})


def entry_path(cache_dir: Path, name: str, fp: str) -> Path:
    """Folder of the cache entry for dataset ``name`` with fingerprint ``fp``."""
    return cache_dir / f"{name}-{fp[:16]}"


def load_or_build(
    cache_dir: Path, name: str, fp: str, build: Build, check: Check | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """Memory-map the entry, building it first if it does not exist or is damaged.

    ``build(allocate)`` returns (arrays, info): arrays maps file stems to arrays (X arrays should
    come from ``allocate(stem, shape, dtype)``, which memory-maps a .npy file in the entry being
    written); info is JSON-able and stored in meta.json. ``check(arrays, meta)`` raises ValueError (one
    line) if the opened arrays break the caller's rules. Returns (read-only arrays, meta, entry folder).
    """
    entry = entry_path(cache_dir, name, fp)
    damage: _Damaged | None = None
    if entry.exists():
        try:
            return _open(entry, fp, check)
        except _Damaged as e:  # looked at again under the lock: another process may be rebuilding it
            damage = e
    if cache_dir.exists() and not cache_dir.is_dir():
        raise DataError(f"cache_dir {cache_dir} is a file; set dataset.cache_dir to a folder")
    with ExitStack() as stack:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(exclusive_lock(cache_dir / f".{entry.name}.lock"))
        except OSError as e:
            raise (_refused(entry, damage, e) if damage else _write_error(cache_dir, e)) from e
        remove_dead_leftovers(cache_dir, f".tmp-{entry.name}-")
        if entry.exists():
            try:
                return _open(entry, fp, check)
            except _Damaged as e:
                _discard(entry, e)
        with ExitStack() as staging:  # the staging folder is gone after the rename; else removed
            with _reported(cache_dir):
                tmp = staging.enter_context(staged_dir(cache_dir, f".tmp-{entry.name}-"))
            _write(tmp, build, fp)
            with _reported(cache_dir):
                _publish(tmp, entry)
        try:
            return _open(entry, fp, check)
        except _Damaged as e:
            raise DataError(
                f"cache entry {entry} fails its check right after it was built ({e}); set "
                "dataset.cache=false and report it"
            ) from e


def _write_error(cache_dir: Path, e: OSError) -> DataError:
    where = f" ({e.filename})" if e.filename else ""
    return DataError(
        f"cannot write the dataset cache in {cache_dir}: {e.strerror or e}{where}; free space "
        "there, set dataset.cache_dir to a writable folder, or set dataset.cache=false"
    )


@contextmanager
def _reported(cache_dir: Path) -> Iterator[None]:
    """Turn an OSError of writing into the cache (disk full, read-only, a file in the way) into a
    one-line DataError; reading the source files stays outside this."""
    try:
        yield
    except OSError as e:
        raise _write_error(cache_dir, e) from e


def _refused(entry: Path, damage: _Damaged, e: OSError) -> DataError:
    return DataError(
        f"cache entry {entry} is damaged ({damage}) and cannot be rebuilt here ({e.strerror or e}); "
        "delete that folder where the cache is writable, or set dataset.cache_dir to a writable "
        "folder (or dataset.cache=false)"
    )


def _discard(entry: Path, damage: _Damaged) -> None:
    """Move a damaged entry aside in one rename (a reader sees it whole or not at all), under a name the
    next builder removes should this process die before it has, then remove it."""
    trash = entry.with_name(f".tmp-{entry.name}-damaged-{secrets.token_hex(4)}.{owner_tag()}")
    try:
        os.rename(entry, trash)
    except OSError as e:
        raise _refused(entry, damage, e) from e
    print(f"warning: cache entry {entry} is damaged ({damage}); rebuilding it", file=sys.stderr, flush=True)
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


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
        specs = {}
        for stem, array in arrays.items():
            path = folder / f"{stem}.npy"
            if isinstance(array, np.memmap):
                array.flush()
            else:
                np.save(path, array)
            specs[stem] = _spec(path, array)
        meta = {**info, "arrays": specs, "fingerprint": fp, "format_version": FORMAT_VERSION}
        (folder / META).write_text(json.dumps(meta, indent=1))
        for path in folder.iterdir():
            fsync(path)
        fsync(folder)


def _spec(path: Path, array: np.ndarray) -> dict[str, Any]:
    """What meta.json records of one written array: shape, dtype, file size and, if small, sha256."""
    spec = {"shape": list(array.shape), "dtype": array.dtype.str, "bytes": path.stat().st_size}
    if array.nbytes <= CHECKSUM_MAX_BYTES:
        spec["sha256"] = _sha256(array)
    return spec


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


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


def _open(
    entry: Path, fp: str, check: Check | None
) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """Memory-map the entry's arrays after checking them against meta.json; raises _Damaged."""
    try:
        meta = json.loads((entry / META).read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("arrays"), dict):
            raise _Damaged(f"{META} is not an entry's meta.json")
        if meta.get("fingerprint") != fp or meta.get("format_version") != FORMAT_VERSION:
            raise _Damaged(f"{META} belongs to another entry")
        arrays = {stem: _open_array(entry / f"{stem}.npy", spec) for stem, spec in meta["arrays"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:  # a missing file, bad JSON, a bad header
        raise _Damaged(f"{type(e).__name__}: {' '.join(str(e).split())}") from e
    if check is not None:
        try:
            check(arrays, meta)
        except (ValueError, KeyError, TypeError) as e:
            raise _Damaged(" ".join(str(e).split())) from e
    return arrays, meta, entry


def _open_array(path: Path, spec: dict[str, Any]) -> np.ndarray:
    """Memory-map one .npy file after checking its size, then its shape, dtype and order, then (small
    arrays) its sha256 against ``spec``; raises _Damaged."""
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    size = path.stat().st_size
    if size != spec["bytes"]:
        raise _Damaged(f"{path.name} has {size} bytes, {META} says {spec['bytes']}")
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.shape != shape or array.dtype != dtype or not array.flags.c_contiguous:
        raise _Damaged(f"{path.name} holds {array.shape} {array.dtype}, {META} says {shape} {dtype}")
    if "sha256" in spec and _sha256(array) != spec["sha256"]:
        raise _Damaged(f"{path.name} does not match its sha256 in {META}")
    return array
