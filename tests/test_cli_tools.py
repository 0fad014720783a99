"""The gradcheck and bench command lines, run as a user runs them."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_gradcheck_cli_passes_and_prints_one_row_per_loss_and_kernel():
    out = run("-m", "softmax_exp.learn.gradcheck")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for loss, sanity in (("softmax", math.log(10)), ("svm", 9.0)):  # C - 1 = 9
        for name in ("naive", "vectorized", "numba_naive", "numba_fused"):
            row = next(line for line in lines if re.match(rf"{loss} +{name} ", line)).split()
            assert row[-1] == "ok"
            assert float(row[2]) == pytest.approx(sanity, abs=0.01) and float(row[3]) == pytest.approx(sanity)
            kinks, skipped = int(row[6]), int(row[7])
            assert (kinks > 0 and skipped > 0) if loss == "svm" else kinks == skipped == 0
    assert "all 8 kernels pass" in out.stdout


def test_gradcheck_cli_fails_on_an_impossible_tolerance():
    out = run("-m", "softmax_exp.learn.gradcheck", "--kernels", "vectorized", "--losses", "svm",
              "--tolerance", "1e-30")
    assert out.returncode == 1
    assert "gradient check failed for svm vectorized" in out.stderr


def test_bench_cli_prints_ratios_on_a_small_problem():
    out = run(
        "-m", "softmax_exp.bench", "--shape", "600", "65", "10", "--repeats", "1",
        "--dtypes", "float32", "--batch-size", "50", "--naive-rows", "100",
        "--sections", "kernels", "minibatch", "step", "predict", "tracking",
        "--tracking-digits-only", "--tracking-runs", "1", "--tracking-iters", "20",
    )
    assert out.returncode == 0, out.stderr
    rows = [parse_row(line) for line in out.stdout.splitlines() if ROW.match(line)]
    names = [r["label"] for r in rows if r["shape"] == "600x65x10"]
    for name in ("read floor X.sum(axis=0)", "naive", "vectorized", "numba_naive", "numba_fused",
                 "numpy argmax(X @ W)", "predict_labels", "count_correct"):
        assert name in names
    assert any(r["label"] == "fused step (idx)" for r in rows)
    # every row's ratio is its time over the time of the reference row it names, printed just above it
    seen = {}  # the latest row of each label: a reference is the one printed above the rows that use it
    for r in rows:
        seen[r["label"]] = r
        ref = seen[REFERENCE_LABELS[r["to"]]]
        if ref is r:
            assert r["ratio"] == 1.0, r
        if r["ms"] >= 0.5 and ref["ms"] >= 0.5:  # two printed decimals leave the smaller times too coarse
            expected = r["ms"] / ref["ms"]
            slack = expected * (0.005 / r["ms"] + 0.005 / ref["ms"]) + 0.006
            assert abs(r["ratio"] - expected) <= slack, (r, ref)
    tracked = next(r for r in rows if r["label"] == "MLflow tracked (digits)")
    assert tracked["ms"] > seen["untracked (digits)"]["ms"] > 0
    assert tracked["ratio"] > 1


ROW = re.compile(r"^(?P<label>.+?)\s{2,}(?P<shape>\S.*?)\s+(?P<dtype>float32|float64)?\s*(?P<ms>\d+\.\d\d)\s+"
                 r"(?P<gbs>[\d.]+|-)\s+(?P<ratio>\d+\.\d\d)x (?P<to>.+?)(?:\s{2,}(?P<note>.*))?$")
REFERENCE_LABELS = {"read floor": "read floor X.sum(axis=0)", "numpy ref": "X[idx] + vectorized",
                    "numpy step": "numpy step (copy+vec)", "untracked": "untracked (digits)",
                    "a tracked run": "MLflow tracked (digits)", "pixel read": "read floor images.max()"}


def parse_row(line: str) -> dict:
    m = ROW.match(line)
    return {"label": m["label"].strip(), "shape": m["shape"].strip(), "ms": float(m["ms"]),
            "ratio": float(m["ratio"]), "to": m["to"].strip()}


def test_bench_features_section_times_the_extraction_against_one_read_of_the_pixels():
    out = run("-m", "softmax_exp.bench", "--sections", "features", "--feature-images", "600",
              "--repeats", "1")
    assert out.returncode == 0, out.stderr
    rows = {r["label"]: r for r in map(parse_row, filter(ROW.match, out.stdout.splitlines()))}
    assert set(rows) == {"read floor images.max()", "hog_features (8x8, 9 bins)", "hue_histogram (10 bins)",
                         "hog_color stage, as a training"}
    assert all(r["to"] == "pixel read" and r["shape"].startswith("600x32x32x3 random") for r in rows.values())
    notes = [line.rsplit("  ", 1)[-1] for line in out.stdout.splitlines() if "images/s" in line]
    assert len(notes) == 3 and all(re.fullmatch(r"[\d,]+ images/s, \d+\.\d\d s", n) for n in notes), notes


@pytest.mark.subprocess
def test_bench_kmeans_section_times_the_extraction_against_its_sgemm_and_the_served_prediction():
    out = run("-m", "softmax_exp.bench", "--sections", "kmeans", "--kmeans-images", "16", "--repeats", "3")
    assert out.returncode == 0, out.stderr
    rows = {r["label"]: r for r in map(parse_row, filter(ROW.match, out.stdout.splitlines()))}
    assert set(rows) == {"sgemm of the same FLOPs", "kmeans extraction (K=1600)",
                         "kmeans fit (400000 patches)", "predict 1 raw image", "predict 100 raw images"}
    extraction = rows["kmeans extraction (K=1600)"]
    assert extraction["to"] == "its sgemm" and extraction["shape"] == "16x32x32x3 random"
    sgemm = rows["sgemm of the same FLOPs"]
    assert extraction["ratio"] == pytest.approx(extraction["ms"] / sgemm["ms"], rel=0.01)
    assert all(r["ms"] > 0 for r in rows.values())


def test_bench_cli_rejects_bad_options():
    out = run("-m", "softmax_exp.bench", "--repeats", "0")
    assert out.returncode == 2
    assert "--repeats" in out.stderr
