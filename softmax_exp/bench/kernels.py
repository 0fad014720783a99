"""The kernel sections: loss + gradient over all of X, a minibatch, one SGD step, and prediction, each against
its reference (the read floor, or numpy's way)."""

from __future__ import annotations

from functools import partial

import numpy as np

from softmax_exp.bench.measure import Row, make_problem, median_ms, medians_in_rounds
from softmax_exp.kernels import check_inputs, count_correct, get_kernel, predict_labels
from softmax_exp.learn.hyperparameters import IDX_BLOCK
from softmax_exp.learn.optim import SGD


def _sklearn_loss_gradient(c: int):
    """scikit-learn's multinomial loss + gradient (what LogisticRegression's lbfgs calls), or None."""
    try:
        from sklearn._loss.loss import HalfMultinomialLoss
        from sklearn.linear_model._linear_loss import LinearModelLoss
    except ImportError:  # private API: absent or moved in this scikit-learn
        return None
    lml = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=c), fit_intercept=False)

    def loss_grad(W, X, y, reg):
        return lml.loss_gradient(np.ascontiguousarray(W.T), X, y, l2_reg_strength=reg)

    return loss_grad


def _torch_loss_gradient():
    """PyTorch CPU autograd of the same loss (cross_entropy + 0.5 * reg * sum(W^2)), or None if absent."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None

    def loss_grad(W, X, y, reg):
        Xt = torch.from_numpy(X)  # shares memory: no copy of X
        Wt = torch.from_numpy(W).clone().requires_grad_(True)
        loss = F.cross_entropy(Xt @ Wt, torch.from_numpy(y)) + 0.5 * reg * (Wt * Wt).sum()
        loss.backward()
        return float(loss.detach()), Wt.grad.numpy()

    return loss_grad


def _torch_svm_loss_gradient():
    """PyTorch CPU autograd of the SVM's loss: ``multi_margin_loss`` (margin 1) averages over the classes
    too, so it is scaled by C to be the course's sum over classes, + 0.5 * reg * sum(W^2); or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None

    def loss_grad(W, X, y, reg):
        Xt = torch.from_numpy(X)
        Wt = torch.from_numpy(W).clone().requires_grad_(True)
        hinge = F.multi_margin_loss(Xt @ Wt, torch.from_numpy(y), margin=1.0) * W.shape[1]
        loss = hinge + 0.5 * reg * (Wt * Wt).sum()
        loss.backward()
        return float(loss.detach()), Wt.grad.numpy()

    return loss_grad


def bench_kernels(args) -> list[Row]:
    """Loss + gradient over all of X, each kernel of each loss (``args.losses``; the SVM's rows prefixed
    ``svm``) against the read floor, with the fused kernel's ratio to the vectorized one; scikit-learn's
    multinomial loss and PyTorch's autograd of each loss as outside references. The read floor and every
    kernel but the two slow ones are timed in interleaved rounds (:func:`medians_in_rounds`), so a burst
    of load from elsewhere moves the floor and the kernels together, not one ratio."""
    rows = []
    n, d, c = args.shape
    for dtype in args.dtypes:
        dt = np.dtype(dtype).type
        W, X, y = make_problem(n, d, c, dt)
        shape = f"{n}x{d}x{c}"
        cases: dict[str, object] = {"read floor X.sum(axis=0)": partial(X.sum, axis=0)}
        notes: dict[str, str] = {}
        slow: dict[str, float] = {}
        order: list[str] = []  # the rows: each loss's kernels as asked, then its outside references
        for loss in args.losses:
            prefix = "" if loss == "softmax" else f"{loss} "
            for name in args.kernels:
                kernel = get_kernel(name, loss=loss)
                order.append(prefix + name)
                if name == "naive":  # Python loops: time a slice of the rows, scale to all of them
                    m = min(n, args.naive_rows)
                    slow[prefix + name] = median_ms(partial(kernel, W, X[:m], y[:m], 0.1),
                                                    max(1, args.repeats // 3)) * n / m
                    notes[prefix + name] = f"timed on {m} rows, scaled x{n / m:.1f}"
                elif name == "numba_naive":  # seconds a call: a few calls, not in the rounds
                    slow[prefix + name] = median_ms(partial(kernel, W, X, y, 0.1), max(1, args.repeats // 3))
                else:
                    cases[prefix + name] = partial(kernel, W, X, y, 0.1)
            if loss == "softmax" and args.sklearn and (sk := _sklearn_loss_gradient(c)) is not None:
                cases["sklearn loss_gradient"] = partial(sk, W, X, y.astype(dt), 0.1)
                order.append("sklearn loss_gradient")
            torch_of = {"softmax": _torch_loss_gradient, "svm": _torch_svm_loss_gradient}[loss]
            if args.torch and (tl := torch_of()) is not None:
                cases[f"{prefix}torch autograd (CPU)"] = partial(tl, W, X, y, 0.1)
                order.append(f"{prefix}torch autograd (CPU)")
        times = dict(zip(cases, medians_in_rounds(list(cases.values()), args.repeats), strict=True))
        times.update(slow)
        floor = times.pop("read floor X.sum(axis=0)")
        rows.append(Row("read floor X.sum(axis=0)", shape, dtype, floor, X.nbytes, floor, "read floor"))
        for loss in args.losses:
            prefix = "" if loss == "softmax" else f"{loss} "
            fused, vec = times.get(prefix + "numba_fused"), times.get(prefix + "vectorized")
            if fused and vec:
                notes[prefix + "numba_fused"] = f"{vec / fused:.2f}x faster than vectorized"
        for label in order:
            rows.append(Row(label, shape, dtype, times[label], X.nbytes, floor, "read floor",
                            notes.get(label, "")))
        del W, X, y
    return rows


def bench_minibatch(args) -> list[Row]:
    rows = []
    n, d, c = args.shape
    b = args.batch_size
    dtype = args.dtypes[0]
    W, X, y = make_problem(n, d, c, np.dtype(dtype).type)
    idx = np.random.default_rng(1).integers(0, n, b)
    shape = f"{b} of {n}x{d}x{c}"
    vectorized, fused = get_kernel("vectorized"), get_kernel("numba_fused")
    ref = median_ms(lambda: vectorized(W, X[idx], y[idx], 0.1), args.repeats * 20)
    nbytes = b * d * X.itemsize
    rows.append(Row("X[idx] + vectorized", shape, dtype, ref, nbytes, ref, "numpy ref"))
    ms = median_ms(lambda: vectorized(W, X, y, 0.1, idx), args.repeats * 20)
    rows.append(Row("vectorized(idx=)", shape, dtype, ms, nbytes, ref, "numpy ref", "copies X[idx] inside"))
    ms = median_ms(lambda: fused(W, X, y, 0.1, idx), args.repeats * 20)
    rows.append(Row("numba_fused(idx=)", shape, dtype, ms, nbytes, ref, "numpy ref", "no copy"))
    return rows


def bench_step(args) -> list[Row]:
    """One SGD step: sample a minibatch with replacement, loss + gradient, update W.

    The numpy reference draws idx, copies ``X[idx]``, runs the vectorized kernel and does ``W -= lr * dW``.
    The fused row does what ``Softmax.train`` does per step: idx is a row of a block of ``IDX_BLOCK`` draws
    (intp), the unchecked fused kernel (the loop checked its inputs once), and the in-place SGD update of
    :mod:`softmax_exp.learn.optim` (``dW *= lr; W -= dW``).
    """
    n, d, c = args.shape
    b = args.batch_size
    dtype = args.dtypes[0]
    W, X, y = make_problem(n, d, c, np.dtype(dtype).type)
    vectorized = get_kernel("vectorized")
    lr = 1e-7
    rng = np.random.default_rng(2)
    W_ref = W.copy()

    def numpy_step():
        idx = rng.integers(0, n, b)
        _, dW = vectorized(W_ref, X[idx], y[idx], 0.1)
        W_ref[...] -= lr * dW

    W_fused, X, y_fused, reg, _ = check_inputs(W.copy(), X, y, 0.1)  # once, as train does
    fused = get_kernel("numba_fused", checked=False)
    sgd = SGD()
    loop = {"it": 0, "block": None}

    def fused_step():
        it = loop["it"]
        if it % IDX_BLOCK == 0:
            loop["block"] = rng.integers(0, n, size=(IDX_BLOCK, b), dtype=np.intp)
        loop["it"] = it + 1
        _, dW = fused(W_fused, X, y_fused, reg, loop["block"][it % IDX_BLOCK])
        sgd.step(W_fused, dW, lr)

    shape = f"{b} of {n}x{d}x{c}"
    ref = median_ms(numpy_step, args.repeats * 20)
    ms = median_ms(fused_step, args.repeats * 20)
    nbytes = b * d * X.itemsize
    return [
        Row("numpy step (copy+vec)", shape, dtype, ref, nbytes, ref, "numpy step"),
        Row("fused step (idx)", shape, dtype, ms, nbytes, ref, "numpy step",
            f"{ref / ms:.2f}x faster; unchecked kernel, idx block, in-place SGD (as train)"),
    ]


def _numpy_labels(W, X, threadpool_limits=None):
    if threadpool_limits is None:
        return np.argmax(X @ W, axis=1)
    with threadpool_limits(1, user_api="blas"):
        return np.argmax(X @ W, axis=1)


def bench_predict(args) -> list[Row]:
    """Evaluation over all of X: ``np.argmax(X @ W, axis=1)`` (with BLAS's threads, and on one BLAS thread as
    the training loop runs it next to Numba's threads) against the Numba labels and count kernels."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it the 1-BLAS-thread row is left out
        threadpool_limits = None
    rows = []
    n, d, c = args.shape
    for dtype in args.dtypes:
        W, X, y = make_problem(n, d, c, np.dtype(dtype).type)
        shape = f"{n}x{d}x{c}"
        cases = {
            "read floor X.sum(axis=0)": partial(X.sum, axis=0),
            "numpy argmax(X @ W)": partial(_numpy_labels, W, X),
        }
        if threadpool_limits is not None:
            cases["numpy argmax(X @ W), 1 BLAS"] = partial(_numpy_labels, W, X, threadpool_limits)
        cases["predict_labels"] = partial(predict_labels, W, X)
        cases["count_correct"] = partial(count_correct, W, X, y)
        times = dict(zip(cases, medians_in_rounds(list(cases.values()), args.repeats), strict=True))
        floor = times["read floor X.sum(axis=0)"]
        notes = {"numpy argmax(X @ W)": "BLAS threads as set",
                 "numpy argmax(X @ W), 1 BLAS": "one BLAS thread, as beside Numba's threads"}
        for label, ms in times.items():
            rows.append(Row(label, shape, dtype, ms, X.nbytes, floor, "read floor", notes.get(label, "")))
        del W, X, y
    return rows


