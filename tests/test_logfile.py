"""The job log's file handler: a record it cannot write is an OSError naming the file, not a traceback."""

from __future__ import annotations

import logging
import os

import pytest

from softmax_exp.util.logfile import FileHandler


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_disk_raises_naming_the_log(capsys):
    logger = logging.getLogger("softmax_exp.test_logfile")
    handler = FileHandler("/dev/full")  # every write: ENOSPC, as a disk that has filled up
    logger.addHandler(handler)
    try:
        with pytest.raises(OSError, match="No space left on device") as caught:
            logger.warning("a line")
        assert caught.value.filename == "/dev/full"
        assert "Logging error" not in capsys.readouterr().err  # Python's handler prints that, goes on
    finally:
        logger.removeHandler(handler)
        handler.stream = None  # (closing would flush to /dev/full again)


def test_a_log_that_can_be_written_is_written(tmp_path):
    logger = logging.getLogger("softmax_exp.test_logfile2")
    handler = FileHandler(tmp_path / "train.log")
    logger.addHandler(handler)
    try:
        logger.warning("kept")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "train.log").read_text() == "kept\n"
