"""Every bad input raises one DataError with a one-line message and leaves nothing in the cache."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
from data_fixtures import (
    LABEL_NAMES,
    batch_dict,
    cache_entries,
    cifar_cfg,
    leftovers,
    make_cifar_dir,
    make_cifar_tar,
    make_imagefolder,
    write_py2_pickle,
)
from PIL import Image

from softmax_exp.data import DataError, load_dataset

BATCHES = "cifar-10-batches-py"


def _cifar(tmp_path, **overrides):
    make_cifar_dir(tmp_path / "root")
    return cifar_cfg(tmp_path / "root", tmp_path / "cache", **overrides)


def _cifar_with(tmp_path, filename, content):
    cfg = _cifar(tmp_path)
    path = tmp_path / "root" / BATCHES / filename
    if callable(content):
        content = content(path.read_bytes())
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write_py2_pickle(content, path)
    return cfg


def _images(tmp_path, **overrides):
    return {
        "name": "imagefolder",
        "root": str(tmp_path / "img"),
        "num_validation": 2,
        "num_dev": 2,
        "cache_dir": str(tmp_path / "cache"),
        **overrides,
    }


def missing_root(tmp_path):
    return cifar_cfg(tmp_path / "nowhere", tmp_path / "cache")


def md5_mismatch(tmp_path):
    (tmp_path / "root").mkdir()
    make_cifar_tar(tmp_path / "root")
    return cifar_cfg(tmp_path / "root", tmp_path / "cache", md5="0" * 32)


def corrupt_archive(tmp_path):
    (tmp_path / "root").mkdir()
    archive, _ = make_cifar_tar(tmp_path / "root")
    archive.write_bytes(archive.read_bytes()[:2000])
    return cifar_cfg(tmp_path / "root", tmp_path / "cache")


def truncated_batch(tmp_path):
    return _cifar_with(tmp_path, "data_batch_3", lambda b: b[: len(b) // 2])


def corrupt_batch(tmp_path):
    return _cifar_with(tmp_path, "data_batch_2", b"\x80\x02}q\x00(U\x04dataq\x01\xff\xfe garbage")


def not_a_pickle(tmp_path):
    return _cifar_with(tmp_path, "test_batch", b"<html>404 Not Found</html>")


def wrong_shape(tmp_path):
    data = np.zeros((40, 3000), dtype=np.uint8)
    return _cifar_with(tmp_path, "data_batch_1", batch_dict(data, [0] * 40))


def wrong_dtype(tmp_path):
    data = np.zeros((40, 3072), dtype=np.float32)
    return _cifar_with(tmp_path, "data_batch_1", batch_dict(data, [0] * 40))


def labels_out_of_range(tmp_path):
    data = np.zeros((40, 3072), dtype=np.uint8)
    return _cifar_with(tmp_path, "data_batch_4", batch_dict(data, [3] * 39 + [10]))


def negative_label(tmp_path):
    data = np.zeros((50, 3072), dtype=np.uint8)
    return _cifar_with(tmp_path, "test_batch", batch_dict(data, [-1] + [0] * 49))


def labels_count_mismatch(tmp_path):
    data = np.zeros((40, 3072), dtype=np.uint8)
    return _cifar_with(tmp_path, "data_batch_1", batch_dict(data, [0] * 39))


def missing_batch(tmp_path):
    cfg = _cifar(tmp_path)
    (tmp_path / "root" / BATCHES / "data_batch_5").unlink()
    return cfg


def meta_without_names(tmp_path):
    return _cifar_with(tmp_path, "batches.meta", {b"num_vis": 3072})


def meta_one_class(tmp_path):
    return _cifar_with(tmp_path, "batches.meta", {b"label_names": [b"airplane"]})


def meta_names_not_utf8(tmp_path):
    names = [n.encode() for n in LABEL_NAMES]
    names[3] = "chat noir".encode("latin-1") + b"\xff"
    return _cifar_with(tmp_path, "batches.meta", {b"label_names": names})


def meta_names_not_strings(tmp_path):
    return _cifar_with(tmp_path, "batches.meta", {b"label_names": list(range(10))})


def python3_object_pickle(tmp_path):
    return _cifar_with(tmp_path, "data_batch_1", pickle.dumps({b"data": OrderedDict()}, protocol=4))


def too_many_training_rows(tmp_path):
    return _cifar(tmp_path, num_training=190, num_validation=30)


def too_many_test_rows(tmp_path):
    return _cifar(tmp_path, num_test=51)


def negative_split(tmp_path):
    return _cifar(tmp_path, num_validation=-1)


def dev_larger_than_train(tmp_path):
    return _cifar(tmp_path, num_dev=151)


def root_is_a_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    return cifar_cfg(tmp_path / "file", tmp_path / "cache")


def cache_dir_is_a_file(tmp_path):
    cfg = _cifar(tmp_path)
    (tmp_path / "cache").write_text("not a folder")
    return cfg


def unknown_name(tmp_path):
    return {"name": "mnist", "cache_dir": str(tmp_path / "cache")}


def unknown_option(tmp_path):
    return {"name": "digits", "num_train": 10, "cache_dir": str(tmp_path / "cache")}


def bad_dtype(tmp_path):
    return {"name": "digits", "dtype": "float16", "cache_dir": str(tmp_path / "cache")}


def digits_too_large(tmp_path):
    return {"name": "digits", "num_training": 1500, "cache_dir": str(tmp_path / "cache")}


def imagefolder_root_is_a_file(tmp_path):
    (tmp_path / "img").write_text("x")
    return _images(tmp_path)


def imagefolder_missing_root(tmp_path):
    return _images(tmp_path)


def imagefolder_without_test(tmp_path):
    make_imagefolder(tmp_path / "img", splits=("train",))
    return _images(tmp_path)


def imagefolder_no_classes(tmp_path):
    (tmp_path / "img" / "train").mkdir(parents=True)
    (tmp_path / "img" / "test").mkdir(parents=True)
    return _images(tmp_path)


def imagefolder_empty_class(tmp_path):
    make_imagefolder(tmp_path / "img")
    for p in (tmp_path / "img" / "train" / "dog").iterdir():
        p.unlink()
    return _images(tmp_path)


def imagefolder_class_mismatch(tmp_path):
    make_imagefolder(tmp_path / "img")
    (tmp_path / "img" / "test" / "emu").rename(tmp_path / "img" / "test" / "yak")
    return _images(tmp_path)


def imagefolder_mixed_sizes(tmp_path):
    make_imagefolder(tmp_path / "img")
    Image.new("RGB", (9, 9)).save(tmp_path / "img" / "test" / "cat" / "img_0.png")
    return _images(tmp_path)


def imagefolder_not_an_image(tmp_path):
    make_imagefolder(tmp_path / "img")
    (tmp_path / "img" / "train" / "cat" / "img_3.png").write_bytes(b"this is text")
    return _images(tmp_path, num_validation=0)


def imagefolder_stray_file(tmp_path):
    make_imagefolder(tmp_path / "img")
    (tmp_path / "img" / "train" / "cat" / "notes.txt").write_text("hello")
    return _images(tmp_path)


def imagefolder_too_many_validation(tmp_path):
    make_imagefolder(tmp_path / "img")
    return _images(tmp_path, num_validation=19)


def imagefolder_nothing_left_to_train(tmp_path):
    make_imagefolder(tmp_path / "img")
    return _images(tmp_path, num_validation=18)


def imagefolder_without_root(tmp_path):
    return {"name": "imagefolder", "cache_dir": str(tmp_path / "cache")}


def imagefolder_class_not_utf8(tmp_path):
    make_imagefolder(tmp_path / "img")
    for split in ("train", "test"):  # a folder name in Latin-1, as an old archive may carry
        os.rename(tmp_path / "img" / split / "emu", os.fsencode(tmp_path / "img" / split) + b"/\xe9mu")
    return _images(tmp_path)


def imagefolder_class_with_newline(tmp_path):
    make_imagefolder(tmp_path / "img")
    for split in ("train", "test"):
        (tmp_path / "img" / split / "emu").rename(tmp_path / "img" / split / "e\nmu")
    return _images(tmp_path)


def _tiff_named_png(tmp_path, pixels: np.ndarray):
    """An image folder with one TIFF of ``pixels`` (Pillow opens a file by its content, not its name)."""
    make_imagefolder(tmp_path / "img")
    Image.fromarray(pixels).save(tmp_path / "img" / "train" / "dog" / "img_2.png", format="TIFF")
    return _images(tmp_path)


def imagefolder_float_image(tmp_path):
    return _tiff_named_png(tmp_path, np.full((5, 4), 0.5, dtype=np.float32))


def imagefolder_int32_image(tmp_path):
    return _tiff_named_png(tmp_path, np.full((5, 4), 70000, dtype=np.int32))


def bad_image_size(tmp_path):
    make_imagefolder(tmp_path / "img")
    return _images(tmp_path, image_size=[4])


CASES = {
    missing_root: r"CIFAR-10 not found in .*nowhere .*download it with: python -m softmax_exp.data "
    r"download cifar10 --root .*nowhere$",
    md5_mismatch: r"MD5 mismatch for .*cifar-10-python.tar.gz: expected 0{32}, got [0-9a-f]{32}",
    corrupt_archive: r"cifar-10-python.tar.gz is truncated or corrupt",
    truncated_batch: r"data_batch_3 is truncated or corrupt",
    corrupt_batch: r"data_batch_2 is truncated or corrupt",
    not_a_pickle: r"test_batch is truncated or corrupt",
    wrong_shape: r"data_batch_1: b'data' must be a uint8 array of shape \(n, 3072\); got shape "
    r"\(40, 3000\)",
    wrong_dtype: r"got shape \(40, 3072\) dtype float32",
    labels_out_of_range: r"data_batch_4: label 10 is outside \[0, 10\)",
    negative_label: r"test_batch: label -1 is outside \[0, 10\)",
    labels_count_mismatch: r"b'labels' must be a list of 40 integers",
    missing_batch: r"lacks data_batch_5",
    meta_without_names: r"batches.meta has no b'label_names'",
    meta_one_class: r"batches.meta has one class \(airplane\); a classifier needs at least 2 classes: delete "
    r"it and re-download$",
    meta_names_not_utf8: r"batches.meta: class name #3 b'chat noir\\xff' is not valid UTF-8; delete it and "
    r"re-download$",
    meta_names_not_strings: r"batches.meta: class name #0 is a int, not a string; delete it and re-download$",
    python3_object_pickle: r"refused to unpickle global collections.OrderedDict",
    too_many_training_rows: r"dataset.num_training \(190\) \+ dataset.num_validation \(30\) = 220 "
    r"exceeds the 200 training images",
    too_many_test_rows: r"dataset.num_test \(51\) = 51 exceeds the 50 test images",
    negative_split: r"dataset.num_validation must be an integer >= 0; got -1",
    dev_larger_than_train: r"dataset.num_dev \(151\) exceeds dataset.num_training \(150\)",
    root_is_a_file: r"dataset.root .*file is a file",
    cache_dir_is_a_file: r"cache_dir .*cache is a file",
    unknown_name: r"unknown dataset name 'mnist'; choose one of digits, cifar10, imagefolder",
    unknown_option: r"unknown option\(s\) num_train for dataset 'digits'",
    bad_dtype: r"unknown dataset.dtype 'float16'; choose one of: float32, float64",
    digits_too_large: r"dataset.num_training \(1500\) \+ dataset.num_validation \(250\) \+ "
    r"dataset.num_test \(250\) = 2000 exceeds the 1797 digits images",
    imagefolder_root_is_a_file: r"dataset.root .*img is a file",
    imagefolder_missing_root: r"dataset.root .*img does not exist",
    imagefolder_without_test: r"img/test is missing",
    imagefolder_no_classes: r"img/train has no class folders",
    imagefolder_empty_class: r"class folder .*train/dog has no images",
    imagefolder_class_mismatch: r"test has classes \['cat', 'dog', 'yak'\] but train/ has",
    imagefolder_mixed_sizes: r"is 9x9 \(HxW\) but .* is 5x4; set dataset.image_size=\[H,W\]",
    imagefolder_not_an_image: r"train/cat/img_3.png is not a readable image",
    imagefolder_stray_file: r"notes.txt is not an image \(expected .png, .jpg, .jpeg\)",
    imagefolder_too_many_validation: r"dataset.num_validation \(19\) = 19 exceeds the 18 training "
    r"images in .*img/train",
    imagefolder_nothing_left_to_train: r"no training images left in .*train: all 18 go to validation",
    imagefolder_without_root: r"dataset.root is required; set dataset.root=DIR \(DIR/train/<class>/",
    bad_image_size: r"dataset.image_size must be null or \[H, W\]",
    imagefolder_class_not_utf8: r"img/train: class folder name #2 '\\udce9mu' is not valid UTF-8; add or "
    r"rename class folders in train/ and test/ \(2 or more, printable UTF-8 names\)$",
    imagefolder_class_with_newline: r"img/train: class folder name #2 'e\\nmu' is empty or holds control "
    r"characters",
    imagefolder_float_image: r"train/dog/img_2.png has 32-bit float pixels \(Pillow mode F\), whose range "
    r"is unknown; save it as an 8- or 16-bit PNG or as a JPEG$",
    imagefolder_int32_image: r"train/dog/img_2.png has 32-bit integer pixels \(Pillow mode I\)",
}


@pytest.mark.parametrize("case", list(CASES), ids=[f.__name__ for f in CASES])
def test_bad_input_raises_one_line_data_error(tmp_path, case):
    cfg = case(tmp_path)
    with pytest.raises(DataError, match=CASES[case]) as err:
        load_dataset(cfg)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)
    cache = tmp_path / "cache"
    if cache.is_dir():
        assert cache_entries(cache) == [] and leftovers(cache) == []
    if (tmp_path / "root").is_dir():  # nothing half-extracted either
        assert leftovers(tmp_path / "root") == []
