"""The course's own SVM training, written out from assignment 1 (linear_svm.svm_loss_vectorized and
LinearClassifier.train) in plain numpy float64, independent of this project's code, on the same split:
what the course's grid gives when nothing of this project is involved.

    .venv/bin/python experiments/cs231n_svm/course_reference.py data/cifar10 [seeds...]

The course's reg multiplies sum(W*W) (its gradient 2 * reg * W), so its 2.5e4 and 5e4 are this project's
5e4 and 1e5. Prints one line per (lr, reg, seed) and, per (lr, reg), the mean val_acc over the seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from softmax_exp.data.cifar10 import load_batch  # the official batches, unpickled safely; nothing else


def load_cifar10(root: Path):
    """The course's data_utils.load_CIFAR10 (the five training batches, images as float64 HWC), then its
    split (train 0:49000, val 49000:50000), mean image subtracted, bias column appended."""
    batches = [load_batch(root / "cifar-10-batches-py" / f"data_batch_{b}", 10) for b in range(1, 6)]
    X = np.concatenate([x for x, _ in batches]).astype(np.float64)
    y = np.concatenate([labels for _, labels in batches]).astype(np.int64)
    X_train, y_train = X[:49000].reshape(49000, -1), y[:49000]
    X_val, y_val = X[49000:50000].reshape(1000, -1), y[49000:50000]
    mean_image = X_train.mean(axis=0)
    X_train = np.hstack([X_train - mean_image, np.ones((49000, 1))])
    X_val = np.hstack([X_val - mean_image, np.ones((1000, 1))])
    return X_train, y_train, X_val, y_val


def svm_loss_vectorized(W, X, y, reg):
    """The course's loss: mean hinge (delta 1) + reg * sum(W*W); gradient with 2 * reg * W."""
    num_train = X.shape[0]
    scores = X.dot(W)
    correct = scores[np.arange(num_train), y][:, None]
    margins = np.maximum(0, scores - correct + 1)
    margins[np.arange(num_train), y] = 0
    loss = margins.sum() / num_train + reg * np.sum(W * W)
    binary = (margins > 0).astype(float)
    binary[np.arange(num_train), y] = -binary.sum(axis=1)
    dW = X.T.dot(binary) / num_train + 2 * reg * W
    return loss, dW


def train(X, y, lr, reg, num_iters=1500, batch_size=200):
    """The course's LinearClassifier.train: W = 0.001 * randn, minibatches drawn with replacement."""
    W = 0.001 * np.random.randn(X.shape[1], np.max(y) + 1)  # noqa: NPY002 (the course's calls, as written)
    for _ in range(num_iters):
        idx = np.random.choice(X.shape[0], batch_size, replace=True)  # noqa: NPY002
        _, grad = svm_loss_vectorized(W, X[idx], y[idx], reg)
        W -= lr * grad
    return W


def main(argv: list[str]) -> None:
    root = Path(argv[0])
    seeds = [int(s) for s in argv[1:]] or [0, 1, 2, 3, 4]
    X_train, y_train, X_val, y_val = load_cifar10(root)
    for lr, reg in [(1e-7, 2.5e4), (1e-7, 5e4)]:  # the grid's other rate, 5e-5, diverges (inf, then nan)
        vals = []
        for seed in seeds:
            np.random.seed(seed)  # noqa: NPY002
            W = train(X_train, y_train, lr, reg)
            train_acc = np.mean(np.argmax(X_train.dot(W), axis=1) == y_train)
            val_acc = np.mean(np.argmax(X_val.dot(W), axis=1) == y_val)
            vals.append(val_acc)
            print(f"lr {lr:e} reg {reg:e} seed {seed} train accuracy: {train_acc:f} "
                  f"val accuracy: {val_acc:f}", flush=True)
        print(f"lr {lr:e} reg {reg:e}: val accuracy over {len(seeds)} seeds: mean {np.mean(vals):.4f}, "
              f"min {np.min(vals):.3f}, max {np.max(vals):.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
