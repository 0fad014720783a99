"""The cache: write once, memory-map afterwards, one entry under concurrency, nothing after a failure."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from data_fixtures import (
    cache_entries,
    can_mount_read_only,
    cifar_cfg,
    cifar_overrides,
    dead_pid,
    leftovers,
    make_cifar_dir,
    read_only,
)

import softmax_exp.data.cache as cache_module
import softmax_exp.data.load as load_module
import softmax_exp.data.preprocess as preprocess_module
import softmax_exp.util.atomic as atomic_module
from softmax_exp.data import check_dataset, load_dataset
from softmax_exp.data.cache import _publish, entry_path
from softmax_exp.util.atomic import owner_tag, remove_dead_leftovers

ARRAYS = [f"{a}_{s}" for s in ("train", "val", "test", "dev") for a in "Xy"] + ["mean_image"]


def _digest(data) -> str:
    h = hashlib.sha256()
    for name in ARRAYS:
        h.update(np.ascontiguousarray(getattr(data, name)).tobytes())
    return h.hexdigest()


@pytest.fixture
def cfg(tmp_path):
    make_cifar_dir(tmp_path / "root")
    return cifar_cfg(tmp_path / "root", tmp_path / "cache")


def test_second_load_memory_maps_identical_arrays(cfg, tmp_path):
    first = load_dataset(cfg)
    second = load_dataset(cfg)
    assert first.cache_path == second.cache_path
    entry = Path(second.cache_path)
    assert entry.parent == tmp_path / "cache" and entry.name == f"cifar10-{first.fingerprint[:16]}"
    assert isinstance(second.X_train, np.memmap)
    assert Path(second.X_train.filename) == entry / "X_train.npy"
    assert not second.X_train.flags.writeable
    assert _digest(first) == _digest(second)
    in_memory = load_dataset({**cfg, "cache": False})
    assert in_memory.cache_path is None and _digest(in_memory) == _digest(first)
    assert sorted(p.name for p in entry.iterdir()) == sorted(
        [f"{n}.npy" for n in ARRAYS] + ["meta.json"]
    )


def test_fingerprint_follows_files_and_options_not_the_training_seed(cfg, tmp_path):
    base = load_dataset(cfg)
    assert load_dataset({**cfg, "num_dev": 10}).cache_path != base.cache_path
    assert load_dataset({**cfg, "dtype": "float64"}).cache_path != base.cache_path
    batch = tmp_path / "root" / "cifar-10-batches-py" / "data_batch_2"
    st = batch.stat()
    os.utime(batch, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_dataset(cfg).fingerprint != base.fingerprint
    assert len(cache_entries(tmp_path / "cache")) == 4


def _child(cfg, barrier, out: Path) -> None:
    barrier.wait()
    data = load_dataset(cfg)
    out.write_text(f"{_digest(data)} {data.cache_path}")


def _run_two_builders(cfg, tmp_path, monkeypatch) -> tuple[list[str], list[str]]:
    """Two forked processes load the same uncached entry at once; returns (results, build log)."""
    log = tmp_path / "builds.log"
    real_build = load_module.build_arrays

    def slow_build(*args, **kwargs):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.4)  # keep the two builders overlapping
        return real_build(*args, **kwargs)

    monkeypatch.setattr(load_module, "build_arrays", slow_build)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"child{i}.txt" for i in range(2)]
    procs = [ctx.Process(target=_child, args=(cfg, barrier, out)) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    return [o.read_text() for o in outs], log.read_text().split()


def test_concurrent_builders_share_one_entry_and_only_one_builds(cfg, tmp_path, monkeypatch):
    results, builds = _run_two_builders(cfg, tmp_path, monkeypatch)
    assert len(builds) == 1  # the second process waited on the lock, then memory-mapped
    assert results[0] == results[1]
    monkeypatch.undo()
    expected = load_dataset({**cfg, "cache": False})
    assert results[0].split()[0] == _digest(expected)
    assert len(cache_entries(tmp_path / "cache")) == 1 and leftovers(tmp_path / "cache") == []


def test_rename_race_without_locks_keeps_the_winner(cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_module.fcntl, "flock", lambda fd, op: None)
    results, builds = _run_two_builders(cfg, tmp_path, monkeypatch)
    assert len(builds) == 2 and results[0] == results[1]
    assert len(cache_entries(tmp_path / "cache")) == 1 and leftovers(tmp_path / "cache") == []


def test_publish_loser_discards_its_folder(tmp_path):
    winner, loser = tmp_path / "entry", tmp_path / ".tmp-entry-1"
    for folder in (winner, loser):
        folder.mkdir()
        (folder / "X.npy").write_text(folder.name)
    assert _publish(loser, winner) is False
    assert not loser.exists() and (winner / "X.npy").read_text() == "entry"


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_midway_leaves_no_entry(cfg, tmp_path, monkeypatch, error):
    real_write = preprocess_module.write_features
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # X_train and X_val are already on disk
            raise error
        return real_write(*args, **kwargs)

    monkeypatch.setattr(preprocess_module, "write_features", failing_write)
    with pytest.raises(type(error)):
        load_dataset(cfg)
    assert len(calls) == 3
    assert cache_entries(tmp_path / "cache") == [] and leftovers(tmp_path / "cache") == []
    monkeypatch.undo()
    assert load_dataset(cfg).X_val.shape == (30, 3073)


def test_untagged_temp_folders_of_older_releases_are_cleared_by_age(cfg, tmp_path):
    entry = Path(load_dataset(cfg).cache_path)
    shutil.rmtree(entry)
    stale = tmp_path / "cache" / f".tmp-{entry.name}-killed"
    stale.mkdir()
    (stale / "X_train.npy").write_bytes(b"half")
    fresh = tmp_path / "cache" / f".tmp-{entry.name}-building"  # maybe another builder's
    fresh.mkdir()
    old = time.time() - 2 * atomic_module.STALE_SECONDS
    os.utime(stale, (old, old))
    assert Path(load_dataset(cfg).cache_path) == entry
    assert not stale.exists() and fresh.exists()


# ------------------------------------------------------------------------------- a damaged entry


def _rewrite(path: Path, array: np.ndarray) -> None:
    np.save(path, array)  # np.save appends .npy to a name without it; these names have it


def _labels_out_of_range(entry: Path) -> None:
    y = np.load(entry / "y_train.npy")
    y[7] = 10
    _rewrite(entry / "y_train.npy", y)


def _labels_out_of_range_behind_a_matching_meta(entry: Path) -> None:
    """Labels out of range with meta.json updated to match: only the range check can tell."""
    _labels_out_of_range(entry)
    meta = json.loads((entry / "meta.json").read_text())
    y = np.load(entry / "y_train.npy")
    meta["arrays"]["y_train"]["sha256"] = hashlib.sha256(y.data).hexdigest()
    (entry / "meta.json").write_text(json.dumps(meta))


def _truncated_x(entry: Path) -> None:
    path = entry / "X_train.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _x_of_another_shape(entry: Path) -> None:
    """Same bytes, other shape: the size check passes, the shape check does not."""
    X = np.load(entry / "X_val.npy")
    _rewrite(entry / "X_val.npy", np.ascontiguousarray(X.T))


def _meta_with_other_shapes(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["X_test"]["shape"] = [41, 3073]
    (entry / "meta.json").write_text(json.dumps(meta))


def _meta_of_another_entry(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["fingerprint"] = "0" * 64
    (entry / "meta.json").write_text(json.dumps(meta))


def _meta_not_json(entry: Path) -> None:
    (entry / "meta.json").write_text('{"arrays": ')


def _mean_changed(entry: Path) -> None:
    _rewrite(entry / "mean_image.npy", np.load(entry / "mean_image.npy") + 1.0)


def _file_missing(entry: Path) -> None:
    (entry / "y_dev.npy").unlink()


DAMAGE = {
    _labels_out_of_range: r"y_train\.npy does not match its sha256 in meta\.json",
    _labels_out_of_range_behind_a_matching_meta: r"y_train holds label 10, outside \[0, 10\)",
    _truncated_x: r"X_train\.npy has \d+ bytes, meta\.json says \d+",
    _x_of_another_shape: r"X_val\.npy holds \(3073, 30\) float32, meta\.json says \(30, 3073\) float32",
    _meta_with_other_shapes: r"X_test\.npy holds \(40, 3073\) float32, meta\.json says \(41, 3073\)",
    _meta_of_another_entry: r"meta\.json belongs to another entry",
    _meta_not_json: r"JSONDecodeError: Expecting value",
    _mean_changed: r"mean_image\.npy does not match its sha256",
    _file_missing: r"FileNotFoundError: .*No such file or directory: .*y_dev\.npy",
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=[f.__name__.strip("_") for f in DAMAGE])
def test_damaged_entry_is_rebuilt_with_a_one_line_warning(cfg, tmp_path, capsys, damage):
    expected = _digest(load_dataset({**cfg, "cache": False}))
    entry = Path(load_dataset(cfg).cache_path)
    damage(entry)
    capsys.readouterr()
    data = load_dataset(cfg)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert re.fullmatch(rf"warning: cache entry {re.escape(str(entry))} is damaged \(.*\); rebuilding it",
                        err[0]), err[0]
    assert re.search(DAMAGE[damage], err[0]), err[0]
    assert Path(data.cache_path) == entry and _digest(data) == expected
    assert cache_entries(tmp_path / "cache") == [entry] and leftovers(tmp_path / "cache") == []
    assert _digest(load_dataset(cfg)) == expected and capsys.readouterr().err == ""  # whole again


def test_meta_records_every_array_and_checksums_the_small_ones(cfg):
    data = load_dataset(cfg)
    meta = json.loads((Path(data.cache_path) / "meta.json").read_text())
    assert meta["format_version"] == cache_module.FORMAT_VERSION == 2
    assert sorted(meta["arrays"]) == sorted(ARRAYS)
    for stem, spec in meta["arrays"].items():
        array = getattr(data, stem)
        assert spec["shape"] == list(array.shape) and np.dtype(spec["dtype"]) == array.dtype
        assert spec["bytes"] == (Path(data.cache_path) / f"{stem}.npy").stat().st_size
        assert ("sha256" in spec) == (array.nbytes <= cache_module.CHECKSUM_MAX_BYTES)
    assert {"y_train", "mean_image"} <= {s for s, spec in meta["arrays"].items() if "sha256" in spec}


def test_a_damaged_entry_is_rebuilt_once_by_concurrent_openers(cfg, tmp_path, monkeypatch):
    entry = Path(load_dataset(cfg).cache_path)
    _truncated_x(entry)
    results, builds = _run_two_builders(cfg, tmp_path, monkeypatch)
    assert len(builds) == 1 and results[0] == results[1]  # the second opener found it rebuilt
    monkeypatch.undo()
    assert results[0].split()[0] == _digest(load_dataset({**cfg, "cache": False}))
    assert cache_entries(tmp_path / "cache") == [entry] and leftovers(tmp_path / "cache") == []


@pytest.mark.subprocess
def test_a_damaged_entry_that_cannot_be_rebuilt_is_refused_in_one_line(cfg, tmp_path):
    if not can_mount_read_only():
        pytest.skip("unshare -rm cannot bind-mount a folder read-only here")
    entry = Path(load_dataset(cfg).cache_path)
    _labels_out_of_range(entry)
    before = sorted(p.name for p in (tmp_path / "cache").iterdir())
    overrides = cifar_overrides(tmp_path / "root", tmp_path / "cache")
    argv = read_only([sys.executable, "-m", "softmax_exp.data", "info", *overrides], tmp_path / "cache")
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, "CI": "true"})
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stdout == ""
    assert re.fullmatch(
        rf"python -m softmax_exp\.data: error: cache entry {re.escape(str(entry))} is damaged \(y_train\.npy "
        r"does not match its sha256 in meta\.json\) and cannot be rebuilt here \(Read-only file system\); "
        r"delete that folder where the cache is writable, or set dataset\.cache_dir to a writable folder "
        r"\(or dataset\.cache=false\)\n", run.stderr)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == before


# --------------------------------------------------------------- what killed builders leave behind



def _leftover_folder(parent: Path, name: str) -> Path:
    folder = parent / name
    folder.mkdir()
    (folder / "X_train.npy").write_bytes(b"\0" * 4096)  # what the writer got through
    return folder


def test_a_builder_removes_what_dead_builders_left_and_keeps_a_live_ones(cfg, tmp_path, live_pid):
    name = entry_path(tmp_path / "cache", "cifar10", check_dataset(cfg)).name
    (tmp_path / "cache").mkdir()
    dead = _leftover_folder(tmp_path / "cache", f".tmp-{name}-a1b2c3.{owner_tag(dead_pid())}")
    live = _leftover_folder(tmp_path / "cache", f".tmp-{name}-d4e5f6.{owner_tag(live_pid)}")
    mine = _leftover_folder(tmp_path / "cache", f".tmp-{name}-g7h8i9.{owner_tag()}")
    other = _leftover_folder(tmp_path / "cache", ".tmp-digits-0123456789abcdef-j0.1@x")  # other entry
    assert Path(load_dataset(cfg).cache_path).name == name
    assert not dead.exists() and live.exists() and mine.exists() and other.exists()


def test_a_leftover_of_another_host_is_removed_by_age_only(tmp_path):
    fresh = _leftover_folder(tmp_path, ".extract-k1.1@another-host")
    old = _leftover_folder(tmp_path, ".extract-k2.2@another-host")
    long_ago = time.time() - 2 * atomic_module.STALE_SECONDS
    os.utime(old, (long_ago, long_ago))
    assert remove_dead_leftovers(tmp_path, ".extract-") == [old]
    assert fresh.exists()


def test_a_reused_pid_does_not_keep_a_dead_writers_leftover(live_pid):
    started = psutil.Process(live_pid).create_time()
    assert atomic_module._writer_gone(live_pid, changed=started - 60)  # written before the pid was born
    assert not atomic_module._writer_gone(live_pid, changed=time.time())
    assert not atomic_module._writer_gone(os.getpid(), changed=time.time())
