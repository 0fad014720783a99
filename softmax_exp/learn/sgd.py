"""The minibatch SGD loop: draw a minibatch, call the loss kernel, check, update, evaluate, checkpoint.

:class:`SGDLoop` runs one training of W in place from a
:class:`~softmax_exp.learn.hyperparameters.TrainParams`.
What happens around the loop (progress, metrics to a store, checkpoints to a store, Ctrl-C) is the
caller's, through :class:`TrainingHooks`. The minibatch rows come from :class:`MinibatchStream`, which
also knows the generator state a checkpoint must keep so that a resumed training draws the same rows.
A step reads its minibatch rows in place (the kernel gets ``idx``; with ``numba_fused`` no row is
copied) and the update is in place (:mod:`softmax_exp.learn.optim`): the loop allocates only the kernel's dW.
The same data, seed, kernel and thread count give the same W and loss history, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from softmax_exp.kernels import check_finite_result, count_correct_unchecked
from softmax_exp.learn.hyperparameters import IDX_BLOCK, TrainParams
from softmax_exp.learn.optim import SGD, Optimizer, Schedule
from softmax_exp.util import timing

EVAL_SAMPLE_SEED = 20161  # the intermediate train_acc's rows: the same for every training on a dataset

Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class EvalPoint:
    """Accuracies after ``iteration`` updates (val_acc is NaN when no validation set was given)."""

    iteration: int
    train_acc: float
    val_acc: float


@dataclass
class TrainHistory:
    """What one training did.

    loss : (iterations_done,) float64, the minibatch loss at iteration t (before its update), reg included
    evals : accuracies every ``eval_every`` iterations and after the last one (none if diverged; a
        training stopped early ends with the evaluation that stopped it)
    diverged : None, or why training stopped early (loss or W became NaN / inf)
    stopped : None, or why the hooks stopped a healthy training early (a pruned trial of a search:
        ``"pruned at iteration k"``); its last evaluation holds the accuracies so far
    """

    loss: np.ndarray
    evals: list[EvalPoint] = field(default_factory=list)
    diverged: str | None = None
    stopped: str | None = None


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


class TrainingHooks(Protocol):
    """What the loop tells its caller, and asks it. Each is called from the loop's thread."""

    def on_step(self, iteration: int) -> None:
        """After update number ``iteration`` (1-based): progress."""

    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        """At every evaluation, with the (iterations done,) loss history so far."""

    def on_checkpoint(self, state: TrainState) -> None:
        """Every ``checkpoint_every`` iterations; the state holds copies, safe to keep."""

    def should_stop(self) -> bool:
        """Asked after every update; True raises KeyboardInterrupt there (how Ctrl-C reaches a loop that
        spends its time in compiled kernels)."""

    def stop_early(self, point: EvalPoint) -> str | None:
        """Asked after each evaluation before the last; a reason (``"pruned at iteration k"``) ends the
        training there, healthy, with the metrics so far (``TrainHistory.stopped``)."""


class NoHooks:
    """Hooks that do nothing: a training nobody watches."""

    def on_step(self, iteration: int) -> None:
        pass

    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        pass

    def on_checkpoint(self, state: TrainState) -> None:
        pass

    def should_stop(self) -> bool:
        return False

    def stop_early(self, point: EvalPoint) -> str | None:
        return None


class MinibatchStream:
    """Row indices (batch_size,) intp of minibatch ``it`` for it = 0, 1, ... in order, from ``rng``.

    With replacement the rows of IDX_BLOCK minibatches are drawn at once; without, each minibatch is a
    draw of distinct rows. :meth:`state_at` is the generator state from which the minibatches from
    ``it`` on are drawn again identically (the start of ``it``'s block, with replacement).
    """

    def __init__(self, rng: np.random.Generator, n: int, batch_size: int, replace: bool) -> None:
        self.rng, self.n, self.batch_size, self.replace = rng, n, batch_size, replace
        self._block: np.ndarray | None = None
        self._block_state = rng.bit_generator.state

    def rows(self, it: int) -> np.ndarray:
        if not self.replace:
            return self.rng.choice(self.n, size=self.batch_size, replace=False)
        if it % IDX_BLOCK == 0 or self._block is None:
            self._block_state = self.rng.bit_generator.state
            self._block = self.rng.integers(0, self.n, size=(IDX_BLOCK, self.batch_size), dtype=np.intp)
        return self._block[it % IDX_BLOCK]

    def state_at(self, it: int) -> dict:
        """The state to restore before drawing minibatch ``it``, the one after the last drawn."""
        return self.rng.bit_generator.state if not self.replace or it % IDX_BLOCK == 0 else self._block_state


class SGDLoop:
    """One minibatch SGD training: ``W -= lr_t * dW`` (or the optimizer's update) ``num_iters`` times.

    kernel : an unchecked loss kernel ``(W, X, y, reg, idx) -> (loss, dW)`` (``get_kernel(name, False)``)
    params : the hyperparameters; replace : minibatch rows drawn with replacement (the model's setting)
    optimizer : default plain SGD; schedule : iteration -> rate, default lr
    hooks : see :class:`TrainingHooks` (default: none); checkpoint_every : an integer >= 0, 0 for no
    checkpoints (the config's ``checkpoint_every`` is checked where the config is made)
    """

    def __init__(self, kernel: Kernel, params: TrainParams, replace: bool = True,
                 optimizer: Optimizer | None = None, schedule: Schedule | None = None,
                 hooks: TrainingHooks | None = None, checkpoint_every: int = 0) -> None:
        self.kernel, self.params, self.replace = kernel, params, replace
        self.checkpoint_every = checkpoint_every
        self.optimizer = optimizer if optimizer is not None else SGD()
        self.schedule = schedule if schedule is not None else (lambda it: params.lr)
        self.hooks = hooks if hooks is not None else NoHooks()

    def run(self, W: np.ndarray, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
            X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            resume_from: TrainState | None = None) -> TrainHistory:
        """Train W (D, C) in place on X (N, D), y (N,) intp, as checked by ``kernels.check_inputs``
        (X_val, y_val by ``check_predict_inputs``); ``rng`` draws the minibatches (its state is replaced by
        the checkpoint's when resuming). Stops early, ``diverged`` set, when the loss or W is not finite."""
        p, hooks, opt = self.params, self.hooks, self.optimizer
        losses = np.empty(p.num_iters, dtype=np.float64)
        history = TrainHistory(losses[:0])
        start = self._restore(resume_from, rng, losses, history) if resume_from is not None else 0
        stream = MinibatchStream(rng, X.shape[0], p.batch_size, self.replace)
        evaluate = _Evaluation(X, y, X_val, y_val, _eval_sample(X.shape[0], p.eval_train_rows), hooks)
        done = start
        # an overflow is not warned about: the loop finds a loss or W that is not finite and says so
        with timing.section("sgd"), np.errstate(over="ignore", invalid="ignore"):
            for it in range(start, p.num_iters):
                idx = stream.rows(it)
                loss, dW = self.kernel(W, X, y, p.reg, idx)
                if not math.isfinite(loss) and not np.isfinite(W).all():  # the last update broke W
                    history.diverged = f"W became NaN or inf at iteration {it}; lower lr"
                    break
                losses[it] = loss
                done = it + 1
                if not math.isfinite(loss):  # W is finite: NaN rows of X (ValueError) or divergence
                    check_finite_result(loss, dW, X, idx)
                    history.diverged = f"loss became {loss} at iteration {it}; lower lr"
                    break
                opt.step(W, dW, self.schedule(it))
                if hooks.should_stop():
                    raise KeyboardInterrupt
                hooks.on_step(done)
                if done < p.num_iters and p.eval_every and done % p.eval_every == 0:
                    evaluate(W, history, losses[:done], sample=True)
                    history.stopped = hooks.stop_early(history.evals[-1])
                    if history.stopped:
                        break
                if done < p.num_iters and self.checkpoint_every and done % self.checkpoint_every == 0:
                    hooks.on_checkpoint(TrainState(done, W.copy(), opt.state_dict(), stream.state_at(done),
                                                   losses[:done].copy(), list(history.evals)))
            history.loss = losses[:done]
            if history.diverged is None and not np.isfinite(W).all():
                history.diverged = f"W became NaN or inf at iteration {done - 1}; lower lr"
            if history.diverged is None and history.stopped is None:
                evaluate(W, history, history.loss, sample=False)
        return history

    def _restore(self, state: TrainState, rng, losses, history) -> int:
        """Put a checkpoint's generator, optimizer and history so far back; return its iteration (W is the
        caller's: see ``Softmax.train``)."""
        if not 0 < state.iteration <= self.params.num_iters or state.loss.shape != (state.iteration,):
            raise ValueError(f"the checkpoint is at iteration {state.iteration} of a training of "
                             f"{self.params.num_iters}; it belongs to another training")
        self.optimizer.load_state_dict(state.optimizer_state)
        rng.bit_generator.state = state.rng_state
        losses[: state.iteration] = state.loss
        history.evals = list(state.evals)
        return state.iteration


class _Evaluation:
    """train_acc (on all rows, or on the fixed sample ``rows`` when asked) and val_acc of W, appended to
    the history and handed to the hooks."""

    def __init__(self, X, y, X_val, y_val, rows: np.ndarray | None, hooks: TrainingHooks) -> None:
        self.X, self.y, self.X_val, self.y_val, self.rows, self.hooks = X, y, X_val, y_val, rows, hooks

    def __call__(self, W: np.ndarray, history: TrainHistory, losses: np.ndarray, sample: bool) -> None:
        rows = self.rows if sample else None
        n = self.X.shape[0] if rows is None else rows.shape[0]
        with timing.section("evaluation"):
            train_acc = count_correct_unchecked(W, self.X, self.y, rows) / n
            val_acc = (count_correct_unchecked(W, self.X_val, self.y_val) / self.X_val.shape[0]
                       if self.X_val is not None else math.nan)
        point = EvalPoint(losses.shape[0], train_acc, val_acc)
        history.evals.append(point)
        self.hooks.on_eval(point, losses)


def _eval_sample(n: int, size: int | None) -> np.ndarray | None:
    """``size`` of the row numbers 0..n-1, sorted (read in order), drawn once from a fixed seed; None when
    ``size`` is None or covers all n."""
    if size is None or size >= n:
        return None
    rows = np.random.default_rng(EVAL_SAMPLE_SEED).choice(n, size=size, replace=False)
    return np.sort(rows).astype(np.intp)
