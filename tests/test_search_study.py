"""The search's study without Hydra's launcher: its settings and their one-line errors, the search space in
Hydra's sweep syntax, the storage, the claiming of trials (n_trials over the study, none twice, a dead
process's trial claimed again), the job's reports to its pruner, and a training stopped early."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from softmax_exp.config import ConfigError
from softmax_exp.learn.sgd import NoHooks
from softmax_exp.sweep import study as st
from softmax_exp.sweep.results import JobResult, best_result, format_note, format_table
from softmax_exp.sweep.trial import TrialReporter
from softmax_exp.tracking.owners import owner_tags
from softmax_exp.tracking.tags import HEARTBEAT_TAG, HOST_TAG, PID_START_TAG, PID_TAG

SWEEPER = {"study_name": "s", "direction": "maximize", "n_trials": 4, "n_jobs": 1, "storage": None,
           "pruner": "none", "pruner_args": {},
           "sampler": {"_target_": "optuna.samplers.TPESampler", "seed": 7},
           "params": {"lr": "tag(log, interval(1e-4, 1e-1))", "reg": "tag(log, interval(1e-4, 10))"}}


def settings(**changes) -> st.StudySettings:
    return st.StudySettings.of({**SWEEPER, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"n_trials": 0}, "hydra.sweeper.n_trials must be an integer >= 1; got 0"),
    ({"n_trials": -3}, "hydra.sweeper.n_trials must be an integer >= 1; got -3"),
    ({"n_trials": "abc"}, "hydra.sweeper.n_trials must be an integer >= 1; got 'abc'"),
    ({"n_jobs": 0}, "hydra.sweeper.n_jobs must be an integer >= 1; got 0"),
    ({"direction": "sideways"}, "hydra.sweeper.direction must be maximize or minimize"),
    ({"pruner": "bogus"}, "hydra.sweeper.pruner must be one of none, median, successive_halving, hyperband"),
    ({"pruner": "median", "pruner_args": {"bogus": 1}}, "hydra.sweeper.pruner_args.bogus is not an option of "
                                                        "the median pruner; its options: n_startup_trials"),
    ({"pruner": "hyperband", "pruner_args": {"min_resource": "abc"}},
     "hydra.sweeper.pruner_args.min_resource must be an integer >= 1; got 'abc' (the hyperband pruner)"),
    ({"pruner": "hyperband", "pruner_args": {"reduction_factor": 1}},
     "hydra.sweeper.pruner_args.reduction_factor must be an integer >= 2; got 1 (the hyperband pruner)"),
    ({"pruner": "successive_halving", "pruner_args": {"min_resource": "some"}},
     "hydra.sweeper.pruner_args.min_resource must be 'auto' or an integer >= 1; got 'some'"),
    ({"sampler": {"_target_": "optuna.samplers.TPESampler", "seed": 4294967296}},
     "hydra.sweeper.sampler.seed (the training's seed unless set) must be an integer from 0 to 2**32 - 1"),
    ({"direction": ["maximize", "sideways"]}, "hydra.sweeper.direction must be maximize or minimize"),
    ({"max_failure_rate": 1.5}, "hydra.sweeper.max_failure_rate must be a number from 0 to 1"),
    ({"max_failure_rate": "all"}, "hydra.sweeper.max_failure_rate must be a number from 0 to 1"),
    ({"direction": ["minimize", "minimize"], "pruner": "median"},
     "hydra.sweeper.pruner=median: Optuna prunes single-objective studies only"),
    ({"sampler": {"_target_": "hydra_plugins.softmax_exp_optuna_sweeper.config.motpe_removed"}},
     "hydra.sweeper.sampler cannot be made: ValueError: the 'motpe' sampler was removed in Optuna 4.0"),
    ({"sampler": {"_target_": "optuna.samplers.TPESampler", "seed": -1}},
     "hydra.sweeper.sampler.seed (the training's seed unless set) must be an integer from 0"),
    ({"study_name": " "}, "hydra.sweeper.study_name must be a printable name"),
    ({"storage": ""}, "hydra.sweeper.storage must be an RDB URL"),
    ({"sampler": {"_target_": "builtins.dict"}}, "hydra.sweeper.sampler._target_ must be an Optuna sampler"),
])
def test_bad_settings_are_one_line_naming_the_option(changes, message):
    with pytest.raises(ConfigError) as e:
        settings(**changes)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("storage", ["mysql://u@h/db", "sqlite:///:memory:", "sqlite://",
                                     "postgresql+psycopg://nobody@127.0.0.1:1/x", "/proc/none/x.journal"])
def test_a_storage_that_does_not_open_is_one_line(storage):
    with pytest.raises(ConfigError) as e:
        st.open_storage(storage)
    assert "hydra.sweeper.storage" in str(e.value) and "\n" not in str(e.value)


def test_the_password_of_a_storage_url_is_never_printed():
    assert st._safe("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
    dashboard = shlex.quote(os.path.relpath(Path(sys.executable).with_name("optuna-dashboard")))
    assert st.study_dashboard_command("postgresql://me:secret@db/x") == f"{dashboard} postgresql://me@db/x"
    assert st.study_dashboard_command("/a b/optuna.journal") == f"{dashboard} '/a b/optuna.journal'"
    assert subprocess.run(shlex.split(dashboard) + ["--version"], capture_output=True).returncode == 0


def test_search_space_has_the_syntax_of_hydras_sweepers():
    D = optuna.distributions
    space, fixed = st.search_space(
        {"lr": "tag(log, interval(1e-4, 1e-1))", "reg": "interval(0.0, 1.0)", "batch_size": "choice(32, 64)"},
        ["num_iters=range(100, 400, 100)", "eval_every=int(interval(10, 50))", "seed=1,2", "dataset=digits",
         "reg=0.5"])
    assert space == {
        "lr": D.FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": D.CategoricalDistribution([32, 64]),
        "num_iters": D.IntDistribution(100, 300, step=100),  # range's stop is excluded, as Hydra lists it
        "eval_every": D.IntDistribution(10, 50),
        "seed": D.CategoricalDistribution([1, 2]),
    }
    assert fixed == ["dataset=digits", "reg=0.5"]  # a fixed value on the command line replaces a param


@pytest.mark.parametrize(("params", "message"), [
    ({"lr": "tag(log, interval(0, 1))"}, "lr: tag(log, interval(0.0, 1.0)) is empty or not positive"),
    ({"lr": "interval(0, inf)"}, "lr: interval(0.0, inf) is not a finite interval; give finite bounds"),
    ({"lr": "tag(log, interval(1e-4, inf))"}, "lr: tag(log, interval(0.0001, inf)) is not a finite interval"),
])
def test_a_search_space_that_cannot_be_searched_is_one_line(params, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        st.search_space(params, [])


def test_trial_overrides_keep_every_digit_of_a_float():
    assert st.trial_overrides({"lr": 1 / 3, "batch_size": "64"}, ["dataset=digits"]) == [
        "lr=0.3333333333333333", "batch_size=64", "dataset=digits"]


def _claim_all(shared, s, space):
    got = []
    while (c := st.claim_trial(shared, s.n_trials, space, 3600.0)) is not None:
        got.append(c)
        st.record_result(shared, c.number, JobResult(c.number, "r", "FINISHED", c.trial.params["lr"],
                                                     c.trial.params["reg"], val_acc=c.trial.params["lr"]))
    return got


def test_two_processes_on_one_study_make_n_trials_in_all_with_distinct_params(tmp_path):
    s = settings(n_trials=6)
    space, _ = st.search_space(s.params, [])
    storage = str(tmp_path / "study.journal")
    a, b = st.load_study(s, storage, create=True), st.load_study(s, storage, create=True)
    assert [st.join_study(a, s, space), st.join_study(b, s, space)] == [0, 1]  # seeds 7 and 8
    got = []
    for _ in range(4):  # the two take turns; the study fills at 6
        for shared in (a, b):
            c = st.claim_trial(shared, s.n_trials, space, 3600.0)
            if c is not None:
                got.append(c)
                st.record_result(shared, c.number,
                                 JobResult(c.number, "r", "FINISHED", 0.1, 0.1, val_acc=0.5))
    assert sorted(c.number for c in got) == list(range(6))
    params = {(c.trial.params["lr"], c.trial.params["reg"]) for c in got}
    assert len(params) == 6
    assert len(st.load_study(s, storage).study.trials) == 6


def test_the_same_seed_draws_the_same_trials(tmp_path):
    s = settings(n_trials=12)
    space, _ = st.search_space(s.params, [])
    runs = []
    for name in ("one", "two"):
        shared = st.load_study(s, str(tmp_path / f"{name}.journal"), create=True)
        st.join_study(shared, s, space)
        runs.append([tuple(c.trial.params.values()) for c in _claim_all(shared, s, space)])
    assert runs[0] == runs[1] and len(set(runs[0])) == 12  # TPE after its 10 random trials too


def test_a_process_draws_with_one_sampler_seeded_once_as_optuna_does(tmp_path):
    s = settings(n_trials=14)
    space, _ = st.search_space(s.params, [])
    shared = st.load_study(s, str(tmp_path / "s.journal"), create=True)
    st.join_study(shared, s, space)
    drawn = [tuple(c.trial.params.values()) for c in _claim_all(shared, s, space)]
    plain = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=7))
    expected = []
    for _ in range(14):
        t = plain.ask(dict(space))
        expected.append(tuple(t.params.values()))
        plain.tell(t, t.params["lr"])
    assert drawn == expected


def test_a_grid_visits_each_point_once_and_ends_with_the_grid(tmp_path):
    s = settings(n_trials=20, sampler={"_target_": "optuna.samplers.GridSampler", "seed": 3},
                 params={"lr": "0.01,0.003", "reg": "range(1, 3)"})  # reg: 1, 2
    space, _ = st.search_space(s.params, [])
    assert st.grid_of(space) == {"lr": [0.01, 0.003], "reg": [1, 2]} and s.planned_trials(space) == 4
    storage = str(tmp_path / "grid.journal")
    a, b = st.load_study(s, storage, create=True), st.load_study(s, storage, create=True)
    st.join_study(a, s, space), st.join_study(b, s, space)
    got = []
    for _ in range(3):  # two processes take turns; the last tell (the grid's Study.stop) is no error
        for shared in (a, b):
            if (c := st.claim_trial(shared, s.planned_trials(space), space, 3600.0)) is not None:
                got.append((c.trial.params["lr"], c.trial.params["reg"]))
                st.tell(shared, c.number, [0.5])
    assert sorted(got) == [(0.003, 1), (0.003, 2), (0.01, 1), (0.01, 2)]


def test_a_continuous_interval_has_no_grid():
    s = settings(sampler={"_target_": "optuna.samplers.GridSampler"})
    space, _ = st.search_space(s.params, [])
    with pytest.raises(ConfigError, match=r"lr: the grid sampler takes choices and ranges only"):
        s.planned_trials(space)


def test_a_running_trial_of_a_dead_process_is_claimed_again_with_its_params(tmp_path):
    s = settings(n_trials=2)
    space, _ = st.search_space(s.params, [])
    shared = st.load_study(s, str(tmp_path / "study.journal"), create=True)
    first = st.claim_trial(shared, s.n_trials, space, 3600.0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    owner = {**owner_tags(), PID_TAG: dead, PID_START_TAG: "1.00"}
    shared.backend.set_trial_system_attr(shared.trial_id(first.number), st.OWNER_ATTR, owner)
    again = st.claim_trial(shared, s.n_trials, space, 3600.0)
    assert again.resumed and again.number == first.number and again.trial.params == first.trial.params
    fresh = st.claim_trial(shared, s.n_trials, space, 3600.0)  # its owner (this process) lives
    assert not fresh.resumed and fresh.number == 1
    assert st.claim_trial(shared, s.n_trials, space, 3600.0) is None  # 2 trials: full, both running
    rows = st.study_results(shared, 3600.0)
    assert [r.status for r in rows] == ["RUNNING", "RUNNING"]


def test_a_trial_of_a_silent_process_on_another_host_is_claimed_once_stale(tmp_path):
    s = settings(n_trials=1)
    space, _ = st.search_space(s.params, [])
    shared = st.load_study(s, str(tmp_path / "study.journal"), create=True)
    first = st.claim_trial(shared, s.n_trials, space, 3600.0)
    elsewhere = {**owner_tags(), HOST_TAG: "another-host", HEARTBEAT_TAG: "1000"}
    shared.backend.set_trial_system_attr(shared.trial_id(first.number), st.OWNER_ATTR, elsewhere)
    shared.backend.set_trial_system_attr(shared.trial_id(first.number), st.HEARTBEAT_ATTR, 2**40)
    assert st.claim_trial(shared, s.n_trials, space, 3600.0) is None  # its job reported lately (heartbeat)
    shared.backend.set_trial_system_attr(shared.trial_id(first.number), st.HEARTBEAT_ATTR, 2000)
    assert st.claim_trial(shared, s.n_trials, space, 3600.0).resumed


def test_results_tell_the_study_and_come_back_as_the_sweeps_rows(tmp_path):
    s = settings(n_trials=3)
    space, _ = st.search_space(s.params, [])
    shared = st.load_study(s, str(tmp_path / "study.journal"), create=True)
    outcomes = [JobResult(0, "a", "FINISHED", 0.1, 0.2, 0.9, 0.8, run_id="r0", iterations=500),
                JobResult(1, "b", "PRUNED", 0.1, 0.2, 0.5, 0.4, note="pruned at iteration 100",
                          iterations=100),
                JobResult(2, "c", "FAILED", 0.1, 0.2, reason="diverged")]
    for r in outcomes:
        c = st.claim_trial(shared, s.n_trials, space, 3600.0)
        st.record_result(shared, c.number, r)
    states = [t.state.name for t in shared.study.trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL"]
    assert shared.study.best_value == 0.8 and shared.study.trials[0].user_attrs["mlflow_run_id"] == "r0"
    rows = st.study_results(shared, 3600.0)
    assert [(r.status, r.iterations) for r in rows] == [("FINISHED", 500), ("PRUNED", 100), ("FAILED", 0)]
    assert math.isnan(rows[2].val_acc)
    assert [r.failed for r in rows] == [False, False, True] and best_result(rows).job == 0
    table = format_table(rows)
    assert "[PRUNED: pruned at iteration 100]" in table
    note = format_note("cmd", rows, study="Optuna study `s`").replace("&emsp;", "")
    assert "3 jobs, 1 failed, 1 pruned." in note and "| PRUNED (pruned at iteration 100) |" in note


def test_a_direction_other_than_the_studys_is_one_line(tmp_path):
    storage = str(tmp_path / "study.journal")
    st.load_study(settings(), storage, create=True)
    with pytest.raises(ConfigError, match="set hydra.sweeper.direction=maximize"):
        st.load_study(settings(direction="minimize"), storage, create=True)


def test_the_jobs_reports_prune_a_trial_worse_than_the_median(tmp_path):
    from softmax_exp.learn.sgd import EvalPoint

    s = settings(n_trials=4, pruner="median", pruner_args={"n_startup_trials": 2})
    space, _ = st.search_space(s.params, [])
    storage = str(tmp_path / "study.journal")
    shared = st.load_study(s, storage, create=True)
    info = s.as_info(storage)
    for good in (0, 1):
        c = st.claim_trial(shared, s.n_trials, space, 3600.0)
        reporter = TrialReporter(info, c.number)
        assert [reporter(EvalPoint(it, 0.9, 0.8 + good / 100)) for it in (100, 200)] == [None, None]
        st.record_result(shared, c.number, JobResult(c.number, "r", "FINISHED", 0.1, 0.1, val_acc=0.81))
    c = st.claim_trial(shared, s.n_trials, space, 3600.0)
    reporter = TrialReporter(info, c.number)
    assert [reporter(EvalPoint(it, 0.9, 0.85)) for it in (100, 200)] == [None, None]  # above the median
    st.record_result(shared, c.number, JobResult(c.number, "r", "FINISHED", 0.1, 0.1, val_acc=0.85))
    c = st.claim_trial(shared, s.n_trials, space, 3600.0)
    reporter = TrialReporter(info, c.number)
    # Optuna's median pruner weighs a trial's best value so far against the median at this step
    assert reporter(EvalPoint(100, 0.3, 0.2)) == "pruned at iteration 100"
    again = TrialReporter(info, c.number)  # a job resumed from a checkpoint: earlier steps not reported twice
    assert again.last_step == 100 and again(EvalPoint(100, 0.3, 0.2)) is None
    assert shared.backend.get_trial(shared.trial_id(c.number)).intermediate_values == {100: 0.2}


class _StopAtSecondEval(NoHooks):
    def __init__(self):
        self.seen = []

    def stop_early(self, point):
        self.seen.append(point.iteration)
        return f"pruned at iteration {point.iteration}" if len(self.seen) == 2 else None


def test_a_training_stopped_early_keeps_its_metrics_so_far():
    from sklearn.datasets import load_digits

    from softmax_exp.kernels import get_kernel
    from softmax_exp.learn.hyperparameters import TrainParams
    from softmax_exp.learn.sgd import SGDLoop

    X, y = load_digits(return_X_y=True)
    X = np.hstack([X / 16.0, np.ones((X.shape[0], 1))]).astype(np.float32)
    y = y.astype(np.intp)
    params = TrainParams(lr=1e-2, reg=1e-3, num_iters=500, batch_size=64, eval_every=100)
    hooks = _StopAtSecondEval()
    W = np.zeros((X.shape[1], 10), np.float32)
    history = SGDLoop(get_kernel("vectorized", False), params, hooks=hooks).run(
        W, X, y, np.random.default_rng(0), X_val=X[:200], y_val=y[:200])
    assert history.stopped == "pruned at iteration 200" and history.diverged is None
    assert hooks.seen == [100, 200] and len(history.loss) == 200
    assert [e.iteration for e in history.evals] == [100, 200]  # no final evaluation after the stop


# ------------------------------------------------------------------------ the study's storage as data


def _journal_with_trials(tmp_path, n: int = 2):
    s = settings(n_trials=n)
    space, _ = st.search_space(s.params, [])
    path = tmp_path / "study.journal"
    shared = st.load_study(s, str(path), create=True, space=space)
    _claim_all(shared, s, space)
    return s, space, path


def test_a_journal_cut_short_is_made_whole_with_a_warning_and_the_study_goes_on(tmp_path, capsys):
    """A kill or a full disk mid-write leaves the last record cut: it is dropped (Optuna would append onto
    it and fail on every read after), the file renamed into place whole, said in one line."""
    s, space, path = _journal_with_trials(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 40)
    shared = st.load_study(s, str(path), create=True, space=space)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: the Optuna journal {path}: its last record was cut")
    repaired = path.read_bytes()  # the records before it, whole (then what opening the study wrote)
    assert repaired.startswith(b"".join(lines[:-1])) and repaired.endswith(b"\n")
    assert all(json.loads(line) for line in repaired.splitlines())
    assert len(shared.study.trials) == 2
    _claim_all(shared, settings(n_trials=3), space)  # and the search goes on writing to it
    # the cut record was trial 1's end: it is running still (claimed again once its process is gone)
    assert [t.state.name for t in st.load_study(s, str(path)).study.trials] == ["COMPLETE", "RUNNING",
                                                                                 "COMPLETE"]


def test_a_last_record_without_its_line_end_is_kept(tmp_path, capsys):
    s, space, path = _journal_with_trials(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-1])  # a write stopped just before its newline: the record is complete
    st.load_study(s, str(path), create=True, space=space)
    assert path.read_bytes().startswith(whole) and "lacked its line end: added" in capsys.readouterr().err


def test_a_damaged_record_inside_a_journal_is_one_line_naming_the_file_and_the_line(tmp_path):
    s, space, path = _journal_with_trials(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, b"this is not json\n")
    path.write_bytes(b"".join(lines))
    before = path.read_bytes()
    with pytest.raises(ConfigError) as e:
        st.load_study(s, str(path), create=True, space=space)
    said = f"the Optuna journal {path} has a damaged record at line 4 (JSONDecodeError"
    assert str(e.value).startswith(said)
    assert "\n" not in str(e.value) and path.read_bytes() == before  # nothing rewritten


def test_a_full_disk_under_a_journal_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "study.journal"
    backend = st._JournalFile(path)

    def full(self, logs):  # what a write to an open file on a full disk raises: no file named
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(st.JournalFileBackend, "append_logs", full)
    with pytest.raises(OSError) as e:
        backend.append_logs([{"op_code": 0}])
    assert e.value.errno == 28 and e.value.filename == str(path)


def test_a_study_knows_its_search_and_refuses_another(tmp_path):
    """Another pruner, sampler or space on the study of a search is another search: one line naming what
    differs, before any trial is asked; the same search with more trials goes on."""
    s, space, path = _journal_with_trials(tmp_path)
    st.load_study(settings(n_trials=9), str(path), create=True, space=space)  # more trials: the same search
    other = settings(pruner="median")
    refused = (r"study 's' in .* belongs to another search \(pruner none there, median here\); give this "
               r"search another hydra.sweeper.study_name")
    with pytest.raises(ConfigError, match=refused):
        st.load_study(other, str(path), create=True, space=space)
    wider, _ = st.search_space({"lr": "tag(log, interval(1e-5, 1e-1))", "reg": s.params["reg"]}, [])
    with pytest.raises(ConfigError, match=r"belongs to another search \(space "):
        st.load_study(s, str(path), create=True, space=wider)


def test_a_study_made_before_searches_were_recorded_is_checked_on_its_trials(tmp_path):
    s = settings(n_trials=2)
    space, _ = st.search_space(s.params, [])
    path = str(tmp_path / "old.journal")
    shared = st.load_study(s, path, create=True)  # no space given: nothing recorded, as before
    _claim_all(shared, s, space)
    choice, _ = st.search_space({"lr": "choice(0.001, 0.01)", "reg": s.params["reg"]}, [])
    with pytest.raises(ConfigError, match=r"searched lr as .*FloatDistribution.*; this search gives it "
                                          r".*CategoricalDistribution"):
        st.load_study(s, path, create=True, space=choice)
    st.load_study(s, path, create=True, space=space)  # the same space: recorded now
    reopened = st.load_study(s, path)
    assert reopened.backend.get_study_system_attrs(reopened.study_id)[st.SEARCH_ATTR]["pruner"] == "none"


def test_a_trial_whose_ask_fails_is_failed_not_left_running(tmp_path):
    s = settings(n_trials=3)
    space, _ = st.search_space(s.params, [])
    shared = st.load_study(s, str(tmp_path / "s.journal"), create=True)
    _claim_all(shared, settings(n_trials=1), space)
    choice, _ = st.search_space({"lr": "choice(0.001, 0.01)", "reg": s.params["reg"]}, [])
    with pytest.raises(ValueError):  # Optuna refuses another kind of distribution for lr
        st.claim_trial(shared, s.n_trials, choice, 3600.0)
    assert [t.state.name for t in shared.study.get_trials()] == ["COMPLETE", "FAIL"]
    assert st.claim_trial(shared, s.n_trials, space, 3600.0).number == 2  # the failed ask took no slot


def test_the_storage_is_recorded_without_its_password_and_used_with_it():
    url = "postgresql+psycopg://me:s3cret@db:5432/x"
    ref = settings().as_info(url)
    assert ref.storage == "postgresql+psycopg://me@db:5432/x"
    assert st.usable_storage(ref.storage, url) == url  # the command gave it: its password too
    assert st.usable_storage(ref.storage, None) == ref.storage  # else PGPASSWORD or ~/.pgpass
    assert st.usable_storage(ref.storage, "postgresql+psycopg://me:s3cret@other/x") == ref.storage
