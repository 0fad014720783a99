"""Updates and learning-rate schedules of softmax_exp.learn.optim against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softmax_exp.learn.optim import SGD, Momentum, MomentumParams, SGDParams, make_optimizer, make_schedule


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((7, 3)).astype(np.float32),
            [rng.standard_normal((7, 3)).astype(np.float32) for _ in range(4)])


def test_sgd_is_the_course_update_in_place():
    W, grads = _arrays()
    expected = W - np.float32(0.1) * grads[0]
    before = W
    SGD().step(W, grads[0].copy(), 0.1)
    assert W is before and W.dtype == np.float32
    np.testing.assert_array_equal(W, expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_its_formula(nesterov):
    W, grads = _arrays()
    ref = W.astype(np.float64)
    v = np.zeros_like(ref)
    opt = Momentum(0.9, nesterov)
    for t, g in enumerate(grads):
        lr = 0.1 / (t + 1)
        v = 0.9 * v + g
        ref = ref - lr * ((g + 0.9 * v) if nesterov else v)
        opt.step(W, g.copy(), lr)
    np.testing.assert_allclose(W, ref, rtol=1e-5, atol=1e-6)


def test_the_settings_build_the_optimizer_and_are_checked_when_made():
    assert make_optimizer("sgd").name == "sgd"
    opt, schedule = MomentumParams(momentum=0.5, nesterov=True, schedule="step", step_size=10).build(0.1, 100)
    assert (opt.name, opt.momentum, opt.nesterov) == ("momentum", 0.5, True)
    assert [schedule(i) for i in (0, 10)] == [0.1, 0.05]
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        make_optimizer("adam")
    with pytest.raises(ValueError, match=r"optimizer.momentum must be a number in \[0, 1\); got 1.0"):
        MomentumParams(momentum=1.0)
    with pytest.raises(ValueError, match="optimizer.step_size must be an integer >= 1; got 0"):
        SGDParams(step_size=0)
    with pytest.raises(ValueError, match=r"optimizer.gamma must be a number in \(0, 1\]; got 1.5"):
        SGDParams(gamma=1.5)
    with pytest.raises(ValueError, match="optimizer.name is set by the optimizer group, not by hand"):
        SGDParams(name="x")


def test_schedules():
    assert make_schedule("none", 0.1, 100)(57) == 0.1
    step = make_schedule("step", 0.1, 100, step_size=10, gamma=0.5)
    assert [step(i) for i in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]
    cos = make_schedule("cosine", 0.1, 100, min_lr=0.01)
    assert cos(0) == pytest.approx(0.1) and cos(100) == pytest.approx(0.01)
    assert cos(50) == pytest.approx(0.01 + 0.5 * 0.09 * (1 + math.cos(math.pi / 2)))
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        make_schedule("linear", 0.1, 100)
