"""CIFAR-10, python version: safe unpickling, batch reading, safe extraction of the archive.

``root`` holds ``cifar-10-batches-py/`` (data_batch_1..5, test_batch, batches.meta) or the official
``cifar-10-python.tar.gz``, which is checked against its MD5 and extracted once, atomically, next to
it. The batches are Python 2 pickles: dicts with bytes keys (b"data": (n, 3072) uint8 rows in CHW
order, b"labels": list of ints). They are read with an unpickler that only builds numpy arrays,
never calls anything else. Splits follow the course: train = first num_training rows of the 50000,
val = the rows right after, test = first num_test rows of test_batch, dev = a seeded sample of the
training rows.
"""

from __future__ import annotations

import codecs
import gzip
import os
import pickle
import shlex
import tarfile
import zlib
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

import numpy as np

from softmax_exp.data.download import download_file, file_md5
from softmax_exp.data.errors import DataError
from softmax_exp.data.options import DatasetOptions
from softmax_exp.data.preprocess import (
    RawDataset,
    Source,
    SplitRows,
    check_class_names,
    check_fits,
    dev_rows,
)
from softmax_exp.data.settings import CIFAR10_MD5, CIFAR10_URL
from softmax_exp.util.atomic import exclusive_lock, remove_dead_leftovers, staged_dir

BATCHES_DIR = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
META = "batches.meta"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (32, 32, 3)
ROW_BYTES = 32 * 32 * 3

_RECONSTRUCT = np.empty(0).__reduce__()[0]
# Everything the official batches (and re-saves of them by Python 3 at protocol 2) reference.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes in protocol-2 pickles
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild numpy arrays; refuses all
    others."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.path}: refused to unpickle global {module}.{name} (a CIFAR-10 batch only "
                "holds numpy arrays, lists and bytes); the file is not an official batch, delete it"
            ) from None


def load_pickle(path: Path) -> dict:
    """Unpickle one batch file safely; returns its dict (bytes keys). Raises DataError if bad."""
    try:
        with open(path, "rb") as f:
            obj = RestrictedUnpickler(f, path).load()
    except DataError:
        raise
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    except Exception as e:  # any failure to parse untrusted bytes means the file is damaged
        raise DataError(
            f"{path} is truncated or corrupt ({type(e).__name__}: {e}); delete it and re-download"
        ) from e
    if not isinstance(obj, dict):
        raise DataError(
            f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dict; delete it"
        )
    return obj


def load_meta(path: Path) -> tuple[str, ...]:
    """Class names from batches.meta (b"label_names": list of at least 2 UTF-8 bytes or str, each once)."""
    names = load_pickle(path).get(b"label_names")
    if not isinstance(names, list) or not names:
        raise DataError(f"{path} has no b'label_names' list of strings; delete it and re-download")
    return check_class_names(names, str(path), "class", "delete it and re-download")


def load_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file.

    Returns (pixels (n, 3072) uint8, rows flattened in HWC order; labels (n,) int64 in [0, C)).
    """
    batch = load_pickle(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != ROW_BYTES
    ):
        got = (
            f"shape {data.shape} dtype {data.dtype}"
            if isinstance(data, np.ndarray)
            else repr(type(data).__name__)
        )
        raise DataError(
            f"{path}: b'data' must be a uint8 array of shape (n, {ROW_BYTES}); got {got}"
        )
    try:
        y = np.asarray(labels)
    except ValueError:  # ragged nesting
        y = np.asarray(None)
    if y.ndim != 1 or len(y) != len(data) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{path}: b'labels' must be a list of {len(data)} integers (one per row of b'data'); "
            f"got {type(labels).__name__} of shape {y.shape}"
        )
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(f"{path}: label {bad} is outside [0, {num_classes}); the file is corrupt")
    n = len(data)
    pixels = np.ascontiguousarray(data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)).reshape(n, -1)
    return pixels, y.astype(np.int64)


def safe_extract(archive: Path, root: Path) -> Path:
    """Extract ``archive``'s cifar-10-batches-py/ to ``root/cifar-10-batches-py`` atomically.

    Members must be plain files or folders with relative paths inside the archive (no absolute
    paths, no "..", no links or devices); anything else is refused with a DataError before a byte is
    written. The archive is unpacked into a temporary folder in root (``.extract-<random>.<pid>@<host>``)
    and renamed into place, so an interrupted extraction leaves no batches folder. Extractors take an
    exclusive lock on ``root/.cifar-10-batches-py.lock``: a second one waits, then uses the folder; the
    one holding the lock removes the temporary folders of extractors that died (SIGKILL). Returns the
    batches folder.
    """
    target = root / BATCHES_DIR
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(root / f".{BATCHES_DIR}.lock"))
            if target.is_dir():  # extracted by the process we waited for
                return target
            remove_dead_leftovers(root, ".extract-")
            tmp = stack.enter_context(staged_dir(root, ".extract-"))
        except OSError as e:
            raise DataError(f"cannot extract {archive} into {root}: {e.strerror or e}") from e
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for member in members:
                    _check_member(member, archive)
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DataError(
                f"{archive} is truncated or corrupt ({e}); delete it and re-download"
            ) from e
        except OSError as e:  # the archive is fine, the disk is not (full, read-only, ...)
            raise DataError(f"cannot extract {archive} into {root}: {e.strerror or e}") from e
        if not (tmp / BATCHES_DIR).is_dir():
            raise DataError(
                f"{archive} has no {BATCHES_DIR}/ folder; it is not the CIFAR-10 archive"
            )
        try:
            os.rename(tmp / BATCHES_DIR, target)
        except OSError as e:
            if not target.is_dir():  # else another process extracted it first (no working locks)
                raise DataError(f"cannot extract {archive} into {root}: {e.strerror or e}") from e
    return target


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")):
        reason = "absolute path"
    elif ".." in path.parts:
        reason = "path leaves the folder"
    elif not (member.isfile() or member.isdir()):
        reason = "link or special file"
    else:
        return
    raise DataError(
        f"{archive}: refused unsafe member {member.name!r} ({reason}); it is not the official "
        "CIFAR-10 archive, delete it"
    )


def open_cifar10(opts: DatasetOptions) -> Source:
    """Locate CIFAR-10 under opts.root (extracting the archive if needed) and describe its files.

    The signature lists each batch file's name, size and mtime_ns: cheap to compute on every load,
    and any re-download or edit changes it.
    """
    root = opts.root
    if root.exists() and not root.is_dir():
        raise DataError(
            f"dataset.root {root} is a file; point it at the folder holding "
            f"{BATCHES_DIR}/ or {ARCHIVE}"
        )
    batches = root / BATCHES_DIR
    if not batches.is_dir():
        archive = root / ARCHIVE
        if not archive.is_file():
            raise DataError(
                f"CIFAR-10 not found in {root} (no {BATCHES_DIR}/ or {ARCHIVE}); "
                f"download it with: {download_command(root, opts.url, opts.md5)}"
            )
        if opts.md5:
            actual = file_md5(archive)
            if actual != opts.md5:
                raise DataError(
                    f"MD5 mismatch for {archive}: expected {opts.md5}, got {actual}; delete it and "
                    f"run {download_command(root, opts.url, opts.md5)}"
                )
        safe_extract(archive, root)
    names = (META, *TRAIN_BATCHES, TEST_BATCH)
    missing = [n for n in names if not (batches / n).is_file()]
    if missing:
        raise DataError(
            f"{batches} lacks {', '.join(missing)}; delete the folder and re-download "
            f"with: {download_command(root, opts.url, opts.md5)}"
        )
    stats = [(n, (batches / n).stat()) for n in names]
    signature = {
        "source": BATCHES_DIR,
        "files": [[n, st.st_size, st.st_mtime_ns] for n, st in stats],
    }
    return Source(signature, lambda: _read(opts, batches))


def _read(opts: DatasetOptions, batches: Path) -> RawDataset:
    class_names = load_meta(batches / META)
    C = len(class_names)
    parts = [load_batch(batches / name, C) for name in TRAIN_BATCHES]
    train_pixels = np.concatenate([p for p, _ in parts])
    train_labels = np.concatenate([y for _, y in parts])
    del parts
    test_pixels, test_labels = load_batch(batches / TEST_BATCH, C)

    n_train, n_val, n_test = opts.num_training, opts.num_validation, opts.num_test
    check_fits(
        {"num_training": n_train, "num_validation": n_val},
        len(train_pixels),
        f"training images in {batches}",
    )
    check_fits({"num_test": n_test}, len(test_pixels), f"test images in {batches}")
    train_rows = np.arange(n_train, dtype=np.int64)
    rows = {
        "train": (train_pixels, train_labels, train_rows),
        "val": (train_pixels, train_labels, np.arange(n_train, n_train + n_val, dtype=np.int64)),
        "test": (test_pixels, test_labels, np.arange(n_test, dtype=np.int64)),
        "dev": (
            train_pixels,
            train_labels,
            train_rows[dev_rows(n_train, opts.num_dev, opts.split_seed)],
        ),
    }
    return RawDataset(class_names, IMAGE_SHAPE, {k: SplitRows(*v) for k, v in rows.items()})


def download_command(root: Path, url: str | None = None, md5: str | None = None) -> str:
    """The shell command that downloads CIFAR-10 into ``root``."""
    cmd = f"python -m softmax_exp.data download cifar10 --root {shlex.quote(str(root))}"
    if url and url != CIFAR10_URL:
        cmd += f" --url {shlex.quote(url)}"
    if md5 and md5 != CIFAR10_MD5:
        cmd += f" --md5 {md5}"
    return cmd


def download_cifar10(
    root: Path, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5, progress: bool = True
) -> Path:
    """Download the official archive to ``root/cifar-10-python.tar.gz`` unless a verified copy is
    there.

    Extraction happens on the first load_dataset. Returns the archive path.
    """
    if root.exists() and not root.is_dir():
        raise DataError(f"--root {root} is a file; choose a folder")
    archive = root / ARCHIVE
    if archive.is_file() and (md5 is None or file_md5(archive) == md5.lower()):
        return archive
    return download_file(url, archive, md5, progress=progress)
