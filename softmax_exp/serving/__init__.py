"""A linear classifier (softmax or SVM) as an MLflow pyfunc model: raw images in, labels (or names, scores,
or the softmax's probabilities) out.

MLflow builds the model from code: ``model_code.py`` (copied into the model) calls
``mlflow.models.set_model(ClassifierPyfunc())``; nothing is pickled. The model holds the run's ``model.npz``
(W, its loss and its :class:`~softmax_exp.learn.model.Preprocessing`) as the artifact ``model``, and every
answer comes from the :class:`~softmax_exp.learn.model.LinearClassifier` itself, so a served model predicts
what ``predict_images`` does, by construction.

``predict(images, params={"output": ...})``

- images : raw pixels as the dataset has them, images (N, H, W, C) or flat rows (N, H*W*C), N >= 0, whole
  numbers 0..255 in any numeric dtype (JSON lists over HTTP); NaN, inf, negative, larger or fractional
  values are refused (HTTP 400 from ``mlflow models serve``), 0 images get 0 answers; at most
  :data:`MAX_REQUEST_VALUES` pixel values a request (more is refused in the same way)
- ``"labels"`` (default): (N,) int64, ``predict_images(images)``
- ``"names"``: (N,) str, the class name of each label
- ``"scores"``: (N, C) float64, ``X @ W`` of the preprocessed rows, their argmax the labels
- ``"probabilities"``: (N, C) float64, the softmax of the scores, rows summing to 1 (a softmax model only:
  an SVM's scores are margins, not probabilities, and it refuses the request rather than make some up)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from softmax_exp.learn.model import LinearClassifier, Softmax

MODEL_ARTIFACT = "model"  # the name of model.npz among the model's artifacts
OUTPUTS = ("labels", "names", "scores", "probabilities")
# The pixel values one request may hold: 2**25, 10922 CIFAR-10 images, 524288 digits. A request's rows take
# about 16 bytes a value while they are preprocessed and scored: under 600 MB at this bound.
MAX_REQUEST_VALUES = 2**25


class ClassifierPyfunc(PythonModel):
    """The pyfunc face of a saved :class:`LinearClassifier` (see the module's doc)."""

    def load_context(self, context) -> None:
        self.model = LinearClassifier.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        """Labels (N,) int64 of raw images (N, H, W, C) or (N, H*W*C); with ``params["output"]`` class
        names (N,), scores (N, C) or probabilities (N, C) instead."""
        return predict(self.model, model_input, (params or {}).get("output", "labels"))


# the name models logged before the SVM import (their own code comes first on sys.path, but a process that
# imported this package already gets this module)
SoftmaxPyfunc = ClassifierPyfunc


def outputs(model: LinearClassifier) -> tuple[str, ...]:
    """The outputs ``model`` answers: :data:`OUTPUTS`, probabilities for a softmax only."""
    return OUTPUTS if isinstance(model, Softmax) else tuple(o for o in OUTPUTS if o != "probabilities")


def predict(model: LinearClassifier, images: Any, output: str = "labels") -> np.ndarray:
    """What the pyfunc model answers for ``images`` (see the module's doc): one of :func:`outputs`.
    Input the model refuses is an MlflowException INVALID_PARAMETER_VALUE (HTTP 400) naming the problem."""
    from mlflow.exceptions import MlflowException

    if output not in OUTPUTS:
        raise MlflowException.invalid_parameter_value(
            f"params['output'] must be one of {', '.join(outputs(model))}; got {output!r}")
    if output not in outputs(model):
        raise MlflowException.invalid_parameter_value(
            f"a {model.LOSS} model gives no probabilities (its scores are margins, not a distribution); "
            f"ask for params['output'] = 'scores' or 'labels'")
    values = getattr(images, "size", None)  # what the server decoded: an array or a DataFrame
    if isinstance(values, int) and values > MAX_REQUEST_VALUES:
        per_image = int(np.prod(model.preprocessing.image_shape))
        raise MlflowException.invalid_parameter_value(
            f"a request holds at most {MAX_REQUEST_VALUES} pixel values ({MAX_REQUEST_VALUES // per_image} "
            f"images of this model); got {values}: send the images in smaller requests")
    try:
        if output == "probabilities":
            return model.predict_proba(model.preprocess(images))
        if output == "scores":
            return model.scores(model.preprocess(images))
        labels = model.predict_images(images)
    except ValueError as e:  # the scoring server answers 400 with this message
        raise MlflowException.invalid_parameter_value(str(e)) from None
    if output == "names":
        return np.asarray(model.preprocessing.class_names)[labels]
    return labels


def signature(model: LinearClassifier):
    """The model's signature: output labels (-1,) int64 and the ``output`` parameter (default "labels").

    It declares no input schema, on purpose: MLflow's check of one admits a single shape and casts the
    JSON a server receives to its dtype first (0.5 became pixel 0, silently). The model takes both input
    forms, images (N, H, W, C) and flat rows (N, H*W*C), in any numeric dtype, and checks the values
    itself (:func:`softmax_exp.learn.model.pixel_rows`); the input example and the model's metadata
    (``input_forms``) show them."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    return ModelSignature(
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,), "labels")]),
        params=ParamSchema([ParamSpec("output", "string", "labels")]),
    )


def input_forms(model: LinearClassifier) -> dict[str, str]:
    """The two input forms, as the model's metadata lists them."""
    H, W, C = model.preprocessing.image_shape
    return {"images": f"(N, {H}, {W}, {C}) whole numbers 0..255, any numeric dtype",
            "rows": f"(N, {H * W * C}) the same pixels flattened in HWC order"}
