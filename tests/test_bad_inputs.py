"""Bad inputs at every boundary, each run as a real process: one line on stderr, nothing left behind.

CASES is one table of wrong config overrides, data files and folders, and kernel inputs (through
``python -m softmax_exp.learn.gradcheck`` and through training). Every case runs ``python -m
softmax_exp.<module>`` in its own folder with its own MLflow store, dataset cache and TMPDIR; all the
selected cases start at once on two worker threads (fixture ``outcomes``) and each test then checks its
process: the exit status, exactly one stderr line that names the problem and its fix, no MLflow run
left RUNNING, no cache entry and no temporary file left behind.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    batch_dict,
    cache_entries,
    cifar_overrides,
    leftovers,
    make_cifar_dir,
    make_imagefolder,
    write_py2_pickle,
)
from helpers import fresh_store
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

TIMEOUT = 120  # seconds a case may take before it counts as hanging
CIFAR = cifar_overrides(Path("{tmp}/cifar"), Path("{tmp}/cache"))  # 200 fake rows: 150 / 30 / 40 / 20
IMAGES = ("dataset=imagefolder", "dataset.root={tmp}/img", "dataset.cache_dir={tmp}/cache",
          "dataset.num_validation=2", "dataset.num_dev=2")
PREFIX = {  # how each command starts its one line
    "train": r"^(error|training diverged): ",
    "data": r"^python -m softmax_exp\.data( download)?: error: ",
    "learn.gradcheck": r"^python -m softmax_exp\.learn\.gradcheck: error: ",
    "reproduce": r"^error: cannot reproduce run \w+: ",
    "ui": r"^(error|python -m softmax_exp\.ui( serve| link)?: error): ",
}


@dataclass(frozen=True)
class Case:
    """One bad input: ``python -m softmax_exp.<module> <args>`` run after ``setup(tmp)`` made its files.

    ``{tmp}`` in args is the case's folder, ``{port}`` a closed local port. The process must exit with
    ``exit_code`` and print one stderr line matching ``message`` (a regex, after the module's PREFIX),
    within ``max_seconds``, and leave exactly the MLflow runs ``runs`` (their statuses). ``full_disk``:
    the dataset cache dir ``{tmp}/disk`` is a 64 KiB tmpfs. ``heavy``: the process gets as far as MLflow
    (~7 s; started first).
    """

    id: str
    module: str
    args: tuple[str, ...]
    message: str
    setup: Callable[[Path], None] | None = None
    exit_code: int = 2
    runs: tuple[str, ...] = ()
    max_seconds: float = TIMEOUT
    full_disk: bool = False
    heavy: bool = False
    run_folder_on_disk: bool = False  # the run's folder is {tmp}/disk/out: it is left, with whole files only


@dataclass(frozen=True)
class Outcome:
    """What a case's process did and left: exit status (None: killed at the timeout), stderr, wall
    time, the statuses of the runs in its store, cache entries and temporary files left over."""

    returncode: int | None
    stderr: str
    seconds: float
    runs: list[str]
    cache: list[Path]
    debris: list[Path]


# ---------------------------------------------------------------------------------------------- setups


def a_file(tmp: Path) -> None:
    """A regular file where a folder is expected."""
    (tmp / "file").write_text("not a folder")


def cifar(tmp: Path) -> None:
    """A small CIFAR-10 in the official format: 5 x 40 training rows, 50 test rows (cache ~2.5 MB)."""
    make_cifar_dir(tmp / "cifar")


def cifar_corrupt_batch(tmp: Path) -> None:
    cifar(tmp)
    (tmp / "cifar" / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80\x02}q\x00(U\x04data\xff")


def cifar_bad_label(tmp: Path) -> None:
    cifar(tmp)
    data = np.zeros((40, 3072), dtype=np.uint8)
    batch = tmp / "cifar" / "cifar-10-batches-py" / "data_batch_4"
    write_py2_pickle(batch_dict(data, [3] * 39 + [10]), batch)


def cifar_and_a_file(tmp: Path) -> None:
    cifar(tmp)
    a_file(tmp)


def one_class(tmp: Path) -> None:
    make_imagefolder(tmp / "img", classes=("cat",))


def mixed_sizes(tmp: Path) -> None:
    make_imagefolder(tmp / "img")
    Image.new("RGB", (9, 9)).save(tmp / "img" / "test" / "cat" / "img_0.png")


def truncated_png(tmp: Path) -> None:
    make_imagefolder(tmp / "img", size=(32, 32))
    path = tmp / "img" / "train" / "dog" / "img_3.png"
    path.write_bytes(path.read_bytes()[:400])


def garbage_store(tmp: Path) -> None:
    (tmp / "other.db").write_text("this is not a database, only text " * 200)


def half_made_store(tmp: Path) -> None:
    """A store whose schema creation an older version was stopped in (an alembic temp table is left)."""
    shutil.copy(tmp / "mlflow.db", tmp / "other.db")
    with closing(sqlite3.connect(tmp / "other.db")) as db:
        db.execute("CREATE TABLE _alembic_tmp_metrics (x INTEGER)")
        db.commit()


def old_schema_store(tmp: Path) -> None:
    """A store made by an older MLflow: its schema's version is the first migration."""
    shutil.copy(tmp / "mlflow.db", tmp / "other.db")
    with closing(sqlite3.connect(tmp / "other.db")) as db:
        db.execute("UPDATE alembic_version SET version_num = '451aebb31d03'")
        db.commit()


LISTENERS: list[socket.socket] = []  # kept open while the cases run


def port_taken(tmp: Path) -> None:
    """Something listens on a local port; the case finds it in {tmp}/port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    LISTENERS.append(sock)
    (tmp / "port").write_text(str(sock.getsockname()[1]))


def images(tmp: Path) -> None:
    make_imagefolder(tmp / "img")


def a_folder(tmp: Path) -> None:
    (tmp / "folder.db").mkdir()


SEARCH = ("-m", "hydra/sweeper=optuna_lr_reg", "hydra.sweeper.n_trials=2", "hydra.sweep.dir={tmp}/sweep")


def a_search(tmp: Path, *extra: str) -> None:
    """A finished 2-trial search in {tmp}/sweep, tracked in the case's store (as the case runs it, so that
    the case's own command is the same search, or one of its settings another)."""
    argv = [sys.executable, "-m", "softmax_exp.train", *SEARCH, f"tracking.uri=sqlite:///{tmp}/mlflow.db",
            f"dataset.cache_dir={tmp}/cache", "num_iters=50", "progress=false", *extra]
    done = subprocess.run([a.format(tmp=tmp) for a in argv], cwd=tmp, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CI": "true", "TMPDIR": str(tmp / "tmpdir")})
    assert done.returncode == 0, done.stderr[-2000:]


def a_search_with_a_damaged_journal(tmp: Path) -> None:
    a_search(tmp)
    journal = tmp / "sweep" / "optuna.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:3] + [b"{not json\n"] + lines[3:]))


def artifacts_is_a_file(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "artifacts").write_text("not a folder")


# ------------------------------------------------------------------------------------------- the table


def train(id_: str, *args: str, message: str, **kw) -> Case:
    return Case(id_, "train", args, message, **kw)


def data(id_: str, *args: str, message: str, **kw) -> Case:
    return Case(id_, "data", args, message, **kw)


def gradcheck(id_: str, *args: str, message: str, **kw) -> Case:
    return Case(id_, "learn.gradcheck", args, message, **kw)


def reproduce(id_: str, *args: str, message: str, **kw) -> Case:
    return Case(id_, "reproduce", args, message, **kw)


def ui(id_: str, *args: str, message: str, **kw) -> Case:
    return Case(id_, "ui", args, message, **kw)



CASES = [
    # config: wrong types
    train("lr_text", "lr=abc", message=r"lr: Value 'abc' of type 'str' could not be converted to Float$"),
    train("num_iters_float", "num_iters=1.5",
          message=r"num_iters: Value '1\.5' of type 'float' could not be converted to Integer$"),
    train("batch_size_bool", "batch_size=true",
          message=r"batch_size: Value 'True' of type 'bool' could not be converted to Integer$"),
    train("seed_text", "seed=x", message=r"seed: Value 'x' of type 'str' could not be converted to Integer$"),
    train("eval_every_text", "eval_every=abc", message=r"eval_every: Value 'abc' .* to Integer$"),
    train("eval_test_maybe", "eval_test=maybe", "num_iters=1",
          message=r"eval_test: Value 'maybe' is not a valid bool \(type str\)$"),
    train("progress_maybe", "progress=maybe", message=r"progress: Value 'maybe' is not a valid bool"),
    train("tracking_enabled_maybe", "tracking.enabled=maybe",
          message=r"tracking\.enabled: Value 'maybe' is not a valid bool \(type str\)$"),
    train("resume_maybe", "resume=maybe", message=r"resume: Value 'maybe' is not a valid bool \(type str\)$"),
    train("gamma_text", "optimizer.gamma=abc",
          message=r"optimizer\.gamma: Value 'abc' of type 'str' could not be converted to Float$"),
    train("key_added", "+learning_rate=1", message=r"unknown option learning_rate; the options there are: "),
    train("checkpoint_every_negative", "checkpoint_every=-5",
          message=r"checkpoint_every must be an integer >= 0 \(0: no checkpoints\); got -5$"),
    train("num_threads_zero", "num_threads=0", message=r"num_threads must be null or an integer >= 1; got 0"),
    # config: values out of range
    train("lr_nan", "lr=nan", message=r"lr must be a finite number > 0; got nan$"),
    train("lr_negative", "lr=-1", message=r"lr must be a finite number > 0; got -1\.0$"),
    train("reg_negative", "reg=-1", message=r"reg must be a finite number >= 0; got -1\.0$"),
    train("reg_inf", "reg=inf", message=r"reg must be a finite number >= 0; got inf$"),
    train("num_iters_zero", "num_iters=0", message=r"num_iters must be an integer >= 1; got 0$"),
    train("init_scale_negative", "model.init_scale=-1",
          message=r"model.init_scale must be a finite number > 0"),
    train("momentum_too_large", "optimizer=momentum", "optimizer.momentum=1.5",
          message=r"optimizer.momentum must be a number in \[0, 1\); got 1\.5$"),
    # config: unknown names
    train("kernel_unknown", "kernel=turbo",
          message=r"unknown kernel 'turbo'; choose one of: naive, vectorized, numba_naive, numba_fused$"),
    train("optimizer_name_unknown", "optimizer.name=adam",
          message=r"optimizer\.name is set by the optimizer group, not by hand; got 'adam': choose "
                  r"optimizer=sgd"),
    train("optimizer_group_unknown", "optimizer=adam",
          message=r"Could not find 'optimizer/adam'.*Available options in 'optimizer': momentum sgd"),
    train("features_cells_larger_than_the_images", "features=hog_color", "features.cell_size=16",
          message=r"features=hog_color does not fit the 8x8x1 images of digits: images must be at least one "
                  r"cell \(16 x 16 pixels\); got 8 x 8; change the features' settings$"),
    train("model_name_by_hand", "model.name=svm",
          message=r"model\.name is set by the model group, not by hand; got 'svm': choose model=softmax or "
                  r"model=svm$"),
    train("model_group_unknown", "model=knn",
          message=r"Could not find 'model/knn'.*Available options in 'model': softmax svm"),
    train("dataset_group_unknown", "dataset=mnist",
          message=r"Could not find 'dataset/mnist'.*cifar10 digits imagefolder"),
    train("key_unknown", "learning_rate=1",
          message=r"unknown option learning_rate; `python -m softmax_exp.train --help` lists the options$"),
    train("override_syntax", "lr=[1,", message=r"cannot parse the override 'lr=\[1,': .*override_grammar"),
    # where things go: a tracking server that is down, output folders that cannot be written
    train("tracking_unreachable", "tracking.uri=http://127.0.0.1:{port}",
          message=r"http://127\.0\.0\.1:\d+ .*Connection refused.*tracking\.uri", max_seconds=10),
    train("sweep_tracking_unreachable", "-m", "lr=1e-3,1e-2", "hydra.sweep.dir={tmp}/sweep",
          "tracking.uri=http://127.0.0.1:{port}", max_seconds=10,
          message=r"the MLflow server at http://127\.0\.0\.1:\d+ does not answer"),
    train("sweep_without_data", "+experiment=cs231n_grid", "dataset.root={tmp}/nowhere",
          "hydra.sweep.dir={tmp}/sweep", max_seconds=15,
          message=r"CIFAR-10 not found in .*/nowhere \(no cifar-10-batches-py/ or "
                  r"cifar-10-python\.tar\.gz\); download it with"),
    train("run_dir_under_a_file", "hydra.run.dir={tmp}/file/sub", setup=a_file,
          message=r"Not a directory: .*/file/sub; .*hydra\.run\.dir"),
    train("artifacts_is_a_file", "num_iters=5", setup=artifacts_is_a_file, runs=("FAILED",), heavy=True,
          message=r"File exists: .*/out/artifacts; .*hydra\.run\.dir"),
    # data, through training (which opens the MLflow store first)
    train("cifar_root_is_a_file", *CIFAR, "dataset.root={tmp}/file", setup=a_file, heavy=True,
          message=r"dataset\.root .*/file is a file; point it at the folder holding cifar-10-batches-py/"),
    train("cifar_full_disk", *CIFAR, "dataset.cache_dir={tmp}/disk", setup=cifar, full_disk=True, heavy=True,
          message=r"cannot write the dataset cache in .*/disk: No space left on device; free space there"),
    # data, through the data command line (same loader, no MLflow)
    data("cifar_corrupt_batch", "info", *CIFAR, setup=cifar_corrupt_batch,
         message=r"data_batch_2 is truncated or corrupt .*; delete it and re-download$"),
    data("cifar_label_out_of_range", "info", *CIFAR, setup=cifar_bad_label,
         message=r"data_batch_4: label 10 is outside \[0, 10\); the file is corrupt$"),
    data("cache_dir_under_a_file", "info", *CIFAR, "dataset.cache_dir={tmp}/file/cache",
         setup=cifar_and_a_file, message=r"cannot write the dataset cache in .*/file/cache: Not a directory"),
    data("imagefolder_missing_root", "info", "dataset=imagefolder", "dataset.root={tmp}/nowhere",
         message=r"dataset\.root .*/nowhere does not exist; point it at a folder with train/<class>/"),
    data("imagefolder_without_root", "info", "dataset=imagefolder",
         message=r"dataset\.root is required; set dataset\.root=DIR \(DIR/train/<class>/\*\.png and DIR/"),
    data("imagefolder_mixed_sizes", "info", *IMAGES, setup=mixed_sizes,
         message=r"img_0\.png is 9x9 \(HxW\) but .* is 5x4; set dataset\.image_size=\[H,W\]"),
    data("download_unknown_dataset", "download", "mnist",
         message=r"invalid choice: 'mnist' \(choose from '?cifar10'?\); see --help$"),
    # kernel inputs: y of one class, X from a broken image, X's dtype, W gone inf (through training)
    train("imagefolder_one_class", *IMAGES, setup=one_class, heavy=True,
          message=r"has one class folder \(cat\); a classifier needs at least 2 classes"),
    data("imagefolder_truncated_png", "info", *IMAGES, setup=truncated_png,
         message=r"train/dog/img_3\.png is not a readable image .*; remove or replace it$"),
    data("dtype_float16", "info", "dataset.dtype=float16",
         message=r"unknown dataset\.dtype 'float16'; choose one of: float32, float64$"),
    train("lr_diverges", "lr=1e6", "num_iters=20", exit_code=1, runs=("FAILED",), heavy=True,
          message=r"loss became (inf|nan) at iteration \d+; lower lr$"),
    # values that pass a type check and would blow up later (memory follows from them)
    train("num_iters_huge", "num_iters=10000000000",
          message=r"num_iters must be at most 1e\+08 \(the loss history takes 8 bytes an iteration\)"),
    train("batch_size_huge", "batch_size=100000000", message=r"batch_size must be at most 65536 \("),
    train("nesterov_maybe", "optimizer=momentum", "optimizer.nesterov=maybe",
          message=r"optimizer\.nesterov: Value 'maybe' is not a valid bool"),
    train("num_threads_text", "num_threads=many", message=r"num_threads: Value 'many' .* to Integer$"),
    train("seed_negative", "seed=-1", message=r"seed must be an integer >= 0; got -1$"),
    train("init_scale_zero", "model.init_scale=0", message=r"model\.init_scale must be a finite number > 0"),
    train("step_size_zero", "optimizer.schedule=step", "optimizer.step_size=0",
          message=r"optimizer\.step_size must be an integer >= 1; got 0$"),
    train("min_lr_above_lr", "optimizer.schedule=cosine", "optimizer.min_lr=1",
          message=r"optimizer\.min_lr must be in \[0, lr = 0\.003\]; got 1\.0$"),
    train("log_every_zero", "tracking.log_every=0", message=r"tracking\.log_every must be an integer >= 1"),
    train("eval_train_rows_zero", "eval_train_rows=0",
          message=r"eval_train_rows must be null or an integer >= 1"),
    train("checkpoint_min_seconds_negative", "checkpoint_min_seconds=-1",
          message=r"checkpoint_min_seconds must be a finite number >= 0; got -1\.0$"),
    train("stale_after_zero", "tracking.stale_after_min=0",
          message=r"tracking\.stale_after_min must be a finite number > 0"),
    train("experiment_empty", "tracking.experiment=''",
          message=r"tracking\.experiment must be a non-empty string"),
    train("register_model_empty", "tracking.register_model=''",
          message=r"tracking\.register_model must be a non-empty string or null"),
    train("dataset_name_by_hand", "dataset.name=mnist", message=r"dataset\.name is set by the dataset group"),
    train("split_seed_negative", "dataset.split_seed=-2",
          message=r"dataset\.split_seed must be an integer >= 0"),
    train("md5_not_hex", "dataset=cifar10", "dataset.md5=xyz",
          message=r"dataset\.md5 must be a 32-character hex"),
    train("image_size_zero", "dataset=imagefolder", "dataset.root={tmp}", "dataset.image_size=[0,4]",
          message=r"dataset\.image_size must be null or \[H, W\] with positive ints; got \[0, 4\]$"),
    train("experiment_unknown", "+experiment=nope", message=r"Could not find 'experiment/nope'"),
    train("sweep_value_text", "-m", "lr=abc,1e-3", "hydra.sweep.dir={tmp}/sweep",
          message=r"lr: Value 'abc' of type 'str' could not be converted to Float$"),
    # the tracking store: a folder store, an unknown scheme, a file that is not a store, half-made or old
    train("tracking_folder_store", "tracking.uri=file://{tmp}/mlruns",
          message=r"names a folder store, which MLflow 3 no longer develops; use a SQLite file"),
    train("tracking_bare_folder", "tracking.uri=mlruns", message=r"names a folder store"),
    train("tracking_unknown_scheme", "tracking.uri=foo://bar", message=r"unknown store scheme 'foo'"),
    train("store_not_a_database", "tracking.uri=sqlite:///{tmp}/other.db", setup=garbage_store,
          message=r"the MLflow store sqlite:///.*/other\.db is not an MLflow store "
                  r"\(not a SQLite database\)"),
    train("store_half_made", "tracking.uri=sqlite:///{tmp}/other.db", setup=half_made_store,
          message=r"other\.db was left half-made \(its schema creation was stopped\); it holds no runs: "
                  r"delete it$"),
    train("store_old_schema", "tracking.uri=sqlite:///{tmp}/other.db", setup=old_schema_store, heavy=True,
          message=r"other\.db has an older schema than this MLflow's: back it up, then run "
                  r"`mlflow db upgrade "),
    train("store_under_a_file", "tracking.uri=sqlite:///{tmp}/file/m.db", setup=a_file,
          message=r"cannot create the MLflow store sqlite:///.*/file/m\.db: (Not a directory|File exists); "
                  r"point tracking\.uri at a writable folder$"),
    train("store_on_a_full_disk", "tracking.uri=sqlite:///{tmp}/disk/m.db", full_disk=True, heavy=True,
          message=r"the disk of the MLflow store sqlite:///.*/disk/m\.db is full: free some space"),
    # names that would become paths: the experiment's artifact folder is <store>/mlartifacts/<name>
    train("experiment_from_home", "tracking.experiment=${{oc.env:HOME}}",
          message=r"tracking\.experiment '/.*' has '/' in it; give tracking\.experiment a plain name, e\.g\. "
                  r"tracking\.experiment=my-study \(no / \\ or control character\)$"),
    train("experiment_climbs_out", "tracking.experiment=../../escaped",
          message=r"tracking\.experiment '\.\./\.\./escaped' has '/' in it; give tracking\.experiment a"),
    train("experiment_absolute", "tracking.experiment={tmp}/elsewhere", message=r"has '/' in it"),
    train("experiment_backslash", "tracking.experiment=a\\b", message=r"has '\\\\' in it"),
    train("experiment_dotdot", "tracking.experiment=..", message=r"tracking\.experiment '\.\.' is not a"),
    train("experiment_newline", "tracking.experiment='a\nb'", message=r"has '\\n' in it"),
    train("experiment_too_long", "tracking.experiment=" + "x" * 600,
          message=r"tracking\.experiment is 600 characters long, MLflow takes at most 500; choose a shorter"),
    train("register_model_colon", "tracking.register_model=a:b",
          message=r"tracking\.register_model 'a:b' has ':' in it"),
    train("register_model_too_long", "tracking.experiment=" + "x" * 300,
          message=r"tracking\.register_model is 308 characters long, MLflow takes at most 256"),
    train("cache_dir_newline", "dataset.cache_dir='a\nb'", message=r"dataset\.cache_dir 'a\\nb' has a"),
    # overrides whose interpolation fails: our line only, not Hydra's "Error executing job" first
    train("resolver_env_missing", "lr=${{oc.env:SOFTMAX_EXP_NO_SUCH_VAR}}",
          message=r"lr: .*Environment variable 'SOFTMAX_EXP_NO_SUCH_VAR' not found"),
    train("resolver_unknown", "lr=${{nosuch:1}}", message=r"lr: Unsupported interpolation type nosuch$"),
    train("resolver_cycle", "lr=${{reg}}", "reg=${{lr}}", message=r"lr: Recursive interpolation detected$"),
    train("sweep_resolver_unknown", "-m", "lr=1e-3,1e-2", "reg=${{nosuch:1}}", "hydra.sweep.dir={tmp}/sweep",
          message=r"reg: Unsupported interpolation type nosuch$"),
    # values that overflow: the divergence in one line, no numpy warning
    train("lr_overflows_float32", "lr=1e308", "num_iters=20", exit_code=1, runs=("FAILED",), heavy=True,
          message=r"W became NaN or inf at iteration 1; lower lr$"),
    train("lr_overflows_momentum", "lr=1e30", "optimizer=momentum", "kernel=vectorized", exit_code=1,
          runs=("FAILED",), heavy=True, message=r"(W|loss) became .* at iteration \d+; lower lr$"),
    # memory: an image size whose arrays cannot fit is refused before a pixel is decoded
    train("image_size_too_big", *IMAGES, "dataset.image_size=[100000,100000]", setup=images,
          message=r"36 images of 100000x100000 \(HxW\) need about \d+\.\d GiB, \d+\.\d GiB are available; "
                  r"set a smaller dataset\.image_size"),
    # a full disk under the run's folder, mid-run: the file named, no truncated file, the run FAILED;
    # a log that cannot be written (Python's handler printed a traceback and went on: exit 0)
    train("run_dir_on_a_full_disk", *CIFAR, "dataset.cache=false", "hydra.run.dir={tmp}/disk/out",
          setup=cifar, full_disk=True, heavy=True, runs=("FAILED",), run_folder_on_disk=True,
          message=r"No space left on device: .*/disk/out/artifacts/weights\.png; make it a writable folder"),
    train("log_cannot_be_opened", "hydra.job_logging.handlers.file.filename=/proc/version",
          message=r"Invalid argument: /proc/version; make it a writable folder"),  # (Hydra's handler set-up)
    train("log_on_a_full_disk", "hydra.job_logging.handlers.file.filename=/dev/full", heavy=True,
          runs=("FINISHED",), message=r"No space left on device: /dev/full; make it a writable folder"),
    # a search's study and settings: a damaged journal, another search on the same study, values its
    # sampler, pruner or space cannot take; the earlier search's runs stay as they ended
    train("search_journal_damaged", *SEARCH, setup=a_search_with_a_damaged_journal, max_seconds=60,
          runs=("FINISHED",) * 3,
          message=r"the Optuna journal .*/sweep/optuna\.journal has a damaged record at line 4 "
                  r"\(JSONDecodeError: .*\); the study cannot be read past it: move the file away"),
    train("search_another_pruner", *SEARCH, "hydra.sweeper.pruner=median", setup=a_search,
          runs=("FINISHED",) * 3,
          message=r"study 'softmax_lr_reg' in .*/sweep/optuna\.journal belongs to another search \(pruner "
                  r"none there, median here\); give this search another hydra\.sweeper\.study_name"),
    train("search_another_space", *SEARCH, "lr=choice(0.001,0.01)", setup=a_search, runs=("FINISHED",) * 3,
          message=r"belongs to another search \(space .*\); give this search another"),
    train("search_failure_rate_above_1", *SEARCH, "hydra.sweeper.max_failure_rate=2",
          message=r"hydra\.sweeper\.max_failure_rate must be a number from 0 to 1 \(the share of a batch's "
                  r"trials that may fail\); got 2"),
    train("search_grid_of_an_interval", *SEARCH, "hydra/sweeper/sampler=grid",
          message=r"lr: the grid sampler takes choices and ranges only \(choice\(a, b\), "
                  r"range\(a, b, step=s\)\); got "),
    train("search_custom_space_missing", *SEARCH, "+hydra.sweeper.custom_search_space=nowhere.configure",
          message=r"hydra\.sweeper\.custom_search_space=nowhere\.configure is not a function that can be "
                  r"imported: "),
    train("search_seed_huge", *SEARCH, "seed=123456789012345678901234567890",
          message=r"hydra\.sweeper\.sampler\.seed .* got 123456789012345678901234567890: give "
                  r"hydra\.sweeper\.sampler\.seed=N"),
    train("search_interval_infinite", *SEARCH, "lr=interval(0, inf)",
          message=r"lr: interval\(0(\.0)?, inf\) is not a finite interval; give finite bounds"),
    train("search_log_interval_infinite", *SEARCH, "lr=tag(log, interval(1e-4, inf))",
          message=r"lr: tag\(log, interval\(0\.0001, inf\)\) is not a finite interval"),
    train("search_pruner_arg_text", *SEARCH, "hydra.sweeper.pruner=hyperband",
          "+hydra.sweeper.pruner_args={{min_resource: abc}}",
          message=r"hydra\.sweeper\.pruner_args\.min_resource must be an integer >= 1; got 'abc' \(the "
                  r"hyperband pruner\)$"),
    train("search_pruner_arg_range", *SEARCH, "hydra.sweeper.pruner=hyperband",
          "+hydra.sweeper.pruner_args={{reduction_factor: 1}}",
          message=r"hydra\.sweeper\.pruner_args\.reduction_factor must be an integer >= 2; got 1"),
    # reproduce and the UI
    reproduce("reproduce_no_store", "0123abcd", "--tracking-uri", "sqlite:///{tmp}/none.db",
              message=r"FileNotFoundError: there is no MLflow store at .*/none\.db"),
    reproduce("reproduce_unknown_run", "0123abcd", "--tracking-uri", "sqlite:///{tmp}/mlflow.db",
              message=r"MlflowException: Run with id=0123abcd not found"),
    ui("ui_port_taken", "serve", "--db", "{tmp}/mlflow.db", "--port", "{taken}", setup=port_taken,
       exit_code=1,
       message=r"cannot serve on 127\.0\.0\.1:\d+: something is listening there .*make ui UI_PORT=\d+$"),
    ui("ui_store_is_a_folder", "serve", "--db", "{tmp}/folder.db", setup=a_folder,
       message=r"the MLflow store .*/folder\.db is a folder, not a SQLite file; give MLFLOW_DB=PATH/"),
    ui("ui_store_is_text", "serve", "--db", "{tmp}/other.db", setup=garbage_store,
       message=r"other\.db is not an MLflow store \(not a SQLite database\)"),
    ui("ui_store_folder_missing", "serve", "--db", "{tmp}/nowhere/mlflow.db",
       message=r"the folder of the MLflow store .*/nowhere/mlflow\.db does not exist"),
    ui("ui_bad_port", "serve", "--port", "70000",
       message=r"argument --port: must be an integer from 1 to 65535"),
    # kernel inputs, through the gradient check
    gradcheck("gradcheck_unknown_kernel", "--kernels", "turbo",
              message=r"argument --kernels: invalid choice: 'turbo' \(choose from .*numba_fused'?\)"),
    gradcheck("gradcheck_negative_tolerance", "--tolerance", "-1",
              message=r"argument --tolerance: must be a finite number > 0, e\.g\. 1e-7; got '-1'"),
    gradcheck("gradcheck_nan_tolerance", "--tolerance", "nan",
              message=r"argument --tolerance: must be a finite number > 0.*got 'nan'"),
    gradcheck("gradcheck_negative_seed", "--seed", "-3",
              message=r"argument --seed: must be an integer >= 0; got '-3'"),
]


# ------------------------------------------------------------------------------------- running a case


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def can_fill_disk() -> bool:
    """Whether ``unshare -rm`` may mount a tmpfs here (root in a user + mount namespace)."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        mount = 'mount -t tmpfs -o size=64k tmpfs "$0"'
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount, folder], capture_output=True, timeout=30)
    return probe.returncode == 0


def on_full_disk(command: list[str], disk: Path, snapshot: Path) -> list[str]:
    """``command`` with a 64 KiB tmpfs mounted on ``disk`` in its own mount namespace; what the run left
    there is copied to ``snapshot`` afterwards (the mount vanishes with the namespace)."""
    script = ('mount -t tmpfs -o size=64k tmpfs "$DISK" || exit 97; "$@"; rc=$?; '
              'mkdir -p "$SNAPSHOT" && cp -a "$DISK/." "$SNAPSHOT/"; exit $rc')
    return ["unshare", "-rm", "env", f"DISK={disk}", f"SNAPSHOT={snapshot}", "sh", "-c", script, "sh",
            *command]


def command(case: Case, tmp: Path, store: Path | None) -> list[str]:
    """The case's argv. Training gets the store, run folder and cache in tmp, ``data info`` the cache,
    before the case's own arguments (which come later, so they win)."""
    taken = (tmp / "port").read_text() if (tmp / "port").is_file() else ""
    args = [a.format(tmp=tmp, port=closed_port(), taken=taken) for a in case.args]
    if case.module == "train":
        flags = [a for a in args if a.startswith("-")]  # -m first, as a user types it
        args = [*flags, f"tracking.uri=sqlite:///{store}", f"hydra.run.dir={tmp}/out",
                f"dataset.cache_dir={tmp}/cache", "num_iters=50", "progress=false",
                *[a for a in args if not a.startswith("-")]]
    elif args[:1] == ["info"]:
        args = ["info", f"dataset.cache_dir={tmp}/cache", *args[1:]]
    argv = [sys.executable, "-m", f"softmax_exp.{case.module}", *args]
    return on_full_disk(argv, tmp / "disk", tmp / "cache") if case.full_disk else argv


def run_statuses(store: Path | None) -> list[str]:
    """Statuses of every run in the SQLite store but those in MLflow's trash, sorted ([] when it has no
    runs table yet, or there is no store: the data and gradcheck commands never track)."""
    if store is None:
        return []
    with closing(sqlite3.connect(store)) as db:
        try:
            return sorted(status for (status,) in db.execute(
                "SELECT status FROM runs WHERE lifecycle_stage = 'active'"))
        except sqlite3.OperationalError:
            return []


def debris(tmp: Path) -> list[Path]:
    """Temporary files left: dot-files (not locks) in the cache and dataset roots, anything in TMPDIR."""
    found = [p for folder in ("cache", "cifar", "img") for p in leftovers(tmp / folder)]
    return found + sorted((tmp / "tmpdir").iterdir())


def execute(case: Case, tmp: Path, store: Path | None) -> Outcome:
    """Set the case up in ``tmp``, run its process (CI=true; TMPDIR in tmp; Hydra's own error report,
    as a user sees it) and collect what it did and left."""
    (tmp / "tmpdir").mkdir()
    if case.setup:
        case.setup(tmp)
    if case.full_disk:
        (tmp / "disk").mkdir()
    env = {**os.environ, "CI": "true", "TMPDIR": str(tmp / "tmpdir")}
    env.pop("HYDRA_FULL_ERROR", None)
    start = time.monotonic()
    try:
        proc = subprocess.run(command(case, tmp, store), cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=case.max_seconds)
        returncode, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as e:
        returncode, stderr = None, (e.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - start
    return Outcome(returncode, stderr, seconds, run_statuses(store), cache_entries(tmp / "cache"),
                   debris(tmp))


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, Future]:
    """Start every selected case, two at a time; case id -> Future[Outcome]."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")}
    cases = [c for c in CASES if c.id in selected and (can_fill_disk() or not c.full_disk)]
    # Cases without MLflow run while the store template is made (the first fresh_store call); then the
    # heavy training cases, the light ones filling in around them.
    cases.sort(key=lambda c: (c.module == "train", not c.heavy))
    with ThreadPoolExecutor(2) as pool:
        futures = {}
        for case in cases:
            tmp = tmp_path_factory.mktemp(case.id)
            store = fresh_store(tmp, tmp_path_factory) if case.module in ("train", "reproduce") else None
            futures[case.id] = pool.submit(execute, case, tmp, store)
        yield futures


def test_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 24 and len({c.id for c in CASES}) == len(CASES)
    assert {c.module for c in CASES} == set(PREFIX)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input_fails_in_one_line_and_leaves_nothing(case: Case, outcomes):
    if case.full_disk and not can_fill_disk():
        pytest.skip("unshare -rm cannot mount a tmpfs here")
    out = outcomes[case.id].result()
    assert out.returncode is not None, f"no exit after {out.seconds:.0f} s; stderr: {out.stderr[-2000:]}"
    assert out.returncode != 0 and out.returncode == case.exit_code, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr[-3000:]
    assert re.search(PREFIX[case.module], lines[0]) and re.search(case.message, lines[0]), lines[0]
    assert "RUNNING" not in out.runs and out.runs == sorted(case.runs)
    assert out.debris == []
    if case.run_folder_on_disk:  # (the disk's snapshot is in {tmp}/cache): no file half written
        (folder,) = out.cache
        assert folder.name == "out" and not any((folder / "artifacts").iterdir())
        assert not [p for p in folder.rglob(".*") if p.name != ".hydra"]
    else:
        assert out.cache == []
