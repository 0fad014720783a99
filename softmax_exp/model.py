"""The Softmax classifier: minibatch SGD training, prediction, and save / load with its preprocessing.

A training step reads its minibatch rows in place (the kernel gets ``idx``; with ``numba_fused`` no row
is copied), and the update is in place (see :mod:`softmax_exp.optim`), so the loop allocates only the
kernel's dW. The same data, seed, kernel and thread count give the same W and loss history, bit for bit.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from softmax_exp import timing
from softmax_exp.kernels import (
    check_finite_result,
    check_inputs,
    check_predict_inputs,
    count_correct,
    count_correct_unchecked,
    get_kernel,
    predict_labels,
)
from softmax_exp.optim import SGD, Optimizer, Schedule

MODEL_FORMAT = 1
_IDX_BLOCK = 256  # minibatch indices are drawn this many iterations at a time
MAX_NUM_ITERS = 10**8  # the loss history (float64) of a training is allocated up front: 800 MB at most
MAX_BATCH_SIZE = 65536  # a block of draws holds 256 x batch_size row indices: 128 MiB at most


@dataclass(frozen=True)
class Preprocessing:
    """How raw images become rows of X: flatten in HWC order, subtract ``mean_image``, append a 1.

    mean_image : (H*W*channels,) float64
    bias_trick : the last column of X is ones and the last row of W is the bias
    class_names : C names, in label order
    image_shape : (H, W, channels)
    """

    mean_image: np.ndarray
    bias_trick: bool
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]

    @classmethod
    def of(cls, dataset) -> Preprocessing:
        """The preprocessing of a :class:`softmax_exp.data.Dataset`."""
        return cls(np.asarray(dataset.mean_image, dtype=np.float64), bool(dataset.bias_trick),
                   tuple(dataset.class_names), tuple(int(s) for s in dataset.image_shape))


@dataclass(frozen=True)
class EvalPoint:
    """Accuracies after ``iteration`` updates (val_acc is NaN when no validation set was given)."""

    iteration: int
    train_acc: float
    val_acc: float


@dataclass
class TrainHistory:
    """What one call of :meth:`Softmax.train` did.

    loss : (iterations_done,) float64, the minibatch loss at iteration t (before its update), reg included
    evals : accuracies every ``eval_every`` iterations and after the last one (none if diverged)
    diverged : None, or why training stopped early (loss or W became NaN / inf)
    """

    loss: np.ndarray
    evals: list[EvalPoint] = field(default_factory=list)
    diverged: str | None = None


@dataclass
class TrainState:
    """Everything a training needs to go on after ``iteration`` updates exactly as if never stopped.

    iteration : updates done so far (the next minibatch is number ``iteration``)
    W : (D, C) weights after those updates, dtype of the training X
    optimizer_state : the optimizer's arrays (momentum's velocity), see ``Optimizer.state_dict``
    rng_state : the minibatch generator's ``bit_generator.state`` at the start of the block of draws
        that holds iteration ``iteration`` (so a resumed training redraws that block identically)
    loss : (iteration,) float64 minibatch losses so far; evals : the evaluations so far
    """

    iteration: int
    W: np.ndarray
    optimizer_state: dict[str, np.ndarray]
    rng_state: dict
    loss: np.ndarray
    evals: list[EvalPoint] = field(default_factory=list)


OnEval = Callable[[EvalPoint, np.ndarray], None]
OnCheckpoint = Callable[[TrainState], None]


class Softmax:
    """Multinomial logistic regression ``scores = X @ W`` trained by minibatch SGD.

    Parameters
    ----------
    kernel : name of a loss kernel in :data:`softmax_exp.kernels.KERNELS`
    preprocessing : how raw images map to rows of X; needed by :meth:`predict_images` and saved with W

    Attributes
    ----------
    W : (D, C) weights in the dtype of the training X, or None before training / loading
    """

    def __init__(self, kernel: str = "numba_fused", preprocessing: Preprocessing | None = None) -> None:
        self.kernel_name = kernel
        self.kernel = get_kernel(kernel)
        self.preprocessing = preprocessing
        self.W: np.ndarray | None = None

    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        lr: float,
        reg: float,
        num_iters: int,
        batch_size: int = 200,
        seed: int = 0,
        optimizer: Optimizer | None = None,
        schedule: Schedule | None = None,
        replace: bool = True,
        init_scale: float = 0.001,
        eval_every: int = 0,
        eval_train_rows: int | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        on_eval: OnEval | None = None,
        progress: bool = False,
        checkpoint_every: int = 0,
        on_checkpoint: OnCheckpoint | None = None,
        resume_from: TrainState | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainHistory:
        """Train W by minibatch SGD (W starts as ``init_scale * randn(D, C)`` from ``seed`` if None).

        Parameters
        ----------
        X : (N, D) float32 or float64 training rows (may be a read-only memmap; never copied)
        y : (N,) int labels in [0, C); C = max(y) + 1 unless W or the preprocessing fixes it
        lr, reg : learning rate > 0 and L2 strength >= 0 (loss has ``0.5 * reg * sum(W * W)``)
        num_iters : iterations >= 1; batch_size : rows per minibatch, >= 1 (<= N without replacement)
        seed : seeds W's initialisation and the minibatch draws
        optimizer : an object with ``step(W, dW, lr)`` (default: plain SGD)
        schedule : iteration -> learning rate (default: ``lr`` throughout)
        replace : draw minibatch rows with replacement (the course's choice) or without
        eval_every : also compute train / val accuracy every this many iterations (0: only at the end)
        eval_train_rows : train_acc of those intermediate evaluations on this many training rows, a fixed
            sample (seeded apart from ``seed``, so every training on X uses the same rows); None: on all.
            The final train_acc is always on all of them
        X_val, y_val : optional validation rows for val_acc
        on_eval : called with (EvalPoint, loss history so far) at every evaluation
        progress : show a tqdm bar
        checkpoint_every, on_checkpoint : call ``on_checkpoint(TrainState)`` every this many
            iterations (0: never); the state holds copies, safe to keep
        resume_from : a TrainState of the same training (same data, seed, hyperparameters) to go on
            from; the result is bit-identical to a training that was never stopped
        should_stop : asked after every step; when it answers True, KeyboardInterrupt is raised there
            (how Ctrl-C reaches a loop that spends its time in compiled kernels)

        Returns
        -------
        TrainHistory; ``diverged`` is set (and the loop stopped) when the loss or W stops being finite.
        """
        N = _check_train_args(X, y, lr, reg, num_iters, batch_size, replace, eval_every)
        if not _is_int(checkpoint_every) or checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be an integer >= 0 (0: never); got {checkpoint_every!r}")
        rng = np.random.default_rng(seed)
        optimizer = optimizer if optimizer is not None else SGD()
        loss_history = np.empty(num_iters, dtype=np.float64)
        history = TrainHistory(loss_history[:0])
        start = 0
        if resume_from is not None:
            start = self._restore(resume_from, X, num_iters, optimizer, rng, loss_history, history)
        elif self.W is None:
            C = len(self.preprocessing.class_names) if self.preprocessing else int(np.max(y)) + 1
            self.W = (init_scale * rng.standard_normal((X.shape[1], C))).astype(X.dtype)
        # checked once here; every step then calls the kernel's unchecked twin
        W, X, y, reg, _ = check_inputs(self.W, X, y, reg)
        if X_val is not None:
            _, X_val, y_val, _ = check_predict_inputs(W, X_val, y_val)
        eval_rows = _eval_sample(N, eval_train_rows)
        schedule = schedule if schedule is not None else (lambda it: lr)
        kernel = get_kernel(self.kernel_name, checked=False)
        done = start
        block = None
        block_state = rng.bit_generator.state
        with ExitStack() as stack:
            stack.enter_context(timing.section("sgd"))
            bar = stack.enter_context(_progress_bar(num_iters, start)) if progress else None
            for it in range(start, num_iters):
                if replace:
                    if it % _IDX_BLOCK == 0 or block is None:
                        block_state = rng.bit_generator.state
                        block = rng.integers(0, N, size=(_IDX_BLOCK, batch_size), dtype=np.intp)
                    idx = block[it % _IDX_BLOCK]
                else:
                    idx = rng.choice(N, size=batch_size, replace=False)
                loss, dW = kernel(W, X, y, reg, idx)
                if not math.isfinite(loss):  # W was finite, so NaN or inf here is divergence ...
                    if not np.isfinite(W).all():  # (the last update made W non-finite)
                        history.diverged = f"W became NaN or inf at iteration {it}; lower lr"
                        break
                    check_finite_result(loss, dW, X, idx)  # ... or NaN in the rows of X: ValueError
                loss_history[it] = loss
                done = it + 1
                history.loss = loss_history[:done]
                if not math.isfinite(loss):
                    history.diverged = f"loss became {loss} at iteration {it}; lower lr"
                    break
                optimizer.step(W, dW, schedule(it))
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                if bar is not None:
                    bar.update(1)
                if eval_every and done % eval_every == 0 and done < num_iters:
                    self._evaluate(history, X, y, X_val, y_val, on_eval, bar, eval_rows)
                if on_checkpoint and checkpoint_every and done % checkpoint_every == 0 and done < num_iters:
                    # the next iteration draws a new block (or, without replacement, from here on)
                    state = (rng.bit_generator.state if not replace or done % _IDX_BLOCK == 0
                             else block_state)
                    on_checkpoint(TrainState(done, W.copy(), optimizer.state_dict(), state,
                                             history.loss.copy(), list(history.evals)))
            if history.diverged is None and not np.isfinite(W).all():
                history.diverged = f"W became NaN or inf at iteration {done - 1}; lower lr"
            if history.diverged is None:
                self._evaluate(history, X, y, X_val, y_val, on_eval, bar)
        return history

    def _restore(self, state: TrainState, X, num_iters, optimizer, rng, loss_history, history) -> int:
        """Put a TrainState back (W, optimizer, generator, history so far); return its iteration."""
        if not 0 < state.iteration <= num_iters or state.loss.shape != (state.iteration,):
            raise ValueError(f"the checkpoint is at iteration {state.iteration} of a training of "
                             f"{num_iters}; it belongs to another training")
        if state.W.ndim != 2 or state.W.shape[0] != X.shape[1] or state.W.dtype != X.dtype:
            raise ValueError(f"the checkpoint's W is {state.W.dtype} {state.W.shape}; this training "
                             f"needs {X.dtype} ({X.shape[1]}, C)")
        self.W = np.array(state.W, copy=True)
        optimizer.load_state_dict(state.optimizer_state)
        rng.bit_generator.state = state.rng_state
        loss_history[: state.iteration] = state.loss
        history.loss = loss_history[: state.iteration]
        history.evals = list(state.evals)
        return state.iteration

    def _evaluate(self, history, X, y, X_val, y_val, on_eval, bar, rows=None) -> None:
        """Accuracies now, on the training rows ``rows`` (all if None) and the validation rows; inputs
        checked by train."""
        done = len(history.loss)
        W = self.W
        n = X.shape[0] if rows is None else rows.shape[0]
        with timing.section("evaluation"):
            train_acc = count_correct_unchecked(W, X, y, rows) / n
            val_acc = (count_correct_unchecked(W, X_val, y_val) / X_val.shape[0] if X_val is not None
                       else math.nan)
        point = EvalPoint(done, train_acc, val_acc)
        history.evals.append(point)
        if bar is not None:
            bar.set_postfix(loss=f"{history.loss[-1]:.4f}",
                            train_acc=f"{train_acc:.3f}", val_acc=f"{val_acc:.3f}", refresh=False)
        if on_eval is not None:
            on_eval(point, history.loss)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) int64 for preprocessed rows X (N, D) in the dtype of W:
        ``argmax(X @ W, axis=1)``, in one parallel pass over X (softmax_exp.kernels.predict_labels)."""
        W = self._check_rows(X)
        return predict_labels(W, X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) float64 for preprocessed rows X (N, D): the softmax of ``X @ W``
        (numpy's product), rows summing to 1. A row's argmax is the label :meth:`predict` gives, but where
        two classes' scores are equal to within float32 rounding (the two sum in other orders)."""
        W = self._check_rows(X)
        scores = (X @ W).astype(np.float64)
        scores -= scores.max(axis=1, keepdims=True)  # exp never overflows; the result is unchanged
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows of X (N, D) whose predicted label equals y (N,), labels in [0, C)."""
        W = self._check_rows(X)
        return count_correct(W, X, y) / X.shape[0]

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Raw images (N, H, W, channels) or (N, H*W*channels), pixel values as in the source data,
        to rows (N, D) in the dtype of W, as the training data was prepared."""
        W = self._trained()
        pre = self._preprocessing()
        images = np.asarray(images)
        flat = images.reshape(images.shape[0], -1)
        if flat.shape[1] != pre.mean_image.shape[0]:
            raise ValueError(
                f"images must have {pre.mean_image.shape[0]} values each (image shape "
                f"{pre.image_shape}); got shape {images.shape}"
            )
        X = (flat.astype(np.float64) - pre.mean_image).astype(W.dtype)
        if pre.bias_trick:
            X = np.hstack([X, np.ones((X.shape[0], 1), dtype=W.dtype)])
        return X

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) int64 of raw images (see :meth:`preprocess`)."""
        return self.predict(self.preprocess(images))

    def save(self, path: str | Path) -> Path:
        """Write W and the preprocessing to ``path`` (.npz, no pickle); return the path written."""
        W = self._trained()
        pre = self._preprocessing()
        path = Path(path)
        with open(path, "wb") as f:  # an open file: np.savez would append .npz to other suffixes
            np.savez(
                f,
                format=np.int64(MODEL_FORMAT),
                W=W,
                kernel=np.str_(self.kernel_name),
                mean_image=pre.mean_image,
                bias_trick=np.bool_(pre.bias_trick),
                class_names=np.array(pre.class_names, dtype=np.str_),
                image_shape=np.array(pre.image_shape, dtype=np.int64),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> Softmax:
        """Read a model written by :meth:`save`; ValueError if the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as f:
                fmt = int(f["format"])
                if fmt != MODEL_FORMAT:
                    raise ValueError(f"{path}: model format {fmt}, this code reads {MODEL_FORMAT}")
                pre = Preprocessing(
                    mean_image=f["mean_image"].astype(np.float64),
                    bias_trick=bool(f["bias_trick"]),
                    class_names=tuple(str(s) for s in f["class_names"]),
                    image_shape=tuple(int(s) for s in f["image_shape"]),
                )
                model = cls(str(f["kernel"]), pre)
                model.W = np.ascontiguousarray(f["W"])
        except (KeyError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path} is not a saved Softmax model ({e})") from None
        return model

    def _trained(self) -> np.ndarray:
        if self.W is None:
            raise ValueError("the model has no weights yet; train() or load() it first")
        return self.W

    def _check_rows(self, X) -> np.ndarray:
        """W, once X is known to be rows (N, D) this W can score."""
        W = self._trained()
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[1] != W.shape[0]:
            raise ValueError(
                f"X must be a 2-D array (N, {W.shape[0]}); got "
                f"{X.shape if isinstance(X, np.ndarray) else type(X).__name__}"
            )
        return W

    def _preprocessing(self) -> Preprocessing:
        if self.preprocessing is None:
            raise ValueError("the model has no preprocessing; pass Preprocessing(...) to Softmax()")
        return self.preprocessing


EVAL_SAMPLE_SEED = 20161  # the intermediate train_acc's rows: the same for every training on a dataset


def _eval_sample(n: int, size: int | None) -> np.ndarray | None:
    """``size`` of the row numbers 0..n-1, sorted (read in order), drawn once from a fixed seed; None when
    ``size`` is None or covers all n."""
    if size is None or size >= n:
        return None
    if not _is_int(size) or size < 1:
        raise ValueError(f"eval_train_rows must be null or an integer >= 1; got {size!r}")
    rows = np.random.default_rng(EVAL_SAMPLE_SEED).choice(n, size=size, replace=False)
    return np.sort(rows).astype(np.intp)


def _check_train_args(X, y, lr, reg, num_iters, batch_size, replace, eval_every) -> int:
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (N, D); got {getattr(X, 'shape', X)!r}")
    N = X.shape[0]
    if np.shape(y) != (N,):
        raise ValueError(f"y must have shape ({N},) to match X; got {np.shape(y)}")
    check_hyperparameters(lr, reg, num_iters, batch_size, replace, eval_every, n_train=N)
    return N


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
        raise ValueError(f"batch_size must be at most {MAX_BATCH_SIZE} (the row indices of {_IDX_BLOCK} "
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


def _progress_bar(total: int, initial: int = 0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="it", leave=False, mininterval=0.25,
                dynamic_ncols=True)


