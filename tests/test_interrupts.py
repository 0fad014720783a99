"""Signals: at once outside a training loop, between two steps inside one."""

from __future__ import annotations

import os
import signal
import time

import pytest

from softmax_exp.util.interrupts import Interrupts


@pytest.fixture
def interrupts():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield Interrupts()
    for s, handler in saved.items():
        signal.signal(s, handler)


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # Python runs the handler at the next bytecode boundary


def test_a_signal_in_a_training_loop_only_asks_it_to_stop(interrupts):
    interrupts.install()
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            _deliver(signal.SIGTERM)
            assert interrupts.requested() and interrupts.received == [signal.SIGTERM]
            reached_the_end = True
    assert reached_the_end  # raised on leaving, not inside


def test_outside_a_training_loop_a_signal_raises_at_once(interrupts):
    interrupts.install()
    with pytest.raises(KeyboardInterrupt):
        _deliver(signal.SIGINT)
        raise AssertionError("not interrupted")
    assert interrupts.received == [signal.SIGINT]
    with interrupts.deferred():  # nothing new arrived: leaving raises nothing
        pass
