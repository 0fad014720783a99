"""The job log's file handler (conf/hydra/job_logging/softmax.yaml): a write that fails is an error; and the
filter of every handler there: no URL's password in a line logged.

Python's own FileHandler prints a "--- Logging error ---" traceback for a record it could not write and
goes on, so a training whose disk filled up ended with exit status 0 and a log with holes. This one raises
the OSError, naming the log file, from the logging call that met it: the run ends FAILED and the command
says so in one line (softmax_exp.train).
"""

from __future__ import annotations

import logging
import os
import sys

from softmax_exp.util.secrets import has_password, masked


class FileHandler(logging.FileHandler):
    """``logging.FileHandler`` whose failures to write are raised (OSError naming the file), not printed."""

    def _open(self):
        try:
            return super()._open()
        except OSError as e:  # some (opening /proc/version to append, say) name no file
            if e.filename is None and e.errno:
                raise OSError(e.errno, e.strerror or os.strerror(e.errno), self.baseFilename) from e
            raise

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            errno = error.errno
            raise OSError(errno, error.strerror or (os.strerror(errno) if errno else str(error)),
                          self.baseFilename) from error
        super().handleError(record)


class MaskPasswords(logging.Filter):
    """A handler's filter: a record whose message holds a URL with a password (a tracking or study storage
    given on the command line, which Hydra's launcher logs with every job) is shown with ``***`` for it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if has_password(message):
            record.msg, record.args = masked(message), ()
        return True
