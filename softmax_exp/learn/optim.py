"""Parameter updates for minibatch SGD: plain SGD, momentum (optionally Nesterov), learning-rate schedules.

An optimizer's ``step(W, dW, lr)`` updates W in place and uses dW as scratch space (the kernel hands back
a fresh dW every step), so a step allocates nothing. A schedule maps the iteration number to the rate.

:class:`SGDParams` and :class:`MomentumParams` are the settings of each (the ``optimizer`` config group's
schema), checked once when made; :meth:`SGDParams.build` makes the optimizer and the schedule from them,
once per training. The classes and :func:`make_schedule` trust what they are given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from softmax_exp.util.constraints import Boolean, Checked, GroupName, Integer, OneOf, Real, option

SCHEDULES = ("none", "step", "cosine")

Schedule = Callable[[int], float]


class Optimizer(Protocol):
    name: str

    def step(self, W: np.ndarray, dW: np.ndarray, lr: float) -> None: ...

    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...


class SGD:
    """Vanilla SGD, the course's update: ``W -= lr * dW``."""

    name = "sgd"

    def step(self, W: np.ndarray, dW: np.ndarray, lr: float) -> None:
        """Update W (D, C) in place from the gradient dW (D, C, same dtype; overwritten) at rate lr."""
        dW *= lr
        W -= dW

    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain SGD keeps no state between steps."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"plain SGD has no state; the checkpoint has {sorted(state)}")


class Momentum:
    """SGD with momentum ``mu``; with ``nesterov`` the look-ahead form.

    The velocity v (D, C, dtype of W) starts at zero; per step ``v = mu * v + dW``, then
    ``W -= lr * v`` (classical) or ``W -= lr * (dW + mu * v)`` (Nesterov, written so the learning rate
    may change from step to step). The velocity is the only allocation, made on the first step.
    """

    name = "momentum"

    def __init__(self, momentum: float = 0.9, nesterov: bool = False) -> None:
        self.momentum = float(momentum)  # in [0, 1): MomentumParams checks it
        self.nesterov = bool(nesterov)
        self.velocity: np.ndarray | None = None

    def step(self, W: np.ndarray, dW: np.ndarray, lr: float) -> None:
        """Update W (D, C) in place from dW (D, C, same dtype; overwritten) at rate lr."""
        if self.velocity is None:
            self.velocity = np.zeros_like(W)
        v = self.velocity
        v *= self.momentum
        v += dW
        if self.nesterov:
            dW *= lr
            W -= dW  # W -= lr * dW ...
            np.multiply(v, lr * self.momentum, out=dW)
            W -= dW  # ... and -= lr * mu * v, with dW as the scratch buffer
        else:
            np.multiply(v, lr, out=dW)
            W -= dW

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of the velocity (D, C), or nothing before the first step."""
        return {} if self.velocity is None else {"velocity": self.velocity.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Take the velocity back from :meth:`state_dict` (no velocity: start from zero)."""
        unknown = set(state) - {"velocity"}
        if unknown:
            raise ValueError(f"momentum's state has only a velocity; the checkpoint has {sorted(unknown)}")
        self.velocity = np.array(state["velocity"], copy=True) if "velocity" in state else None


@dataclass
class SGDParams(Checked):
    """Plain SGD, the course's update: W -= lr_t * dW (conf/optimizer/sgd.yaml)."""

    KEY = "optimizer."

    name: str = option("sgd", GroupName("optimizer", lambda: OPTIMIZERS),
                       "set by the group: optimizer=sgd | momentum")
    schedule: str = option("none", OneOf(SCHEDULES), "none | step | cosine: lr_t over the iterations t")
    step_size: int = option(100, Integer(low=1), "step: lr_t = lr * gamma ** (t // step_size)")
    gamma: float = option(0.5, Real(low=0, high=1, low_open=True), "step: the factor, in (0, 1]")
    min_lr: float = option(0.0, Real(low=0), "cosine: lr_t goes from lr down to min_lr at the last iteration")

    def build(self, lr: float, num_iters: int) -> tuple[Optimizer, Schedule]:
        """The optimizer these settings describe and the schedule of the rate ``lr`` over ``num_iters``
        iterations (min_lr <= lr: the config's rule)."""
        return SGD(), make_schedule(self.schedule, lr, num_iters, self.step_size, self.gamma, self.min_lr)


@dataclass
class MomentumParams(SGDParams):
    """SGD with momentum: v = momentum * v + dW; W -= lr_t * v (Nesterov: W -= lr_t * (dW + momentum * v))
    (conf/optimizer/momentum.yaml)."""

    name: str = option("momentum", GroupName("optimizer", lambda: OPTIMIZERS))
    momentum: float = option(0.9, Real(low=0, high=1, high_open=True), "in [0, 1)")
    nesterov: bool = option(False, Boolean(), "the look-ahead form")

    def build(self, lr: float, num_iters: int) -> tuple[Optimizer, Schedule]:
        return Momentum(self.momentum, self.nesterov), super().build(lr, num_iters)[1]


OPTIMIZERS: dict[str, type[SGDParams]] = {"sgd": SGDParams, "momentum": MomentumParams}


def make_optimizer(name: str) -> Optimizer:
    """An optimizer with the default settings of ``name`` (a key of OPTIMIZERS): what a checkpoint's
    optimizer arrays are checked against."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]().build(1.0, 1)[0]


def make_schedule(
    name: str,
    lr: float,
    num_iters: int,
    step_size: int = 100,
    gamma: float = 0.5,
    min_lr: float = 0.0,
) -> Schedule:
    """Learning rate at iteration ``it`` (0-based), as a function; the settings are SGDParams' (checked
    there).

    none: ``lr``. step: ``lr * gamma ** (it // step_size)``. cosine: from ``lr`` at it = 0 down to
    ``min_lr`` at it = num_iters, half a cosine wave.
    """
    if name == "none":
        return lambda it: lr
    if name == "step":
        return lambda it: lr * gamma ** (it // step_size)
    if name == "cosine":
        return lambda it: min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * it / num_iters))
    raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
