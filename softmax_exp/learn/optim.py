"""Parameter updates for minibatch SGD: plain SGD, momentum (optionally Nesterov), learning-rate schedules.

An optimizer's ``step(W, dW, lr)`` updates W in place and uses dW as scratch space (the kernel hands back
a fresh dW every step), so a step allocates nothing. A schedule maps the iteration number to the rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

OPTIMIZERS = ("sgd", "momentum")
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
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"optimizer.momentum must be a number in [0, 1); got {momentum!r}")
        self.momentum = float(momentum)
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


def make_optimizer(name: str, momentum: float = 0.9, nesterov: bool = False) -> Optimizer:
    """The optimizer called ``name`` (one of OPTIMIZERS); momentum / nesterov apply to 'momentum' only."""
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum, nesterov)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def make_schedule(
    name: str,
    lr: float,
    num_iters: int,
    step_size: int = 100,
    gamma: float = 0.5,
    min_lr: float = 0.0,
) -> Schedule:
    """Learning rate at iteration ``it`` (0-based), as a function.

    none: ``lr``. step: ``lr * gamma ** (it // step_size)``. cosine: from ``lr`` at it = 0 down to
    ``min_lr`` at it = num_iters, half a cosine wave.
    """
    if name == "none":
        return lambda it: lr
    if name == "step":
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"optimizer.step_size must be an integer >= 1; got {step_size!r}")
        if not 0 < gamma <= 1:
            raise ValueError(f"optimizer.gamma must be in (0, 1]; got {gamma!r}")
        return lambda it: lr * gamma ** (it // step_size)
    if name == "cosine":
        if not 0 <= min_lr <= lr:
            raise ValueError(f"optimizer.min_lr must be in [0, lr = {lr}]; got {min_lr!r}")
        return lambda it: min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * it / num_iters))
    raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
