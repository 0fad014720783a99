"""Bad data, each run as a real process: a damaged cache entry, bad class names, wide pixels, what killed
writers left behind.

The machinery is test_bad_inputs.py's (its Case, its command lines and folders, its debris check); a case
here may also end well: a damaged cache entry is rebuilt (exit 0, its one warning line), a 16-bit PNG is
read (exit 0, no stderr at all). Every case checks the exit status, the stderr line (exactly one when it
fails or warns), the cache entries and that no temporary file is left, and, where pixels are involved,
reads the cache entry the process wrote to compare its pixels with the source's: no silently wrong pixels.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    batch_dict,
    cache_entries,
    can_mount_read_only,
    cifar_cfg,
    dead_pid,
    make_cifar_dir,
    make_cifar_tar,
    make_imagefolder,
    read_only,
    write_png16,
    write_py2_pickle,
)
from PIL import Image
from test_bad_inputs import CIFAR, IMAGES, PREFIX, Case, Outcome, command, debris

from softmax_exp.data import check_dataset, load_dataset
from softmax_exp.data.cache import entry_path
from softmax_exp.data.download import file_md5
from softmax_exp.util.atomic import owner_tag

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ARRAYS = ["mean_image"] + [f"{a}_{s}" for s in ("train", "val", "test", "dev") for a in "Xy"]
BATCHES = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"


@dataclass(frozen=True)
class DataCase(Case):
    """A Case that may end well: with ``exit_code`` 0, ``message`` is the regex of the one warning line
    (after "warning: "), or "" for an empty stderr. ``entries``: the cache entries the run leaves;
    ``check(tmp)`` asserts on what it left (the pixels in the entry, the folders); ``read_only_cache``:
    ``{tmp}/cache`` is mounted read-only for the run."""

    entries: int = 0
    check: Callable[[Path], None] | None = None
    read_only_cache: bool = False


def data(id_: str, *args: str, message: str, **kw) -> DataCase:
    return DataCase(id_, "data", args, message, **kw)


def train(id_: str, *args: str, message: str, **kw) -> DataCase:
    """Training without MLflow: where a data fault used to become a kernel traceback."""
    return DataCase(id_, "train", (*args, "tracking.enabled=false"), message, heavy=True, **kw)


# ------------------------------------------------------------------------------ a damaged cache entry


def _cifar_cfg(tmp: Path) -> dict:
    """The dataset config of CIFAR (the command line's overrides) as a mapping."""
    return cifar_cfg(tmp / "cifar", tmp / "cache")


def damaged(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """A setup: CIFAR, its cache entry built, then ``damage(entry folder)``."""

    def setup(tmp: Path) -> None:
        make_cifar_dir(tmp / "cifar")
        damage(Path(load_dataset(_cifar_cfg(tmp)).cache_path))

    return setup


def labels_out_of_range(entry: Path) -> None:
    y = np.load(entry / "y_train.npy")
    y[3] = 10
    np.save(entry / "y_train.npy", y)


def truncated_x(entry: Path) -> None:
    path = entry / "X_train.npy"
    path.write_bytes(path.read_bytes()[:100_000])


def x_transposed(entry: Path) -> None:
    np.save(entry / "X_val.npy", np.ascontiguousarray(np.load(entry / "X_val.npy").T))


def meta_of_other_shapes(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["X_test"]["shape"][0] += 1
    (entry / "meta.json").write_text(json.dumps(meta))


def mean_changed(entry: Path) -> None:
    np.save(entry / "mean_image.npy", np.load(entry / "mean_image.npy") * 0.5)


def file_missing(entry: Path) -> None:
    (entry / "y_test.npy").unlink()


def meta_not_json(entry: Path) -> None:
    (entry / "meta.json").write_text("")


def rebuilt(tmp: Path) -> None:
    """The one entry holds what a fresh build in memory gives."""
    fresh = load_dataset({**_cifar_cfg(tmp), "cache": False})
    [entry] = cache_entries(tmp / "cache")
    for stem in ARRAYS:
        np.testing.assert_array_equal(np.load(entry / f"{stem}.npy"), getattr(fresh, stem), err_msg=stem)


LABELS_CHANGED = r"y_train\.npy does not match its sha256 in meta\.json"


def rebuilding(entry_damage: str) -> str:
    return rf"cache entry .*/cache/cifar10-[0-9a-f]{{16}} is damaged \({entry_damage}\); rebuilding it$"


# -------------------------------------------------------------------------------- CIFAR class names


def meta_names(*names) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        make_cifar_dir(tmp / "cifar")
        meta = {b"label_names": list(names), b"num_vis": 3072}
        write_py2_pickle(meta, tmp / "cifar" / BATCHES / "batches.meta")

    return setup


def one_class_labels(tmp: Path) -> None:
    """batches.meta of one class, and every label 0 (the loss is 0 whatever W is)."""
    meta_names(b"airplane")(tmp)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        path = tmp / "cifar" / BATCHES / name
        n = 50 if name == "test_batch" else 40
        write_py2_pickle(batch_dict(np.zeros((n, 3072), dtype=np.uint8), [0] * n), path)


def class_folder_not_utf8(tmp: Path) -> None:
    make_imagefolder(tmp / "img")
    for split in ("train", "test"):  # a Latin-1 folder name, as an old archive may carry
        os.rename(tmp / "img" / split / "emu", os.fsencode(tmp / "img" / split) + b"/\xe9mu")


# ----------------------------------------------------------------------------------------- wide pixels


def sixteen_bit_pixels(gray: bool) -> dict[str, np.ndarray]:
    """{relative path: uint16 pixels} of a 2-class folder, the same at every call: random 16-bit values,
    the ends of the range and 8-bit values widened by bit replication (v * 257)."""
    rng = np.random.default_rng(16)
    pixels = {}
    for split in ("train", "test"):
        for name in ("dark", "light"):
            for i in range(4):
                px = rng.integers(0, 65536, size=(5, 4) if gray else (5, 4, 3), dtype=np.uint16)
                px.flat[:6] = [0, 65535, 255, 256, 257 * 128, 257 * 254]
                pixels[f"{split}/{name}/img_{i}.png"] = px
    return pixels


def sixteen_bit_folder(gray: bool) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for rel, px in sixteen_bit_pixels(gray).items():
            (tmp / "img" / rel).parent.mkdir(parents=True, exist_ok=True)
            if gray:
                Image.fromarray(px).save(tmp / "img" / rel)  # mode I;16
            else:
                write_png16(tmp / "img" / rel, px)

    return setup


def high_bytes_in_the_cache(gray: bool) -> Callable[[Path], None]:
    """The entry's rows (mean added back, bias column dropped) are the source's values >> 8, every one."""

    def check(tmp: Path) -> None:
        [entry] = cache_entries(tmp / "cache")
        mean = np.load(entry / "mean_image.npy")
        splits = ("train", "val", "test")
        rows = np.concatenate([np.load(entry / f"X_{s}.npy")[:, :-1] + mean for s in splits])
        assert np.abs(rows - np.rint(rows)).max() < 1e-3  # whole pixel values, nothing in between
        got = {row.tobytes() for row in np.rint(rows).astype(np.uint8)}
        expected = set()
        for px in sixteen_bit_pixels(gray).values():
            high = (px >> 8).astype(np.uint8)
            expected.add((np.repeat(high[..., None], 3, axis=2) if gray else high).tobytes())
        assert got == expected

    return check


def tiff_named_png(pixels: np.ndarray) -> Callable[[Path], None]:
    """An image folder with one TIFF of ``pixels`` named .png (Pillow opens a file by its content)."""

    def setup(tmp: Path) -> None:
        make_imagefolder(tmp / "img")
        Image.fromarray(pixels).save(tmp / "img" / "test" / "dog" / "img_1.png", format="TIFF")

    return setup


# ---------------------------------------------------------------------- what killed writers left


def _left_by_the_dead(folder: Path, name: str, size: int = 1 << 20) -> None:
    """A temporary named as a writer that was SIGKILLed names it, holding what it got through."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\0" * size)


def killed_builder(tmp: Path) -> None:
    make_cifar_dir(tmp / "cifar")
    entry = entry_path(tmp / "cache", "cifar10", check_dataset(_cifar_cfg(tmp)))
    folder = tmp / "cache" / f".tmp-{entry.name}-q8z1.{owner_tag(dead_pid())}"
    _left_by_the_dead(folder, "X_train.npy")


def killed_extractor(tmp: Path) -> None:
    (tmp / "cifar").mkdir()
    make_cifar_tar(tmp / "cifar")
    _left_by_the_dead(tmp / "cifar" / f".extract-w3e4.{owner_tag(dead_pid())}" / BATCHES, "data_batch_1")


def killed_downloader(tmp: Path) -> None:
    (tmp / "server").mkdir()
    make_cifar_tar(tmp / "server")
    _left_by_the_dead(tmp / "cifar", f".{ARCHIVE}.{owner_tag(dead_pid())}.part")


def extracted(tmp: Path) -> None:
    assert sorted(p.name for p in (tmp / "cifar" / BATCHES).iterdir())[0] == "batches.meta"


def downloaded(tmp: Path) -> None:
    assert file_md5(tmp / "cifar" / ARCHIVE) == file_md5(tmp / "server" / ARCHIVE)


DOWNLOAD = ("download", "cifar10", "dataset.md5=null", "--root", "{tmp}/cifar",
            "--url", f"file://{{tmp}}/server/{ARCHIVE}")

CASES = [
    # a damaged cache entry: checked when opened, rebuilt under its lock with one warning line
    data("cache_labels_out_of_range", "info", *CIFAR, setup=damaged(labels_out_of_range), exit_code=0,
         entries=1, check=rebuilt, message=rebuilding(LABELS_CHANGED)),
    data("cache_truncated_x", "info", *CIFAR, setup=damaged(truncated_x), exit_code=0, entries=1,
         check=rebuilt, message=rebuilding(r"X_train\.npy has 100000 bytes, meta\.json says \d+")),
    data("cache_x_of_another_shape", "info", *CIFAR, setup=damaged(x_transposed), exit_code=0, entries=1,
         check=rebuilt, message=rebuilding(r"X_val\.npy holds \(3073, 30\) float32, meta\.json says "
                                           r"\(30, 3073\) float32")),
    data("cache_meta_of_other_shapes", "info", *CIFAR, setup=damaged(meta_of_other_shapes), exit_code=0,
         entries=1, check=rebuilt, message=rebuilding(r"X_test\.npy holds \(40, 3073\) float32, meta\.json "
                                                      r"says \(41, 3073\) float32")),
    data("cache_mean_changed", "info", *CIFAR, setup=damaged(mean_changed), exit_code=0, entries=1,
         check=rebuilt, message=rebuilding(r"mean_image\.npy does not match its sha256 in meta\.json")),
    data("cache_file_missing", "info", *CIFAR, setup=damaged(file_missing), exit_code=0, entries=1,
         check=rebuilt, message=rebuilding(r"FileNotFoundError: .*y_test\.npy'")),
    data("cache_meta_empty", "info", *CIFAR, setup=damaged(meta_not_json), exit_code=0, entries=1,
         check=rebuilt, message=rebuilding(r"JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)")),
    data("cache_damaged_read_only", "info", *CIFAR, setup=damaged(labels_out_of_range), read_only_cache=True,
         entries=1, message=rf"cache entry .*/cache/cifar10-[0-9a-f]{{16}} is damaged \({LABELS_CHANGED}\) "
                            r"and cannot be rebuilt here \(Read-only file system\); delete that folder where "
                            r"the cache is writable, or set dataset\.cache_dir to a writable folder "
                            r"\(or dataset\.cache=false\)$"),
    train("train_cache_labels_out_of_range", *CIFAR, setup=damaged(labels_out_of_range), exit_code=0,
          entries=1, check=rebuilt, message=rebuilding(LABELS_CHANGED)),
    # CIFAR class names
    data("meta_one_class", "info", *CIFAR, setup=meta_names(b"airplane"),
         message=r"batches\.meta has one class \(airplane\); a classifier needs at least 2 classes: "
                 r"delete it and re-download$"),
    train("train_meta_one_class", *CIFAR, setup=one_class_labels,
          message=r"batches\.meta has one class \(airplane\); a classifier needs at least 2 classes"),
    data("meta_name_not_utf8", "info", *CIFAR, setup=meta_names(b"cat", b"\xe9mu", b"dog"),
         message=r"batches\.meta: class name #1 b'\\xe9mu' is not valid UTF-8; delete it and re-download$"),
    data("meta_name_not_a_string", "info", *CIFAR, setup=meta_names(b"cat", None, b"dog"),
         message=r"batches\.meta: class name #1 is a NoneType, not a string; delete it and re-download$"),
    data("meta_name_with_a_newline", "info", *CIFAR, setup=meta_names(b"cat", b"d\nog"),
         message=r"batches\.meta: class name #1 'd\\nog' is empty or holds control characters; delete it"),
    data("imagefolder_class_not_utf8", "info", *IMAGES, setup=class_folder_not_utf8,
         message=r"img/train: class folder name #2 '\\udce9mu' is not valid UTF-8; add or rename class "
                 r"folders in train/ and test/ \(2 or more, printable UTF-8 names\)$"),
    # wide pixels: 16-bit keeps its high byte, a range nobody knows is refused
    data("png16_gray", "info", *IMAGES, setup=sixteen_bit_folder(gray=True), exit_code=0, entries=1,
         check=high_bytes_in_the_cache(gray=True), message=""),
    data("png16_rgb", "info", *IMAGES, setup=sixteen_bit_folder(gray=False), exit_code=0, entries=1,
         check=high_bytes_in_the_cache(gray=False), message=""),
    data("png16_gray_as_gray", "info", *IMAGES, "dataset.mode=L", setup=sixteen_bit_folder(gray=True),
         exit_code=0, entries=1, message=""),
    train("train_png16", *IMAGES, setup=sixteen_bit_folder(gray=True), exit_code=0, entries=1,
          check=high_bytes_in_the_cache(gray=True), message=""),
    data("float_image", "info", *IMAGES, setup=tiff_named_png(np.full((5, 4), 0.25, dtype=np.float32)),
         message=r"test/dog/img_1\.png has 32-bit float pixels \(Pillow mode F\), whose range is unknown; "
                 r"save it as an 8- or 16-bit PNG or as a JPEG$"),
    data("int32_image", "info", *IMAGES, setup=tiff_named_png(np.full((5, 4), 1 << 20, dtype=np.int32)),
         message=r"test/dog/img_1\.png has 32-bit integer pixels \(Pillow mode I\), whose range is unknown"),
    # what a SIGKILLed builder, extractor or downloader left: removed by the next one to take the lock
    data("killed_builder_leftover", "info", *CIFAR, setup=killed_builder, exit_code=0, entries=1, message=""),
    data("killed_extractor_leftover", "info", *CIFAR, setup=killed_extractor, exit_code=0, entries=1,
         check=extracted, message=""),
    data("killed_downloader_leftover", *DOWNLOAD, setup=killed_downloader, exit_code=0, check=downloaded,
         message=""),
    data("killed_downloader_leftover_md5_mismatch", *DOWNLOAD, "--md5", "0" * 32, setup=killed_downloader,
         message=rf"MD5 mismatch for file://.*/server/{ARCHIVE}: expected 0{{32}}, got [0-9a-f]{{32}}; the "
                 r"download is corrupt or --url/--md5 are wrong \(nothing was kept\)$"),
]


# ------------------------------------------------------------------------------------ running a case


def execute(case: DataCase, tmp: Path) -> Outcome:
    """test_bad_inputs' execute for a process without an MLflow store, the cache read-only if asked."""
    (tmp / "tmpdir").mkdir()
    if case.setup:
        case.setup(tmp)
    argv = command(case, tmp, None)
    if case.read_only_cache:
        argv = read_only(argv, tmp / "cache")
    env = {**os.environ, "CI": "true", "TMPDIR": str(tmp / "tmpdir")}
    env.pop("HYDRA_FULL_ERROR", None)
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=case.max_seconds)
        returncode, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as e:
        returncode, stderr = None, (e.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - start
    return Outcome(returncode, stderr, seconds, [], cache_entries(tmp / "cache"), debris(tmp))


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, tuple[Path, Future]]:
    """Start every selected case, two at a time, the training ones first; case id -> (folder, Future)."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")}
    cases = [c for c in CASES if c.id in selected and (can_mount_read_only() or not c.read_only_cache)]
    cases.sort(key=lambda c: not c.heavy)
    with ThreadPoolExecutor(2) as pool:
        started = {}
        for case in cases:
            tmp = tmp_path_factory.mktemp(case.id)
            started[case.id] = tmp, pool.submit(execute, case, tmp)
        yield started


def test_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 15 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_data_ends_in_one_line_and_leaves_no_temporary(case: DataCase, outcomes):
    if case.read_only_cache and not can_mount_read_only():
        pytest.skip("unshare -rm cannot bind-mount a folder read-only here")
    tmp, future = outcomes[case.id]
    out = future.result()
    assert out.returncode is not None, f"no exit after {out.seconds:.0f} s; stderr: {out.stderr[-2000:]}"
    assert out.returncode == case.exit_code, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    if case.exit_code == 0 and not case.message:
        assert lines == []
    else:
        prefix = r"^warning: " if case.exit_code == 0 else PREFIX[case.module]
        assert len(lines) == 1, out.stderr[-3000:]
        assert re.search(prefix, lines[0]) and re.search(case.message, lines[0]), lines[0]
    assert len(out.cache) == case.entries and out.debris == []
    if case.check:
        case.check(tmp)

