"""Sweeps through submitit: a real local sweep (each job its own process), and the SLURM launcher's config."""

from __future__ import annotations

import csv
import os
from dataclasses import fields

import pytest
from helpers import ROOT, client_for
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from softmax_exp import tracking
from softmax_exp.util.paths import CONFIG_DIR

pytestmark = pytest.mark.slow
SHORT = ["num_iters=100", "eval_every=50", "progress=false"]
LAUNCHERS = "hydra_plugins.hydra_submitit_launcher.submitit_launcher"


def _launcher_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def test_submitit_local_sweep_runs_each_job_in_a_process_of_its_own(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "hydra/launcher=submitit_local", "lr=1e-3,1e-2", *SHORT,
                   f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={sweep_dir}", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

    client = client_for(store)
    runs = client.search_runs([client.get_experiment_by_name("digits").experiment_id], max_results=10)
    parents = [r for r in runs if tracking.PARENT_TAG not in r.data.tags]
    children = [r for r in runs if tracking.PARENT_TAG in r.data.tags]
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags[tracking.PARENT_TAG] for c in children} == {parent.info.run_id}
    assert sorted(c.info.run_name for c in children) == ["lr=0.001", "lr=0.01"]
    # the plugin's submitit_local leaves cpus_per_task unset: one thread per job (they all start at once)
    assert {c.data.tags["mlflow.softmax_exp.numba_threads"] for c in children} == {"1"}

    # Each job ran in a process that submitit started (its job id is the local controller's pid): the
    # job's lines are in submitit's log of that job, not on the launcher's stdout.
    job_ids = [str(OmegaConf.load(sweep_dir / str(n) / ".hydra" / "hydra.yaml").hydra.job.id)
               for n in range(2)]
    assert len(set(job_ids)) == 2 and all(i.isdigit() and i != str(os.getpid()) for i in job_ids)
    for n, job_id in enumerate(job_ids):
        log = (sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
        assert f"job {n + 1}/2: lr=" in log
        assert (sweep_dir / ".submitit" / job_id / f"{job_id}_0_result.pkl").is_file()
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("job ")]

    rows = list(csv.DictReader(open(sweep_dir / "summary.csv")))
    assert sorted((r["job"], r["status"]) for r in rows) == [("0", "FINISHED"), ("1", "FINISHED")]
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    assert parent.data.metrics["best_val_acc"] == max(float(r["val_acc"]) for r in rows)


def test_submitit_local_launcher_config_is_the_plugins():
    launcher = _launcher_cfg("hydra/launcher=submitit_local")
    assert launcher._target_ == f"{LAUNCHERS}.LocalLauncher"
    assert (launcher.cpus_per_task, launcher.tasks_per_node) == (None, 1)
    assert launcher.submitit_folder.endswith("/.submitit/%j")


def test_slurm_launcher_config_composes():
    launcher = _launcher_cfg("hydra/launcher=slurm", "hydra.launcher.partition=cpu",
                             "hydra.launcher.timeout_min=240")
    assert launcher._target_ == f"{LAUNCHERS}.SlurmLauncher"
    assert launcher.partition == "cpu" and launcher.timeout_min == 240
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.array_parallelism) == (4, 4, 32)
    assert (launcher.signal_delay_s, launcher.max_num_timeout) == (120, 0)
    assert launcher.additional_parameters == {"requeue": True}
    assert OmegaConf.to_container(launcher.setup, resolve=True) == [f"source {ROOT}/.venv/bin/activate"]
    # submitit's pickles and logs go under the sweep dir (unresolved here: no sweep is running)
    assert OmegaConf.to_container(launcher)["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"


def test_slurm_launcher_config_makes_the_expected_sbatch_script(tmp_path, monkeypatch):
    """The sbatch script submitit would submit for this config, built as the plugin's launch() does
    (without a cluster: a stand-in srun on PATH; the script text comes from a private submitit method)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    launcher = instantiate(_launcher_cfg("hydra/launcher=slurm", "hydra.launcher.partition=cpu",
                                         f"hydra.sweep.dir={tmp_path / 'sweep'}"))
    params = dict(launcher.params)
    executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    generic = {f.name for f in fields(BaseQueueConf)}
    executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("COMMAND", "uid")
    for line in ["#SBATCH --partition=cpu", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=4GB",
                 "#SBATCH --time=60", "#SBATCH --signal=USR2@120", "#SBATCH --requeue",
                 f"source {ROOT}/.venv/bin/activate"]:
        assert line in script.splitlines(), script
    assert f"#SBATCH --output={tmp_path}/sweep/.submitit/%j/%j_0_log.out" in script
