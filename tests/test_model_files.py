"""LinearClassifier.load (and Softmax.load) on files it did not write: each refused by a ValueError of one
line naming the file and the problem, before anything large is allocated; good files of other layouts load
unchanged."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest
from npz_fixtures import (
    allocates_at_most,
    damaged_copies,
    members,
    npy,
    npy_header,
    npy_raw_header,
    patch_central_directory,
    rewrite,
    write_zip,
)

import softmax_exp.learn.npz as npz_module
from softmax_exp.learn.model import LinearClassifier, LinearSVM, Preprocessing, Softmax

LITTLE = 4 << 20  # every refusal below allocates less than this (the good model is 2 KB)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A saved model: images (2, 3, 2), bias trick, so W is (13, 4) float32; mean_image (12,)."""
    rng = np.random.default_rng(0)
    pre = Preprocessing(rng.standard_normal(12), True, ("cat", "dog", "eel", "fox"), (2, 3, 2))
    model = Softmax("numba_fused", pre)
    model.W = rng.standard_normal((13, 4)).astype(np.float32)
    return model.save(tmp_path_factory.mktemp("good") / "model.npz")


def _refused(path, message):
    with allocates_at_most(LITTLE), pytest.raises(ValueError) as e:
        Softmax.load(path)
    text = str(e.value)
    assert text.startswith(f"{path} is not a saved classifier (") and "\n" not in text, text
    assert re.search(message, text), text
    return text


W_OK = np.zeros((13, 4), np.float32)


@pytest.mark.parametrize("replace, message", [
    # headers that lie or that numpy must not act on
    (dict(W=npy_header("<f8", (10**6, 10**6), b"\0" * 1024)),
     r"'W' claims float64 \(1000000, 1000000\), 8000000000000 bytes; at most \d+ are read"),
    (dict(W=npy_header("<f4", (1000, 1000), b"\0" * 1024)),
     r"'W' claims float32 \(1000, 1000\) \(4000000 bytes\) but holds 1024 bytes"),
    (dict(W=npy_header("<f4", (13, 4), b"\0" * 300)),
     r"claims float32 \(13, 4\) \(208 bytes\) but holds 300"),
    (dict(W=npy(np.zeros((13, 4), dtype=object))), r"'W' has dtype 'object'; only bool, int, float and str"),
    (dict(W=npy(np.zeros((13, 4), dtype=[("a", "<f4")]))), r"'W' has dtype .*; only bool, int, float"),
    (dict(W=npy_header("<f4", (-1, 4)) + b"\0" * 16), r"'W' claims dtype float32 of shape '\(-1, 4\)'"),
    (dict(W=npy_raw_header(b"(" * 5000)), r"'W' has no valid \.npy header: TokenError"),
    (dict(W=npy_raw_header(b"{" * 100, version=2, length=2**31)),
     r"'W' has no valid \.npy header: EOF: reading array header"),
    (dict(W=npy_raw_header(b"{'descr': '<f4', 'shape': (13, 4)}    \n")),
     r"no valid \.npy header: Header does not contain the correct keys"),
    (dict(W=b"\x93NUMPY\x03\x00" + npy(W_OK)[8:]), r"'W' is in \.npy format \(3, 0\)"),
    (dict(W=b"hello"), r"'W' has no valid \.npy header: EOF: reading magic string"),
    # W that does not fit the preprocessing, or is not weights
    (dict(W=np.zeros((14, 4), np.float32)),
     r"W has 14 rows; image_shape \(2, 3, 2\) and the bias row need 13"),
    (dict(W=np.zeros((13, 0), np.float32), class_names=np.array([], dtype=np.str_)), "W has no columns"),
    (dict(W=np.zeros(13, np.float32)), r"W is float32 \(13,\); expected float32/float64 \(n, n\)"),
    (dict(W=np.zeros((13, 4), np.float16)), r"W is float16 \(13, 4\); expected float32/float64"),
    (dict(W=np.zeros((13, 4), np.int64)), r"W is int64 \(13, 4\)"),
    (dict(W=np.where(np.eye(13, 4) > 0, np.nan, 0).astype(np.float32)), "W has NaN or inf"),
    (dict(W=np.full((13, 4), np.inf)), "W has NaN or inf"),
    (dict(bias_trick=np.bool_(False)), r"W has 13 rows; image_shape \(2, 3, 2\) need 12"),
    (dict(class_names=np.array(["a", "b", "c"])), r"class_names is str32 \(3,\); expected kind U \(4,\)"),
    (dict(class_names=np.arange(4)), r"class_names is int64 \(4,\); expected kind U \(4,\)"),
    (dict(class_names=np.array(["x" * 2000] * 4)), r"class_names has items of 8000 bytes; at most 4096"),
    (dict(mean_image=np.zeros(11)), r"mean_image is float64 \(11,\); expected kind f/i/u \(12,\)"),
    (dict(mean_image=np.full(12, np.nan)), "mean_image has NaN or inf"),
    (dict(image_shape=np.array([0, 3, 2])), r"image_shape must be 3 sizes >= 1; got \(0, 3, 2\)"),
    (dict(image_shape=np.array([6, 2])), r"image_shape is int64 \(2,\); expected kind i/u \(3,\)"),
    (dict(image_shape=np.array([10**6, 10**6, 3])), r"W has 13 rows; image_shape \(1000000, 1000000, 3\)"),
    (dict(kernel=np.str_("fast")), "unknown kernel 'fast'"),
    (dict(kernel=np.str_("x" * 100)), "kernel has items of 400 bytes; at most 256"),
    (dict(format=np.int64(3)), "model format 3, this code reads 1 and 2"),
    (dict(loss=np.str_("hinge")), "loss 'hinge', this code knows softmax, svm"),
    (dict(loss=np.str_("svm")), "it holds a svm classifier, not a softmax one; read it with LinearClass"),
    (dict(loss=None), "no member 'loss'"),  # format 2 names its loss ...
    (dict(format=np.int64(1)), "unexpected member 'loss'"),  # ... format 1 has none
    (dict(format=np.float64(1)), r"format is float64 \(\); expected kind i/u \(\)"),
    (dict(W=None), "no member 'W'"),
    (dict(extra=np.zeros(3)), "unexpected member 'extra'"),
], ids=lambda v: None if isinstance(v, str) else "-".join(v))
def test_a_crafted_member_is_refused_before_allocating(good, tmp_path, replace, message):
    _refused(rewrite(good, tmp_path / "crafted.npz", **replace), message)


def test_files_that_are_not_npz_are_refused(good, tmp_path):
    (tmp_path / "notes.txt").write_text("a text file\nof two lines\n")
    _refused(tmp_path / "notes.txt", "File is not a zip file")
    (tmp_path / "empty.npz").write_bytes(b"")
    _refused(tmp_path / "empty.npz", "File is not a zip file")
    _refused(write_zip(tmp_path / "docs.zip", {"readme.txt": b"hello"}),
             r"member 'readme\.txt' is not an \.npy array")
    _refused(write_zip(tmp_path / "many.npz", {f"a{i}.npy": npy(np.zeros(1)) for i in range(65)}),
             "65 members; an npz of this code has at most 64")
    twice = write_zip(tmp_path / "twice.npz", {f"{k}.npy": v for k, v in members(good).items()})
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(twice, "a") as z:
        z.writestr("W.npy", npy(W_OK))
    _refused(twice, "member 'W' appears twice")
    _refused(tmp_path / "missing.npz", "No such file or directory")
    _refused(tmp_path, "Is a directory")
    raw = good.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30):
        (tmp_path / "cut.npz").write_bytes(raw[:cut])
        _refused(tmp_path / "cut.npz", "")


def test_a_zip_directory_that_lies_is_refused(good, tmp_path):
    def patched(offset, fmt, value):
        path = tmp_path / "patched.npz"
        path.write_bytes(good.read_bytes())
        return patch_central_directory(path, offset, fmt, value)

    # compressed and uncompressed sizes of the first member (format) both claim 2 GB
    path = patched(20, "<I", 2**31)
    _refused(patch_central_directory(path, 24, "<I", 2**31), r"'format' claims 2147483648 bytes from byte 0")
    _refused(patched(24, "<I", 2**20), "'format' is stored uncompressed in 136 bytes but claims 1048576")
    _refused(patched(8, "<H", 1), "'format' is encrypted")
    _refused(patched(10, "<H", 14), "'format' uses zip compression method 14")


def test_a_flipped_data_byte_fails_the_crc(good, tmp_path):
    raw = bytearray(good.read_bytes())
    W = np.load(good)["W"]
    raw[raw.index(W.tobytes()) + 5] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    _refused(tmp_path / "flipped.npz", "'W' is damaged: Bad CRC-32 for file 'W.npy'")


def test_a_compressed_member_may_not_unpack_beyond_the_bound(good, tmp_path, monkeypatch):
    files = members(good)
    files["W"] = npy(np.zeros((13, 100_000), np.float32))  # 5.2 MB of zeros deflate to 5 KB
    files["class_names"] = npy(np.array(["c"] * 100_000))
    path = write_zip(tmp_path / "zipped.npz", {f"{k}.npy": v for k, v in files.items()}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(npz_module, "MAX_ARRAY_BYTES", 1 << 20)
    _refused(path, r"'W' claims float32 \(13, 100000\), 5200000 bytes; at most 1048576 are read")


@pytest.mark.parametrize("layout", ["compressed", "fortran", "big-endian", "version 2.0 header"])
def test_good_files_of_other_layouts_load_unchanged(good, tmp_path, layout):
    original = Softmax.load(good)
    W = original.W
    if layout == "compressed":
        files = {f"{k}.npy": v for k, v in members(good).items()}
        path = write_zip(tmp_path / "m.npz", files, zipfile.ZIP_DEFLATED)
    elif layout == "fortran":
        path = rewrite(good, tmp_path / "m.npz", W=np.asfortranarray(W))
    elif layout == "big-endian":
        path = rewrite(good, tmp_path / "m.npz", W=W.astype(">f4"), mean_image=original.preprocessing
                       .mean_image.astype(">f8"))
    else:
        text = npy(W)[10:]
        path = rewrite(good, tmp_path / "m.npz", W=npy_raw_header(text[:-len(W.tobytes())], version=2)
                       + W.tobytes())
    back = Softmax.load(path)
    assert back.W.dtype == np.float32 and back.W.dtype.isnative and back.W.flags.c_contiguous
    assert back.W.flags.writeable and np.array_equal(back.W, W)
    pre, want = back.preprocessing, original.preprocessing
    assert pre.mean_image.dtype == np.float64 and np.array_equal(pre.mean_image, want.mean_image)
    assert (pre.bias_trick, pre.class_names, pre.image_shape) == (want.bias_trick, want.class_names,
                                                                  want.image_shape)


def test_a_good_file_loads_bit_identical(good):
    back = Softmax.load(good)
    with np.load(good) as f:
        assert back.W.tobytes() == f["W"].tobytes() and back.W.dtype == f["W"].dtype
        assert back.preprocessing.mean_image.tobytes() == f["mean_image"].tobytes()
        assert back.preprocessing.class_names == tuple(f["class_names"])
        assert back.preprocessing.image_shape == tuple(f["image_shape"])
    assert back.kernel_name == "numba_fused" and back.preprocessing.bias_trick


def test_each_classifier_comes_back_as_itself_and_format_1_is_a_softmax(good, tmp_path):
    softmax = Softmax.load(good)
    svm = LinearSVM("vectorized", softmax.preprocessing)
    svm.W = softmax.W * 2
    back = LinearClassifier.load(svm.save(tmp_path / "svm.npz"))
    assert type(back) is LinearSVM and back.kernel_name == "vectorized" and np.array_equal(back.W, svm.W)
    assert type(LinearSVM.load(tmp_path / "svm.npz")) is LinearSVM
    with pytest.raises(ValueError, match="it holds a softmax classifier, not a svm one"):
        LinearSVM.load(good)
    # what Softmax.save wrote before the SVM: format 1, no loss member
    old = rewrite(good, tmp_path / "format1.npz", format=np.int64(1), loss=None)
    assert type(LinearClassifier.load(old)) is Softmax and np.array_equal(Softmax.load(old).W, softmax.W)


def test_random_damage_is_a_value_error_or_a_model(good, tmp_path):
    """Any byte of the file changed, or the file cut anywhere: ValueError in one line, or (a byte no
    reader looks at) the same model."""
    raw = good.read_bytes()
    W = Softmax.load(good).W
    path = tmp_path / "damaged.npz"
    for damaged in damaged_copies(raw):
        path.write_bytes(damaged)
        try:
            back = Softmax.load(path)
        except ValueError as e:
            assert "\n" not in str(e) and str(path) in str(e)
        else:
            assert np.array_equal(back.W, W)


def test_a_header_of_2_0_longer_than_numpy_allows_is_refused(good, tmp_path):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (13, 4), }" + b" " * 20_000 + b"\n"
    path = rewrite(good, tmp_path / "long.npz", W=npy_raw_header(header, version=2) + W_OK.tobytes())
    _refused(path, r"'W' has no valid \.npy header: EOF: reading array header, expected 20061 bytes got "
                   r"10000")
