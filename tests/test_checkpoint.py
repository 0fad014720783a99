"""Checkpoints: a training stopped at a checkpoint and resumed ends bit-identical to one never stopped."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_exp.learn.checkpoint import (
    checkpoint_name,
    load_checkpoint,
    load_resumable_checkpoint,
    save_checkpoint,
)
from softmax_exp.learn.model import ModelParams, Preprocessing, Softmax
from softmax_exp.learn.optim import SGD, Momentum, make_schedule
from softmax_exp.learn.sgd import NoHooks


def _blobs(n=700, d=12, c=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = 3 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    X = np.hstack([centers[y] + rng.standard_normal((n, d)), np.ones((n, 1))]).astype(np.float32)
    return X, y.astype(np.int64)


def _pre():
    return Preprocessing(np.zeros(12), True, tuple("abcd"), (12, 1, 1))


class _Checkpoints(NoHooks):
    """Hooks that hand every checkpoint to ``keep``."""

    def __init__(self, keep):
        self.on_checkpoint = keep


def _train(X, y, optimizer, replace, **kwargs):
    model = Softmax("numba_fused", _pre(), ModelParams(replace=replace))
    h = model.train(X, y, lr=0.05, reg=1e-2, num_iters=700, batch_size=50, seed=5, optimizer=optimizer,
                    schedule=make_schedule("cosine", 0.05, 700), eval_every=100,
                    X_val=X[:100], y_val=y[:100], **kwargs)
    return model, h


# 256 iterations share one block of minibatch draws: stop inside a block and on its boundary
@pytest.mark.parametrize("stop_at", [300, 512])
@pytest.mark.parametrize("make_opt, replace", [(SGD, True), (lambda: Momentum(0.9, True), True),
                                               (lambda: Momentum(0.8), False)])
def test_resume_from_any_checkpoint_is_bit_identical(stop_at, make_opt, replace, tmp_path):
    X, y = _blobs()
    whole, h_whole = _train(X, y, make_opt(), replace)

    saved = []
    _train(X, y, make_opt(), replace, checkpoint_every=stop_at,
           hooks=_Checkpoints(lambda state: saved.append(save_checkpoint(
               tmp_path / checkpoint_name(state.iteration), state, "fp"))))
    assert [p.name for p in saved] == [checkpoint_name(k) for k in range(stop_at, 700, stop_at)]
    state = load_resumable_checkpoint(saved[0], "fp", dim=X.shape[1], num_classes=4, dtype=X.dtype,
                                      num_iters=700, optimizer=make_opt().name)
    assert state.iteration == stop_at and state.loss.shape == (stop_at,)
    assert [e.iteration for e in state.evals] == list(range(100, stop_at + 1, 100))

    resumed, h = _train(X, y, make_opt(), replace, resume_from=state)
    assert np.array_equal(resumed.W, whole.W)
    assert np.array_equal(h.loss, h_whole.loss) and h.evals == h_whole.evals


def test_checkpoint_state_is_a_copy_and_momentum_keeps_its_velocity():
    X, y = _blobs()
    states = []
    model, _ = _train(X, y, Momentum(0.9), True, checkpoint_every=200, hooks=_Checkpoints(states.append))
    assert [s.iteration for s in states] == [200, 400, 600]  # none at the end: the run is done
    assert not np.array_equal(states[0].W, model.W) and not np.shares_memory(states[-1].W, model.W)
    assert set(states[0].optimizer_state) == {"velocity"}
    assert not np.array_equal(states[0].optimizer_state["velocity"], states[1].optimizer_state["velocity"])


def test_a_checkpoint_is_never_resumed_into_another_training(tmp_path):
    X, y = _blobs()
    states = []
    _train(X, y, SGD(), True, checkpoint_every=300, hooks=_Checkpoints(states.append))
    path = save_checkpoint(tmp_path / "c.npz", states[0], "fingerprint-a")
    with pytest.raises(ValueError, match="belongs to a training with another config"):
        load_checkpoint(path, "fingerprint-b")
    with pytest.raises(ValueError, match="the checkpoint's W is float32 \\(13, 4\\); this training needs "
                                         "float64"):
        _train(X.astype(np.float64), y, SGD(), True, resume_from=states[0])
    with pytest.raises(ValueError, match="plain SGD has no state"):
        _train(X, y, SGD(), True, resume_from=load_checkpoint(
            save_checkpoint(tmp_path / "m.npz", _momentum_state(X, y), "fp"), "fp"))
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="is not a usable checkpoint"):
        load_checkpoint(tmp_path / "bad.npz", "fp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "c.npz", "m.npz"]  # no temp files


def _momentum_state(X, y):
    states = []
    _train(X, y, Momentum(0.9), True, checkpoint_every=300, hooks=_Checkpoints(states.append))
    return states[0]
