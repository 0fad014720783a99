"""``python -m softmax_exp.bench``: the sections chosen, their rows printed as they are measured."""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numba
import numpy as np

from softmax_exp.bench.features import bench_features, bench_kmeans
from softmax_exp.bench.kernels import bench_kernels, bench_minibatch, bench_predict, bench_step
from softmax_exp.bench.measure import HEADER
from softmax_exp.bench.pipeline import bench_sweep, bench_tracking, bench_train_cli
from softmax_exp.kernels import KERNELS, LOSSES, set_num_threads

SECTIONS = ("kernels", "minibatch", "step", "predict", "features", "kmeans", "tracking", "train", "sweep")


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, "
        f"numpy {np.__version__}, "
        f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m softmax_exp.bench",
        description="Time the loss kernels (softmax, SVM); print ratios to references timed in the same run.",
    )
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES),
                        help="the kernels section times these losses' kernels (softmax rows unprefixed)")
    parser.add_argument(
        "--shape", nargs=3, type=int, default=[49000, 3073, 10], metavar=("N", "D", "C"),
        help="rows, features (with the bias column), classes (default: CIFAR-10 as in the course)",
    )
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per case (median taken)")
    parser.add_argument(
        "--threads", type=int, default=None, help="numba threads (default: NUMBA_NUM_THREADS)"
    )
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--naive-rows", type=int, default=1000, help="rows the naive loop kernel is timed on")
    parser.add_argument("--tracking-runs", type=int, default=9, help="trainings per tracking case")
    parser.add_argument("--tracking-iters", type=int, default=1500, help="iterations per training")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="the sweep and features sections on this CIFAR-10 copy (cifar-10-batches-py/ or "
                             "the archive) instead of random images of its shape")
    parser.add_argument("--feature-images", type=int, default=60000,
                        help="images the features section extracts (default: all of CIFAR-10's)")
    parser.add_argument("--kmeans-images", type=int, default=2000,
                        help="images the kmeans section extracts against its same-FLOP sgemm")
    parser.add_argument("--tracking-digits-only", action="store_true",
                        help="skip the CIFAR-10-shaped tracking case (it writes ~1 GB to a temp folder)")
    parser.add_argument("--no-sklearn", dest="sklearn", action="store_false", help="skip scikit-learn's row")
    parser.add_argument(
        "--no-torch", dest="torch", action="store_false",
        help="skip PyTorch's row (shown only when torch is installed: pip install -e '.[torch]')",
    )
    args = parser.parse_args(argv)
    if min(args.repeats, args.batch_size, args.tracking_runs, args.tracking_iters, args.feature_images,
           args.kmeans_images, *args.shape) < 1:
        parser.error("--repeats, --batch-size, --tracking-runs, --tracking-iters, --feature-images and every "
                     "--shape value must be >= 1")
    try:
        set_num_threads(args.threads)
    except ValueError as e:
        parser.error(str(e))

    print(machine_line())
    print(HEADER)
    print("-" * len(HEADER))
    runners = {"kernels": bench_kernels, "minibatch": bench_minibatch, "step": bench_step,
               "sweep": bench_sweep, "features": bench_features, "kmeans": bench_kmeans,
               "predict": bench_predict, "tracking": bench_tracking, "train": bench_train_cli}
    for section in args.sections:
        for row in runners[section](args):
            print(row.format(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
