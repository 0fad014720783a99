"""No URL's password is recorded (softmax_exp.util.secrets): written down without it, shown with ***, and
the log handlers' filter masks it in every line."""

from __future__ import annotations

import logging

import pytest

from softmax_exp.util.logfile import MaskPasswords
from softmax_exp.util.secrets import has_password, masked, scrub_files, without_password


@pytest.mark.parametrize(("text", "recorded", "shown"), [
    ("postgresql+psycopg://mlflow:S3CR3T@127.0.0.1:5432/db", "postgresql+psycopg://mlflow@127.0.0.1:5432/db",
     "postgresql+psycopg://mlflow:***@127.0.0.1:5432/db"),
    ("hydra.sweeper.storage=postgresql://u:p%40ss@h/d x", "hydra.sweeper.storage=postgresql://u@h/d x",
     "hydra.sweeper.storage=postgresql://u:***@h/d x"),
    ("a postgresql://:only@h/d b", "a postgresql://@h/d b", "a postgresql://:***@h/d b"),
])
def test_a_password_is_left_out_when_recorded_and_masked_when_shown(text, recorded, shown):
    assert has_password(text) and without_password(text) == recorded and masked(text) == shown
    assert not has_password(recorded)


@pytest.mark.parametrize("text", ["sqlite:////abs/mlflow.db", "http://user@host:5000", "/a/b:c@d",
                                  "lr=1e-3 reg=0.1", "time 12:30@noon"])
def test_what_holds_no_password_is_left_as_it_is(text):
    assert not has_password(text) and without_password(text) == text == masked(text)


def test_the_log_filter_masks_a_password_in_a_line(caplog):
    logger = logging.getLogger("softmax_exp.test_secrets")
    handler = logging.Handler()
    seen = []
    handler.emit = lambda record: seen.append(record.getMessage())
    handler.addFilter(MaskPasswords())
    logger.addHandler(handler)
    try:
        logger.warning("#0 : tracking.uri=%s lr=%s", "postgresql://u:hunter2@h/db", 0.1)
    finally:
        logger.removeHandler(handler)
    assert seen == ["#0 : tracking.uri=postgresql://u:***@h/db lr=0.1"]


def test_files_with_a_password_are_rewritten_without_it(tmp_path):
    a, b = tmp_path / "hydra.yaml", tmp_path / "config.yaml"
    a.write_text("storage: postgresql://u:hunter2@h/db\n")
    b.write_text("lr: 0.1\n")
    scrub_files([a, b, tmp_path / "missing.yaml"])
    assert a.read_text() == "storage: postgresql://u@h/db\n" and b.read_text() == "lr: 0.1\n"
