"""Download: file:// URLs, MD5 verified before the rename, nothing left behind on failure."""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import time
import urllib.request

import numpy as np
import pytest
from data_fixtures import cifar_cfg, dead_pid, make_cifar_tar, names_but_locks

import softmax_exp.data.download as download_module
from softmax_exp.data import DataError, load_dataset
from softmax_exp.data.__main__ import main
from softmax_exp.data.download import download_file, file_md5
from softmax_exp.util.atomic import exclusive_lock, owner_tag


@pytest.fixture
def served(tmp_path):
    """(file:// URL, md5) of a CIFAR-format archive outside the download folder."""
    (tmp_path / "server").mkdir()
    archive, _ = make_cifar_tar(tmp_path / "server")
    return archive.as_uri(), file_md5(archive)


def test_download_then_load(tmp_path, served):
    url, md5 = served
    dest = tmp_path / "dl" / "cifar-10-python.tar.gz"
    assert download_file(url, dest, md5, progress=False) == dest
    assert file_md5(dest) == md5
    assert names_but_locks(dest.parent) == ["cifar-10-python.tar.gz"]
    data = load_dataset(cifar_cfg(dest.parent, tmp_path / "cache", md5=md5))
    assert data.X_train.shape == (150, 3073)


def test_md5_mismatch_keeps_nothing(tmp_path, served):
    url, md5 = served
    dest = tmp_path / "dl" / "cifar-10-python.tar.gz"
    bad = "f" * 32
    with pytest.raises(DataError, match=f"MD5 mismatch for {url}: expected {bad}, got {md5}"):
        download_file(url, dest, bad, progress=False)
    assert names_but_locks(dest.parent) == []


def test_missing_url_is_a_data_error(tmp_path):
    url = (tmp_path / "nothing.tar.gz").as_uri()
    with pytest.raises(DataError, match="cannot download .*nothing.tar.gz"):
        download_file(url, tmp_path / "dl" / "x.tar.gz", None, progress=False)
    assert names_but_locks(tmp_path / "dl") == []


class _Interrupted(io.BytesIO):
    headers = {"Content-Length": str(3 * download_module.CHUNK_BYTES)}

    def read(self, n=-1):
        if self.tell() >= download_module.CHUNK_BYTES:
            raise KeyboardInterrupt
        return super().read(n)


def test_interrupted_download_keeps_nothing(tmp_path, monkeypatch):
    payload = np.zeros(3 * download_module.CHUNK_BYTES, dtype=np.uint8).tobytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Interrupted(payload))
    with pytest.raises(KeyboardInterrupt):
        download_file(
            "https://example.invalid/x.tar.gz", tmp_path / "x.tar.gz", None, progress=False
        )
    assert names_but_locks(tmp_path) == []


def test_short_download_is_refused(tmp_path, monkeypatch):
    class Short(io.BytesIO):
        headers = {"Content-Length": "100"}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Short(b"x" * 60))
    with pytest.raises(DataError, match="stopped at 60 of 100 bytes"):
        download_file(
            "https://example.invalid/x.tar.gz", tmp_path / "x.tar.gz", None, progress=False
        )
    assert names_but_locks(tmp_path) == []


def test_cli_download(tmp_path, served, capsys):
    url, md5 = served
    root = tmp_path / "root"
    assert main(["download", "cifar10", "--root", str(root), "--url", url, "--md5", md5]) == 0
    assert file_md5(root / "cifar-10-python.tar.gz") == md5
    assert "dataset.root=" in capsys.readouterr().out
    # already there and verified: no second download even from a dead URL
    dead = (tmp_path / "gone").as_uri()
    assert main(["download", "cifar10", "--root", str(root), "--url", dead, "--md5", md5]) == 0

    other = tmp_path / "other"
    code = main(["download", "cifar10", "--root", str(other), "--url", url, "--md5", "0" * 32])
    err = capsys.readouterr().err  # the progress bar, then one line
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("python -m softmax_exp.data: error: MD5 mismatch for ")
    assert names_but_locks(other) == []



def test_download_removes_what_dead_downloaders_left_and_keeps_a_live_ones(tmp_path, served, live_pid):
    url, md5 = served
    dest = tmp_path / "dl" / "cifar-10-python.tar.gz"
    dest.parent.mkdir()
    dead = dest.with_name(f".{dest.name}.{owner_tag(dead_pid())}.part")
    live = dest.with_name(f".{dest.name}.{owner_tag(live_pid)}.part")
    for part in (dead, live):
        part.write_bytes(b"\0" * 100_000)  # what the writer got through
    assert download_file(url, dest, md5, progress=False) == dest
    assert not dead.exists() and live.exists() and file_md5(dest) == md5
    assert names_but_locks(dest.parent) == sorted([live.name, dest.name])


def test_a_waiting_downloader_keeps_the_file_it_waited_for(tmp_path, served):
    url, md5 = served
    dest = tmp_path / "dl" / "cifar-10-python.tar.gz"
    assert download_file(url, dest, md5, progress=False) == dest
    before = dest.stat().st_mtime_ns
    dead_url = (tmp_path / "gone").as_uri()  # the file is there and verified: the URL is never opened
    assert download_file(dead_url, dest, md5, progress=False) == dest and dest.stat().st_mtime_ns == before


def _hold_lock(path, ready, release) -> None:
    with exclusive_lock(path):
        ready.set()
        release.wait(30)


def test_download_waits_for_the_lock(tmp_path, served):
    url, md5 = served
    dest = tmp_path / "dl" / "cifar-10-python.tar.gz"
    dest.parent.mkdir()
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(dest.with_name(f".{dest.name}.lock"), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(download_file, url, dest, md5, progress=False)
            time.sleep(0.5)
            assert not waiting.done() and not dest.exists()  # blocked on the other process's lock
            release.set()
            assert waiting.result(30) == dest
    finally:
        release.set()
        holder.join(30)
    assert file_md5(dest) == md5
