"""``python -m softmax_exp.data``: info for every dataset, one-line errors with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import make_cifar_dir

from softmax_exp.data.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def _run(*args, cache: Path):
    env = {**os.environ, "SOFTMAX_EXP_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "softmax_exp.data", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.mark.subprocess
def test_info_digits_subprocess(tmp_path):
    result = _run("info", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "X_train      (1297, 65) float32   y_train (1297,) int64" in lines
    assert "X_dev        (100, 65) float32   y_dev (100,) int64" in lines
    assert "image_shape  (8, 8, 1)" in lines and "cache_path   None" in lines


@pytest.mark.subprocess
def test_bad_input_subprocess_exits_2_with_one_line(tmp_path):
    result = _run("info", "dataset=cifar10", f"dataset.root={tmp_path / 'missing'}", cache=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"download cifar10 --root {tmp_path / 'missing'}" in result.stderr


def test_info_cifar10_with_overrides(tmp_path, capsys):
    make_cifar_dir(tmp_path / "root")
    overrides = [
        "dataset=cifar10",
        f"dataset.root={tmp_path / 'root'}",
        "dataset.md5=null",
        "dataset.num_training=100",
        "dataset.num_validation=20",
        "dataset.num_test=10",
        "dataset.num_dev=5",
        "dataset.dtype=float64",
        f"dataset.cache_dir={tmp_path / 'c'}",
    ]
    assert main(["info", *overrides]) == 0
    out = capsys.readouterr().out
    assert "X_train      (100, 3073) float64" in out and "X_dev        (5, 3073) float64" in out
    assert "classes      10: airplane, automobile," in out
    assert f"cache_path   {tmp_path / 'c'}/cifar10-" in out


def test_bad_overrides_exit_2_with_one_line(tmp_path, capsys):
    for args in (
        ["info", "dataset=mnist"],
        ["info", "dataset.num_dev=-3"],
        ["info", "dataset.nope=1"],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("python -m softmax_exp.data: error: ")
