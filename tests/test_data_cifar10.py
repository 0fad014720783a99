"""CIFAR-10: the course's preprocessing, the restricted unpickler and safe extraction."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    LABEL_NAMES,
    cache_entries,
    cifar_cfg,
    course_preprocess,
    dead_pid,
    leftovers,
    make_cifar_dir,
    make_cifar_tar,
    names_but_locks,
    write_py2_pickle,
)

from softmax_exp.data import DataError, load_dataset
from softmax_exp.data.cifar10 import load_pickle, safe_extract
from softmax_exp.data.download import file_md5
from softmax_exp.util.atomic import owner_tag


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_the_course_preprocessing(tmp_path, dtype):
    truth = make_cifar_dir(tmp_path / "root")
    data = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache", dtype=dtype))
    ref = course_preprocess(*truth, num_training=150, num_validation=30, num_test=40)
    for key, expected in ref.items():
        got = getattr(data, key)
        if key.startswith("X"):
            assert got.dtype == np.dtype(dtype) and got.shape[1] == 3073
            expected = expected.astype(dtype)
        np.testing.assert_array_equal(got, expected, err_msg=key)
    assert data.class_names == tuple(LABEL_NAMES) and data.image_shape == (32, 32, 3)
    assert data.X_dev.shape == (20, 3073) and data.y_dev.dtype == np.int64


def test_rows_are_flattened_in_hwc_order(tmp_path):
    train, *_ = make_cifar_dir(tmp_path / "root")
    data = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "c", subtract_mean=False))
    image = data.X_train[7, :-1].reshape(32, 32, 3)
    # file row: 1024 red, then 1024 green, then 1024 blue values, each row-major over (32, 32)
    r, c = 5, 11
    assert [image[r, c, ch] for ch in range(3)] == [
        train[7, ch * 1024 + r * 32 + c] for ch in range(3)
    ]


def test_dev_set_is_a_seeded_sample_of_training_rows(tmp_path):
    make_cifar_dir(tmp_path / "root")
    a = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "c"))
    b = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "c2"))
    other = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "c", split_seed=1))
    np.testing.assert_array_equal(a.X_dev, b.X_dev)
    assert not np.array_equal(a.X_dev, other.X_dev)
    np.testing.assert_array_equal(a.X_train, other.X_train)  # train/val/test rows do not move
    train_rows = {row.tobytes(): y for row, y in zip(a.X_train, a.y_train, strict=True)}
    assert len({row.tobytes() for row in a.X_dev}) == 20
    assert all(train_rows[row.tobytes()] == y for row, y in zip(a.X_dev, a.y_dev, strict=True))


def test_archive_is_checked_extracted_once_and_loaded(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    archive, truth = make_cifar_tar(root)
    cfg = cifar_cfg(root, tmp_path / "cache", md5=file_md5(archive))
    data = load_dataset(cfg)
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert leftovers(root) == []
    ref = course_preprocess(*truth, num_training=150, num_validation=30, num_test=40)
    np.testing.assert_array_equal(data.X_test, ref["X_test"].astype(np.float32))
    assert load_dataset(cfg).cache_path == data.cache_path  # same fingerprint after extraction


def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    folder = tmp_path / "root" / "cifar-10-batches-py"
    make_cifar_dir(tmp_path / "root")
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    assert b"system" in (folder / "data_batch_1").read_bytes()
    with pytest.raises(DataError, match=r"refused to unpickle global (posix|os)\.system") as err:
        load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache"))
    assert "data_batch_1" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()
    assert cache_entries(tmp_path / "cache") == [] and leftovers(tmp_path / "cache") == []


@pytest.mark.parametrize("global_name", ["builtins\neval", "subprocess\nPopen", "numpy\nload"])
def test_restricted_unpickler_refuses_any_other_global(tmp_path, global_name):
    path = tmp_path / "batch"
    path.write_bytes(b"\x80\x02c" + global_name.encode() + b"\n)R.")
    with pytest.raises(
        DataError, match="refused to unpickle global " + global_name.replace("\n", ".")
    ):
        load_pickle(path)


def _evil_tar(path: Path, member: tarfile.TarInfo, payload: bytes = b"x") -> None:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        ok.size = 1
        tar.addfile(ok, io.BytesIO(b"x"))
        if member.isfile():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)


def _member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "member, reason",
    [
        (_member("../evil"), "path leaves the folder"),
        (_member("cifar-10-batches-py/../../evil"), "path leaves the folder"),
        (_member("/tmp/abs_evil"), "absolute path"),
        (_member("cifar-10-batches-py/link", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (_member("cifar-10-batches-py/hard", tarfile.LNKTYPE, "/etc/passwd"), "link"),
        (_member("cifar-10-batches-py/dev", tarfile.CHRTYPE), "special file"),
    ],
)
def test_unsafe_archive_members_are_refused(tmp_path, member, reason):
    root = tmp_path / "a" / "root"
    root.mkdir(parents=True)
    name = member.name
    _evil_tar(root / "cifar-10-python.tar.gz", member)
    with tarfile.open(root / "cifar-10-python.tar.gz") as tar:
        assert name in tar.getnames()  # the archive really carries the bad name
    with pytest.raises(DataError, match=f"refused unsafe member .*{reason}"):
        safe_extract(root / "cifar-10-python.tar.gz", root)
    with pytest.raises(DataError, match="refused unsafe member"):
        load_dataset(cifar_cfg(root, tmp_path / "cache"))
    assert not (tmp_path / "a" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not Path("/tmp/abs_evil").exists()
    assert names_but_locks(root) == ["cifar-10-python.tar.gz"]



def test_extraction_removes_what_dead_extractors_left_and_keeps_a_live_ones(tmp_path, live_pid):
    root = tmp_path / "root"
    root.mkdir()
    make_cifar_tar(root)
    left = {}
    for who, pid in (("dead", dead_pid()), ("live", live_pid)):
        left[who] = root / f".extract-{who}.{owner_tag(pid)}"
        (left[who] / "cifar-10-batches-py").mkdir(parents=True)
        (left[who] / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"half a batch")
    data = load_dataset(cifar_cfg(root, tmp_path / "cache"))
    assert data.X_train.shape == (150, 3073)
    assert not left["dead"].exists() and left["live"].exists()
    assert names_but_locks(root) == sorted([".extract-live." + owner_tag(live_pid), "cifar-10-batches-py",
                                            "cifar-10-python.tar.gz"])


# ------------------------------------------------------------------------- batches.meta's class names


def _meta_names(root: Path, cache: Path, names, python2: bool = True) -> dict:
    """A CIFAR-10 folder whose batches.meta lists ``names``, pickled as Python 2 wrote it (bytes stay
    bytes) or as Python 3 does (str stays str)."""
    make_cifar_dir(root)
    meta = {b"label_names": names, b"num_vis": 3072}
    path = root / "cifar-10-batches-py" / "batches.meta"
    if python2:
        write_py2_pickle(meta, path)
    else:
        path.write_bytes(pickle.dumps(meta, protocol=2))
    return cifar_cfg(root, cache)


@pytest.mark.parametrize("names, message", [
    ([b"cat"], r"batches\.meta has one class \(cat\); a classifier needs at least 2 classes: delete it"),
    ([b"cat", b"d\xf6g"], r"batches\.meta: class name #1 b'd\\xf6g' is not valid UTF-8; delete it"),
    ([b"cat", 7], r"batches\.meta: class name #1 is a int, not a string; delete it"),
    ([b"cat", [b"dog"]], r"batches\.meta: class name #1 is a list, not a string"),
    ([b"cat", b""], r"batches\.meta: class name #1 '' is empty or holds control characters"),
    ([b"cat", b"do\ng"], r"batches\.meta: class name #1 'do\\ng' is empty or holds control characters"),
    ([b"cat", b"dog", b"cat"], r"batches\.meta lists the class name 'cat' twice; delete it and re-download"),
])
def test_bad_class_names_are_refused_in_one_line(tmp_path, names, message):
    with pytest.raises(DataError, match=message) as err:
        load_dataset(_meta_names(tmp_path / "root", tmp_path / "cache", names))
    assert "\n" not in str(err.value)
    assert cache_entries(tmp_path / "cache") == []


def test_utf8_bytes_and_python3_str_class_names_are_read(tmp_path):
    names = ["chat", "chien", "émeu", "ptérodactyle"] + [f"c{i}" for i in range(6)]
    as_bytes = _meta_names(tmp_path / "a", tmp_path / "cache", [n.encode() for n in names])
    as_str = _meta_names(tmp_path / "b", tmp_path / "cache", names, python2=False)
    assert load_dataset(as_bytes).class_names == load_dataset(as_str).class_names == tuple(names)
