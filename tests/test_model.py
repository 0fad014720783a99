"""The Softmax classifier: training, determinism, divergence, prediction, save / load."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_exp.kernels import KERNELS, UNCHECKED, num_threads
from softmax_exp.learn.hyperparameters import TrainParams
from softmax_exp.learn.model import ModelParams, Preprocessing, Softmax
from softmax_exp.learn.optim import Momentum, make_schedule
from softmax_exp.learn.sgd import MinibatchStream


def _blobs(n=600, d=12, c=4, seed=0, dtype=np.float32):
    """Separable Gaussian blobs with a bias column: X (n, d + 1), y (n,)."""
    rng = np.random.default_rng(seed)
    centers = 3 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    X = centers[y] + rng.standard_normal((n, d))
    X = np.hstack([X, np.ones((n, 1))]).astype(dtype)
    return X, y.astype(np.int64)


def _pre(d=12, c=4):
    return Preprocessing(np.zeros(d), True, tuple(f"c{i}" for i in range(c)), (d, 1, 1))


def test_training_lowers_loss_and_fits_blobs():
    X, y = _blobs()
    model = Softmax("numba_fused", _pre())
    h = model.train(X, y, lr=0.05, reg=1e-3, num_iters=150, batch_size=64, eval_every=50,
                    X_val=X[:100], y_val=y[:100])
    assert h.diverged is None and h.loss.shape == (150,)
    assert h.loss[-10:].mean() < 0.5 * h.loss[:10].mean()
    assert [e.iteration for e in h.evals] == [50, 100, 150]
    assert model.W.dtype == np.float32 and model.W.shape == (13, 4)
    assert model.accuracy(X, y) > 0.95
    assert model.predict(X).dtype == np.int64


def test_initialisation_is_the_course_one():
    X, y = _blobs()
    model = Softmax("vectorized", _pre())
    model.train(X, y, lr=1e-12, reg=0.0, num_iters=1, batch_size=1, seed=3)
    W0 = (0.001 * np.random.default_rng(3).standard_normal((13, 4))).astype(np.float32)
    np.testing.assert_allclose(model.W, W0, atol=1e-9)


@pytest.mark.parametrize("kernel", ["numba_fused", "vectorized"])
def test_same_seed_same_bits(kernel):
    X, y = _blobs()
    runs = []
    for _ in range(2):
        with num_threads(2 if kernel.startswith("numba") else None):
            model = Softmax(kernel, _pre())
            h = model.train(X, y, lr=0.05, reg=1e-2, num_iters=60, batch_size=50, seed=7,
                            optimizer=Momentum(0.9, nesterov=True),
                            schedule=make_schedule("cosine", 0.05, 60))
        runs.append((h.loss, model.W))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    other = Softmax(kernel, _pre())
    h = other.train(X, y, lr=0.05, reg=1e-2, num_iters=60, batch_size=50, seed=8)
    assert not np.array_equal(h.loss, runs[0][0])


@pytest.mark.parametrize("replace", [True, False])
def test_the_training_loop_calls_the_kernel_on_the_streams_minibatches(replace, monkeypatch):
    """Each step calls the unchecked kernel once on the next minibatch of MinibatchStream; without
    replacement a minibatch of all 30 rows is each row once (with replacement it is not)."""
    X, y = _blobs(n=30)
    seen = []
    unchecked = UNCHECKED["numba_fused"]
    def spy(W, X_, y_, reg, idx):
        seen.append(idx.copy())
        return unchecked(W, X_, y_, reg, idx)

    monkeypatch.setitem(UNCHECKED, "numba_fused", spy)
    Softmax("numba_fused", _pre(), ModelParams(replace=replace)).train(X, y, lr=0.1, reg=0.0, num_iters=5,
                                                                       batch_size=30, seed=4)
    stream = MinibatchStream(np.random.default_rng(4), 30, 30, replace)
    stream.rng.standard_normal((13, 4))  # the draws of W's initialisation come first
    assert len(seen) == 5 and all(np.array_equal(i, stream.rows(t)) for t, i in enumerate(seen))
    distinct = [np.array_equal(np.sort(i), np.arange(30)) for i in seen]
    assert all(distinct) if not replace else not any(distinct)


def test_divergence_stops_early_without_evaluating():
    X, y = _blobs()
    model = Softmax("numba_fused", _pre())
    h = model.train(X, y, lr=1e30, reg=1.0, num_iters=100, batch_size=64, eval_every=10)
    assert h.diverged is not None and "lower lr" in h.diverged
    assert 1 <= len(h.loss) < 100 and h.evals == []
    assert np.isfinite(h.loss[:-1]).all() and not np.isfinite(h.loss[-1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(lr=-1e-3), "lr must be"),
    (dict(reg=-1.0), "reg must be a finite number >= 0"),
    (dict(num_iters=0), "num_iters must be an integer >= 1"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
])
def test_bad_hyperparameters(kwargs, message):
    X, y = _blobs()
    args = dict(lr=1e-3, reg=0.0, num_iters=10, batch_size=10) | kwargs
    with pytest.raises(ValueError, match=message):
        Softmax("numba_fused", _pre()).train(X, y, **args)


def test_a_batch_must_fit_the_rows_only_without_replacement():
    X, y = _blobs()
    with pytest.raises(ValueError, match="larger than the training set"):
        Softmax("numba_fused", _pre(), ModelParams(replace=False)).training(X, y, batch_size=601)
    TrainParams(batch_size=10_000).check_rows(10, replace=True)  # with replacement, any size
    Softmax("numba_fused", _pre()).training(X, y, batch_size=601)


def test_save_load_round_trip_and_raw_images(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 17, size=(50, 2, 3, 1)).astype(np.uint8)
    mean = images.reshape(50, -1).mean(axis=0)
    X = np.hstack([images.reshape(50, -1) - mean, np.ones((50, 1))]).astype(np.float32)
    y = rng.integers(0, 3, 50)
    pre = Preprocessing(mean, True, ("a", "b", "c"), (2, 3, 1))
    model = Softmax("numba_fused", pre)
    model.train(X, y, lr=1e-2, reg=0.0, num_iters=20, batch_size=10)
    np.testing.assert_array_equal(model.preprocess(images), X)
    path = model.save(tmp_path / "model.npz")
    back = Softmax.load(path)
    assert np.array_equal(back.W, model.W) and back.W.dtype == np.float32
    assert back.preprocessing.class_names == ("a", "b", "c")
    assert back.preprocessing.image_shape == (2, 3, 1) and back.preprocessing.bias_trick
    assert back.kernel_name == "numba_fused"
    np.testing.assert_array_equal(back.predict_images(images), model.predict(X))
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a saved classifier"):
        Softmax.load(tmp_path / "junk.npz")
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 looks like a zip, is not one")
    with pytest.raises(ValueError, match="not a saved classifier"):
        Softmax.load(tmp_path / "zip.npz")


def test_predict_needs_weights_and_matching_shape():
    with pytest.raises(ValueError, match="no weights yet"):
        Softmax().predict(np.zeros((2, 3), np.float32))
    model = Softmax()
    model.W = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"X must be a 2-D array \(N, 3\)"):
        model.predict(np.zeros((2, 4), np.float32))


def test_predict_proba_is_the_softmax_of_the_scores_and_agrees_with_predict():
    X, y = _blobs(n=200)
    model = Softmax("vectorized", _pre())
    model.train(X, y, lr=0.05, reg=1e-3, num_iters=30, batch_size=50)
    proba = model.predict_proba(X)
    assert proba.shape == (200, 4) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(X))
    scores = (X @ model.W).astype(np.float64)
    np.testing.assert_allclose(proba, np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True), rtol=1e-9)
    model.W = model.W * 1e4  # scores in the thousands: exp would overflow without the shift
    assert np.isfinite(model.predict_proba(X)).all()
    with pytest.raises(ValueError, match=r"X must be a 2-D array \(N, 13\)"):
        model.predict_proba(X[:, :5])


def test_unknown_kernel():
    with pytest.raises(ValueError, match="unknown kernel 'fast'"):
        Softmax("fast")


def test_training_checks_its_inputs_once_not_at_every_step(monkeypatch):
    """train checks W, X, y once, then every step calls the kernel's unchecked twin: the checked kernel
    (whose checks cost more than a digits step) never runs in the loop."""
    import softmax_exp.kernels._validation as validation
    import softmax_exp.learn.model as model_module

    checks, checked_kernel = [], []
    for module in (validation, model_module):
        original = module.check_inputs
        monkeypatch.setattr(module, "check_inputs", lambda *a, _f=original: checks.append(1) or _f(*a))
    public = KERNELS["numba_fused"]
    monkeypatch.setitem(KERNELS, "numba_fused", lambda *a: checked_kernel.append(1) or public(*a))
    X, y = _blobs()
    Softmax("numba_fused").train(X, y, lr=1e-2, reg=1e-3, num_iters=50, batch_size=20)
    assert checks == [1] and checked_kernel == []
    Softmax("numba_fused").kernel(np.zeros((X.shape[1], 4), X.dtype), X, y, 0.0)  # the public one checks
    assert checks == [1, 1] and checked_kernel == [1]


def test_nan_in_the_training_rows_is_an_error_not_a_divergence():
    X, y = _blobs()
    X = X.copy()
    X[:, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        Softmax("numba_fused").train(X, y, lr=1e-2, reg=1e-3, num_iters=5, batch_size=20)


def test_hyperparameters_as_one_dataclass_or_as_keywords_train_alike():
    X, y = _blobs()
    params = TrainParams(lr=0.05, reg=1e-3, num_iters=40, batch_size=32, seed=2, eval_every=20)
    a, b = Softmax("numba_fused", _pre()), Softmax("numba_fused", _pre())
    ha = a.train(X, y, params)
    hb = b.train(X, y, lr=0.05, reg=1e-3, num_iters=40, batch_size=32, seed=2, eval_every=20)
    assert np.array_equal(a.W, b.W) and np.array_equal(ha.loss, hb.loss) and ha.evals == hb.evals
    with pytest.raises(TypeError, match="not both: lr"):
        Softmax("numba_fused", _pre()).train(X, y, params, lr=0.1)
    with pytest.raises(ValueError, match="model.init_scale must be a finite number > 0"):
        ModelParams(init_scale=0.0)
    assert type(TrainParams(lr=np.float32(0.5), reg=np.int64(0), num_iters=np.int64(3)).reg) is float
