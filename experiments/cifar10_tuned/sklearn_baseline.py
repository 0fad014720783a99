r"""The usual tool on exactly the same data: scikit-learn's LogisticRegression (lbfgs, multinomial) on the
tuned study's preprocessed CIFAR-10 split (conf/experiment/cifar10_tuned.yaml: 45000 training images and
their mirrors, 5000 validation images, all 10000 test images, mean image subtracted; float32), its L2
strength chosen by validation accuracy, the test accuracy of the chosen one reported with its fit time.

    .venv/bin/python experiments/cifar10_tuned/sklearn_baseline.py [--root data/cifar10] \
        [--reg 30 100 300 1000]

The strengths are given in the project's units (loss = mean(-log p_y) + 0.5 * reg * sum(W * W)) and
passed to sklearn as C = 1 / (reg * N), which is the same objective but for the intercept (sklearn does
not penalize it; the project's bias row is penalized). Not part of the package: a study's script. The
fit uses all cores (its BLAS).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/cifar10", help="cifar-10-batches-py/ or the archive is here")
    parser.add_argument("--reg", nargs="+", type=float, default=[30.0, 100.0, 300.0, 1000.0],
                        help="L2 strengths to try, in the project's units; chosen by validation accuracy")
    parser.add_argument("--max-iter", type=int, default=1000, help="lbfgs's iteration cap")
    args = parser.parse_args()

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from softmax_exp.config import compose
    from softmax_exp.data import load_dataset

    cfg = compose(["+experiment=cifar10_tuned", f"dataset.root={args.root}"])
    data = load_dataset(cfg.dataset)
    # the bias column is the intercept sklearn fits itself
    X_train, X_val, X_test = (np.asarray(x[:, :-1]) for x in (data.X_train, data.X_val, data.X_test))
    n = len(X_train)
    print(f"train {X_train.shape}, val {X_val.shape}, test {X_test.shape}, {X_train.dtype}")
    print(f"{'reg':>8} {'C':>9} {'fit s':>7} {'iters':>6} {'conv.':>5} {'train':>7} {'val':>7}", flush=True)
    fits = []
    for reg in args.reg:
        model = LogisticRegression(C=1 / (reg * n), max_iter=args.max_iter)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            t0 = time.perf_counter()
            model.fit(X_train, data.y_train)
            seconds = time.perf_counter() - t0
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        train, val = model.score(X_train, data.y_train), model.score(X_val, data.y_val)
        print(f"{reg:8g} {1 / (reg * n):9.3g} {seconds:7.1f} {int(model.n_iter_[0]):6d} "
              f"{'yes' if converged else 'no':>5} {train:7.4f} {val:7.4f}", flush=True)
        fits.append((val, reg, model, seconds))
    val, reg, model, seconds = max(fits, key=lambda f: f[0])  # the first of equals
    print(f"chosen by validation accuracy: reg={reg:g} (val {val:.4f}); test accuracy on all "
          f"{len(X_test)} test images: {model.score(X_test, data.y_test):.4f} (its fit {seconds:.1f} s; "
          f"all {len(fits)} fits {sum(f[3] for f in fits):.0f} s)")


if __name__ == "__main__":
    main()
