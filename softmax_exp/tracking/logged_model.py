"""A run's classifier as an MLflow model (an MLflow 3 LoggedModel): loadable with
``mlflow.pyfunc.load_model``, servable with ``mlflow models serve``, registrable in the Model Registry.

:func:`log_model` makes it with the client of the store's URI only: no fluent run, and no process-global
tracking URI set and put back (``Model.log`` reads the global one). That route also skips the slow parts
of ``Model.log``: the input example is checked against the signature but the model is not loaded to
predict it, no requirement is inferred, no git context is probed and no metric history is read.

The model directory (see :mod:`softmax_exp.serving` for what ``predict`` takes and returns)::

    MLmodel, model_code.py        the pyfunc flavor, built from code (nothing pickled)
    artifacts/model.npz           W and its preprocessing, as LinearClassifier.save writes them
    code/softmax_exp/             the package folders prediction needs (BUNDLED), ahead on sys.path at load
    requirements.txt, conda.yaml, python_env.yaml, input_example.json, serving_input_example.json
"""

from __future__ import annotations

import ast
import functools
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from softmax_exp.learn.model import LinearClassifier
from softmax_exp.tracking.store import get_client
from softmax_exp.util import timing
from softmax_exp.util.atomic import temp_dir

MODEL_NAME = "model"
MAX_EXAMPLES = 3  # images kept as the input example (the signature already says their shape)
# MLflow writes the input example as JSON text twice (input_example.json, serving_input_example.json): at
# ~20 bytes a value on disk and ~60 in memory while it does, larger images have a shorter example or none
MAX_EXAMPLE_VALUES = 100_000
PACKAGE = Path(__file__).resolve().parents[1]
# the package folders LinearClassifier.load / predict_images and the pyfunc class import (numpy, numba only;
# bundled_files finds which of their modules); a test loads a model in a fresh interpreter
BUNDLED = ("kernels", "features", "learn", "serving", "util")  # the folders it takes its modules from
ENTRY = PACKAGE / "serving" / "model_code.py"


@timing.timed("model")
def log_model(uri: str, run_id: str, model: LinearClassifier, example_images: np.ndarray, *,
              name: str = MODEL_NAME, step: int = 0, experiment_id: str | None = None,
              params: dict[str, Any] | None = None) -> str:
    """Log ``model`` as an MLflow model of the run ``run_id`` in the store ``uri``; return its URI
    ``models:/<model_id>`` (``runs:/<run_id>/<name>`` names it too).

    Parameters
    ----------
    uri : the tracking URI of the run's store
    run_id : the run that trained ``model``; it may be running or ended. The model is created in the
        run's experiment with the run as its source and as a run output at ``step`` (what the UI's
        Models column and the run page show), and carries the run's params.
    model : a trained classifier (Softmax, LinearSVM) with its preprocessing
    example_images : (n, H, W, C) or (n, H*W*C) raw images as the dataset has them, n >= 1; the first
        ``MAX_EXAMPLES`` (fewer for large images, none past MAX_EXAMPLE_VALUES values an image) become
        the input example.

    The model is READY once its files are stored; FAILED (and the error raised) if storing them fails.
    """
    examples = _examples(model, example_images)
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    client = get_client(uri)
    if experiment_id is None or params is None:  # the caller knows them (saves a read) or the run does
        run = client.get_run(run_id)
        experiment_id, params = run.info.experiment_id, dict(run.data.params)
    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                        params={k: str(v) for k, v in params.items()})
    try:
        with temp_dir("model") as tmp:
            local = _save(tmp, model, examples, logged, run_id)
            client.log_model_artifacts(logged.model_id, str(local))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step)])
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return f"models:/{logged.model_id}"


def load_classifier(uri: str, model_uri: str) -> LinearClassifier:
    """The classifier of the logged model ``model_uri`` (``models:/<model_id>``) of the store
    ``uri``, read from its model.npz (no pyfunc loading, no code import)."""
    import mlflow.artifacts

    model_id = model_uri.removeprefix("models:/")
    location = get_client(uri).get_logged_model(model_id).artifact_location.rstrip("/")
    with temp_dir("model") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location}/artifacts/model.npz", dst_path=str(tmp), tracking_uri=uri)  # see _save
        return LinearClassifier.load(local)


def pip_requirements() -> list[str]:
    """What a model needs installed, pinned to the versions it was logged (and tested) with: the scoring
    server (mlflow), and the bundled code's imports (numpy, numba)."""
    import mlflow
    import numba

    return [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}", f"numba=={numba.__version__}"]


def _save(folder: Path, model: LinearClassifier, examples: np.ndarray, logged, run_id: str) -> Path:
    """Write the MLflow model directory of ``model`` into ``folder / "model"``; return its path."""
    import mlflow.pyfunc
    from mlflow.models import Model

    from softmax_exp import serving  # the pyfunc class: imports mlflow.pyfunc (1.7 s) at its top

    weights = model.save(folder / "model.npz")
    code = _bundle(folder / "code")
    meta = Model(artifact_path=logged.artifact_location, run_id=run_id, model_uuid=logged.model_id,
                 model_id=logged.model_id)
    path = folder / "model"
    with _quiet("mlflow.pyfunc"):  # an INFO line per run ("Validating input example ...")
        mlflow.pyfunc.save_model(
            path,
            python_model=str(ENTRY),
            artifacts={serving.MODEL_ARTIFACT: str(weights)},
            code_paths=[str(code)],
            pip_requirements=pip_requirements(),
            signature=serving.signature(model),
            input_example=examples if len(examples) else None,
            metadata={"model": model.LOSS, "outputs": list(serving.outputs(model)),
                      "class_names": list(model.preprocessing.class_names),
                      "input_forms": serving.input_forms(model)},
            mlflow_model=meta,
        )
    return path


def _bundle(folder: Path) -> Path:
    """A copy of :func:`bundled_files` (sources only) as ``folder/softmax_exp``; return it."""
    target = folder / "softmax_exp"
    for source in bundled_files():
        path = target / source.relative_to(PACKAGE)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    return target


@functools.cache
def bundled_files(lazy: bool = True) -> tuple[Path, ...]:
    """The package files a served model runs: the modules the pyfunc class (``softmax_exp.serving``)
    imports, and those they import, all within the BUNDLED folders, with the ``__init__.py`` of every
    package on the way (found from the source: what is not imported is not copied). ``lazy``: the imports
    inside functions count too (a feature stage's module is imported when a model of it is loaded);
    without, only the imports at the modules' tops (what every model loads)."""
    wanted, todo = set(), ["softmax_exp.serving"]
    while todo:
        name = todo.pop()
        path = _module_path(name)
        if path is None or path in wanted:
            continue
        wanted.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages' __init__.py
        todo += _imports(path, name, lazy)
    return tuple(sorted(wanted))


def _module_path(name: str) -> Path | None:
    """The file of the project module ``name`` if it is in a BUNDLED folder (or is the package itself)."""
    parts = name.split(".")
    if parts[0] != "softmax_exp" or len(parts) > 1 and parts[1] not in BUNDLED:
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imports(path: Path, name: str, lazy: bool) -> list[str]:
    """The modules ``path`` (module ``name``) imports (``lazy``: anywhere; else outside any function):
    absolute names, and for ``from package import name`` both the package and ``package.name``."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in (ast.walk(tree) if lazy else tree.body):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names]
    return found


@contextmanager
def _quiet(logger_name: str):
    """Hide a logger's INFO messages for the duration."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _examples(model: LinearClassifier, images) -> np.ndarray:
    """The first MAX_EXAMPLES of ``images`` as (n, H, W, C), checked against the model's image shape."""
    pre = model.preprocessing
    if pre is None or model.W is None:
        raise ValueError("model must be a trained classifier with its preprocessing")
    images = np.asarray(images)
    size = int(np.prod(pre.image_shape))
    if images.ndim not in (2, 4) or images.shape[0] < 1 or images[0].size != size:
        raise ValueError(f"example_images must be raw images (n, {', '.join(map(str, pre.image_shape))}) "
                         f"or (n, {size}) with n >= 1; got shape {images.shape}")
    if images.dtype.kind not in "uif":
        raise ValueError(f"example_images must hold numbers; got dtype {images.dtype}")
    return np.ascontiguousarray(images[:max(0, min(MAX_EXAMPLES, MAX_EXAMPLE_VALUES // size))]
                                .reshape(-1, *pre.image_shape))
