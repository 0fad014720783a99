"""The linear classifiers ``scores = X @ W``: the softmax (:class:`Softmax`) and the multiclass SVM
(:class:`LinearSVM`), as the course's ``LinearClassifier`` has them; their settings, training, prediction,
and save / load with their preprocessing.

:meth:`LinearClassifier.training` checks the data against the hyperparameters once and gets a training
ready; :meth:`Training.run` runs :class:`softmax_exp.learn.sgd.SGDLoop` with the classifier's loss kernel
(:meth:`LinearClassifier.train` does both). The same data, seed, kernel and thread count give the same W and
loss history, bit for bit. :meth:`LinearClassifier.load` reads a file as untrusted
(:mod:`softmax_exp.learn.npz`) and gives the classifier it holds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softmax_exp.features.settings import stage_from_settings
from softmax_exp.features.stage import settings_json
from softmax_exp.kernels import (
    check_inputs,
    check_predict_inputs,
    count_correct,
    get_kernel,
    predict_labels,
)
from softmax_exp.learn.hyperparameters import TrainParams
from softmax_exp.learn.npz import NpzReader
from softmax_exp.learn.optim import Optimizer, Schedule
from softmax_exp.learn.sgd import EvalPoint, SGDLoop, TrainHistory, TrainingHooks, TrainState
from softmax_exp.util.constraints import Boolean, Checked, GroupName, Real, option

__all__ = ["CLASSIFIERS", "EvalPoint", "LinearClassifier", "LinearSVM", "MODELS", "ModelParams",
           "Preprocessing", "SVMParams", "Softmax", "TrainHistory", "TrainParams", "TrainState", "Training"]

MODEL_FORMAT = 2  # 2: the file names its loss; 1 (read too): a softmax, before there was another


@dataclass
class ModelParams(Checked):
    """The classifier's settings (conf/model/softmax.yaml), checked when made; :meth:`build` makes it."""

    KEY = "model."

    name: str = option("softmax", GroupName("model", lambda: MODELS), "set by the group: model=softmax | svm")
    init_scale: float = option(0.001, Real(low=0, low_open=True),
                               "W starts as init_scale * randn(D, C), drawn from the seed")
    replace: bool = option(True, Boolean(),
                           "minibatch rows drawn with replacement (the course's choice); false: without")

    def build(self, kernel: str = "numba_fused",
              preprocessing: Preprocessing | None = None) -> LinearClassifier:
        """The untrained classifier these settings describe, computing its loss with ``kernel``."""
        return CLASSIFIERS[self.name](kernel, preprocessing, self)


@dataclass
class SVMParams(ModelParams):
    """The multiclass SVM's settings (conf/model/svm.yaml): the softmax's, its loss the hinge of margin 1."""

    name: str = option("svm", GroupName("model", lambda: MODELS))


MODELS: dict[str, type[ModelParams]] = {"softmax": ModelParams, "svm": SVMParams}


@dataclass(frozen=True)
class Preprocessing:
    """How raw images become rows of X: flatten in HWC order, subtract ``mean_image``, append a 1; or, with
    a fitted feature stage, the stage's features of each image, then the 1.

    mean_image : (H*W*channels,) float64 (zeros, unused, with a feature stage)
    bias_trick : the last column of X is ones and the last row of W is the bias
    class_names : C names, in label order
    image_shape : (H, W, channels)
    features : the fitted :class:`~softmax_exp.features.stage.FeatureStage`, None for the pixels
    """

    mean_image: np.ndarray
    bias_trick: bool
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    features: Any = None

    @classmethod
    def of(cls, dataset) -> Preprocessing:
        """The preprocessing of a :class:`softmax_exp.data.Dataset`."""
        return cls(np.asarray(dataset.mean_image, dtype=np.float64), bool(dataset.bias_trick),
                   tuple(dataset.class_names), tuple(int(s) for s in dataset.image_shape),
                   getattr(dataset, "features", None))

    @property
    def dim(self) -> int:
        """D, the columns of a row: the pixels or the stage's features, and the bias column."""
        features = math.prod(self.image_shape) if self.features is None else self.features.dim
        return features + int(self.bias_trick)


class LinearClassifier:
    """A linear classifier ``scores = X @ W`` trained by minibatch SGD on the loss ``LOSS`` (a key of
    :data:`softmax_exp.kernels.LOSSES`); :class:`Softmax` and :class:`LinearSVM` are the two.

    Parameters
    ----------
    kernel : name of an implementation of the loss (naive, vectorized, numba_naive, numba_fused)
    preprocessing : how raw images map to rows of X; needed by :meth:`predict_images` and saved with W
    params : its settings (W's initial scale, minibatch sampling), their ``name`` this class's LOSS;
        default: the defaults of MODELS[LOSS]

    Attributes
    ----------
    W : (D, C) weights in the dtype of the training X, or None before training / loading
    """

    LOSS = ""

    def __init__(self, kernel: str = "numba_fused", preprocessing: Preprocessing | None = None,
                 params: ModelParams | None = None) -> None:
        if type(self) is LinearClassifier:
            raise TypeError("LinearClassifier is abstract: use Softmax, LinearSVM or ModelParams().build()")
        self.params = params if params is not None else MODELS[self.LOSS]()
        if self.params.name != self.LOSS:
            raise ValueError(f"{type(self).__name__} takes the settings of model {self.LOSS!r}; got "
                             f"{self.params.name!r}'s")
        self.kernel_name = kernel
        self.kernel = get_kernel(kernel, loss=self.LOSS)
        self.preprocessing = preprocessing
        self.W: np.ndarray | None = None

    def training(self, X: np.ndarray, y: np.ndarray, params: TrainParams | None = None, *,
                 X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                 optimizer: Optimizer | None = None, schedule: Schedule | None = None,
                 checkpoint_every: int = 0, **hyperparameters) -> Training:
        """Check the data once, against the hyperparameters too (a minibatch without replacement must fit
        the rows), and get the training ready: W is drawn as ``init_scale * randn(D, C)`` from ``seed`` if
        the model has none. ValueError (one line) if the data do not fit.

        Parameters
        ----------
        X : (N, D) float32 or float64 training rows (may be a read-only memmap; never copied)
        y : (N,) int labels in [0, C); C = max(y) + 1 unless W or the preprocessing fixes it
        params : the hyperparameters (checked when made); or give them as keywords (``lr=..., reg=...,
            num_iters=...``), the fields of :class:`~softmax_exp.learn.hyperparameters.TrainParams`
        X_val, y_val : optional validation rows for val_acc
        optimizer : an object with ``step(W, dW, lr)`` (default: plain SGD)
        schedule : iteration -> learning rate (default: ``lr`` throughout)
        checkpoint_every : hand ``hooks.on_checkpoint`` a TrainState every this many iterations (0: never)
        """
        if params is None:
            params = TrainParams(**hyperparameters)
        elif hyperparameters:
            raise TypeError(f"give the hyperparameters as params or as keywords, not both: "
                            f"{', '.join(hyperparameters)}")
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(f"X must be a non-empty 2-D array (N, D); got {getattr(X, 'shape', X)!r}")
        if np.shape(y) != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {np.shape(y)}")
        params.check_rows(X.shape[0], self.params.replace)
        rng = np.random.default_rng(params.seed)
        if self.W is None:
            C = len(self.preprocessing.class_names) if self.preprocessing else int(np.max(y)) + 1
            self.W = (self.params.init_scale * rng.standard_normal((X.shape[1], C))).astype(X.dtype)
        W, X, y, _, _ = check_inputs(self.W, X, y, params.reg)  # once: every step calls the unchecked twin
        if X_val is not None:
            _, X_val, y_val, _ = check_predict_inputs(W, X_val, y_val)
        return Training(self, params, X, y, X_val, y_val, optimizer, schedule, rng, checkpoint_every)

    def train(self, X: np.ndarray, y: np.ndarray, params: TrainParams | None = None, *,
              X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
              optimizer: Optimizer | None = None, schedule: Schedule | None = None,
              hooks: TrainingHooks | None = None, checkpoint_every: int = 0,
              resume_from: TrainState | None = None, **hyperparameters) -> TrainHistory:
        """Train W by minibatch SGD: :meth:`training` (see it for the arguments), then :meth:`Training.run`
        with ``hooks`` and ``resume_from``."""
        ready = self.training(X, y, params, X_val=X_val, y_val=y_val, optimizer=optimizer, schedule=schedule,
                              checkpoint_every=checkpoint_every, **hyperparameters)
        return ready.run(hooks, resume_from)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) int64 for preprocessed rows X (N, D) in the dtype of W:
        ``argmax(X @ W, axis=1)``, in one parallel pass over X (softmax_exp.kernels.predict_labels)."""
        W = self._check_rows(X)
        return predict_labels(W, X)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Class scores (N, C) float64 of preprocessed rows X (N, D): ``X @ W`` (numpy's product). A row's
        argmax is the label :meth:`predict` gives, but where two classes' scores are equal to within float32
        rounding (the two sum in other orders)."""
        W = self._check_rows(X)
        return (X @ W).astype(np.float64)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows of X (N, D) whose predicted label equals y (N,), labels in [0, C)."""
        W = self._check_rows(X)
        return count_correct(W, X, y) / X.shape[0]

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Raw images (N, H, W, channels) or flat rows (N, H*W*channels), pixel values as in the source
        data (whole numbers in [0, 255], any numeric dtype: see :func:`pixel_rows`), to rows (N, D) in the
        dtype of W, as the training data was prepared. N may be 0."""
        W = self._trained()
        pre = self._preprocessing()
        flat = pixel_rows(images, pre.image_shape)
        if pre.features is not None:  # (pixel_rows checked: whole numbers in 0..255, so uint8 is exact)
            X = pre.features.transform(flat.astype(np.uint8).reshape(-1, *pre.image_shape), W.dtype)
        else:
            X = (flat.astype(np.float64) - pre.mean_image).astype(W.dtype)
        if pre.bias_trick:
            X = np.hstack([X, np.ones((X.shape[0], 1), dtype=W.dtype)])
        return X

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) int64 of raw images (see :meth:`preprocess`); no images, no labels."""
        X = self.preprocess(images)
        return self.predict(X) if X.shape[0] else np.zeros(0, dtype=np.int64)

    def save(self, path: str | Path) -> Path:
        """Write W and the preprocessing to ``path`` (.npz, no pickle); return the path written."""
        W = self._trained()
        pre = self._preprocessing()
        path = Path(path)
        stage = {}
        if pre.features is not None:  # its settings as JSON and its fitted arrays
            stage = {"features": np.str_(settings_json(pre.features)),
                     **{FEATURE_PREFIX + k: v for k, v in pre.features.state().items()}}
        with open(path, "wb") as f:  # an open file: np.savez would append .npz to other suffixes
            np.savez(
                f,
                **stage,
                format=np.int64(MODEL_FORMAT),
                W=W,
                loss=np.str_(self.LOSS),
                kernel=np.str_(self.kernel_name),
                mean_image=pre.mean_image,
                bias_trick=np.bool_(pre.bias_trick),
                class_names=np.array(pre.class_names, dtype=np.str_),
                image_shape=np.array(pre.image_shape, dtype=np.int64),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearClassifier:
        """Read a model written by :meth:`save`: the classifier of the loss it names (a format-1 file, from
        before there were two, is a Softmax); called on a subclass, the file must hold that one. ValueError
        (one line, naming the file) if the file is not one: every member's .npy header is checked (dtype,
        shape, the member's stored size, W (D, C) with D = H*W*channels (+1 with the bias trick) and
        C = len(class_names)) before anything is allocated, and W and mean_image must be finite."""
        try:
            with NpzReader(path) as f:
                fmt = f.scalar("format", "iu")
                if fmt not in (1, MODEL_FORMAT):
                    raise ValueError(f"model format {fmt}, this code reads 1 and {MODEL_FORMAT}")
                staged = fmt >= 2 and "features" in f.headers
                members = (_MODEL_MEMBERS | ({"loss"} if fmt >= 2 else set())
                           | ({"features"} if staged else set()))
                f.expect_members(members, prefix=FEATURE_PREFIX if staged else None)
                loss = f.text("loss", max_chars=64) if fmt >= 2 else "softmax"
                if loss not in CLASSIFIERS:
                    raise ValueError(f"loss {loss!r}, this code knows {', '.join(CLASSIFIERS)}")
                if cls is not LinearClassifier and loss != cls.LOSS:
                    raise ValueError(f"it holds a {loss} classifier, not a {cls.LOSS} one; read it with "
                                     f"LinearClassifier.load")
                image_shape = tuple(int(s) for s in f.array("image_shape", "iu", (3,)))
                if min(image_shape) < 1:
                    raise ValueError(f"image_shape must be 3 sizes >= 1; got {image_shape}")
                bias_trick = bool(f.scalar("bias_trick", "b"))
                kernel = f.text("kernel", max_chars=64)
                pixels = math.prod(image_shape)
                stage = _read_stage(f, image_shape) if staged else None
                D, C = f.check("W", WEIGHT_DTYPES, (None, None)).shape
                F = stage.dim if stage is not None else pixels
                if D != F + bias_trick:
                    bias_row = " and the bias row" if bias_trick else ""
                    what = (f"{stage.NAME} features ({F})" if stage is not None
                            else f"image_shape {image_shape}")
                    raise ValueError(f"W has {D} rows; {what}{bias_row} need {F + bias_trick}")
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
            model = CLASSIFIERS[loss](kernel, Preprocessing(mean_image, bias_trick, class_names, image_shape,
                                                            stage))
        except ValueError as e:
            raise ValueError(f"{path} is not a saved classifier ({e})") from None
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
            raise ValueError(f"the model has no preprocessing; pass Preprocessing(...) to "
                             f"{type(self).__name__}()")
        return self.preprocessing


class Softmax(LinearClassifier):
    """Multinomial logistic regression: the softmax of the scores, trained on their cross-entropy."""

    LOSS = "softmax"

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) float64 for preprocessed rows X (N, D): the softmax of ``X @ W``
        (numpy's product), rows summing to 1; their argmax as :meth:`scores`' is."""
        scores = self.scores(X)
        scores -= scores.max(axis=1, keepdims=True)  # exp never overflows; the result is unchanged
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores


class LinearSVM(LinearClassifier):
    """The multiclass SVM (Weston-Watkins, as the course has it): hinge loss of margin 1 on the scores. Its
    scores are not probabilities, and it gives none."""

    LOSS = "svm"


CLASSIFIERS: dict[str, type[LinearClassifier]] = {"softmax": Softmax, "svm": LinearSVM}


@dataclass
class Training:
    """A training made ready by :meth:`LinearClassifier.training`: the data checked, W made, the minibatch
    generator seeded. :meth:`run` runs it once."""

    model: LinearClassifier
    params: TrainParams
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    optimizer: Optimizer | None
    schedule: Schedule | None
    rng: np.random.Generator
    checkpoint_every: int = 0

    def run(self, hooks: TrainingHooks | None = None, resume_from: TrainState | None = None) -> TrainHistory:
        """Train the model's W in place (:class:`softmax_exp.learn.sgd.SGDLoop`).

        hooks : progress, evaluations, checkpoints and stop requests (``sgd.TrainingHooks``)
        resume_from : a TrainState of the same training (same data, seed, hyperparameters) to go on from;
            the result is bit-identical to a training that was never stopped

        Returns the TrainHistory; ``diverged`` is set (and the loop stopped) when the loss or W stops being
        finite.
        """
        model = self.model
        if resume_from is not None:
            model.W = _checkpoint_weights(resume_from, self.X)
        loop = SGDLoop(get_kernel(model.kernel_name, checked=False, loss=model.LOSS), self.params,
                       model.params.replace,
                       self.optimizer, self.schedule, hooks, self.checkpoint_every)
        return loop.run(model.W, self.X, self.y, self.rng, self.X_val, self.y_val, resume_from)


def pixel_rows(images, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Raw images, checked, as rows (N, H*W*channels) in their own dtype.

    ``images``: (N, H, W, channels) or (N, H*W*channels) (a list, or any array of numbers), N >= 0 (an
    empty list is 0 images). Every
    source here has uint8 pixels, so a value must be a whole number in [0, PIXEL_MAX]: NaN, inf, a negative
    or larger value, or a fraction (pixels rescaled to [0, 1], say) is a ValueError naming the value and
    its image, never a label for an image that was not there.
    """
    D = math.prod(image_shape)
    try:
        images = np.asarray(images)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"images must be an array (N, {', '.join(map(str, image_shape))}) or (N, {D}); "
                         f"{e}") from None
    if images.shape == (0,):  # an empty list: JSON's 0 images carry no shape
        images = images.reshape(0, D)
    if images.dtype.kind not in "uif":
        raise ValueError(f"images must hold numbers (pixel values 0..{PIXEL_MAX}); got dtype {images.dtype}")
    if images.shape[1:] not in (tuple(image_shape), (D,)):
        raise ValueError(f"images must be (N, {', '.join(map(str, image_shape))}) images or (N, {D}) flat "
                         f"rows; got shape {images.shape}")
    flat = images.reshape(images.shape[0], D)
    if flat.size == 0 or (flat.dtype.kind == "u" and flat.dtype.itemsize == 1):  # uint8: in range
        return flat
    problem = None
    if flat.dtype.kind == "f" and not np.isfinite(flat).all():
        problem, where = "NaN or inf", ~np.isfinite(flat)
    elif flat.min() < 0:
        problem, where = "negative values", flat < 0
    elif flat.max() > PIXEL_MAX:
        problem, where = f"values above {PIXEL_MAX}", flat > PIXEL_MAX
    elif flat.dtype.kind == "f" and not (flat == np.round(flat)).all():
        problem, where = "fractions (pixels rescaled to [0, 1]?)", flat != np.round(flat)
    if problem:
        row, col = np.argwhere(where)[0]
        raise ValueError(f"images hold {problem}, e.g. {flat[row, col].item()!r} in image {row}; pixels are "
                         f"whole numbers 0..{PIXEL_MAX}, as the source's uint8 images have them")
    return flat


def _read_stage(f: NpzReader, image_shape: tuple[int, int, int]):
    """The fitted feature stage a model file holds: its settings (member ``features``, JSON) and arrays
    (``features_<name>``), each checked (shape, dtype, finite) before it is read."""
    settings = json.loads(f.text("features", max_chars=4096))
    if not isinstance(settings, dict):
        raise ValueError("features is not a JSON object of settings")
    stage = stage_from_settings(settings, image_shape)
    wanted = stage.expected_state()
    found = {n.removeprefix(FEATURE_PREFIX) for n in f.headers if n.startswith(FEATURE_PREFIX)}
    if found != set(wanted):
        raise ValueError(f"the {stage.NAME} features' state holds {sorted(found)}; expected {sorted(wanted)}")
    return stage.restore({k: f.array(FEATURE_PREFIX + k, "f", shape).astype(np.float64)
                          for k, shape in wanted.items()})


FEATURE_PREFIX = "features_"  # a feature stage's fitted arrays among a model file's members
PIXEL_MAX = 255  # every source's pixels are uint8
_MODEL_MEMBERS = frozenset({"format", "W", "kernel", "mean_image", "bias_trick", "class_names",
                            "image_shape"})
WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the kernels compute in
_MAX_NAME_CHARS = 1024  # a class name is a folder name: at most 255 bytes on common file systems


def _checkpoint_weights(state: TrainState, X: np.ndarray) -> np.ndarray:
    """A copy of a checkpoint's W, once it is known to fit rows X (N, D)."""
    if state.W.ndim != 2 or state.W.shape[0] != X.shape[1] or state.W.dtype != X.dtype:
        raise ValueError(f"the checkpoint's W is {state.W.dtype} {state.W.shape}; this training "
                         f"needs {X.dtype} ({X.shape[1]}, C)")
    return np.array(state.W, copy=True)
