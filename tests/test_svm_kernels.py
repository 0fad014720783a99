"""The multiclass SVM kernels against an independent float64 reference, the gradient check at the hinge's
kinks, and the properties the softmax kernels have (threads, idx in place, odd sizes, bad input)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_exp.kernels import LOSSES, SVM_KERNELS, get_kernel, num_threads

ALL = list(SVM_KERNELS)


def problem(n=97, d=33, c=7, dtype=np.float64, seed=0, scale=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = (rng.standard_normal((d, c)) * scale).astype(dtype)
    y = rng.integers(0, c, n)
    return W, X, y


def reference(W, X, y, reg, idx=None):
    """The hinge loss written out from its definition, in float64, with an explicit one-hot matrix: no code
    shared with the kernels."""
    W = W.astype(np.float64)
    X = X.astype(np.float64)
    if idx is not None:
        X, y = X[idx], y[idx]
    n, C = X.shape[0], W.shape[1]
    onehot = np.eye(C)[y]
    S = X @ W
    correct = (S * onehot).sum(axis=1, keepdims=True)
    margins = np.where(onehot == 1, 0.0, S - correct + 1.0)
    active = margins > 0
    loss = margins[active].sum() / n + 0.5 * reg * (W**2).sum()
    coeff = active - onehot * active.sum(axis=1, keepdims=True)
    return loss, np.einsum("nd,nc->dc", X, coeff) / n + reg * W


def min_margin_distance(W, X, y) -> float:
    """How close the nearest margin (j != y_i) is to its kink at 0, in float64."""
    S = X.astype(np.float64) @ W.astype(np.float64)
    rows = np.arange(len(y))
    m = S - S[rows, y][:, None] + 1.0
    m[rows, y] = np.inf
    return float(np.abs(m).min())


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("reg", [0.0, 0.7])
@pytest.mark.parametrize("with_idx", [False, True])
def test_agrees_with_an_independent_float64_reference(name, reg, with_idx):
    W, X, y = problem(n=301, d=45, c=10, scale=0.3)
    idx = np.random.default_rng(9).integers(0, 301, 120) if with_idx else None
    loss, dW = get_kernel(name, loss="svm")(W, X, y, reg, idx)
    ref_loss, ref_dW = reference(W, X, y, reg, idx)
    assert isinstance(loss, float) and dW.dtype == W.dtype and dW.shape == W.shape
    assert abs(loss - ref_loss) / abs(ref_loss) < 1e-9
    assert np.abs(dW - ref_dW).max() / np.abs(ref_dW).max() < 1e-9


@pytest.mark.parametrize("name", ALL)
def test_float32_agrees_where_no_margin_is_near_its_kink(name):
    """float32 scores move a margin by ~1e-6: away from the kinks the result is the reference's to float32
    precision (at a kink float32 and float64 may disagree on the side, as any two orders of summation)."""
    W, X, y = problem(n=400, d=30, c=10, dtype=np.float32, seed=4, scale=0.2)
    assert min_margin_distance(W, X, y) > 1e-4
    loss, dW = get_kernel(name, loss="svm")(W, X, y, 0.3)
    ref_loss, ref_dW = reference(W, X, y, 0.3)
    assert dW.dtype == np.float32
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-4, atol=1e-5 * np.abs(ref_dW).max())


@pytest.mark.parametrize("name", ALL)
def test_closed_form(name):
    """One row, three classes, one margin positive and one not: L = s_1 - s_0 + 1 + 0.5 reg |W|^2 and the
    subgradient moves x from column 0 to column 1."""
    X = np.array([[1.0, 2.0]])
    W = np.array([[0.5, 0.4, -1.0], [0.1, 0.3, 0.2]])  # scores 0.7, 1.0, -0.6
    y = np.array([0])
    reg = 0.2
    loss, dW = get_kernel(name, loss="svm")(W, X, y, reg)
    assert loss == pytest.approx((1.0 - 0.7 + 1) + 0.5 * reg * np.sum(W * W), rel=1e-12)
    expected = np.array([[-1.0, 1.0, 0.0], [-2.0, 2.0, 0.0]]) + reg * W
    np.testing.assert_allclose(dW, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_sanity_loss_is_c_minus_one(name):
    """W near 0: every margin is 1, so the loss is C - 1 (the course's sanity check)."""
    W, X, y = problem(n=200, d=30, c=10, scale=1e-5)
    loss, _ = get_kernel(name, loss="svm")(W, X, y, 0.0)
    assert loss == pytest.approx(9.0, abs=0.01)


@pytest.mark.parametrize("name", ["numba_naive", "numba_fused"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_with_one_and_two_threads(name, dtype):
    W, X, y = problem(n=1500, d=50, c=10, dtype=dtype)
    kernel = get_kernel(name, loss="svm")
    with num_threads(1):
        l1, g1 = kernel(W, X, y, 0.3)
    with num_threads(2):
        l2, g2 = kernel(W, X, y, 0.3)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_idx_equals_copy_and_unchecked_twin_same_bits(name, dtype):
    W, X, y = problem(n=300, d=21, c=6, dtype=dtype)
    idx = np.random.default_rng(5).integers(0, 300, 77).astype(np.intp)  # repeats, as with replacement
    kernel = get_kernel(name, loss="svm")
    loss, dW = kernel(W, X, y, 0.4, idx)
    ref_loss, ref_dW = kernel(W, np.ascontiguousarray(X[idx]), y[idx], 0.4)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert loss == pytest.approx(ref_loss, rel=tol)
    np.testing.assert_allclose(dW, ref_dW, rtol=tol, atol=tol * np.abs(ref_dW).max())
    loss_u, dW_u = get_kernel(name, False, loss="svm")(W, X, y.astype(np.intp), 0.4, idx)
    assert loss_u == loss
    np.testing.assert_array_equal(dW_u, dW)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 33, 257])
@pytest.mark.parametrize("c", [1, 2, 3])
def test_fused_odd_sizes(n, c):
    """Short blocks, odd class counts (padded inside) and a single class (no margin: loss 0 but the L2
    term) give the reference result."""
    W, X, y = problem(n=n, d=11, c=c, seed=n)
    loss, dW = get_kernel("numba_fused", loss="svm")(W, X, y, 0.2)
    ref_loss, ref_dW = reference(W, X, y, 0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-10, atol=1e-13)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 20), c=st.integers(1, 12), reg=st.floats(0, 10),
       seed=st.integers(0, 2**32 - 1))
def test_property_all_kernels_agree_with_the_reference(n, d, c, reg, seed):
    W, X, y = problem(n=n, d=d, c=c, seed=seed, scale=0.5)
    ref_loss, ref_dW = reference(W, X, y, reg)
    if c > 1 and min_margin_distance(W, X, y) < 1e-9:
        return  # a margin on its kink: the side is a matter of rounding
    for name in ALL:
        loss, dW = get_kernel(name, loss="svm")(W, X, y, reg)
        assert loss == pytest.approx(ref_loss, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(dW, ref_dW, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(ref_dW).max()))


@pytest.mark.parametrize("name", ALL)
def test_a_nan_in_the_minibatch_names_the_row_and_outside_it_does_not_matter(name):
    W, X, y = problem(n=10, d=4, c=3)
    X[7, 1] = np.nan  # a NaN margin is not "<= 0": it reaches the loss
    kernel = get_kernel(name, loss="svm")
    with pytest.raises(ValueError, match=r"row 7, column 1"):
        kernel(W, X, y, 0.1, np.array([0, 7]))
    assert np.isfinite(kernel(W, X, y, 0.1, np.array([0, 1]))[0])
    with pytest.raises(ValueError, match="found label 3"):
        kernel(W, X, np.r_[y[:-1], 3], 0.1)


def test_get_kernel_names_the_losses():
    assert get_kernel("naive") is LOSSES["softmax"][0]["naive"]
    with pytest.raises(ValueError, match="unknown loss 'hinge'; choose one of: softmax, svm"):
        get_kernel("naive", loss="hinge")
    with pytest.raises(ValueError, match="unknown kernel 'turbo'"):
        get_kernel("turbo", loss="svm")


# ------------------------------------------------------------------------------------------- gradient check


@pytest.mark.parametrize("name", ALL)
def test_gradient_check_passes_every_svm_kernel(name):
    from softmax_exp.learn.gradcheck import check_kernel

    r = check_kernel(name, "svm", seed=2)
    assert max(r["grad_err_reg0"], r["grad_err_reg"]) < 1e-7
    assert r["sanity_loss"] == pytest.approx(r["expected"], abs=0.05) and r["expected"] == 9.0
    assert r["loss_diff"] < 1e-12 and r["grad_diff"] < 1e-9
    assert r["kinks"] >= 1 and 0 < r["skipped"] < 40 * 10 // 4  # seed 2 has margins near 0, few coordinates


def test_a_kink_in_the_stencil_is_counted_and_left_out_not_called_a_wrong_gradient():
    """A margin put 1e-4 from its kink: the centred difference across it is off by ~1/2 of the jump, so a
    correct gradient 'fails' there; the check names the kink and skips those coordinates, and a 1% wrong
    gradient is still caught on the others."""
    from softmax_exp.learn.gradcheck import eval_numerical_gradient, kink_coordinates, rel_error

    kernel = get_kernel("naive", loss="svm")
    W, X, y = problem(n=20, d=6, c=4, seed=1, scale=0.3)
    S = X @ W
    j = (y[0] + 1) % 4
    W[:, j] -= np.outer(X[0], 1.0)[:, 0] * (S[0, j] - S[0, y[0]] + 1 - 1e-4) / (X[0] @ X[0])  # m_0j = 1e-4
    assert min_margin_distance(W, X, y) < 2e-4
    _, dW = kernel(W, X, y, 0.0)
    numeric = eval_numerical_gradient(lambda w: kernel(w, X, y, 0.0)[0], W.copy(), h=1e-3, order=4)
    kinks, skip = kink_coordinates(W, X, y, 2e-3)
    assert kinks >= 1 and skip[:, j].any() and skip[:, y[0]].any()
    assert rel_error(dW, numeric) > 1e-3  # at the kink: a right gradient looks wrong
    assert rel_error(dW[~skip], numeric[~skip]) < 1e-7  # elsewhere it is right ...
    assert rel_error((dW * 1.01)[~skip], numeric[~skip]) > 1e-3  # ... and a wrong one is still seen
