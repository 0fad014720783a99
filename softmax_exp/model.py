"""The Softmax classifier: minibatch SGD training, prediction, and save / load with its preprocessing.

A training step reads its minibatch rows in place (the kernel gets ``idx``; with ``numba_fused`` no row
is copied), and the update is in place (see :mod:`softmax_exp.optim`), so the loop allocates only the
kernel's dW. The same data, seed, kernel and thread count give the same W and loss history, bit for bit.
"""

from __future__ import annotations

import math
import os
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
        """Read a model written by :meth:`save`; ValueError (one line, naming the file) if the file is not
        one: every member's .npy header is checked (dtype, shape, the member's stored size, W (D, C) with
        D = H*W*channels (+1 with the bias trick) and C = len(class_names)) before anything is allocated,
        and W and mean_image must be finite."""
        try:
            with NpzReader(path) as f:
                f.expect_members(_MODEL_MEMBERS)
                fmt = f.scalar("format", "iu")
                if fmt != MODEL_FORMAT:
                    raise ValueError(f"model format {fmt}, this code reads {MODEL_FORMAT}")
                image_shape = tuple(int(s) for s in f.array("image_shape", "iu", (3,)))
                if min(image_shape) < 1:
                    raise ValueError(f"image_shape must be 3 sizes >= 1; got {image_shape}")
                bias_trick = bool(f.scalar("bias_trick", "b"))
                kernel = f.text("kernel", max_chars=64)
                pixels = math.prod(image_shape)
                D, C = f.check("W", WEIGHT_DTYPES, (None, None)).shape
                if D != pixels + bias_trick:
                    bias_row = " and the bias row" if bias_trick else ""
                    raise ValueError(f"W has {D} rows; image_shape {image_shape}{bias_row} need "
                                     f"{pixels + bias_trick}")
                if C < 1:
                    raise ValueError("W has no columns (classes)")
                f.check("class_names", "U", (C,), max_itemsize=4 * _MAX_NAME_CHARS)
                f.check("mean_image", "fiu", (pixels,))
                mean_image = f.array("mean_image", "fiu", (pixels,)).astype(np.float64)
                if not np.isfinite(mean_image).all():
                    raise ValueError("mean_image has NaN or inf")
                class_names = tuple(str(s) for s in f.array("class_names", "U", (C,)))
                W = f.array("W", WEIGHT_DTYPES, (D, C))
                if not np.isfinite(W).all():
                    raise ValueError("W has NaN or inf")
            model = cls(kernel, Preprocessing(mean_image, bias_trick, class_names, image_shape))
        except ValueError as e:
            raise ValueError(f"{path} is not a saved Softmax model ({e})") from None
        model.W = W
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


_MODEL_MEMBERS = frozenset({"format", "W", "kernel", "mean_image", "bias_trick", "class_names",
                            "image_shape"})
WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the kernels compute in
_MAX_NAME_CHARS = 1024  # a class name is a folder name: at most 255 bytes on common file systems


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




# ---------------------------------------------------------------- reading .npz files that are not trusted
# Softmax.load and softmax_exp.checkpoint read files that come from elsewhere (an MLflow store, a
# download). This lives here, not in a module of its own, because the logged MLflow model bundles
# model.py (tracking/logged_model.py BUNDLED) and a served model loads through Softmax.load.

MAX_ARRAY_BYTES = 1 << 32  # 4 GiB: far above a real W (CIFAR-10: 246 KB; 224x224x3 x 1000 classes float64:
# 1.2 GB); it bounds what a compressed member, whose size the file cannot vouch for, may unpack to
MAX_MEMBERS = 64  # a model has 7, a checkpoint 7 + its optimizer's arrays
_MAX_HEADER_CHARS = 10_000  # numpy's own default limit for a .npy header (np.load's max_header_size)
_HEADER_PREFIX = 6 + 2 + 4  # magic string, version, header length (4 bytes in version 2.0)
_READ_CHUNK = 1 << 24  # data is read into the array this many bytes at a time (no second copy)


@dataclass(frozen=True)
class NpyHeader:
    """What a member's .npy header claims: ``shape`` of ``dtype`` (``fortran_order``), its data starting
    ``offset`` bytes into the member; checked to hold exactly ``nbytes`` bytes."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        return f"{self.dtype.newbyteorder('=').name} {self.shape}"


class NpzReader:
    """An .npz file read without trusting it: no pickle, and no allocation its headers did not earn.

    Opening reads the zip's directory and every member's .npy header (at most ``_MAX_HEADER_CHARS``
    characters each) and checks that the header's dtype is plain (bool, int, float or str: no object, no
    record) and that its shape accounts for exactly the bytes the member holds, a member for no more than
    the file holds, and at most MAX_ARRAY_BYTES. The caller then checks each header against what it needs
    (:meth:`check`) before reading the data (:meth:`array`, :meth:`scalar`, :meth:`text`): arrays come back
    C-contiguous, writable, in native byte order. Every problem is a ValueError of one line that names the
    member but not the file (the caller adds it).

    headers : member name (without ``.npy``) -> NpyHeader
    """

    def __init__(self, path: str | Path) -> None:
        self._file = self._zip = None
        self.headers: dict[str, NpyHeader] = {}
        try:
            self._file = open(path, "rb")
            file_size = os.fstat(self._file.fileno()).st_size
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
            if len(infos) > MAX_MEMBERS:
                raise _Refused(f"{len(infos)} members; an npz of this code has at most {MAX_MEMBERS}")
            for info in infos:
                name = info.filename.removesuffix(".npy")
                if name == info.filename:
                    raise _Refused(f"member {_short(info.filename)} is not an .npy array")
                if name in self.headers:
                    raise _Refused(f"member {_short(name)} appears twice")
                self.headers[name] = self._read_header(info, file_size)
        except BaseException as e:
            self.close()
            raise _one_line_error(e) from None

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._file is not None:
            self._file.close()

    def expect_members(self, names: frozenset[str] | set[str], prefix: str | None = None) -> None:
        """ValueError unless the members are exactly ``names`` (plus any starting with ``prefix``)."""
        missing = sorted(set(names) - set(self.headers))
        if missing:
            raise ValueError(f"no member {', '.join(map(_short, missing))}")
        extra = sorted(n for n in self.headers if n not in names and not (prefix and n.startswith(prefix)))
        if extra:
            raise ValueError(f"unexpected member {', '.join(map(_short, extra))}")

    def check(self, name: str, dtypes: str | tuple[np.dtype, ...], shape: tuple[int | None, ...],
              max_itemsize: int | None = None) -> NpyHeader:
        """The header of member ``name`` once it is known to be of ``dtypes`` (a string of dtype kinds such
        as ``"iu"``, or exact dtypes) and ``shape`` (None: any size on that axis); ValueError if not."""
        h = self.headers.get(name)
        if h is None:
            raise ValueError(f"no member {_short(name)}")
        native = h.dtype.newbyteorder("=")
        ok_dtype = h.dtype.kind in dtypes if isinstance(dtypes, str) else native in dtypes
        ok_shape = len(h.shape) == len(shape) and all(
            e is None or e == s for s, e in zip(h.shape, shape, strict=True))
        if not (ok_dtype and ok_shape):
            want = (f"kind {'/'.join(dtypes)}" if isinstance(dtypes, str)
                    else "/".join(np.dtype(d).name for d in dtypes))
            dims = ", ".join("n" if e is None else str(e) for e in shape) + ("," if len(shape) == 1 else "")
            raise ValueError(f"{name} is {h.describe()}; expected {want} ({dims})")
        if max_itemsize is not None and h.dtype.itemsize > max_itemsize:
            raise ValueError(f"{name} has items of {h.dtype.itemsize} bytes; at most {max_itemsize} expected")
        return h

    def array(self, name: str, dtypes: str | tuple[np.dtype, ...], shape: tuple[int | None, ...],
              max_itemsize: int | None = None) -> np.ndarray:
        """Member ``name``'s data, once :meth:`check` passes."""
        h = self.check(name, dtypes, shape, max_itemsize)
        try:
            return self._read_data(h)
        except Exception as e:  # see _one_line_error
            raise _one_line_error(e, f"{name}: ") from None

    def scalar(self, name: str, kinds: str) -> int | float | bool:
        """A 0-d member of dtype kind in ``kinds``, as a Python number."""
        return self.array(name, kinds, ()).item()

    def text(self, name: str, max_chars: int) -> str:
        """A 0-d str member of at most ``max_chars`` characters."""
        return str(self.array(name, "U", (), max_itemsize=4 * max_chars)[()])

    def _read_header(self, info: zipfile.ZipInfo, file_size: int) -> NpyHeader:
        name = _short(info.filename.removesuffix(".npy"))
        if info.flag_bits & 0x1:
            raise _Refused(f"{name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"{name} uses zip compression method {info.compress_type}; numpy writes 0 or 8")
        if info.header_offset + info.compress_size > file_size:
            raise _Refused(f"{name} claims {info.compress_size} bytes from byte {info.header_offset}; the "
                           f"file has {file_size}")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise _Refused(f"{name} is stored uncompressed in {info.compress_size} bytes but claims "
                           f"{info.file_size}")
        try:
            with self._zip.open(info) as member:
                fp = _Prefix(member, _HEADER_PREFIX + _MAX_HEADER_CHARS)
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, _MAX_HEADER_CHARS)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, _MAX_HEADER_CHARS)
                else:
                    raise _Refused(f"{name} is in .npy format {version}; numpy writes ours in 1.0 or 2.0")
        except _Refused:
            raise
        except Exception as e:  # see _one_line_error
            problem = "is damaged" if isinstance(e, zipfile.BadZipFile) else "has no valid .npy header"
            raise _one_line_error(e, f"{name} {problem}: ") from None
        h = NpyHeader(info, tuple(shape), dtype, bool(fortran), fp.consumed)
        if dtype.kind not in "biufU" or dtype.fields is not None or dtype.subdtype is not None:
            raise _Refused(f"{name} has dtype {_short(str(dtype))}; only bool, int, float and str are read")
        if dtype.itemsize == 0 or min(shape, default=0) < 0:
            raise _Refused(f"{name} claims dtype {dtype} of shape {_short(str(shape))}")
        if h.nbytes > MAX_ARRAY_BYTES:
            raise _Refused(f"{name} claims {h.describe()}, {h.nbytes} bytes; at most {MAX_ARRAY_BYTES} "
                           f"are read")
        if h.offset + h.nbytes != info.file_size:
            raise _Refused(f"{name} claims {h.describe()} ({h.nbytes} bytes) but holds "
                           f"{info.file_size - h.offset} bytes of data")
        return h

    def _read_data(self, h: NpyHeader) -> np.ndarray:
        flat = np.empty(math.prod(h.shape), dtype=h.dtype)
        view = flat.view(np.uint8)
        with self._zip.open(h.info) as member:
            member.read(h.offset)
            for start in range(0, h.nbytes, _READ_CHUNK):
                chunk = member.read(min(_READ_CHUNK, h.nbytes - start))
                if len(chunk) != min(_READ_CHUNK, h.nbytes - start):
                    raise EOFError(f"the data ends after {start + len(chunk)} of {h.nbytes} bytes")
                view[start:start + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            if member.read(1):  # also where zipfile checks the CRC, if the loop read to the end
                raise ValueError("more data than its header says")
        a = flat.reshape(h.shape[::-1]).T if h.fortran_order else flat.reshape(h.shape)
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        return a if a.flags.c_contiguous else a.copy(order="C")  # (np.ascontiguousarray makes 0-d 1-d)


class _Refused(ValueError):
    """A problem NpzReader found itself: its message is already the one line to show."""


class _Prefix:
    """The first ``limit`` bytes of a stream, counting what was read (an .npy header is read through it,
    so a header claiming gigabytes reads no more than that)."""

    def __init__(self, fp, limit: int) -> None:
        self.fp, self.remaining, self.consumed = fp, limit, 0

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.fp.read(size)
        self.remaining -= len(data)
        self.consumed += len(data)
        return data


def _short(text: str, limit: int = 80) -> str:
    """``text`` for a one-line message: repr'd (no newline survives) and cut to ``limit`` characters."""
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _one_line_error(e: BaseException, prefix: str = "") -> BaseException:
    """ValueError of one line for any Exception met while reading (a KeyboardInterrupt stays one).

    Any: zipfile, zlib and numpy's header parser (ast, tokenize) raise more kinds than they document
    (tokenize.TokenError for a header of open brackets), and each means the file is unreadable. Kinds
    other than ValueError, OSError and BadZipFile are named, so that a bug here still shows in the message.
    """
    if not isinstance(e, Exception):
        return e
    if isinstance(e, _Refused) and not prefix:
        return ValueError(str(e))
    text = " ".join(str(e).split())
    if not isinstance(e, (ValueError, OSError, zipfile.BadZipFile)) or not text:
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return ValueError(prefix + (text if len(text) <= 200 else text[:197] + "..."))
