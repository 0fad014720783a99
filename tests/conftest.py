"""Fixtures every test file may use, and the markers of the suite.

- ``store``: a fresh, initialised MLflow SQLite store in the test's tmp_path;
- ``make_cfg(store_or_None, *overrides)``: the project's checked config (short digits training), every
  output in tmp_path: the dataset cache, and tracking into the given store (None: off);
- ``run_cli(*args, module=..., timeout=...)``: ``python -m softmax_exp.train args`` (or another module)
  in tmp_path, as CI runs it;
- ``live_pid``: the pid of a process alive for the test's length (another writer, still writing).

Markers: ``subprocess`` (the test starts processes; given automatically to tests that use ``run_cli``) and
``slow`` (sweeps, servers, long trainings). ``make test-fast`` deselects both.
"""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
from helpers import compose_cfg, fresh_store
from helpers import run_cli as _run_cli


@pytest.fixture
def store(tmp_path, tmp_path_factory):
    return fresh_store(tmp_path, tmp_path_factory)


@pytest.fixture
def make_cfg(tmp_path):
    return functools.partial(compose_cfg, tmp_path)


@pytest.fixture
def run_cli(tmp_path):
    return functools.partial(_run_cli, tmp_path)


@pytest.fixture
def live_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


def pytest_collection_modifyitems(items):
    for item in items:
        if "run_cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.subprocess)
