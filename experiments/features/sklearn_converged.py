"""How far a softmax can go on these features: scikit-learn's LogisticRegression (multinomial, lbfgs, trained
to convergence) on the very rows a training reads from the data cache, for several strengths C.

    .venv/bin/python experiments/features/sklearn_converged.py data/cifar10 [feature overrides ...]
    .venv/bin/python experiments/features/sklearn_converged.py data/cifar10 features.cell_size=4

Prints train, val and test accuracy (all 10000 test images) and the fit's seconds for each C.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from softmax_exp.config import compose, to_config
from softmax_exp.data import load_dataset


def main(argv: list[str]) -> None:
    root, overrides = argv[0], argv[1:]
    cfg = to_config(compose(["dataset=cifar10", f"dataset.root={root}", "dataset.num_test=10000",
                             "features=hog_color", *overrides]))
    data = load_dataset(cfg.dataset, cfg.features, progress=False)
    X, X_val, X_test = (np.asarray(a, np.float64)[:, :-1] for a in (data.X_train, data.X_val, data.X_test))
    print(f"features {data.features.settings()}: {X.shape[1]} columns")
    for C in (1e-2, 1e-1, 1.0, 10.0):
        t0 = time.perf_counter()
        model = LogisticRegression(C=C, max_iter=2000).fit(X, data.y_train)
        print(f"C={C:g} train {model.score(X, data.y_train):.4f} val {model.score(X_val, data.y_val):.4f} "
              f"test {model.score(X_test, data.y_test):.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
