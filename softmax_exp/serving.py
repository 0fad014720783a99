"""The Softmax classifier as an MLflow pyfunc model: raw images in, labels (or names, or probabilities) out.

MLflow builds the model from code: ``serving_entry.py`` (copied into the model) calls
``mlflow.models.set_model(SoftmaxPyfunc())``; nothing is pickled. The model holds the run's ``model.npz``
(W and its :class:`~softmax_exp.model.Preprocessing`) as the artifact ``model``, and every answer comes
from :class:`~softmax_exp.model.Softmax` itself, so a served model predicts what ``predict_images`` does,
by construction.

``predict(images, params={"output": ...})``

- images : raw pixels as the dataset has them, (N, H, W, C) (this class also takes (N, H*W*C), but the
  signature MLflow checks in front of it admits only the 4-D form, in the dtype it names)
- ``"labels"`` (default): (N,) int64, ``Softmax.predict_images(images)``
- ``"names"``: (N,) str, the class name of each label
- ``"probabilities"``: (N, C) float64, rows summing to 1, their argmax the labels
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from softmax_exp.model import Softmax

MODEL_ARTIFACT = "model"  # the name of model.npz among the model's artifacts
OUTPUTS = ("labels", "names", "probabilities")


class SoftmaxPyfunc(PythonModel):
    """The pyfunc face of a saved :class:`Softmax` (see the module's doc)."""

    def load_context(self, context) -> None:
        self.model = Softmax.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        """Labels (N,) int64 of raw images (N, H, W, C) or (N, H*W*C); with ``params["output"]`` class
        names (N,) or probabilities (N, C) instead."""
        return predict(self.model, model_input, (params or {}).get("output", "labels"))


def predict(model: Softmax, images: Any, output: str = "labels") -> np.ndarray:
    """What the pyfunc model answers for ``images`` (see the module's doc): one of :data:`OUTPUTS`."""
    if output not in OUTPUTS:
        from mlflow.exceptions import MlflowException

        raise MlflowException.invalid_parameter_value(
            f"params['output'] must be one of {', '.join(OUTPUTS)}; got {output!r}")
    images = np.asarray(images)
    if output == "probabilities":
        return model.predict_proba(model.preprocess(images))
    labels = model.predict_images(images)
    if output == "names":
        return np.asarray(model.preprocessing.class_names)[labels]
    return labels


def signature(model: Softmax, dtype: np.dtype):
    """The model's signature: input (-1, H, W, C) of ``dtype``, output labels (-1,) int64, and the
    ``output`` parameter (default "labels")."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    image_shape = model.preprocessing.image_shape
    return ModelSignature(
        # unnamed: a named tensor input makes MLflow hand predict a dict instead of the array
        inputs=Schema([TensorSpec(np.dtype(dtype), (-1, *image_shape))]),
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,), "labels")]),
        params=ParamSchema([ParamSpec("output", "string", "labels")]),
    )
