"""Reading ``.npz`` files that are not trusted: no pickle, and no allocation a header did not earn.

:meth:`softmax_exp.learn.model.Softmax.load` and :mod:`softmax_exp.learn.checkpoint` read files that come from
elsewhere (an MLflow store, a download) through :class:`NpzReader`. The logged MLflow model bundles this
folder (``softmax_exp.tracking.logged_model.BUNDLED``): a served model loads through it.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_ARRAY_BYTES = 1 << 32  # 4 GiB: far above a real W (CIFAR-10: 246 KB; 224x224x3 x 1000 classes float64:
# 1.2 GB); it bounds what a compressed member, whose size the file cannot vouch for, may unpack to
MAX_MEMBERS = 64  # a model has 7, a checkpoint 7 + its optimizer's arrays
_MAX_HEADER_CHARS = 10_000  # numpy's own default limit for a .npy header (np.load's max_header_size)
_HEADER_PREFIX = 6 + 2 + 4  # magic string, version, header length (4 bytes in version 2.0)
_READ_CHUNK = 1 << 24  # data is read into the array this many bytes at a time (no second copy)


@dataclass(frozen=True)
class NpyHeader:
    """What a member's .npy header claims: ``shape`` of ``dtype`` (``fortran_order``), its data starting
    ``offset`` bytes into the member; checked to hold exactly ``nbytes`` bytes."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        return f"{self.dtype.newbyteorder('=').name} {self.shape}"


class NpzReader:
    """An .npz file read without trusting it: no pickle, and no allocation its headers did not earn.

    Opening reads the zip's directory and every member's .npy header (at most ``_MAX_HEADER_CHARS``
    characters each) and checks that the header's dtype is plain (bool, int, float or str: no object, no
    record) and that its shape accounts for exactly the bytes the member holds, a member for no more than
    the file holds, and at most MAX_ARRAY_BYTES. The caller then checks each header against what it needs
    (:meth:`check`) before reading the data (:meth:`array`, :meth:`scalar`, :meth:`text`): arrays come back
    C-contiguous, writable, in native byte order. Every problem is a ValueError of one line that names the
    member but not the file (the caller adds it).

    headers : member name (without ``.npy``) -> NpyHeader
    """

    def __init__(self, path: str | Path) -> None:
        self._file = self._zip = None
        self.headers: dict[str, NpyHeader] = {}
        try:
            self._file = open(path, "rb")
            file_size = os.fstat(self._file.fileno()).st_size
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
            if len(infos) > MAX_MEMBERS:
                raise _Refused(f"{len(infos)} members; an npz of this code has at most {MAX_MEMBERS}")
            for info in infos:
                name = info.filename.removesuffix(".npy")
                if name == info.filename:
                    raise _Refused(f"member {_short(info.filename)} is not an .npy array")
                if name in self.headers:
                    raise _Refused(f"member {_short(name)} appears twice")
                self.headers[name] = self._read_header(info, file_size)
        except BaseException as e:
            self.close()
            raise _one_line_error(e) from None

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._file is not None:
            self._file.close()

    def expect_members(self, names: frozenset[str] | set[str], prefix: str | None = None) -> None:
        """ValueError unless the members are exactly ``names`` (plus any starting with ``prefix``)."""
        missing = sorted(set(names) - set(self.headers))
        if missing:
            raise ValueError(f"no member {', '.join(map(_short, missing))}")
        extra = sorted(n for n in self.headers if n not in names and not (prefix and n.startswith(prefix)))
        if extra:
            raise ValueError(f"unexpected member {', '.join(map(_short, extra))}")

    def check(self, name: str, dtypes: str | tuple[np.dtype, ...], shape: tuple[int | None, ...],
              max_itemsize: int | None = None) -> NpyHeader:
        """The header of member ``name`` once it is known to be of ``dtypes`` (a string of dtype kinds such
        as ``"iu"``, or exact dtypes) and ``shape`` (None: any size on that axis); ValueError if not."""
        h = self.headers.get(name)
        if h is None:
            raise ValueError(f"no member {_short(name)}")
        native = h.dtype.newbyteorder("=")
        ok_dtype = h.dtype.kind in dtypes if isinstance(dtypes, str) else native in dtypes
        ok_shape = len(h.shape) == len(shape) and all(
            e is None or e == s for s, e in zip(h.shape, shape, strict=True))
        if not (ok_dtype and ok_shape):
            want = (f"kind {'/'.join(dtypes)}" if isinstance(dtypes, str)
                    else "/".join(np.dtype(d).name for d in dtypes))
            dims = ", ".join("n" if e is None else str(e) for e in shape) + ("," if len(shape) == 1 else "")
            raise ValueError(f"{name} is {h.describe()}; expected {want} ({dims})")
        if max_itemsize is not None and h.dtype.itemsize > max_itemsize:
            raise ValueError(f"{name} has items of {h.dtype.itemsize} bytes; at most {max_itemsize} expected")
        return h

    def array(self, name: str, dtypes: str | tuple[np.dtype, ...], shape: tuple[int | None, ...],
              max_itemsize: int | None = None) -> np.ndarray:
        """Member ``name``'s data, once :meth:`check` passes."""
        h = self.check(name, dtypes, shape, max_itemsize)
        try:
            return self._read_data(h)
        except Exception as e:  # see _one_line_error
            raise _one_line_error(e, f"{name}: ") from None

    def scalar(self, name: str, kinds: str) -> int | float | bool:
        """A 0-d member of dtype kind in ``kinds``, as a Python number."""
        return self.array(name, kinds, ()).item()

    def text(self, name: str, max_chars: int) -> str:
        """A 0-d str member of at most ``max_chars`` characters."""
        return str(self.array(name, "U", (), max_itemsize=4 * max_chars)[()])

    def _read_header(self, info: zipfile.ZipInfo, file_size: int) -> NpyHeader:
        name = _short(info.filename.removesuffix(".npy"))
        if info.flag_bits & 0x1:
            raise _Refused(f"{name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"{name} uses zip compression method {info.compress_type}; numpy writes 0 or 8")
        if info.header_offset + info.compress_size > file_size:
            raise _Refused(f"{name} claims {info.compress_size} bytes from byte {info.header_offset}; the "
                           f"file has {file_size}")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise _Refused(f"{name} is stored uncompressed in {info.compress_size} bytes but claims "
                           f"{info.file_size}")
        try:
            with self._zip.open(info) as member:
                fp = _Prefix(member, _HEADER_PREFIX + _MAX_HEADER_CHARS)
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, _MAX_HEADER_CHARS)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, _MAX_HEADER_CHARS)
                else:
                    raise _Refused(f"{name} is in .npy format {version}; numpy writes ours in 1.0 or 2.0")
        except _Refused:
            raise
        except Exception as e:  # see _one_line_error
            problem = "is damaged" if isinstance(e, zipfile.BadZipFile) else "has no valid .npy header"
            raise _one_line_error(e, f"{name} {problem}: ") from None
        h = NpyHeader(info, tuple(shape), dtype, bool(fortran), fp.consumed)
        if dtype.kind not in "biufU" or dtype.fields is not None or dtype.subdtype is not None:
            raise _Refused(f"{name} has dtype {_short(str(dtype))}; only bool, int, float and str are read")
        if dtype.itemsize == 0 or min(shape, default=0) < 0:
            raise _Refused(f"{name} claims dtype {dtype} of shape {_short(str(shape))}")
        if h.nbytes > MAX_ARRAY_BYTES:
            raise _Refused(f"{name} claims {h.describe()}, {h.nbytes} bytes; at most {MAX_ARRAY_BYTES} "
                           f"are read")
        if h.offset + h.nbytes != info.file_size:
            raise _Refused(f"{name} claims {h.describe()} ({h.nbytes} bytes) but holds "
                           f"{info.file_size - h.offset} bytes of data")
        return h

    def _read_data(self, h: NpyHeader) -> np.ndarray:
        flat = np.empty(math.prod(h.shape), dtype=h.dtype)
        view = flat.view(np.uint8)
        with self._zip.open(h.info) as member:
            member.read(h.offset)
            for start in range(0, h.nbytes, _READ_CHUNK):
                chunk = member.read(min(_READ_CHUNK, h.nbytes - start))
                if len(chunk) != min(_READ_CHUNK, h.nbytes - start):
                    raise EOFError(f"the data ends after {start + len(chunk)} of {h.nbytes} bytes")
                view[start:start + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            if member.read(1):  # also where zipfile checks the CRC, if the loop read to the end
                raise ValueError("more data than its header says")
        a = flat.reshape(h.shape[::-1]).T if h.fortran_order else flat.reshape(h.shape)
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        return a if a.flags.c_contiguous else a.copy(order="C")  # (np.ascontiguousarray makes 0-d 1-d)


class _Refused(ValueError):
    """A problem NpzReader found itself: its message is already the one line to show."""


class _Prefix:
    """The first ``limit`` bytes of a stream, counting what was read (an .npy header is read through it,
    so a header claiming gigabytes reads no more than that)."""

    def __init__(self, fp, limit: int) -> None:
        self.fp, self.remaining, self.consumed = fp, limit, 0

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.fp.read(size)
        self.remaining -= len(data)
        self.consumed += len(data)
        return data


def _short(text: str, limit: int = 80) -> str:
    """``text`` for a one-line message: repr'd (no newline survives) and cut to ``limit`` characters."""
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _one_line_error(e: BaseException, prefix: str = "") -> BaseException:
    """ValueError of one line for any Exception met while reading (a KeyboardInterrupt stays one).

    Any: zipfile, zlib and numpy's header parser (ast, tokenize) raise more kinds than they document
    (tokenize.TokenError for a header of open brackets), and each means the file is unreadable. Kinds
    other than ValueError, OSError and BadZipFile are named, so that a bug here still shows in the message.
    """
    if not isinstance(e, Exception):
        return e
    if isinstance(e, _Refused) and not prefix:
        return ValueError(str(e))
    text = " ".join(str(e).split())
    if not isinstance(e, (ValueError, OSError, zipfile.BadZipFile)) or not text:
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return ValueError(prefix + (text if len(text) <= 200 else text[:197] + "..."))
