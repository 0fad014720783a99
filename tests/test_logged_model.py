"""A run's model logged as an MLflow model: loaded with mlflow.pyfunc, shown on its run, served over HTTP.

One short digits model is trained and logged once for the module; every test reads that one back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from helpers import fresh_store
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

from softmax_exp.data import load_dataset
from softmax_exp.data.digits import read_digits
from softmax_exp.learn.model import LinearSVM, Preprocessing, Softmax
from softmax_exp.tracking import Run, get_client
from softmax_exp.tracking.logged_model import BUNDLED, MODEL_NAME, PACKAGE, bundled_files, log_model

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Logged:
    uri: str  # the store's tracking URI
    run_id: str
    model_uri: str  # what log_model returned
    model: Softmax
    images: np.ndarray  # (1797, 8, 8, 1) float64 0..16, as sklearn gives the digits
    tracking_uri_before: str
    tracking_uri_after: str


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Logged:
    data = load_dataset({"name": "digits", "cache": False})
    model = Softmax("numba_fused", Preprocessing.of(data))
    model.train(data.X_train, data.y_train, lr=1e-2, reg=1e-2, num_iters=200)
    images = read_digits()[0].astype(np.float64).reshape(-1, 8, 8, 1)
    store = fresh_store(tmp_path_factory.mktemp("logged_model"), tmp_path_factory)
    uri = f"sqlite:///{store}"
    before = mlflow.get_tracking_uri()
    with Run.start(uri, "digits", "short") as run:
        run.log_params({"lr": 0.01, "num_iters": 200})
        run.flush()  # params are buffered until a flush
        model_uri = log_model(uri, run.run_id, model, images[:10])
    return Logged(uri, run.run_id, model_uri, model, images, before, mlflow.get_tracking_uri())


@pytest.fixture
def loaded(logged, monkeypatch):
    """The logged model, loaded back by its URI (models:/ URIs resolve against MLFLOW_TRACKING_URI)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    return mlflow.pyfunc.load_model(logged.model_uri)


def test_loaded_model_predicts_what_softmax_predicts(logged, loaded):
    images = logged.images
    labels = loaded.predict(images)
    assert labels.dtype == np.int64 and labels.shape == (len(images),)
    np.testing.assert_array_equal(labels, logged.model.predict_images(images))
    assert np.mean(labels == read_digits()[1]) > 0.9
    # both input forms, in any numeric dtype: flat rows (what sklearn's load_digits().data is), uint8
    flat = images.reshape(len(images), -1)
    np.testing.assert_array_equal(loaded.predict(flat), labels)
    np.testing.assert_array_equal(loaded.predict(images.astype(np.uint8)), labels)
    np.testing.assert_array_equal(loaded.predict(flat.astype(np.int32).tolist()), labels)
    # no images, no labels
    for empty in (np.zeros((0, 64)), np.zeros((0, 8, 8, 1), dtype=np.uint8)):
        got = loaded.predict(empty)
        assert got.shape == (0,) and got.dtype == np.int64
    assert loaded.predict(np.zeros((0, 64)), params={"output": "probabilities"}).shape == (0, 10)


BAD_PIXELS = [  # (what is wrong, an input with it, the message)
    ("nan", np.full((2, 64), np.nan), r"images hold NaN or inf, e\.g\. nan in image 0"),
    ("inf", np.where(np.arange(128).reshape(2, 64) == 70, np.inf, 1.0), r"NaN or inf, e\.g\. inf in image 1"),
    ("negative", -np.ones((3, 8, 8, 1)), r"images hold negative values, e\.g\. -1\.0 in image 0"),
    ("negative int", np.full((1, 64), -3, dtype=np.int16), r"negative values, e\.g\. -3 in image 0"),
    ("above 255", np.full((2, 64), 300), r"values above 255, e\.g\. 300 in image 0"),
    ("fraction", np.full((2, 64), 0.5), r"fractions \(pixels rescaled to \[0, 1\]\?\), e\.g\. 0\.5"),
    ("wrong size", np.zeros((2, 63)), r"must be \(N, 8, 8, 1\) images or \(N, 64\) flat rows; got shape"),
    ("one image, no batch", np.zeros((8, 8, 1)), r"got shape \(8, 8, 1\)"),
    ("text", np.array([["a"] * 64]), r"images must hold numbers"),
    ("bool", np.zeros((1, 64), dtype=bool), r"images must hold numbers"),
]


def test_a_request_of_too_many_pixels_is_refused_before_any_is_converted(logged, loaded):
    """The served model's bound (serving.MAX_REQUEST_VALUES); Softmax itself takes any number of images."""
    many = np.zeros((2**25 // 64 + 1, 64), dtype=np.uint8)
    refused = r"a request holds at most 33554432 pixel values \(524288 images of this model\); got 33554496"
    with pytest.raises(MlflowException, match=refused) as e:
        loaded.predict(many)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert loaded.predict(many[:-1]).shape == (2**25 // 64,)
    assert logged.model.predict_images(many).shape == (many.shape[0],)


@pytest.mark.parametrize("what, bad, message", BAD_PIXELS, ids=[b[0] for b in BAD_PIXELS])
def test_the_model_refuses_pixels_that_are_not_pixels(logged, loaded, what, bad, message):
    with pytest.raises(MlflowException, match=message) as caught:
        loaded.predict(bad)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(ValueError, match=message):  # the class itself, and Softmax under it
        logged.model.predict_images(bad)


def test_names_and_probabilities(logged, loaded):
    images = logged.images[:200]
    labels = logged.model.predict_images(images)
    names = loaded.predict(images, params={"output": "names"})
    assert names.tolist() == [str(k) for k in labels]
    proba = loaded.predict(images, params={"output": "probabilities"})
    assert proba.shape == (200, 10) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), labels)
    np.testing.assert_array_equal(loaded.predict(images, params={"output": "labels"}), labels)
    scores = loaded.predict(images, params={"output": "scores"})
    assert scores.shape == (200, 10) and scores.dtype == np.float64
    np.testing.assert_array_equal(scores.argmax(axis=1), labels)
    np.testing.assert_allclose(np.exp(scores - scores.max(axis=1, keepdims=True)) /
                               np.exp(scores - scores.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True),
                               proba, rtol=1e-12)
    assert loaded.metadata.metadata["model"] == "softmax"
    with pytest.raises(MlflowException, match="one of labels, names, scores, probabilities; got 'logits'"):
        loaded.predict(images, params={"output": "logits"})


def test_an_svm_model_gives_labels_names_and_scores_and_refuses_probabilities(logged, tmp_path, monkeypatch):
    data = load_dataset({"name": "digits", "cache": False})
    svm = LinearSVM("numba_fused", Preprocessing.of(data))
    svm.train(data.X_train, data.y_train, lr=1e-3, reg=1e-2, num_iters=200)
    with Run.start(logged.uri, "digits_svm", "svm") as run:  # the module's experiment keeps its one model
        model_uri = log_model(logged.uri, run.run_id, svm, logged.images[:10], params={"model.name": "svm"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    loaded = mlflow.pyfunc.load_model(model_uri)
    images = logged.images[:300]
    labels = loaded.predict(images)
    np.testing.assert_array_equal(labels, svm.predict_images(images))
    assert np.mean(labels == read_digits()[1][:300]) > 0.85
    assert loaded.predict(images, params={"output": "names"}).tolist() == [str(k) for k in labels]
    scores = loaded.predict(images, params={"output": "scores"})
    np.testing.assert_array_equal(scores, svm.scores(svm.preprocess(images)))
    np.testing.assert_array_equal(scores.argmax(axis=1), labels)
    meta = loaded.metadata.metadata
    assert meta["model"] == "svm" and meta["outputs"] == ["labels", "names", "scores"]
    refused = (r"^a svm model gives no probabilities \(its scores are margins, not a distribution\); ask for "
               r"params\['output'\] = 'scores' or 'labels'$")
    with pytest.raises(MlflowException, match=refused) as e:
        loaded.predict(images, params={"output": "probabilities"})
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_signature_and_input_example(logged, loaded):
    sig = loaded.metadata.signature
    assert sig.inputs is None  # the model checks its input itself (see softmax_exp.serving.signature)
    assert sig.outputs.inputs[0].shape == (-1,) and sig.outputs.inputs[0].type == np.dtype(np.int64)
    assert sig.params.params[0].name == "output" and sig.params.params[0].default == "labels"
    assert set(loaded.metadata.metadata["input_forms"]) == {"images", "rows"}
    example = loaded.input_example
    np.testing.assert_array_equal(example, logged.images[:3])


def test_large_images_get_a_short_input_example_or_none(logged, monkeypatch):
    """MLflow writes the example as JSON twice: a 2000x2000 RGB example cost gigabytes."""
    from softmax_exp.tracking import logged_model

    monkeypatch.setattr(logged_model, "MAX_EXAMPLE_VALUES", 130)
    assert logged_model._examples(logged.model, logged.images).shape == (2, 8, 8, 1)
    monkeypatch.setattr(logged_model, "MAX_EXAMPLE_VALUES", 63)
    assert logged_model._examples(logged.model, logged.images).shape == (0, 8, 8, 1)


def test_the_run_shows_its_model(logged, monkeypatch):
    client = get_client(logged.uri)
    run = client.get_run(logged.run_id)
    (found,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert logged.model_uri == f"models:/{found.model_id}"
    assert found.name == MODEL_NAME and found.source_run_id == logged.run_id
    assert found.status == LoggedModelStatus.READY
    assert found.params == {"lr": "0.01", "num_iters": "200"}
    # the run lists it among its outputs: the UI's Models column and run page read that
    assert [(o.model_id, o.step) for o in run.outputs.model_outputs] == [(found.model_id, 0)]
    # its files live with the experiment's models, not among the run's artifacts
    assert found.artifact_location.endswith(f"/models/{found.model_id}/artifacts")
    assert not any(f.path == MODEL_NAME for f in client.list_artifacts(logged.run_id))
    # no fluent state was touched: no run was started, the global tracking URI is as it was
    assert mlflow.active_run() is None and logged.tracking_uri_after == logged.tracking_uri_before
    # the run-relative URI finds the same model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    by_run = mlflow.pyfunc.load_model(f"runs:/{logged.run_id}/{MODEL_NAME}")
    assert by_run.model_id == found.model_id
    np.testing.assert_array_equal(by_run.predict(logged.images[:50]),
                                  logged.model.predict_images(logged.images[:50]))


def test_bad_example_images(logged):
    with pytest.raises(ValueError, match=r"example_images must be raw images \(n, 8, 8, 1\) or \(n, 64\)"):
        log_model(logged.uri, logged.run_id, logged.model, np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="got shape \\(0, 64\\)"):
        log_model(logged.uri, logged.run_id, logged.model, np.zeros((0, 64)))
    with pytest.raises(ValueError, match="trained classifier with its preprocessing"):
        log_model(logged.uri, logged.run_id, Softmax(), logged.images)


@pytest.mark.subprocess
def test_the_model_brings_its_own_code(logged, tmp_path):
    """A fresh interpreter, without this checkout on its path, loads the model and predicts with the
    package files bundled in it (and only those: a missing one would fail the import)."""
    np.save(tmp_path / "images.npy", logged.images[:100])
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import mlflow.pyfunc
        model = mlflow.pyfunc.load_model({logged.model_uri!r})
        labels = model.predict(np.load("images.npy"))
        print(json.dumps({{"labels": labels.tolist(),
                          "files": [m.__file__ for k, m in sys.modules.items()
                                    if k.startswith("softmax_exp") and getattr(m, "__file__", None)]}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = logged.uri
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["labels"] == logged.model.predict_images(logged.images[:100]).tolist()
    bundled = [f for f in out["files"] if "/code/softmax_exp/" in f]
    assert bundled and len(bundled) == len(out["files"]), out["files"]
    loaded = {f.split("/code/softmax_exp/")[1] for f in bundled}
    assert loaded == {str(p.relative_to(PACKAGE)) for p in bundled_files(lazy=False)}  # all it needs, no more
    lazily = {str(p.relative_to(PACKAGE)) for p in set(bundled_files()) - set(bundled_files(lazy=False))}
    # a feature stage's modules: imported when a model of that stage loads (tests/test_features_*.py)
    assert {"features/hog_color.py", "features/kmeans.py"} <= lazily and all(f.startswith("features/")
                                                                             for f in lazily)
    assert {f.split("/")[0] for f in loaded} <= {*BUNDLED, "__init__.py"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.timeout(240)
def test_served_model_answers_invocations(logged, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    bin_dir = Path(sys.executable).parent  # the server is started as `exec uvicorn ...` by a shell
    env = {**os.environ, "MLFLOW_TRACKING_URI": logged.uri, "PYTHONPATH": str(ROOT),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    mlflow_cli = bin_dir / "mlflow"
    proc = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", logged.model_uri, "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow models serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow models serve not up after 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        images = logged.images[:40]
        labels = logged.model.predict_images(images).tolist()
        try:
            got = _post(f"{base}/invocations", {"inputs": images.tolist()})
            names = _post(f"{base}/invocations", {"inputs": images.tolist(), "params": {"output": "names"}})
        except urllib.error.HTTPError as e:
            pytest.fail(f"/invocations answered {e.code}: {e.read()[:2000]!r}\n{log.read_text()[-3000:]}")
        assert got == {"predictions": labels}, log.read_text()[-3000:]
        assert names == {"predictions": [str(k) for k in labels]}
        flat = images.reshape(len(images), -1).astype(np.uint8).tolist()  # rows of whole numbers
        assert _post(f"{base}/invocations", {"inputs": flat}) == {"predictions": labels}
        assert _post(f"{base}/invocations", {"inputs": []}) == {"predictions": []}
        for bad, message in (((images / 16).tolist(), "fractions"), ((-images).tolist(), "negative"),
                             ((images + 300).tolist(), "above 255"), ([[None] * 64], "must hold numbers")):
            with pytest.raises(urllib.error.HTTPError) as answer:
                _post(f"{base}/invocations", {"inputs": bad})
            assert answer.value.code == 400
            assert message in json.loads(answer.value.read())["message"]
        nan = json.dumps({"inputs": [[float("nan")] * 64]}).encode()  # Python's json writes NaN
        request = urllib.request.Request(f"{base}/invocations", data=nan, method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code == 400 and "NaN or inf" in json.loads(answer.value.read())["message"]
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (mlflow, uvicorn and its worker), SIGKILL after 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:  # the group is gone already
        proc.wait()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


OLD_MODEL = ROOT / "tests" / "data" / "model_logged_at_8ca2509.tar.gz"  # a digits model as commit 8ca2509
# logged it: the files of its model directory, its bundled code in the package layout of that time


@pytest.fixture(scope="module")
def old_model(tmp_path_factory) -> Path:
    import tarfile

    folder = tmp_path_factory.mktemp("old_model")
    with tarfile.open(OLD_MODEL) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _digits_images(n: int = 250):
    from softmax_exp.config import compose, to_config

    data = load_dataset(to_config(compose(["tracking.enabled=false"])).dataset)
    return data.raw_images("val", n), data.y_val[:n]


@pytest.mark.subprocess
def test_a_model_logged_before_loads_and_predicts_in_a_fresh_process(old_model, tmp_path):
    """What `mlflow models serve` does with a model logged by an earlier layout of the package: it loads
    the code bundled in it and answers as this checkout's Softmax does with the same weights."""
    images, labels = _digits_images()
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(f"""
        import json
        import numpy as np
        import mlflow.pyfunc
        model = mlflow.pyfunc.load_model({str(old_model)!r})
        print(json.dumps(model.predict(np.load("images.npy")).tolist()))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served == Softmax.load(old_model / "artifacts" / "model.npz").predict_images(images).tolist()
    assert np.mean(np.array(served) == labels) == 0.952  # what it reached when it was logged


def test_a_model_logged_before_loads_beside_this_package(old_model):
    """In a process that has imported this package (a notebook, evaluation), the model's own bundled code
    is shadowed by it: the current package must still take it."""
    images, _ = _digits_images(40)
    model = mlflow.pyfunc.load_model(str(old_model))
    expected = Softmax.load(old_model / "artifacts" / "model.npz").predict_images(images)
    assert model.predict(images).tolist() == expected.tolist()
    names = model.predict(images, params={"output": "names"})
    assert names.tolist() == [str(i) for i in expected]


def test_mlflow_evaluate_gives_log_loss_and_roc_auc(logged):
    """MLflow's own classifier evaluation of the logged model: with the softmax's probabilities it gives
    log_loss and roc_auc, equal to their definitions on the model's probabilities."""
    from softmax_exp.tracking.evaluation import evaluate_model

    data = load_dataset({"name": "digits", "cache": False})
    images, labels = data.raw_images("val"), data.y_val
    result = evaluate_model(logged.uri, logged.model_uri, images, labels, data.class_names)
    m = result.metrics
    proba = logged.model.predict_proba(logged.model.preprocess(images))
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(proba[np.arange(len(labels)), labels])), rel=1e-6)
    assert 0.9 < m["roc_auc"] <= 1.0
    assert m["accuracy_score"] == pytest.approx(logged.model.accuracy(data.X_val, labels))
    assert {"roc_curve_plot", "confusion_matrix"} <= set(result.artifacts)
