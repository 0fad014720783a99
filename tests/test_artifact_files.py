"""A training's files: each whole or missing (a full disk leaves no truncated picture), errors naming the
file; the weight picture of a W that diverged."""

from __future__ import annotations

import errno
import warnings

import numpy as np
import pytest

from softmax_exp.job import artifacts
from softmax_exp.job.fit import JobContext, fit
from softmax_exp.plots.weights import weight_images


def test_a_full_disk_leaves_no_truncated_file_and_names_it(store, make_cfg, tmp_path, monkeypatch):
    def fills_the_disk(path, loss, title=""):
        path.write_bytes(b"\x89PNG half a picture")  # what PIL had written when the disk filled
        raise OSError(errno.ENOSPC, "No space left on device")  # a write to an open file names no file

    monkeypatch.setattr(artifacts, "save_loss_png", fills_the_disk)
    out_dir = tmp_path / "out"
    with pytest.raises(OSError) as caught:
        fit(make_cfg(store, "num_iters=5"), JobContext(output_dir=out_dir))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename.endswith("artifacts/loss.png")
    left = sorted(p.name for p in (out_dir / "artifacts").iterdir())
    assert left == ["weights.png"]  # written whole before; loss.png and its temporary file are gone


def test_the_files_are_the_same_as_written_directly(store, make_cfg, tmp_path):
    out = fit(make_cfg(store, "num_iters=20"), JobContext(output_dir=tmp_path / "out"))
    folder = tmp_path / "out" / "artifacts"
    assert sorted(p.name for p in folder.iterdir()) == sorted(artifacts.FILES)
    np.testing.assert_array_equal(np.load(folder / "loss.npy"), out.history.loss)
    assert (tmp_path / "out" / "model.npz").stat().st_size > 0
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.name != ".hydra"]


def test_weight_images_of_a_diverged_W_are_drawn_without_warnings():
    W = np.linspace(-1, 1, 2 * 3 * 4, dtype=np.float32).reshape(6, 4)
    W[0, 0], W[1, 1], W[2, 2] = np.nan, np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiles = weight_images(W, (1, 2, 3), bias_trick=False)
    assert tiles.shape == (4, 1, 2, 3) and tiles.dtype == np.uint8
    assert tiles.min() == 0 and tiles.max() == 255  # the finite weights still span the range
    huge = np.array([[-1e308, 1e308]], dtype=np.float64)  # D = 1, C = 2; hi - lo overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert weight_images(huge, (1, 1, 1), bias_trick=False).ravel().tolist() == [0, 255]
