"""A damaged checkpoint is refused by load_resumable_checkpoint, in one line naming the file and what is
wrong, before training starts; one it accepts resumes without error."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from npz_fixtures import allocates_at_most, damaged_copies, npy, npy_header, rewrite

from softmax_exp.learn.checkpoint import load_checkpoint, load_resumable_checkpoint, save_checkpoint
from softmax_exp.learn.model import Preprocessing, Softmax
from softmax_exp.learn.optim import Momentum, make_optimizer
from softmax_exp.learn.sgd import NoHooks

NUM_ITERS = 600
NEEDS = dict(dim=13, num_classes=4, dtype=np.float32, num_iters=NUM_ITERS, optimizer="momentum")
LITTLE = 4 << 20


def _blobs(n=500, d=12, c=4):
    rng = np.random.default_rng(1)
    centers = 3 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    X = np.hstack([centers[y] + rng.standard_normal((n, d)), np.ones((n, 1))]).astype(np.float32)
    return X, y.astype(np.int64)


def _train(optimizer="momentum", **kwargs):
    X, y = _blobs()
    model = Softmax("numba_fused", Preprocessing(np.zeros(12), True, tuple("abcd"), (12, 1, 1)))
    history = model.train(X, y, lr=0.05, reg=1e-2, num_iters=NUM_ITERS, batch_size=40, seed=2,
                          optimizer=make_optimizer(optimizer), eval_every=100, X_val=X[:50], y_val=y[:50],
                          **kwargs)
    return model, history


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A momentum checkpoint at iteration 300 (3 evaluations), and the training never stopped."""
    states = []
    hooks = NoHooks()
    hooks.on_checkpoint = states.append
    _train(checkpoint_every=300, hooks=hooks)
    whole = _train()
    return save_checkpoint(tmp_path_factory.mktemp("good") / "c.npz", states[0], "fp"), whole


def _refused(path, message, **needs):
    with allocates_at_most(LITTLE), pytest.raises(ValueError) as e:
        load_resumable_checkpoint(path, "fp", **(NEEDS | needs))
    text = str(e.value)
    assert text.startswith(f"{path} is not a usable checkpoint (") and "\n" not in text, text
    assert re.search(message, text), text


def _rng(**change):
    state = np.random.default_rng(2).bit_generator.state
    for key, value in change.items():
        if key in ("state", "inc"):
            state["state"][key] = value
        else:
            state[key] = value
    return np.str_(json.dumps(state))


W = np.zeros((13, 4), np.float32)
LOSS = np.ones(300)
EVALS = np.array([[100, 0.5, 0.5], [200, 0.6, 0.6], [300, 0.7, np.nan]])


@pytest.mark.parametrize("replace, message", [
    # W
    (dict(W=np.zeros((13, 5), np.float32)), r"W is float32 \(13, 5\); expected float32 \(13, 4\)"),
    (dict(W=np.zeros((13, 4), np.float64)), r"W is float64 \(13, 4\); expected float32 \(13, 4\)"),
    (dict(W=np.zeros(52, np.float32)), r"W is float32 \(52,\); expected float32 \(13, 4\)"),
    (dict(W=np.where(np.eye(13, 4) > 0, np.nan, 0).astype(np.float32)), "W has NaN or inf"),
    (dict(W=npy_header("<f4", (10**6, 10**6), b"\0" * 1024)), r"'W' claims float32 \(1000000, 1000000\)"),
    (dict(W=npy(np.zeros((13, 4), dtype=object))), "'W' has dtype 'object'"),
    # the generator state
    (dict(rng_state=np.str_("not json")), "rng_state is not JSON"),
    (dict(rng_state=np.str_(json.dumps({"bit_generator": "MT19937", "state": {"key": [1], "pos": 0}}))),
     "rng_state is of bit generator 'MT19937'; training draws with PCG64"),
    (dict(rng_state=np.str_("[" * 500 + "]" * 500)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(state=-1)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(state=2**128)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(state=1.5)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(inc=2)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(has_uint32=5)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(has_uint32=True)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(uinteger=2**32)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=_rng(extra=0)), "rng_state is not the state of a numpy PCG64"),
    (dict(rng_state=np.str_(" " * 2000)), "rng_state has items of 8000 bytes; at most 4096"),
    (dict(rng_state=np.array([1, 2])), r"rng_state is int64 \(2,\); expected kind U \(\)"),
    # the optimizer's state
    (dict(**{"optimizer.velocity": np.zeros((13, 5), np.float32)}),
     r"optimizer\.velocity is float32 \(13, 5\); expected float32 \(13, 4\)"),
    (dict(**{"optimizer.velocity": np.zeros((13, 4), np.float64)}),
     r"optimizer\.velocity is float64 \(13, 4\); expected float32 \(13, 4\)"),
    (dict(**{"optimizer.velocity": np.full((13, 4), np.inf, np.float32)}),
     "optimizer.velocity has NaN or inf"),
    (dict(**{"optimizer.step": W}), r"momentum's state has only a velocity; the checkpoint has \['step'\]"),
    # iterations and history
    (dict(iteration=np.int64(700), loss=np.ones(700)), "it is at iteration 700 of a training of 600"),
    (dict(iteration=np.int64(0), loss=np.ones(0), evals=np.zeros((0, 3))), "it is at iteration 0"),
    (dict(iteration=np.int64(-3)), "it is at iteration -3"),
    (dict(iteration=np.float64(300)), r"iteration is float64 \(\); expected kind i/u \(\)"),
    (dict(loss=np.ones(299)), r"loss is float64 \(299,\); expected float64 \(300,\)"),
    (dict(loss=np.ones(3000)), r"loss is float64 \(3000,\); expected float64 \(300,\)"),
    (dict(loss=np.ones(300, np.float32)), r"loss is float32 \(300,\); expected float64 \(300,\)"),
    (dict(loss=np.full(300, np.nan)), "loss has NaN or inf"),
    (dict(evals=np.zeros((301, 3))), "it has 301 evaluations in 300 iterations"),
    (dict(evals=EVALS[:, :2]), r"evals is float64 \(3, 2\); expected float64 \(n, 3\)"),
    (dict(evals=EVALS * [[1, 1, 1], [1, 1, 1], [np.inf, 1, 1]]),
     "evals' iterations are not increasing whole"),
    (dict(evals=EVALS[::-1]), "evals' iterations are not increasing whole numbers in 1..300"),
    (dict(evals=EVALS + [[0.5, 0, 0]] * 3), "evals' iterations are not increasing whole"),
    (dict(evals=EVALS + [[300, 0, 0]] * 3), "evals' iterations are not increasing whole numbers in 1..300"),
    (dict(evals=EVALS + [[0, 0.5, 0]] * 3), r"evals has an accuracy outside \[0, 1\]"),
    (dict(evals=EVALS * ([[1, np.nan, 1]] * 3)), r"evals has an accuracy outside \[0, 1\]"),
    # what the file is
    (dict(fingerprint=np.str_("another")), "it belongs to a training with another config"),
    (dict(fingerprint=np.str_("f" * 300)), "fingerprint has items of 1200 bytes; at most 1024"),
    (dict(format=np.int64(2)), "checkpoint format 2, this code reads 1"),
    (dict(rng_state=None), "no member 'rng_state'"),
    (dict(junk=np.zeros(2)), "unexpected member 'junk'"),
], ids=lambda v: None if isinstance(v, str) else "-".join(v))
def test_a_damaged_checkpoint_is_refused_in_one_line(good, tmp_path, replace, message):
    _refused(rewrite(good[0], tmp_path / "damaged.npz", **replace), message)


@pytest.mark.parametrize("needs, message", [
    (dict(dim=14), r"W is float32 \(13, 4\); expected float32 \(14, 4\)"),
    (dict(num_classes=10), r"W is float32 \(13, 4\); expected float32 \(13, 10\)"),
    (dict(dtype=np.float64), r"W is float32 \(13, 4\); expected float64 \(13, 4\)"),
    (dict(num_iters=299), "it is at iteration 300 of a training of 299"),
    (dict(optimizer="sgd"), r"plain SGD has no state; the checkpoint has \['velocity'\]"),
])
def test_a_checkpoint_of_another_training_is_refused(good, needs, message):
    _refused(good[0], message, **needs)


def test_an_unknown_optimizer_is_the_callers_error(good):
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        load_resumable_checkpoint(good[0], "fp", **(NEEDS | dict(optimizer="adam")))


def test_a_cut_or_foreign_file_is_refused(good, tmp_path):
    raw = good[0].read_bytes()
    for cut in (0, 100, len(raw) // 2, len(raw) - 1):
        (tmp_path / "cut.npz").write_bytes(raw[:cut])
        _refused(tmp_path / "cut.npz", "")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    _refused(tmp_path / "notes.txt", "File is not a zip file")


def test_an_accepted_checkpoint_resumes_bit_identical(good):
    path, (whole, h_whole) = good
    with allocates_at_most(LITTLE):
        state = load_resumable_checkpoint(path, "fp", **NEEDS)
    assert state.iteration == 300 and state.W.dtype == np.float32
    assert set(state.optimizer_state) == {"velocity"}
    assert state.rng_state["bit_generator"] == "PCG64"
    assert [e.iteration for e in state.evals] == [100, 200, 300]
    resumed, h = _train(resume_from=state)
    assert np.array_equal(resumed.W, whole.W) and np.array_equal(h.loss, h_whole.loss)
    assert h.evals == h_whole.evals


def test_a_checkpoint_without_velocity_or_evaluations_is_fine(good, tmp_path):
    """Momentum without velocity starts from zero; a training without evaluations so far has none."""
    path = rewrite(good[0], tmp_path / "c.npz", evals=np.zeros((0, 3)), **{"optimizer.velocity": None})
    state = load_resumable_checkpoint(path, "fp", **NEEDS)
    assert state.optimizer_state == {} and state.evals == []
    _train(resume_from=state)


def test_load_checkpoint_checks_what_does_not_depend_on_the_training(good, tmp_path):
    """Without a training: the file, the fingerprint, the arrays' self-consistency and values."""
    state = load_checkpoint(good[0], "fp")
    assert state.W.shape == (13, 4)
    with pytest.raises(ValueError, match="W has NaN or inf"):
        load_checkpoint(rewrite(good[0], tmp_path / "nan.npz", W=np.full((13, 4), np.nan, np.float32)), "fp")
    with pytest.raises(ValueError, match=r"optimizer.velocity is float32 \(13, 5\); expected float32"):
        load_checkpoint(rewrite(good[0], tmp_path / "v.npz",
                                **{"optimizer.velocity": np.zeros((13, 5), np.float32)}), "fp")
    with pytest.raises(ValueError, match=r"W is float16 \(13, 4\); expected float32/float64 \(n, n\)"):
        load_checkpoint(rewrite(good[0], tmp_path / "h.npz", W=np.zeros((13, 4), np.float16)), "fp")


def test_the_generator_state_returned_is_the_one_numpy_reports(good, tmp_path):
    """A state numpy takes but reports otherwise is refused; the one returned sets without error."""
    state = load_resumable_checkpoint(good[0], "fp", **NEEDS)
    rng = np.random.default_rng(0)
    rng.bit_generator.state = state.rng_state
    assert rng.bit_generator.state == state.rng_state
    Momentum(0.9).load_state_dict(state.optimizer_state)


def test_random_damage_never_reaches_training(good, tmp_path):
    """Any byte changed or the file cut anywhere: refused in one line, or accepted and resumable."""
    raw = good[0].read_bytes()
    path = tmp_path / "damaged.npz"
    accepted = 0
    for damaged in damaged_copies(raw):
        path.write_bytes(damaged)
        try:
            state = load_resumable_checkpoint(path, "fp", **NEEDS)
        except ValueError as e:
            assert "\n" not in str(e) and str(path) in str(e)
        else:
            accepted += 1
            _train(resume_from=state)
    assert accepted < 100
