"""Training checkpoints: a :class:`softmax_exp.learn.model.TrainState` in one ``.npz`` file (no pickle).

A checkpoint carries the config fingerprint of its training, so that it is never resumed into another
one. Files are written to a temporary name and renamed, so a killed writer leaves no half file.

A checkpoint comes back from a store, so it is read as untrusted (:class:`softmax_exp.learn.npz.NpzReader`)
and :func:`load_resumable_checkpoint` checks all of it against the training that will go on from it:
a checkpoint that passes cannot make :meth:`Softmax.train <softmax_exp.learn.model.Softmax.train>` fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softmax_exp.learn.model import WEIGHT_DTYPES
from softmax_exp.learn.npz import NpzReader
from softmax_exp.learn.optim import make_optimizer
from softmax_exp.learn.sgd import EvalPoint, TrainState
from softmax_exp.util.atomic import atomic_path

CHECKPOINT_FORMAT = 1
_OPT = "optimizer."
_MEMBERS = frozenset({"format", "fingerprint", "iteration", "W", "loss", "evals", "rng_state"})
_FLOAT64 = (np.dtype(np.float64),)
_MAX_FINGERPRINT_CHARS = 256  # config_fingerprint is 64 hex digits
_MAX_RNG_STATE_CHARS = 1024  # a PCG64 state as JSON is about 170 characters


def checkpoint_name(iteration: int) -> str:
    """The file name of the checkpoint after ``iteration`` updates: ``iter_0000500.npz``."""
    return f"iter_{iteration:07d}.npz"


def save_checkpoint(path: str | Path, state: TrainState, fingerprint: str) -> Path:
    """Write ``state`` of the training with config ``fingerprint`` to ``path`` atomically."""
    path = Path(path)
    evals = np.array([(e.iteration, e.train_acc, e.val_acc) for e in state.evals],
                     dtype=np.float64).reshape(-1, 3)
    arrays = {
        "format": np.int64(CHECKPOINT_FORMAT),
        "fingerprint": np.str_(fingerprint),
        "iteration": np.int64(state.iteration),
        "W": state.W,
        "loss": np.asarray(state.loss, dtype=np.float64),
        "evals": evals,
        "rng_state": np.str_(json.dumps(state.rng_state)),
        **{_OPT + k: v for k, v in state.optimizer_state.items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_checkpoint(path: str | Path, fingerprint: str) -> TrainState:
    """Read a checkpoint of the training with config ``fingerprint``, checking everything that does not
    depend on the training (see :func:`load_resumable_checkpoint` for what resuming needs); ValueError of
    one line, naming the file and the problem, if the file is not a checkpoint, is damaged or belongs to
    another training."""
    return _read(path, fingerprint, None)


@dataclass(frozen=True)
class _Training:
    """What the training that resumes needs of a checkpoint."""

    dim: int
    num_classes: int
    dtype: np.dtype
    num_iters: int
    optimizer: str


def load_resumable_checkpoint(path: str | Path, fingerprint: str, *, dim: int, num_classes: int,
                              dtype: np.dtype | type | str, num_iters: int, optimizer: str) -> TrainState:
    """Read and fully check a checkpoint for ``Softmax.train(..., resume_from=...)`` of the training with
    config ``fingerprint`` on X (N, ``dim``) of ``dtype``, ``num_classes`` classes, ``num_iters`` iterations,
    optimizer ``optimizer`` (a name in softmax_exp.learn.optim.OPTIMIZERS).

    Checked before any array is allocated: the format, the fingerprint, W (dim, num_classes) of dtype,
    the iteration in 1..num_iters, the loss history (iteration,) and evaluations (k <= iteration, 3) float64,
    the optimizer's arrays (shape and dtype of W), the generator state (taken by a numpy PCG64 Generator;
    the state returned is the one it reports back, so setting it again cannot fail). Then the values: W,
    the losses and the optimizer's arrays finite, evaluations at increasing iterations <= iteration with
    accuracies in [0, 1] (val_acc may be NaN), and the optimizer's array names (its load_state_dict).

    Raises ValueError of one line (``<path> is not a usable checkpoint (<what is wrong>)``).
    """
    make_optimizer(optimizer)  # an unknown name is the caller's error, not the file's: raised as it is
    return _read(path, fingerprint, _Training(int(dim), int(num_classes), np.dtype(dtype), int(num_iters),
                                              optimizer))


def _read(path: str | Path, fingerprint: str, need: _Training | None) -> TrainState:
    try:
        with NpzReader(path) as f:
            f.expect_members(_MEMBERS, prefix=_OPT)
            fmt = f.scalar("format", "iu")
            if fmt != CHECKPOINT_FORMAT:
                raise ValueError(f"checkpoint format {fmt}, this code reads {CHECKPOINT_FORMAT}")
            if f.text("fingerprint", _MAX_FINGERPRINT_CHARS) != fingerprint:
                raise ValueError("it belongs to a training with another config")
            iteration = f.scalar("iteration", "iu")
            if iteration < 1:
                raise ValueError(f"it is at iteration {iteration}")
            if need and iteration > need.num_iters:
                raise ValueError(f"it is at iteration {iteration} of a training of {need.num_iters}")
            W_shape = f.check("W", (need.dtype,) if need else WEIGHT_DTYPES,
                              (need.dim, need.num_classes) if need else (None, None)).shape
            W_dtype = f.headers["W"].dtype.newbyteorder("=")
            f.check("loss", _FLOAT64, (iteration,))
            n_evals = f.check("evals", _FLOAT64, (None, 3)).shape[0]
            if n_evals > iteration:
                raise ValueError(f"it has {n_evals} evaluations in {iteration} iterations")
            optimizer_keys = sorted(n for n in f.headers if n.startswith(_OPT))
            for key in optimizer_keys:  # every optimizer here keeps arrays shaped like W
                f.check(key, (W_dtype,), W_shape)
            rng_state = _generator_state(f.text("rng_state", _MAX_RNG_STATE_CHARS))

            W = _finite("W", f.array("W", (W_dtype,), W_shape))
            loss = _finite("loss", f.array("loss", _FLOAT64, (iteration,)))
            evals = _evals(f.array("evals", _FLOAT64, (None, 3)), iteration)
            optimizer_state = {k[len(_OPT):]: _finite(k, f.array(k, (W_dtype,), W_shape))
                               for k in optimizer_keys}
        if need:
            make_optimizer(need.optimizer).load_state_dict(optimizer_state)  # its names, as train will
    except ValueError as e:
        raise ValueError(f"{path} is not a usable checkpoint ({e})") from None
    return TrainState(iteration, W, optimizer_state, rng_state, loss, evals)


def _finite(name: str, a: np.ndarray) -> np.ndarray:
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has NaN or inf")
    return a


def _evals(a: np.ndarray, iteration: int) -> list[EvalPoint]:
    """Rows (iteration, train_acc, val_acc) as EvalPoints, checked: iterations whole, increasing, in
    1..``iteration``; accuracies in [0, 1], val_acc NaN when there was no validation set."""
    its, train, val = a[:, 0], a[:, 1], a[:, 2]
    if not (np.isfinite(its).all() and (its == np.floor(its)).all() and (its >= 1).all()
            and (its <= iteration).all() and (np.diff(its) > 0).all()):
        raise ValueError(f"evals' iterations are not increasing whole numbers in 1..{iteration}")
    if not ((train >= 0) & (train <= 1)).all() or not (np.isnan(val) | ((val >= 0) & (val <= 1))).all():
        raise ValueError("evals has an accuracy outside [0, 1]")
    return [EvalPoint(int(i), float(t), float(v)) for i, t, v in a.tolist()]


_STATE_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}


def _generator_state(text: str) -> dict:
    """The minibatch generator's state from its JSON, once a numpy Generator of the bit generator training
    uses (PCG64) has taken it; the state returned is the one that generator reports back."""
    try:
        state = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("rng_state is not JSON") from None
    if isinstance(state, dict) and state.get("bit_generator") != "PCG64":
        raise ValueError(f"rng_state is of bit generator {str(state.get('bit_generator'))[:40]!r}; "
                         "training draws with PCG64")
    inner = state.get("state") if isinstance(state, dict) else None
    if not (isinstance(state, dict) and set(state) == _STATE_KEYS and isinstance(inner, dict)
            and set(inner) == {"state", "inc"} and _uint(inner["state"], 128) and _uint(inner["inc"], 128)
            and inner["inc"] % 2 == 1 and _uint(state["has_uint32"], 1) and _uint(state["uinteger"], 32)):
        raise ValueError("rng_state is not the state of a numpy PCG64 generator")
    generator = np.random.Generator(np.random.PCG64())
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"rng_state is refused by numpy's PCG64 ({e})") from None
    back = generator.bit_generator.state
    if back != state:
        raise ValueError("rng_state does not survive a numpy PCG64 generator unchanged")
    return back


def _uint(v, bits: int) -> bool:
    """``v`` is an int (not a bool) in [0, 2**bits)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << bits
