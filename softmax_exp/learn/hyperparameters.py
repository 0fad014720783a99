"""What defines one SGD training, and the bounds every entry point checks it against.

:class:`TrainParams` is the training loop's schema (:mod:`softmax_exp.learn.sgd`); the config schema
(:mod:`softmax_exp.config`) checks its top-level options with the same :func:`check_hyperparameters`, so
a bound is written once and a bad value gets the same message from Python and from the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

IDX_BLOCK = 256  # minibatch indices are drawn this many iterations at a time (softmax_exp.learn.sgd)
MAX_NUM_ITERS = 10**8  # the loss history (float64) of a training is allocated up front: 800 MB at most
MAX_BATCH_SIZE = 65536  # a block of draws holds IDX_BLOCK x batch_size row indices: 128 MiB at most


@dataclass(frozen=True)
class TrainParams:
    """The hyperparameters of one minibatch SGD training (checked when made; ValueError names the value).

    lr, reg : learning rate > 0 and L2 strength >= 0 (the loss has ``0.5 * reg * sum(W * W)``)
    num_iters : updates, 1 <= num_iters <= MAX_NUM_ITERS
    batch_size : rows per minibatch, 1 <= batch_size <= MAX_BATCH_SIZE (<= N without replacement)
    seed : seeds W's initialisation and the minibatch draws
    replace : draw minibatch rows with replacement (the course's choice) or without
    init_scale : W starts as ``init_scale * randn(D, C)`` (when the model has no W yet)
    eval_every : train / val accuracy every this many iterations as well as at the end (0: only at the end)
    eval_train_rows : the train_acc of those intermediate evaluations on this many training rows, a fixed
        sample (seeded apart from ``seed``); None: on all. The final train_acc is always on all rows
    """

    lr: float
    reg: float
    num_iters: int
    batch_size: int = 200
    seed: int = 0
    replace: bool = True
    init_scale: float = 0.001
    eval_every: int = 0
    eval_train_rows: int | None = None

    def __post_init__(self) -> None:
        check_hyperparameters(self.lr, self.reg, self.num_iters, self.batch_size, self.replace,
                              self.eval_every)
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {self.seed!r}")
        if not _is_real(self.init_scale) or not (math.isfinite(self.init_scale) and self.init_scale > 0):
            raise ValueError(f"init_scale must be a finite number > 0; got {self.init_scale!r}")
        rows = self.eval_train_rows
        if rows is not None and (not _is_int(rows) or rows < 1):
            raise ValueError(f"eval_train_rows must be null or an integer >= 1; got {rows!r}")
        # numpy scalars become Python numbers: the kernels are compiled for float reg, not np.float32
        for name in ("lr", "reg", "init_scale"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("num_iters", "batch_size", "seed", "eval_every"):
            object.__setattr__(self, name, int(getattr(self, name)))


def check_hyperparameters(
    lr: float,
    reg: float,
    num_iters: int,
    batch_size: int,
    replace: bool = True,
    eval_every: int = 0,
    n_train: int | None = None,
) -> None:
    """Raise ValueError naming the first bad value: lr > 0, reg >= 0, 1 <= num_iters <= MAX_NUM_ITERS,
    1 <= batch_size <= MAX_BATCH_SIZE (and <= n_train when sampling without replacement), eval_every >= 0.
    The upper bounds keep the memory a training allocates up front sane (see their comments)."""
    if not _is_real(lr) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a finite number > 0; got {lr!r}")
    if not _is_real(reg) or not reg >= 0 or not math.isfinite(reg):
        raise ValueError(f"reg must be a finite number >= 0; got {reg!r}")
    if not _is_int(num_iters) or num_iters < 1:
        raise ValueError(f"num_iters must be an integer >= 1; got {num_iters!r}")
    if num_iters > MAX_NUM_ITERS:
        raise ValueError(f"num_iters must be at most {MAX_NUM_ITERS:.0e} (the loss history takes 8 bytes an "
                         f"iteration); got {num_iters}")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if batch_size > MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be at most {MAX_BATCH_SIZE} (the row indices of {IDX_BLOCK} "
                         f"minibatches are drawn at once, 8 bytes each); got {batch_size}")
    if not _is_int(eval_every) or eval_every < 0:
        raise ValueError(f"eval_every must be an integer >= 0 (0: only at the end); got {eval_every!r}")
    if not isinstance(replace, bool):
        raise ValueError(f"replace must be true or false; got {replace!r}")
    if n_train is not None and not replace and batch_size > n_train:
        raise ValueError(
            f"batch_size={batch_size} is larger than the training set ({n_train} rows) and sampling "
            f"is without replacement; lower batch_size or set model.replace=true"
        )


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
