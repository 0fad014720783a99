"""Small files in the exact formats the data layer reads: CIFAR-10 python batches, its tar.gz, PNG folders.

The official CIFAR-10 batches are protocol-2 pickles written by Python 2: every str (dict keys, the
raw array bytes, the dtype's byte order) is a BINSTRING and numpy is referenced as
``numpy.core.multiarray._reconstruct``. ``write_py2_pickle`` writes the same opcodes, so the tests read
files shaped like the real ones rather than Python 3 re-saves.
"""

from __future__ import annotations

import functools
import io
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

LABEL_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


class _Py2Pickler(pickle._Pickler):
    """Pure-Python pickler that writes str and bytes as Python 2 str (BINSTRING) opcodes."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def py2_pickle_bytes(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_py2_pickle(obj, path: Path) -> None:
    path.write_bytes(py2_pickle_bytes(obj))


def cifar_arrays(n_per_batch: int = 40, n_test: int = 50, seed: int = 0):
    """Random CIFAR-shaped data: (train data (5n, 3072) uint8 CHW rows, train labels, test data,
    test labels)."""
    rng = np.random.default_rng(seed)
    n_train = 5 * n_per_batch
    train = rng.integers(0, 256, size=(n_train, 3072), dtype=np.uint8)
    test = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    return train, rng.integers(0, 10, n_train), test, rng.integers(0, 10, n_test)


def batch_dict(data: np.ndarray, labels, label: str = "training batch 1 of 5") -> dict:
    """A dict shaped like an official batch: bytes keys, uint8 data, list-of-int labels."""
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(data))],
    }


def make_cifar_dir(root: Path, n_per_batch: int = 40, n_test: int = 50, seed: int = 0):
    """Write root/cifar-10-batches-py/ with 5 training batches, test_batch and batches.meta.

    Returns the arrays from cifar_arrays (the ground truth).
    """
    train, y_train, test, y_test = cifar_arrays(n_per_batch, n_test, seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate(TRAIN_BATCHES):
        rows = slice(i * n_per_batch, (i + 1) * n_per_batch)
        write_py2_pickle(batch_dict(train[rows], y_train[rows]), folder / name)
    write_py2_pickle(batch_dict(test, y_test, "testing batch 1 of 1"), folder / "test_batch")
    meta = {
        b"num_cases_per_batch": n_per_batch,
        b"label_names": [n.encode() for n in LABEL_NAMES],
        b"num_vis": 3072,
    }
    write_py2_pickle(meta, folder / "batches.meta")
    return train, y_train, test, y_test


def make_cifar_tar(root: Path, **kwargs):
    """Write root/cifar-10-python.tar.gz (members cifar-10-batches-py/...), no extracted folder.

    Returns (archive path, ground-truth arrays).
    """
    staging = root / "staging"
    arrays = make_cifar_dir(staging, **kwargs)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for f in sorted((staging / "cifar-10-batches-py").iterdir()):
        f.unlink()
    (staging / "cifar-10-batches-py").rmdir()
    staging.rmdir()
    return archive, arrays


def course_preprocess(train, y_train, test, y_test, num_training, num_validation, num_test):
    """CS231n's get_CIFAR10_data on raw CHW rows, in float64 (dev set left out: it is seeded)."""

    def to_hwc(x):
        return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype("float")

    X_all, X_te = to_hwc(train), to_hwc(test)
    X_tr = X_all[:num_training].reshape(num_training, -1)
    X_val = X_all[num_training : num_training + num_validation].reshape(num_validation, -1)
    X_te = X_te[:num_test].reshape(num_test, -1)
    mean = np.mean(X_tr, axis=0)
    X_tr, X_val, X_te = X_tr - mean, X_val - mean, X_te - mean

    def ones(x):
        return np.hstack([x, np.ones((x.shape[0], 1))])

    return {
        "X_train": ones(X_tr),
        "y_train": y_train[:num_training],
        "X_val": ones(X_val),
        "y_val": y_train[num_training : num_training + num_validation],
        "X_test": ones(X_te),
        "y_test": y_test[:num_test],
        "mean_image": mean,
    }


def cifar_cfg(root: Path, cache_dir: Path, **overrides) -> dict:
    """A small cifar10 dataset config: 200 training rows -> 150 train / 30 val, 40 test, 20 dev."""
    cfg = {
        "name": "cifar10",
        "root": str(root),
        "md5": None,
        "num_training": 150,
        "num_validation": 30,
        "num_test": 40,
        "num_dev": 20,
        "cache_dir": str(cache_dir),
    }
    cfg.update(overrides)
    return cfg


def make_imagefolder(
    root: Path,
    classes=("cat", "dog", "emu"),
    per_class: int = 6,
    size=(5, 4),
    mode: str = "RGB",
    splits=("train", "test"),
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Write root/<split>/<class>/img_<i>.png images of size (H, W) = ``size``.

    Returns {split: {relative path: (H, W[, 3]) uint8 pixels}}.
    """
    rng = np.random.default_rng(seed)
    H, W = size
    shape = (H, W, 3) if mode == "RGB" else (H, W)
    written: dict[str, dict[str, np.ndarray]] = {}
    for split in splits:
        written[split] = {}
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i}.png")
                written[split][f"{split}/{name}/img_{i}.png"] = pixels
    return written


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """Write ``pixels`` (H, W) or (H, W, 3) uint16 as a 16-bit gray or RGB PNG, by hand: Pillow writes
    16-bit gray (mode I;16) but no 16-bit RGB."""
    H, W = pixels.shape[:2]
    color_type = 2 if pixels.ndim == 3 else 0
    rows = b"".join(b"\x00" + pixels[r].astype(">u2").tobytes() for r in range(H))  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", W, H, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def dead_pid() -> int:
    """The pid of a process that ran and is gone: started, SIGKILLed and reaped."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    child.wait()
    return child.pid


def read_only(argv: list[str], folder: Path) -> list[str]:
    """``argv`` run with ``folder`` bind-mounted read-only, in a user + mount namespace of its own (as
    root too, whom permission bits do not stop): a cache on a read-only volume."""
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" || exit 97; exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, str(folder), *argv]


@functools.cache
def can_mount_read_only() -> bool:
    """Whether ``unshare -rm`` may bind-mount a folder read-only here."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        probe = subprocess.run(read_only(["true"], Path(folder)), capture_output=True, timeout=30)
    return probe.returncode == 0


def cache_entries(cache_dir: Path) -> list[Path]:
    """Visible entry folders in a cache dir (excludes temp dirs and lock files)."""
    if not cache_dir.exists():
        return []
    return sorted(p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def names_but_locks(folder: Path) -> list[str]:
    """Sorted names in ``folder`` other than lock files (which the data layer leaves there on purpose)."""
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


def leftovers(folder: Path) -> list[Path]:
    """Temporary files or folders (dot-names other than lock files) left in ``folder``."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.suffix != ".lock")


def cifar_overrides(root: Path, cache_dir: Path, **overrides) -> list[str]:
    """cifar_cfg(root, cache_dir, **overrides) as command-line overrides: ``dataset=cifar10``, then
    ``dataset.<key>=<value>`` (None as null)."""
    cfg = cifar_cfg(root, cache_dir, **overrides)
    cfg.pop("name")
    return ["dataset=cifar10"] + [f"dataset.{k}={'null' if v is None else v}" for k, v in cfg.items()]
