"""Every kernel against the naive reference, on the numerical conventions of the project."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_exp.kernels import KERNELS, get_kernel, num_threads, set_num_threads
from softmax_exp.kernels import softmax_loss_naive as naive

FAST = ["vectorized", "numba_naive", "numba_fused"]
ALL = list(KERNELS)


def problem(n=97, d=33, c=7, dtype=np.float64, seed=0, scale=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    W = (rng.standard_normal((d, c)) * scale).astype(dtype)
    y = rng.integers(0, c, n)
    return W, X, y


def rel(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("reg", [0.0, 0.7])
@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_agrees_with_naive(name, reg, dtype, tol):
    W, X, y = problem(dtype=dtype)
    loss, dW = get_kernel(name)(W, X, y, reg)
    ref_loss, ref_dW = naive(W, X, y, reg)
    assert isinstance(loss, float)
    assert dW.shape == W.shape and dW.dtype == W.dtype
    assert abs(loss - ref_loss) / abs(ref_loss) < tol
    assert rel(dW, ref_dW) < tol


@pytest.mark.parametrize("name", ALL)
def test_naive_matches_closed_form(name):
    """One row, two classes: the loss is log(1 + e^(s1 - s0)) and the gradient has a closed form."""
    X = np.array([[1.0, 2.0]])
    W = np.array([[0.5, -0.25], [0.1, 0.3]])
    y = np.array([0])
    s = X @ W
    p1 = 1 / (1 + math.exp(s[0, 0] - s[0, 1]))
    reg = 0.2
    loss, dW = get_kernel(name)(W, X, y, reg)
    assert loss == pytest.approx(math.log1p(math.exp(s[0, 1] - s[0, 0])) + 0.5 * reg * np.sum(W * W))
    expected = np.outer(X[0], [-p1, p1]) + reg * W
    np.testing.assert_allclose(dW, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("reg", [0.0, 1.5])
def test_gradient_check(name, reg):
    from softmax_exp.learn.gradcheck import eval_numerical_gradient, grad_check_sparse, rel_error

    W, X, y = problem(n=40, d=12, c=5, seed=3, scale=0.3)
    kernel = get_kernel(name)
    _, dW = kernel(W, X, y, reg)
    numeric = eval_numerical_gradient(lambda w: kernel(w, X, y, reg)[0], W.copy(), h=1e-3, order=4)
    assert rel_error(dW, numeric) < 1e-7
    errors = grad_check_sparse(lambda w: kernel(w, X, y, reg)[0], W.copy(), dW, num_checks=8, seed=1)
    assert errors.shape == (8,) and np.all(errors < 1e-6)


def test_gradient_check_catches_a_wrong_gradient():
    from softmax_exp.learn.gradcheck import eval_numerical_gradient, rel_error

    W, X, y = problem(n=30, d=6, c=4)
    _, dW = naive(W, X, y, 0.0)
    numeric = eval_numerical_gradient(lambda w: naive(w, X, y, 0.0)[0], W.copy(), h=1e-3, order=4)
    assert rel_error(dW, numeric) < 1e-7
    assert rel_error(dW * 1.01, numeric) > 1e-3  # a 1% error in the gradient is seen


def test_grad_check_sparse_is_seeded():
    from softmax_exp.learn.gradcheck import grad_check_sparse

    W, X, y = problem(n=30, d=6, c=4)
    _, dW = naive(W, X, y, 0.0)
    f = lambda w: naive(w, X, y, 0.0)[0]  # noqa: E731
    a = grad_check_sparse(f, W.copy(), dW, num_checks=5, seed=7)
    b = grad_check_sparse(f, W.copy(), dW, num_checks=5, seed=7)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_sanity_loss_is_log_c(name):
    W, X, y = problem(n=200, d=30, c=10, scale=1e-4)
    loss, _ = get_kernel(name)(W, X, y, 0.0)
    assert loss == pytest.approx(math.log(10), abs=0.01)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_scores_stay_finite(name, dtype):
    W, X, y = problem(n=20, d=5, c=4, dtype=dtype, seed=2)
    W = W / np.abs(W).max() * dtype(1e3)
    X = X / np.abs(X).max() * dtype(5.0)  # scores of magnitude ~1e4
    assert np.abs(X @ W).max() > 1e3
    loss, dW = get_kernel(name)(W, X, y, 0.0)
    assert math.isfinite(loss) and np.isfinite(dW).all()
    ref_loss, ref_dW = naive(W, X, y, 0.0)
    assert loss == pytest.approx(ref_loss, rel=1e-4)


@pytest.mark.parametrize("name", ["numba_naive", "numba_fused"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_result_with_one_and_two_threads(name, dtype):
    W, X, y = problem(n=1500, d=50, c=10, dtype=dtype)
    kernel = get_kernel(name)
    with num_threads(1):
        l1, g1 = kernel(W, X, y, 0.3)
    with num_threads(2):
        l2, g2 = kernel(W, X, y, 0.3)
    # chunks depend on the row count only, so the result is bit-identical, not only close
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_idx_equals_copy(name, dtype):
    W, X, y = problem(n=300, d=21, c=6, dtype=dtype)
    idx = np.random.default_rng(5).integers(0, 300, 77)  # with repeats, like sampling with replacement
    kernel = get_kernel(name)
    loss, dW = kernel(W, X, y, 0.4, idx)
    ref_loss, ref_dW = kernel(W, np.ascontiguousarray(X[idx]), y[idx], 0.4)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert loss == pytest.approx(ref_loss, rel=tol)
    np.testing.assert_allclose(dW, ref_dW, rtol=tol, atol=tol * np.abs(ref_dW).max())


def _peak_bytes(fn) -> int:
    """The most memory allocated while ``fn()`` runs (numpy's and Numba's arrays are traced)."""
    fn()  # compiled and warm first
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fused_idx_reads_x_in_place(tmp_path):
    """The fused kernel takes the minibatch rows where they are: a read-only memory map works, nothing
    near the size of the rows is allocated (the numpy kernel's X[idx] copy shows the measurement sees
    one), and loss and gradient are the reference ones."""
    W, X, y = problem(n=40000, d=64, c=3, dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    idx = np.arange(0, 40000, 2)
    fused = get_kernel("numba_fused")
    copied = X[idx].nbytes  # 5 MB
    assert _peak_bytes(lambda: fused(W, Xm, y, 0.1, idx)) < copied / 10
    assert _peak_bytes(lambda: get_kernel("vectorized")(W, Xm, y, 0.1, idx)) >= copied
    loss, dW = fused(W, Xm, y, 0.1, idx)
    ref_loss, ref_dW = naive(W, X, y, 0.1, idx)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-4, atol=1e-5 * np.abs(ref_dW).max())


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 33, 257])
@pytest.mark.parametrize("c", [1, 2, 3])
def test_fused_odd_sizes(n, c):
    """Short blocks, odd class counts (padded inside) and a single class all give the reference result."""
    W, X, y = problem(n=n, d=11, c=c, seed=n)
    loss, dW = get_kernel("numba_fused")(W, X, y, 0.2)
    ref_loss, ref_dW = naive(W, X, y, 0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-10, atol=1e-13)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    d=st.integers(1, 20),
    c=st.integers(1, 12),
    reg=st.floats(0, 10),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_property_all_kernels_agree(n, d, c, reg, seed, dtype):
    W, X, y = problem(n=n, d=d, c=c, seed=seed, dtype=dtype, scale=0.5)
    ref_loss, ref_dW = naive(W, X, y, reg)
    tol = 1e-9 if dtype == np.float64 else 2e-5
    for name in FAST:
        loss, dW = get_kernel(name)(W, X, y, reg)
        assert loss == pytest.approx(ref_loss, rel=tol, abs=tol)
        np.testing.assert_allclose(dW, ref_dW, rtol=tol, atol=tol * max(1.0, np.abs(ref_dW).max()))


# ---------------------------------------------------------------------------------------------- bad input


def _bad_cases():
    W, X, y = problem(n=10, d=4, c=3)
    nan_X = X.copy()
    nan_X[3, 2] = np.nan
    inf_W = W.copy()
    inf_W[1, 1] = np.inf
    return [
        ("X not 2-D", (W, X[0], y, 0.1), "X must be a 2-D"),
        ("X a list", (W, X.tolist(), y, 0.1), "X must be a 2-D"),
        ("W not 2-D", (W[:, 0], X, y, 0.1), "W must be a 2-D"),
        ("W rows != D", (W[:3], X, y, 0.1), "W must have shape"),
        ("int X", (W, X.astype(np.int64), y, 0.1), "float32 or float64"),
        ("dtype mismatch", (W.astype(np.float32), X, y, 0.1), "same dtype"),
        ("y wrong length", (W, X, y[:-1], 0.1), "length N"),
        ("y float", (W, X, y.astype(float), 0.1), "integer class labels"),
        ("y negative", (W, X, np.r_[y[:-1], -1], 0.1), "found label -1"),
        ("y too large", (W, X, np.r_[y[:-1], 3], 0.1), "found label 3"),
        ("reg negative", (W, X, y, -1.0), "reg must be finite and >= 0"),
        ("reg nan", (W, X, y, float("nan")), "reg must be finite and >= 0"),
        ("reg inf", (W, X, y, float("inf")), "reg must be finite and >= 0"),
        ("reg string", (W, X, y, "a lot"), "reg must be a real number"),
        ("nan in X", (W, nan_X, y, 0.1), "X contains NaN or inf (first at row 3, column 2)"),
        ("inf in W", (inf_W, X, y, 0.1), "W contains NaN or inf"),
    ]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("case", "args", "message"), _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input(name, case, args, message):
    with pytest.raises(ValueError) as info:
        get_kernel(name)(*args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("idx", "message"),
    [
        (np.array([0, 10]), "idx must be in [0, N)"),
        (np.array([-1]), "idx must be in [0, N)"),
        (np.array([], dtype=int), "non-empty 1-D"),
        (np.array([[1]]), "non-empty 1-D"),
        (np.array([0.5]), "integer row indices"),
    ],
)
def test_bad_idx(name, idx, message):
    W, X, y = problem(n=10, d=4, c=3)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        get_kernel(name)(W, X, y, 0.1, idx)


def test_nan_outside_the_minibatch_is_not_an_error():
    W, X, y = problem(n=10, d=4, c=3)
    X[9, 0] = np.nan
    for name in ALL:
        loss, dW = get_kernel(name)(W, X, y, 0.1, np.array([0, 1, 2]))
        assert math.isfinite(loss)


def test_nan_inside_the_minibatch_names_the_row():
    W, X, y = problem(n=10, d=4, c=3)
    X[7, 1] = np.inf
    for name in ALL:
        with pytest.raises(ValueError, match=r"row 7, column 1"):
            get_kernel(name)(W, X, y, 0.1, np.array([0, 7]))


def test_unknown_kernel_lists_the_names():
    with pytest.raises(ValueError) as info:
        get_kernel("fast")
    for name in ALL:
        assert name in str(info.value)


@pytest.mark.parametrize("name", ["numba_naive", "numba_fused"])
def test_large_x_is_not_copied_or_cast(name):
    """A full pass over a 26 MB X allocates nothing of X's size (row indices and per-row scores only),
    and a float32 X with a float64 W is refused before anything is allocated, never cast."""
    W, X, y = problem(n=200_000, d=32, c=3, dtype=np.float32)
    kernel = get_kernel(name)
    assert _peak_bytes(lambda: kernel(W, X, y, 0.1)) < X.nbytes / 2.5
    with pytest.raises(ValueError, match="X is never cast"):
        kernel(W.astype(np.float64), X, y, 0.1)
    tracemalloc.start()
    with pytest.raises(ValueError, match="X is never cast"):
        kernel(W.astype(np.float64), X, y, 0.1)
    assert tracemalloc.get_traced_memory()[1] < 100_000
    tracemalloc.stop()


def test_set_num_threads_rejects_bad_counts():
    with pytest.raises(ValueError, match="num_threads must be an integer"):
        set_num_threads(0)
    with pytest.raises(ValueError, match="num_threads must be an integer"):
        set_num_threads(10_000)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unchecked_twin_gives_the_same_bits(name, dtype):
    """get_kernel(name, checked=False) skips the checks but computes exactly what the public kernel does."""
    W, X, y = problem(n=130, d=17, c=6, dtype=dtype)
    idx = np.random.default_rng(4).integers(0, 130, 40).astype(np.intp)
    checked, unchecked = get_kernel(name), get_kernel(name, checked=False)
    assert unchecked is not checked
    for rows in (None, idx):
        loss, dW = checked(W, X, y, 0.3, rows)
        loss_u, dW_u = unchecked(W, X, y.astype(np.intp), 0.3, rows)
        assert loss_u == loss
        np.testing.assert_array_equal(dW_u, dW)


def test_unchecked_twin_returns_a_non_finite_result_as_is():
    W, X, y = problem(n=10, d=4, c=3)
    X[2, 1] = np.nan
    for name in ALL:
        rows = np.array([1, 2], dtype=np.intp)
        loss, _ = get_kernel(name, checked=False)(W, X, y.astype(np.intp), 0.1, rows)
        assert math.isnan(loss)


# ---------------------------------------------------------------------------------------------- pinned bits

# sha256 of (float64 loss, dW) bytes of the fused kernel, recorded before the kernel's per-call overhead was
# cut. Trained W are guaranteed bit for bit (same config and seed, resumed checkpoints), so any change to the
# fused kernel must leave these unchanged. Numba compiles for the host CPU and reassociated sums vectorise
# per target, so the bits are pinned per LLVM host CPU name; on another CPU the test is skipped (record the
# hashes there with the code of a known-good commit, then add them here). No float64 case: with numba 0.68.1
# a float64 fused result freshly compiled differs in the last bit from the same code loaded from the cache
# (cache=True), before and after this pin, so a float64 pin would depend on the state of __pycache__.
FUSED_PINS = {
    "rocketlake": {
        "f32_minibatch_200": "888f0d4cbd12014cde3b64997045cb171b1d95398b6160220d46510ea622e43e",
        "f32_full_odd_c": "ae5c702715eccf5d1bf8fb83545180fba4f2d22121ae7a052540cfcdb33b35d7",
        "f32_one_class": "c03d5789f8b3e5324fe15a87cb81d0955e9c3c6788ecc1b27b7763ebc4867408",
    },
    "znver3": {  # recorded at commit d72f6ac (AMD EPYC)
        "f32_minibatch_200": "f05d4d51469fd428623a0d6a0b48bd44ea34ddeb9c97ab11a9a9c9e9abff2318",
        "f32_full_odd_c": "3a6c896e4c073d9db4b19ff8a4f350de3dbbcd81b348d18362b82317f1065792",
        "f32_one_class": "c03d5789f8b3e5324fe15a87cb81d0955e9c3c6788ecc1b27b7763ebc4867408",
    },
    "znver4": {  # recorded at commit 8ca2509 (AMD EPYC, Zen 4)
        "f32_minibatch_200": "0c48046faf5afc73e3894cd265651f38c736ca40689d1fec7812d393d0844e3b",
        "f32_full_odd_c": "130566afed015bd0ad7e9c325d54c99d30bc57f5e85e30fff155ee861084b73a",
        "f32_one_class": "c03d5789f8b3e5324fe15a87cb81d0955e9c3c6788ecc1b27b7763ebc4867408",
    },
}
FUSED_PIN_CASES = {
    # name: (n, d, c, dtype, minibatch size or None for all rows)
    "f32_minibatch_200": (1000, 65, 10, np.float32, 200),
    "f32_full_odd_c": (3300, 67, 11, np.float32, None),
    "f32_one_class": (50, 5, 1, np.float32, 9),
}


def _fused_pin_hash(case):
    import hashlib

    n, d, c, dtype, b = FUSED_PIN_CASES[case]
    W, X, y = problem(n=n, d=d, c=c, dtype=dtype, seed=11)
    idx = None if b is None else np.random.default_rng(12).integers(0, n, b)
    loss, dW = get_kernel("numba_fused")(W, X, y, 0.3, idx)
    return hashlib.sha256(np.float64(loss).tobytes() + np.ascontiguousarray(dW).tobytes()).hexdigest()


@pytest.mark.parametrize("case", list(FUSED_PIN_CASES))
def test_fused_kernel_bits_are_pinned(case):
    import llvmlite.binding as llvm

    cpu = llvm.get_host_cpu_name()
    if cpu not in FUSED_PINS:
        pytest.skip(f"no pinned fused-kernel bits for host CPU {cpu!r}")
    with num_threads(1):
        h1 = _fused_pin_hash(case)
    h2 = _fused_pin_hash(case)
    assert h1 == h2
    assert h1 == FUSED_PINS[cpu][case]
