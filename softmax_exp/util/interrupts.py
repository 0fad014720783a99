"""Ctrl-C (SIGINT) and SIGTERM (kill, SLURM at a time limit or on preemption) stop a training the same
way: KeyboardInterrupt, so that its MLflow run ends KILLED with its metrics flushed.

The exception is raised at once, except inside a training loop: an exception raised while a Numba kernel
returns becomes a SystemError, so there the loop is asked to stop between two steps (the training
hooks' ``should_stop`` is ``INTERRUPTS.requested``). One instance per process, :data:`INTERRUPTS`.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Interrupts:
    """The signals received, and whether a training loop runs (then a signal only sets a flag)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.deferring = False

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from here on (main thread only; elsewhere nothing changes)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._handler)
            signal.signal(signal.SIGTERM, self._handler)

    def requested(self) -> bool:
        return bool(self.received)

    @contextmanager
    def deferred(self):
        """While inside, a signal only sets ``requested``; a signal left unanswered raises on exit."""
        seen, self.deferring = len(self.received), True
        try:
            yield
        finally:
            self.deferring = False
        if len(self.received) > seen:
            raise KeyboardInterrupt

    def _handler(self, signum, frame) -> None:
        self.received.append(signum)
        if not self.deferring:
            raise KeyboardInterrupt


INTERRUPTS = Interrupts()
