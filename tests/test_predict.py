"""The prediction kernels (labels, count of correct ones) against argmax of the float64 product."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_exp.kernels import (
    count_correct,
    count_correct_unchecked,
    num_threads,
    predict_labels,
    predict_labels_unchecked,
)


def margin_problem(n=203, d=29, c=7, dtype=np.float32, seed=0, margin=0.5):
    """X, W, and the float64 argmax, with every row's top score ahead of the second by >= margin (far more
    than float32 rounding of the scores), so any correct kernel must give exactly these labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4 * n, d))
    W = rng.standard_normal((d, c))
    S = X @ W
    top2 = np.sort(S, axis=1)[:, -2:] if c > 1 else np.c_[S - 2 * margin, S]
    keep = np.flatnonzero(top2[:, 1] - top2[:, 0] >= margin)[:n]
    assert keep.size == n, "not enough rows with a clear margin"
    X, W = X[keep].astype(dtype), W.astype(dtype)
    labels = np.argmax(X.astype(np.float64) @ W.astype(np.float64), axis=1)
    return W, X, labels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "c"), [(1, 3), (7, 10), (8, 2), (203, 7), (1001, 10), (257, 1), (64, 11)])
def test_labels_agree_with_argmax(dtype, n, c):
    """Row counts below, at and not at a multiple of the 8-row block or the chunk; odd C and C = 1."""
    W, X, labels = margin_problem(n=n, c=c, dtype=dtype, seed=n + c)
    got = predict_labels(W, X)
    assert got.dtype == np.int64 and got.shape == (n,)
    np.testing.assert_array_equal(got, labels)
    assert count_correct(W, X, labels) == n
    wrong = (labels + 1) % c
    assert count_correct(W, X, wrong) == (n if c == 1 else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_idx_takes_rows_in_place(dtype):
    W, X, labels = margin_problem(n=300, c=6, dtype=dtype)
    idx = np.random.default_rng(3).integers(0, 300, 77)  # with repeats, unsorted
    np.testing.assert_array_equal(predict_labels(W, X, idx), labels[idx])
    y = labels.copy()
    y[idx[:10]] = (y[idx[:10]] + 1) % 6
    assert count_correct(W, X, y, idx) == int(np.sum(y[idx] == labels[idx]))
    assert count_correct(W, X, y) == int(np.sum(y == labels))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("columns", [[0, 1, 2, 3, 0, 1, 2, 3], [0, 1, 2, 0], [3, 1, 2, 1, 0], [2, 2, 2]])
def test_exact_ties_take_the_first_class(dtype, columns):
    """Duplicate class columns (same or other position in a class pair, odd C) tie exactly; like np.argmax,
    the first of them wins."""
    W, X, labels = margin_problem(n=150, c=4, dtype=dtype)
    Wd = np.ascontiguousarray(W[:, columns])
    first = {k: columns.index(k) for k in columns}
    present = np.isin(labels, columns)
    got = predict_labels(Wd, X)
    np.testing.assert_array_equal(got[present], [first[k] for k in labels[present]])
    assert np.all(predict_labels(np.zeros_like(Wd), X) == 0)  # every score 0: class 0


def test_nan_row_is_labelled_as_numpy_does():
    W, X, labels = margin_problem(n=20, c=5, dtype=np.float64)
    X[3, 2] = np.nan
    got = predict_labels(W, X)
    np.testing.assert_array_equal(got, np.argmax(X @ W, axis=1))
    assert got[3] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_labels_with_one_and_two_threads(dtype):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3001, 45)).astype(dtype)  # no margin: near-ties must also agree across threads
    W = rng.standard_normal((45, 10)).astype(dtype)
    y = rng.integers(0, 10, 3001)
    idx = rng.integers(0, 3001, 999)

    def results():
        return (predict_labels(W, X), predict_labels(W, X, idx),
                count_correct(W, X, y), count_correct(W, X, y, idx))

    with num_threads(1):
        one = results()
    with num_threads(2):
        two = results()
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_read_only_memmap(tmp_path):
    W, X, labels = margin_problem(n=123, c=10)
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    assert not Xm.flags.writeable
    np.testing.assert_array_equal(predict_labels(W, Xm), labels)
    assert count_correct(W, Xm, labels, np.arange(0, 123, 2)) == 62


def test_unchecked_twins_give_the_same_result():
    W, X, labels = margin_problem(n=90, c=3, dtype=np.float64)
    idx = np.arange(5, 80, 3, dtype=np.intp)
    y = labels.astype(np.intp)
    np.testing.assert_array_equal(predict_labels_unchecked(W, X), predict_labels(W, X))
    np.testing.assert_array_equal(predict_labels_unchecked(W, X, idx), predict_labels(W, X, idx))
    assert count_correct_unchecked(W, X, y, idx) == count_correct(W, X, y, idx) == idx.size


# ---------------------------------------------------------------------------------------------- bad input


def _bad_cases():
    W, X, labels = margin_problem(n=10, d=4, c=3, dtype=np.float64)
    inf_W = W.copy()
    inf_W[1, 1] = np.inf
    return [
        ("X not 2-D", (W, X[0]), {}, "X must be a 2-D"),
        ("X a list", (W, X.tolist()), {}, "X must be a 2-D"),
        ("W not 2-D", (W[:, 0], X), {}, "W must be a 2-D"),
        ("W rows != D", (W[:3], X), {}, "W must have shape"),
        ("int X", (W, X.astype(np.int64)), {}, "float32 or float64"),
        ("dtype mismatch", (W.astype(np.float32), X), {}, "same dtype"),
        ("empty X", (W, X[:0]), {}, "non-empty"),
        ("inf in W", (inf_W, X), {}, "W contains NaN or inf"),
        ("idx out of range", (W, X), {"idx": np.array([0, 10])}, "idx must be in [0, N)"),
        ("idx empty", (W, X), {"idx": np.array([], dtype=int)}, "non-empty 1-D"),
        ("idx float", (W, X), {"idx": np.array([0.5])}, "integer row indices"),
        ("y wrong length", (W, X), {"y": labels[:-1]}, "length N"),
        ("y float", (W, X), {"y": labels.astype(float)}, "integer class labels"),
        ("y too large", (W, X), {"y": np.r_[labels[:-1], 3]}, "found label 3"),
    ]


@pytest.mark.parametrize(
    ("case", "args", "kwargs", "message"), _bad_cases(), ids=[c[0] for c in _bad_cases()]
)
def test_bad_input_is_one_line(case, args, kwargs, message):
    y = kwargs.pop("y", None)
    calls = [lambda: count_correct(*args, y if y is not None else np.zeros(len(args[1]), int), **kwargs)]
    if y is None:
        calls.append(lambda: predict_labels(*args, **kwargs))
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        assert message in str(info.value)
        assert "\n" not in str(info.value)
