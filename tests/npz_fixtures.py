"""Crafting damaged .npz files: a good file's members, replaced, removed or hand-written, in a new zip."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def npy(a) -> bytes:
    """``a`` as .npy bytes, as np.savez writes a member (objects pickled, to craft such a member)."""
    buf = io.BytesIO()
    a = np.asanyarray(a)
    np.lib.format.write_array(buf, a, allow_pickle=a.dtype.hasobject)
    return buf.getvalue()


def npy_header(descr, shape, data: bytes = b"", fortran: bool = False) -> bytes:
    """A hand-written .npy member: a version 1.0 header claiming ``descr`` of ``shape``, then ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue() + data


def npy_raw_header(text: bytes, version: int = 1, length: int | None = None) -> bytes:
    """A member whose header is ``text`` as it is, under a header length of ``length`` (its own if None)."""
    fmt = "<H" if version == 1 else "<I"
    size = struct.pack(fmt, len(text) if length is None else length)
    return b"\x93NUMPY" + bytes([version, 0]) + size + text


def members(path: Path) -> dict[str, bytes]:
    """The raw .npy bytes of each member of the npz at ``path``, by name without ``.npy``."""
    with zipfile.ZipFile(path) as z:
        return {n.removesuffix(".npy"): z.read(n) for n in z.namelist()}


def write_zip(path: Path, files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def rewrite(good: Path, out: Path, **replace) -> Path:
    """``good`` with members replaced (np arrays or values as .npy, bytes as they are; None: removed)."""
    files = members(good)
    for name, value in replace.items():
        if value is None:
            files.pop(name)
        else:
            files[name] = value if isinstance(value, bytes) else npy(value)
    return write_zip(out, {f"{k}.npy": v for k, v in files.items()})


def patch_central_directory(path: Path, offset: int, fmt: str, value: int) -> Path:
    """Overwrite a field (``offset`` bytes into the first central directory record) of the zip at ``path``."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02") + offset
    raw[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(raw))
    return path


@contextmanager
def allocates_at_most(nbytes: int):
    """Fail if the block's peak of traced allocations (numpy's arrays included) exceeds ``nbytes``."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= nbytes, f"the block allocated {peak} bytes at its peak; at most {nbytes} expected"


def damaged_copies(raw: bytes, n: int = 300, seed: int = 0):
    """``n`` damaged copies of the file bytes ``raw`` (seeded): every third cut short at a random byte, the
    others with one random byte changed to another value."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        damaged = bytearray(raw)
        if k % 3 == 0:
            damaged = damaged[: rng.integers(0, len(raw))]
        else:
            at = rng.integers(0, len(raw))
            damaged[at] = (damaged[at] + rng.integers(1, 256)) % 256
        yield bytes(damaged)
