"""The feature stage between the images and the classifier: the config group, the cached rows, the model
that carries the fitted stage, and the pixels left exactly as they were."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import cifar_arrays, cifar_cfg, make_cifar_dir
from helpers import client_for

from softmax_exp.config import ConfigError
from softmax_exp.config.fingerprints import config_fingerprint
from softmax_exp.data import load_dataset
from softmax_exp.features.settings import FeatureParams, HogColorParams, KMeansParams
from softmax_exp.job.fit import JobContext, fit
from softmax_exp.learn.model import LinearClassifier, LinearSVM, Preprocessing, Softmax


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    make_cifar_dir(root, n_per_batch=60, n_test=40)
    return root


def _cifar(root, cache_dir, **kw):
    return cifar_cfg(root, cache_dir, num_training=250, num_validation=30, num_test=40, num_dev=10, **kw)


def test_the_features_group_composes_and_checks_its_options(make_cfg):
    pixels = make_cfg(None)
    assert pixels.features == FeatureParams() and pixels.features.name == "pixels"
    hog = make_cfg(None, "features=hog_color", "features.cell_size=4")
    assert isinstance(hog.features, HogColorParams)
    assert (hog.features.cell_size, hog.features.orientations, hog.features.hue_bins) == (4, 9, 10)
    assert config_fingerprint(hog) != config_fingerprint(pixels)
    with pytest.raises(ConfigError, match=r"features\.cell_size must be an integer >= 1; got 0"):
        make_cfg(None, "features=hog_color", "features.cell_size=0")
    with pytest.raises(ConfigError, match=r"features\.name is set by the features group, not by hand"):
        make_cfg(None, "features.name=hog_color")


def test_pixels_as_a_feature_setting_are_the_pixels_exactly(tmp_path):
    cfg = {"name": "digits", "cache": False}
    before, now = load_dataset(cfg), load_dataset(cfg, FeatureParams())
    assert now.fingerprint == before.fingerprint and now.features is None
    for split in ("train", "val", "test", "dev"):
        assert np.array_equal(getattr(now, f"X_{split}"), getattr(before, f"X_{split}"))


def test_hog_color_rows_are_the_standardised_features_with_a_bias_column(cifar, tmp_path):
    params = HogColorParams()
    data = load_dataset(_cifar(cifar, tmp_path / "cache"), params, progress=False)
    assert data.dim == 144 + 10 + 1 and data.X_train.dtype == np.float32
    stage = data.features
    assert stage.NAME == "hog_color" and stage.dim == 154
    X = np.asarray(data.X_train, dtype=np.float64)
    assert np.all(X[:, -1] == 1.0)
    varying = stage.state()["std"] != 1.0
    np.testing.assert_allclose(X[:, :-1].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X[:, :-1][:, varying].std(axis=0), 1, rtol=1e-4)
    # the training mean and std only: a validation row is the transform of its image, cast
    rows = stage.transform(data.examples, np.float32)
    np.testing.assert_array_equal(data.X_val[: len(rows), :-1], rows)
    assert data.raw_images("val", 3).shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="keeps only validation images"):
        data.raw_images("train", 3)


def test_the_rows_are_cached_once_and_memory_mapped_under_their_own_fingerprint(cifar, tmp_path):
    cfg = _cifar(cifar, tmp_path / "cache")
    first = load_dataset(cfg, HogColorParams(), progress=False)
    again = load_dataset(cfg, HogColorParams(), progress=False)
    assert first.cache_path == again.cache_path and isinstance(again.X_train, np.memmap)
    assert np.array_equal(first.X_train, again.X_train)
    assert np.array_equal(again.features.state()["mean"], first.features.state()["mean"])
    other = load_dataset(cfg, HogColorParams(orientations=6), progress=False)
    pixels = load_dataset(cfg, progress=False)
    assert len({first.fingerprint, other.fingerprint, pixels.fingerprint}) == 3
    assert other.dim == 16 * 6 + 10 + 1
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))
    assert len(entries) == 3


def test_a_saved_model_carries_its_fitted_stage_and_predicts_raw_images_as_in_process(cifar, tmp_path):
    data = load_dataset(_cifar(cifar, tmp_path / "cache"), HogColorParams(), progress=False)
    for cls in (Softmax, LinearSVM):
        model = cls("numba_fused", Preprocessing.of(data))
        model.train(data.X_train, data.y_train, lr=1e-3, reg=1e-3, num_iters=50, batch_size=50)
        back = LinearClassifier.load(model.save(tmp_path / f"{cls.LOSS}.npz"))
        assert type(back) is cls and back.preprocessing.features.settings() == data.features.settings()
        images = data.examples
        rows = back.preprocess(images)
        np.testing.assert_array_equal(rows, data.X_val[: len(images)])  # the rows the training saw
        np.testing.assert_array_equal(back.predict_images(images), model.predict(data.X_val[: len(images)]))
        flat = images.reshape(len(images), -1).astype(np.float64)  # any numeric dtype, flat rows too
        np.testing.assert_array_equal(back.predict_images(flat), back.predict_images(images))


def test_a_features_run_is_tracked_logged_and_reproduced(store, make_cfg, capsys):
    from softmax_exp.reproduce import main

    out = fit(make_cfg(store, "features=hog_color", "features.cell_size=4", "num_iters=300"), JobContext())
    assert out.status == "FINISHED" and out.metrics["val_acc"] > 0.5
    run = client_for(store).get_run(out.run_id)
    assert run.data.params["features.name"] == "hog_color" and run.data.params["features.cell_size"] == "4"
    assert run.data.tags["mlflow.note.content"].startswith("softmax on digits hog_color features, sgd lr=")
    artifacts = {a.path for a in client_for(store).list_artifacts(out.run_id)}
    assert "weights.png" not in artifacts and "loss.png" in artifacts  # W of features are not images
    assert main([out.run_id, "--tracking-uri", f"sqlite:///{store}"]) == 0
    assert capsys.readouterr().out.strip().endswith("reproduced: identical")


def test_a_model_file_with_a_damaged_stage_is_refused_in_one_line(cifar, tmp_path):
    from npz_fixtures import rewrite

    data = load_dataset(_cifar(cifar, tmp_path / "cache"), HogColorParams(), progress=False)
    model = Softmax("vectorized", Preprocessing.of(data))
    model.W = np.zeros((data.dim, 10), np.float32)
    good = model.save(tmp_path / "m.npz")
    cases = [
        (dict(features=np.str_('{"name": "sift"}')), "unknown feature stage 'sift'; this code knows hog_co"),
        (dict(features=np.str_("{not json")), "Expecting property name"),
        (dict(features=np.str_('{"name": "hog_color", "cell_size": 0}')), "cell_size must be an integer"),
        (dict(features_std=np.ones(3)), r"features_std is float64 \(3,\); expected"),
        (dict(features_std=np.full(154, np.nan)), "expected finite float64"),
        (dict(features_mean=None), r"state holds \['std'\]; expected \['mean', 'std'\]"),
        (dict(features_scale=np.ones(154)), r"state holds \['mean', 'scale', 'std'\]"),
        (dict(features=None), "unexpected member 'features_mean'"),
    ]
    for replace, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            LinearClassifier.load(rewrite(good, tmp_path / "bad.npz", **replace))
        assert "\n" not in str(e.value) and "is not a saved classifier" in str(e.value)


SERVED_STAGES = {  # settings, and the stage's modules a served model must load from its own code
    "hog_color": (HogColorParams(), {"features/hog.py", "features/color_histogram.py",
                                     "features/hog_color.py"}),
    "kmeans": (KMeansParams(num_centroids=16, num_patches=2000, kmeans_iters=4), {"features/kmeans.py"}),
}


@pytest.mark.subprocess
@pytest.mark.parametrize("stage", sorted(SERVED_STAGES))
def test_a_served_features_model_brings_its_stage_and_answers_as_the_training_process(cifar, tmp_path, store,
                                                                                       stage):
    """Logged as an MLflow model, loaded in a fresh interpreter without this checkout on its path (what
    ``mlflow models serve`` does): raw uint8 images in, the labels the training process gives them, from the
    stage's modules bundled in the model."""
    import json
    import os
    import subprocess
    import sys
    import textwrap

    from softmax_exp.tracking import Run
    from softmax_exp.tracking.logged_model import log_model

    params, modules = SERVED_STAGES[stage]
    data = load_dataset(_cifar(cifar, tmp_path / "cache"), params, progress=False)
    model = Softmax("numba_fused", Preprocessing.of(data))
    model.train(data.X_train, data.y_train, lr=1e-2, reg=1e-3, num_iters=100, batch_size=50)
    uri = f"sqlite:///{store}"
    with Run.start(uri, "features", stage) as run:
        model_uri = log_model(uri, run.run_id, model, data.raw_images("val", 3))
    test_rows = cifar_arrays(60, 40, 0)[2]  # the test batch's images, as the files hold them (CHW rows)
    images = np.ascontiguousarray(test_rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import mlflow.pyfunc
        model = mlflow.pyfunc.load_model({model_uri!r})
        labels = model.predict(np.load("images.npy"))
        print(json.dumps({{"labels": labels.tolist(),
                          "files": sorted(m.__file__ for k, m in sys.modules.items()
                                          if k.startswith("softmax_exp") and getattr(m, "__file__", None))}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = uri
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["labels"] == model.predict_images(images).tolist()
    assert out["labels"] == model.predict(data.X_test).tolist()  # the rows the training process made
    loaded = {f.split("/code/softmax_exp/")[1] for f in out["files"]}
    assert modules <= loaded
    assert all("/code/softmax_exp/" in f for f in out["files"])
