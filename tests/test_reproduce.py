"""``python -m softmax_exp.reproduce RUN_ID``: re-run a logged run from its logged config."""

from __future__ import annotations

from helpers import client_for

from softmax_exp.job.fit import JobContext, fit
from softmax_exp.reproduce import main, reproduce


def test_a_logged_run_reproduces_bit_for_bit(store, make_cfg, tmp_path, capsys):
    out = fit(make_cfg(store, "optimizer=momentum", "eval_test=true"), JobContext())
    rows = {r.name: r for r in reproduce(out.run_id, f"sqlite:///{store}")}
    assert set(rows) == {"loss history", "train_acc", "val_acc", "test_acc", "W", "dataset_fingerprint"}
    assert all(r.match for r in rows.values()), rows
    assert rows["val_acc"].reproduced == out.metrics["val_acc"]

    assert main([out.run_id, "--tracking-uri", f"sqlite:///{store}"]) == 0
    assert capsys.readouterr().out.strip().endswith("reproduced: identical")

    # a logged value that the config cannot give is reported, with a non-zero status
    client_for(store).log_metric(out.run_id, "val_acc", 0.0, step=10**6)
    assert main([out.run_id, "--tracking-uri", f"sqlite:///{store}"]) == 1
    printed = capsys.readouterr().out
    assert "val_acc" in printed and "MISMATCH" in printed and "NOT reproduced" in printed


def test_an_svm_run_reproduces_bit_for_bit(store, make_cfg, capsys):
    out = fit(make_cfg(store, "model=svm", "num_iters=300"), JobContext())
    assert type(out.model).__name__ == "LinearSVM"
    rows = {r.name: r for r in reproduce(out.run_id, f"sqlite:///{store}")}
    assert all(r.match for r in rows.values()), rows
    assert main([out.run_id, "--tracking-uri", f"sqlite:///{store}"]) == 0
    assert capsys.readouterr().out.strip().endswith("reproduced: identical")


def test_unknown_run_is_one_line(store, tmp_path, capsys):
    assert main(["0123456789abcdef", "--tracking-uri", f"sqlite:///{store}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reproduce run 0123456789abcdef")


def test_a_run_that_diverged_reproduces_its_divergence(store, make_cfg, capsys):
    """Such a run has no model (its W was NaN): the same failure at the same iteration is the result."""
    out = fit(make_cfg(store, "lr=1e308", "num_iters=20"), JobContext())
    assert out.status == "FAILED" and out.history.diverged
    rows = {r.name: r for r in reproduce(out.run_id, f"sqlite:///{store}")}
    assert set(rows) == {"loss history", "diverged", "dataset_fingerprint"}
    assert all(r.match for r in rows.values()), rows
    assert rows["diverged"].reproduced == out.history.diverged
    assert main([out.run_id, "--tracking-uri", f"sqlite:///{store}"]) == 0
    assert capsys.readouterr().out.strip().endswith("reproduced: identical")


def test_a_config_with_a_python_tag_is_refused_in_one_line(store, make_cfg, tmp_path, capsys):
    out = fit(make_cfg(store, "num_iters=5"), JobContext())
    hostile = tmp_path / "config.yaml"
    hostile.write_text(f"lr: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\nreg: 0.1\n")
    client_for(store).log_artifact(out.run_id, str(hostile))  # replaces the logged config.yaml
    assert main([out.run_id, "--tracking-uri", f"sqlite:///{store}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ConstructorError" in err[0] and "python/object/apply" in err[0], err
    assert not (tmp_path / "pwned").exists()
