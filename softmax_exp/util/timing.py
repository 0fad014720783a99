"""Where a process's time goes, by section: opt-in, for the benchmark's sweep breakdown.

With ``SOFTMAX_EXP_TIMINGS=FILE`` in the environment, the sections below add up their wall time and the
process writes them to FILE (JSON, seconds) when it exits; without it every call here is a no-op costing
one attribute check. Sections are leaves that do not nest in one another, so they add up:

    imports       the interpreter's start and the imports, until the entrypoint runs
    composition   Hydra composing configs (its config loader, wrapped when the entrypoint starts)
    store         opening the MLflow store (importing mlflow, the SQLAlchemy engine, the schema check)
    data          loading a dataset (memory-mapping a cache entry, or building it)
    sgd           the training loop without its evaluations and callbacks
    evaluation    train / val accuracy during and at the end of a training
    tracking      everything MLflow but the store's opening and the model (runs, params, metrics, files)
    pictures      drawing weights.png, loss.png and the sweep's heatmap, writing the job's files
    model         logging the MLflow model
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ENV = "SOFTMAX_EXP_TIMINGS"
LAUNCHED_ENV = "SOFTMAX_EXP_LAUNCHED_AT"  # time.time() when the process was started, if the starter knows
_FILE = os.environ.get(ENV)
_TOTALS: dict[str, float] = defaultdict(float)
_OPEN: list[str] = []  # the section being timed (sections do not nest: an inner one pauses the outer)


def enabled() -> bool:
    return _FILE is not None


@contextmanager
def section(name: str) -> Iterator[None]:
    """Add the block's wall time to ``name`` (pausing the section it interrupts, if any)."""
    if _FILE is None:
        yield
        return
    now = time.perf_counter()
    outer = _OPEN[-1] if _OPEN else None
    if outer is not None:
        _TOTALS[outer] += now  # the outer section's clock stops here ...
    _OPEN.append(name)
    _TOTALS[name] -= now
    try:
        yield
    finally:
        now = time.perf_counter()
        _TOTALS[name] += now
        _OPEN.pop()
        if outer is not None:
            _TOTALS[outer] -= now  # ... and goes on here


def timed(name: str):
    """Decorator form of :func:`section`."""

    def wrap(fn):
        if _FILE is None:
            return fn

        def timed_fn(*args, **kwargs):
            with section(name):
                return fn(*args, **kwargs)

        timed_fn.__wrapped__ = fn
        return timed_fn

    return wrap


def start_of_main(time_config_loading: Callable[[Callable], None] | None = None) -> None:
    """Called first thing by the entrypoint: ``imports`` is the time since the process started (the
    interpreter and the imports), and Hydra's config composition counts as ``composition``
    (``time_config_loading`` wraps Hydra's config loader: softmax_exp.config.hydra_internals)."""
    if _FILE is None:
        return
    launched = os.environ.get(LAUNCHED_ENV)  # the benchmark's clock when it started the process
    if launched is None:
        import psutil

        launched = psutil.Process().create_time()
    _TOTALS["imports"] += time.time() - float(launched)
    if time_config_loading is not None:
        time_config_loading(timed("composition"))


def _write() -> None:
    if _FILE is not None:
        with open(_FILE, "w") as f:
            json.dump(dict(_TOTALS), f)


if _FILE is not None:
    atexit.register(_write)
