"""Hydra overrides as names: the key an override sets, and a run's name made of its overrides."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from omegaconf import OmegaConf

from softmax_exp.config.schema import GROUP_KEYS, is_result_key


def task_overrides(hydra_config: Any) -> list[str]:
    """The command line's overrides (``hydra.overrides.task``) as typed. Read unresolved: an override
    such as ``lr=${oc.env:X}`` is text there, and iterating the node would try to resolve it."""
    return [str(o) for o in OmegaConf.to_container(hydra_config.overrides.task, resolve=False)]


def override_key(override: str) -> str:
    """The config key of an override: ``+lr=1e-3`` -> ``lr``, ``~dataset.root`` -> ``dataset.root``."""
    return override.partition("=")[0].lstrip("+~")


def run_name(overrides: Sequence[str], lr: float, reg: float, keys: Iterable[str] | None = None) -> str:
    """A run's name from its overrides, values normalised: ``lr=1e-7 reg=2.5e4`` -> ``lr=1e-07,reg=25000``.

    Overrides that cannot change a result (``hydra...``, ``tracking...``, ``progress``, ...) are left
    out; with ``keys``, only those keys are kept. A config group's choice comes first (``model=svm,lr=1e-07``:
    the model shows where a run list cuts long names). Without any, the name is ``lr=<lr>,reg=<reg>``.
    """
    keep = set(keys) if keys is not None else None
    parts = []
    for o in overrides:
        key, value = override_key(o), o.partition("=")[2]
        if not is_result_key(key) or (keep is not None and key not in keep):
            continue
        parts.append((key not in GROUP_KEYS, f"{key}={_format_value(value)}"))
    return ",".join(part for _, part in sorted(parts, key=lambda p: p[0])) or f"lr={lr:g},reg={reg:g}"


def _format_value(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    if value.strip().lstrip("+-").isdigit():
        return str(int(value))
    return f"{number:g}"
