"""The gradcheck and bench command lines, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_gradcheck_cli_passes_and_prints_one_row_per_kernel():
    out = run("-m", "softmax_exp.gradcheck")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name in ("naive", "vectorized", "numba_naive", "numba_fused"):
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.rstrip().endswith("ok")
        assert float(row.split()[1]) > 2.29  # sanity loss close to log(10) = 2.3026
    assert "all 4 kernels pass" in out.stdout


def test_gradcheck_cli_fails_on_an_impossible_tolerance():
    out = run("-m", "softmax_exp.gradcheck", "--kernels", "vectorized", "--tolerance", "1e-30")
    assert out.returncode == 1
    assert "gradient check failed for vectorized" in out.stderr


def test_bench_cli_prints_ratios_on_a_small_problem():
    out = run(
        "-m", "softmax_exp.bench", "--shape", "600", "65", "10", "--repeats", "1",
        "--dtypes", "float32", "--batch-size", "50", "--naive-rows", "100",
        "--sections", "kernels", "minibatch", "step", "predict", "tracking",
        "--tracking-digits-only", "--tracking-runs", "1", "--tracking-iters", "20",
    )
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if "600x65x10" in line]
    names = [r.split("  ")[0].strip() for r in rows]
    for name in ("read floor X.sum(axis=0)", "naive", "vectorized", "numba_naive", "numba_fused",
                 "numpy argmax(X @ W)", "predict_labels", "count_correct"):
        assert name in names
    for r in rows:
        ratio = next(tok for tok in r.split() if tok.endswith("x") and tok[:-1].replace(".", "").isdigit())
        assert float(ratio[:-1]) > 0
    assert "fused step (idx)" in out.stdout
    tracked = next(line for line in out.stdout.splitlines() if line.startswith("MLflow tracked (digits)"))
    ms = float(tracked.split("float32")[1].split()[0])
    assert ms > 0


def test_bench_cli_rejects_bad_options():
    out = run("-m", "softmax_exp.bench", "--repeats", "0")
    assert out.returncode == 2
    assert "--repeats" in out.stderr
