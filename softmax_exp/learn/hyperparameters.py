"""What defines one minibatch SGD training: its hyperparameters, each declared once with its default, its
constraint and its meaning.

:class:`TrainParams` is the training loop's input (:mod:`softmax_exp.learn.sgd`) and, as the base of
:class:`softmax_exp.config.schema.Config`, the schema of the config's top-level training options: a new
hyperparameter is a line here and its use in the loop. It is checked once, when it is made (a Config is
checked when ``to_config`` makes it), and trusted after.
"""

from __future__ import annotations

from dataclasses import dataclass

from softmax_exp.util.constraints import Checked, Integer, Real, is_int, option

IDX_BLOCK = 256  # minibatch indices are drawn this many iterations at a time (softmax_exp.learn.sgd)
MAX_NUM_ITERS = 10**8  # the loss history (float64) of a training is allocated up front: 800 MB at most
MAX_BATCH_SIZE = 65536  # a block of draws holds IDX_BLOCK x batch_size row indices: 128 MiB at most


@dataclass
class TrainParams(Checked):
    """The hyperparameters of one minibatch SGD training, checked when made (one-line
    :class:`~softmax_exp.util.constraints.SettingError`, a ValueError, naming the value)."""

    lr: float = option(3e-3, Real(low=0, low_open=True),
                       "learning rate (> 0); the schedule in optimizer/ may lower it over time")
    reg: float = option(1e-2, Real(low=0),
                        "L2 strength (>= 0): loss = mean(-log p_y) + 0.5 * reg * sum(W * W)")
    num_iters: int = option(500, Integer(low=1, high=MAX_NUM_ITERS, high_text="1e+08",
                                         why_high="the loss history takes 8 bytes an iteration"),
                            "SGD iterations (>= 1)")
    batch_size: int = option(200, Integer(low=1, high=MAX_BATCH_SIZE, why_high=(
        f"the row indices of {IDX_BLOCK} minibatches are drawn at once, 8 bytes each")),
        "rows per minibatch (>= 1)")
    seed: int = option(0, Integer(low=0), "seeds W = init_scale * randn(D, C) and the minibatch draws")
    eval_every: int = option(100, Integer(low=0, note="0: only at the end"),
                             "train_acc / val_acc every this many iterations (0: only at the end)")
    eval_train_rows: int | None = option(5000, Integer(low=1, nullable=True),
                                         "train_acc before the end: on a fixed sample this big (null: all)")

    def __post_init__(self) -> None:
        super().__post_init__()
        # numpy scalars become Python numbers: the kernels are compiled for float reg, not np.float32
        for f in ("lr", "reg"):
            setattr(self, f, float(getattr(self, f)))
        for f in ("num_iters", "batch_size", "seed", "eval_every"):
            setattr(self, f, int(getattr(self, f)))
        if is_int(self.eval_train_rows):
            self.eval_train_rows = int(self.eval_train_rows)

    def check_rows(self, n_train: int, replace: bool) -> None:
        """The one check that needs the data: a minibatch drawn without replacement must fit the ``n_train``
        training rows. ValueError naming the fix."""
        if not replace and self.batch_size > n_train:
            raise ValueError(f"batch_size={self.batch_size} is larger than the training set ({n_train} "
                             f"rows) and sampling is without replacement; lower batch_size or set "
                             f"model.replace=true")
