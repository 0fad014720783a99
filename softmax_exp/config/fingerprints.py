"""What identifies a run and a sweep: the config keys that can change a result, and the fingerprints of a
config and of a sweep that the MLflow runs carry as tags (softmax_exp.tracking.resume finds earlier runs
by them, whatever output folder Hydra picks).

A job's *config fingerprint* is a hash of its config without the keys that cannot change its result
(progress bar, threads, tracking, resume, checkpoint period, cache location); a sweep's hashes the config it
shares with all its jobs and what it varies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from softmax_exp.config.overrides import override_key
from softmax_exp.config.schema import flatten, is_result_key
from softmax_exp.util.fingerprint import json_digest


def result_config(config: Any) -> dict[str, Any]:
    """The config (a Config, or a plain mapping shaped like one), flattened to dotted keys, without what
    cannot change a result: what a run's params are."""
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return {k: v for k, v in flatten(config).items() if is_result_key(k)}


# Keys added after runs were recorded, with the value that computes what those runs computed: at that value
# a key is left out of the fingerprints, so the earlier runs are still found (resumed, reused by a sweep).
ADDED_KEYS = {"model.name": "softmax", "features.name": "pixels"}


def _identity(config: Any) -> dict[str, Any]:
    """:func:`result_config` without the ADDED_KEYS at their earlier value."""
    return {k: v for k, v in result_config(config).items() if k not in ADDED_KEYS or ADDED_KEYS[k] != v}


def config_fingerprint(config: Any) -> str:
    """64 hex digits identifying what a training computes: :func:`result_config` hashed (without the
    ADDED_KEYS at their earlier value)."""
    return json_digest(_identity(config))


def sweep_fingerprint(config: Any, sweep_overrides: Iterable[str], sweeper: str,
                      sweeper_params: Mapping[str, Any]) -> str:
    """64 hex digits identifying a sweep: the config its jobs share (without the swept keys), its sweep
    overrides (``lr=1e-3,1e-2``, in key order) and its sweeper with the sweeper's params."""
    overrides = sorted(str(o) for o in sweep_overrides)
    swept = [override_key(o) for o in overrides] + [str(k) for k in sweeper_params]
    shared = {k: v for k, v in _identity(config).items()
              if not any(k == s or k.startswith(s + ".") for s in swept)}
    return json_digest({"config": shared, "overrides": overrides, "sweeper": sweeper,
                        "params": {str(k): str(v) for k, v in sweeper_params.items()}})
