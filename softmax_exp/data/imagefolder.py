"""A folder of images, one subfolder per class: ``root/{train,test}/<class>/*.png|jpg|jpeg``.

At least two classes are needed. Validation images come from ``root/val/<class>/`` when it exists,
else ``num_validation`` training images are carved out with split_seed. Every pool is shuffled with
split_seed, then cut to its split size (null = all). Images are converted to ``mode`` (RGB or L); all
must have the size of the first one unless ``image_size: [H, W]`` is set, then every image is resized
(bilinear). Hidden files are skipped; any other file that is not a readable image is an error.

Pixels are 8-bit. A 16-bit gray image (Pillow mode I;16, or I for a PNG in older Pillow) keeps the high
byte of each value (value >> 8), which is what Pillow itself does with 16-bit RGB, RGBA and gray+alpha
PNGs: gray and colour files of one folder map alike, and 8-bit values widened to 16 bits by bit
replication (v * 257, what encoders write) come back exactly. (Rounding value / 257 would be nearer on
average, but would disagree with Pillow's colour PNGs by one level on some values.) Pillow's own
``convert`` would clip such values at 255. Images of 32-bit integers or floats (mode I from a TIFF, F)
have no known range and are refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from softmax_exp.data.errors import DataError
from softmax_exp.data.options import DatasetOptions
from softmax_exp.data.preprocess import (
    RawDataset,
    Source,
    SplitRows,
    check_class_names,
    check_fits,
    dev_rows,
    shuffled,
)

EXTENSIONS = (".png", ".jpg", ".jpeg")
Files = list[tuple[Path, int]]  # (image path, class index), sorted by class then file name


def open_imagefolder(opts: DatasetOptions) -> Source:
    """List the image files and describe them by relative path, size and mtime_ns."""
    root = opts.root
    if not root.exists():
        raise DataError(
            f"dataset.root {root} does not exist; point it at a folder with "
            "train/<class>/ and test/<class>/ image folders"
        )
    if not root.is_dir():
        raise DataError(
            f"dataset.root {root} is a file; point it at a folder with train/ and test/"
        )
    for required in ("train", "test"):
        if not (root / required).is_dir():
            raise DataError(
                f"{root / required} is missing; an image folder needs train/<class>/ "
                "and test/<class>/"
            )
    class_names = check_class_names(_class_names(root / "train"), str(root / "train"), "class folder",
                                    "add or rename class folders in train/ and test/ (2 or more, "
                                    "printable UTF-8 names)")
    files = {
        "train": _list_files(root / "train", class_names),
        "test": _list_files(root / "test", class_names),
    }
    if (root / "val").is_dir():
        files["val"] = _list_files(root / "val", class_names)
    signature = {
        "source": "imagefolder",
        "files": {
            split: [
                [p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns]
                for p, st in ((p, p.stat()) for p, _ in listed)
            ]
            for split, listed in files.items()
        },
    }
    return Source(signature, lambda: _read(opts, class_names, files))


def _class_names(folder: Path) -> tuple[str, ...]:
    names = tuple(
        sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    )
    if not names:
        raise DataError(f"{folder} has no class folders; put images in {folder}/<class>/")
    return names


def _list_files(folder: Path, class_names: tuple[str, ...]) -> Files:
    found = _class_names(folder)
    if found != class_names:
        raise DataError(
            f"{folder} has classes {list(found)} but train/ has {list(class_names)}; "
            "every split needs the same class folders"
        )
    files: Files = []
    for label, name in enumerate(class_names):
        entries = sorted(p for p in (folder / name).iterdir() if not p.name.startswith("."))
        for path in entries:
            if not (path.is_file() and path.suffix.lower() in EXTENSIONS):
                raise DataError(
                    f"{path} is not an image (expected {', '.join(EXTENSIONS)}); remove it"
                )
        if not entries:
            raise DataError(f"class folder {folder / name} has no images; add some or remove it")
        files.extend((path, label) for path in entries)
    return files


def _read(
    opts: DatasetOptions, class_names: tuple[str, ...], files: dict[str, Files]
) -> RawDataset:
    n_pool = len(files["train"])
    train_pool = shuffled(n_pool, opts.split_seed)
    train_where = f"training images in {opts.root / 'train'}"
    if "val" in files:
        n_val = opts.num_validation if opts.num_validation is not None else len(files["val"])
        check_fits({"num_validation": n_val}, len(files["val"]), f"images in {opts.root / 'val'}")
        val_files = [files["val"][i] for i in shuffled(len(files["val"]), opts.split_seed)[:n_val]]
        n_carved = 0
    else:
        if opts.num_validation is None:
            raise DataError(
                f"dataset.num_validation must be an integer: there is no {opts.root / 'val'} "
                "folder, so validation images are carved out of train/"
            )
        n_carved = opts.num_validation
        check_fits({"num_validation": n_carved}, n_pool, train_where)
        val_files = [files["train"][i] for i in train_pool[:n_carved]]
    if opts.num_training is None:
        n_train = n_pool - n_carved
        if n_train == 0:
            raise DataError(
                f"no training images left in {opts.root / 'train'}: all {n_carved} go to "
                "validation; lower dataset.num_validation or add a val/ folder"
            )
    else:
        n_train = opts.num_training
        check_fits({"num_training": n_train, "num_validation": n_carved}, n_pool, train_where)
    train_files = [files["train"][i] for i in train_pool[n_carved : n_carved + n_train]]
    n_test = opts.num_test if opts.num_test is not None else len(files["test"])
    check_fits({"num_test": n_test}, len(files["test"]), f"images in {opts.root / 'test'}")
    test_files = [files["test"][i] for i in shuffled(len(files["test"]), opts.split_seed)[:n_test]]
    dev = dev_rows(n_train, opts.num_dev, opts.split_seed)

    decoder = _Decoder(opts.mode, opts.image_size)
    _check_memory(decoder.planned_shape(train_files[0][0] if train_files else None),
                  len(train_files) + len(val_files) + len(test_files), opts)
    splits = {}
    for split, listed in (("train", train_files), ("val", val_files), ("test", test_files)):
        pixels = decoder.decode_all([p for p, _ in listed])
        labels = np.array([label for _, label in listed], dtype=np.int64)
        splits[split] = SplitRows(pixels, labels, np.arange(len(listed), dtype=np.int64))
    splits["dev"] = SplitRows(splits["train"].pixels, splits["train"].labels, dev)
    return RawDataset(class_names, decoder.image_shape, splits)


# the peak of a tracked training per pixel value, less the rows' own itemsize: 16 bytes measured with
# float32 rows (24 images of 1000x1000 and of 2000x2000 RGB: 1.1 and 4.6 GB above the process's start)
BYTES_PER_VALUE = 12


def _check_memory(shape: tuple[int, int, int] | None, n_images: int, opts: DatasetOptions) -> None:
    """DataError (one line) when ``n_images`` of ``shape`` (H, W, channels) would not fit in the memory
    available now (see BYTES_PER_VALUE); nothing is decoded before this check."""
    if shape is None:
        return
    import psutil

    values = n_images * math.prod(shape)
    need = values * (BYTES_PER_VALUE + opts.dtype.itemsize)
    available = psutil.virtual_memory().available
    if need > available:
        raise DataError(
            f"{n_images} images of {shape[0]}x{shape[1]} (HxW) need about {need / 2**30:.1f} GiB, "
            f"{available / 2**30:.1f} GiB are available; set a smaller dataset.image_size=[H,W] or "
            "fewer images (dataset.num_training, dataset.num_test)"
        )


class _Decoder:
    """Decodes images to uint8 rows in HWC order.

    With ``image_size`` every image is resized to it; without, the first image fixes the size and
    any other size is an error.
    """

    def __init__(self, mode: str, image_size: tuple[int, int] | None) -> None:
        self.mode = mode
        self.size = image_size  # (H, W)
        self.first: Path | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        H, W = self.size if self.size else (0, 0)
        return H, W, 3 if self.mode == "RGB" else 1

    def planned_shape(self, first: Path | None) -> tuple[int, int, int] | None:
        """The (H, W, channels) every image will have: ``image_size``'s, else the size in the header of
        the image ``first`` (None when there is none, or it does not open: decoding then says why)."""
        if self.size is None and first is not None:
            from PIL import Image

            try:
                with Image.open(first) as im:
                    W, H = im.size
            except Exception:
                return None
            return H, W, 3 if self.mode == "RGB" else 1
        return self.image_shape if self.size else None

    def decode_all(self, paths: list[Path]) -> np.ndarray:
        """(len(paths), H*W*channels) uint8."""
        rows = [self.decode(p) for p in paths]
        if not rows:
            H, W, ch = self.image_shape
            return np.zeros((0, H * W * ch), dtype=np.uint8)
        return np.stack(rows)

    def decode(self, path: Path) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im = _eight_bit(im, path).convert(self.mode)
        except DataError:
            raise
        except Exception as e:  # any decoder failure on an untrusted file means it is not an image
            raise DataError(
                f"{path} is not a readable image ({type(e).__name__}: {e}); remove or replace it"
            ) from e
        W, H = im.size
        if self.size is None:
            self.size, self.first = (H, W), path
        elif (H, W) != self.size:
            if self.first is not None:  # no image_size was given
                raise DataError(
                    f"{path} is {H}x{W} (HxW) but {self.first} is {self.size[0]}x{self.size[1]}; "
                    "set dataset.image_size=[H,W] to resize every image"
                )
            im = im.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8).reshape(-1)


_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")  # Pillow's 16-bit unsigned gray modes


def _eight_bit(im, path: Path):
    """``im`` with 8-bit samples: 16-bit gray keeps the high byte (see the module docstring), modes of
    unknown range (32-bit integer, float, signed 16-bit) raise DataError; 8-bit images pass unchanged."""
    from PIL import Image

    if im.mode in _SIXTEEN_BIT or (im.mode == "I" and im.format == "PNG"):
        return Image.fromarray((np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8))
    if im.mode in ("I", "F") or im.mode.startswith("I;"):
        kind = {"I": "32-bit integer", "F": "32-bit float"}.get(im.mode, "signed or 32-bit integer")
        raise DataError(
            f"{path} has {kind} pixels (Pillow mode {im.mode}), whose range is unknown; save it as an "
            "8- or 16-bit PNG or as a JPEG"
        )
    return im
