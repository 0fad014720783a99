r"""How far can the L2-regularized softmax go on these pixels? Minimizes the project's own objective
(loss = mean(-log p_y) + 0.5 * reg * sum(W * W), the numba_fused kernel, float32) over the whole training
split with full-batch L-BFGS (scipy) to its optimum, for each reg, and prints train / val / test accuracy
there: what any SGD run of the same reg can at best approach. Uses the tuned study's split
(conf/experiment/cifar10_tuned.yaml); ``--no-hflip`` takes the training images without their mirrors.

    .venv/bin/python experiments/cifar10_tuned/optimum.py [--root data/cifar10] [--no-hflip] \
        [--reg 30 100 300 1000]

Not part of the package: a study's script (scipy comes with scikit-learn).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/cifar10", help="cifar-10-batches-py/ or the archive is here")
    parser.add_argument("--no-hflip", action="store_true", help="train on the images without their mirrors")
    parser.add_argument("--reg", nargs="+", type=float, default=[30.0, 100.0, 300.0, 1000.0])
    args = parser.parse_args()

    from scipy.optimize import minimize

    from softmax_exp.config import compose
    from softmax_exp.data import load_dataset
    from softmax_exp.kernels import softmax_loss_numba_fused
    from softmax_exp.kernels.predict import count_correct

    overrides = ["+experiment=cifar10_tuned", f"dataset.root={args.root}"]
    data = load_dataset(compose([*overrides, f"dataset.hflip={not args.no_hflip}"]).dataset)
    X, y = np.asarray(data.X_train), data.y_train
    D, C = X.shape[1], data.num_classes
    print(f"train {X.shape} ({'images and mirrors' if not args.no_hflip else 'images'}), "
          f"val {data.X_val.shape}, test {data.X_test.shape}", flush=True)
    print(f"{'reg':>6} {'loss':>8} {'iters':>5} {'s':>4} {'train':>7} {'val':>7} {'test':>7}", flush=True)
    for reg in args.reg:
        def objective(w, reg=reg):
            loss, dW = softmax_loss_numba_fused(w.reshape(D, C).astype(np.float32), X, y, reg)
            return float(loss), dW.astype(np.float64).ravel()

        t0 = time.perf_counter()
        result = minimize(objective, np.zeros(D * C), jac=True, method="L-BFGS-B",
                          options={"maxiter": 3000})
        W = result.x.reshape(D, C).astype(np.float32)

        def acc(X_, y_, W=W):
            return count_correct(W, np.asarray(X_), y_) / len(y_)

        print(f"{reg:6g} {result.fun:8.5f} {result.nit:5d} {time.perf_counter() - t0:4.0f} "
              f"{acc(X, y):7.4f} {acc(data.X_val, data.y_val):7.4f} {acc(data.X_test, data.y_test):7.4f}"
              + ("" if result.success else f"  ({result.message})"), flush=True)


if __name__ == "__main__":
    main()
