"""The cache: write once, memory-map afterwards, one entry under concurrency, nothing after a failure."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from data_fixtures import cache_entries, cifar_cfg, dead_pid, leftovers, make_cifar_dir

import softmax_exp.atomic as atomic_module
import softmax_exp.data.load as load_module
import softmax_exp.data.preprocess as preprocess_module
from softmax_exp.atomic import owner_tag, remove_dead_leftovers
from softmax_exp.data import check_dataset, load_dataset
from softmax_exp.data.cache import _publish, entry_path

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


# --------------------------------------------------------------- what killed builders leave behind


@pytest.fixture
def live_pid():
    """The pid of a process that runs for the test's length (another writer, still writing)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


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
