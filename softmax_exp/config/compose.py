"""The schema and Hydra: the schemas registered in Hydra's ConfigStore (``conf/`` extends them), the
project's config composed without a Hydra app, and a checked :class:`~softmax_exp.config.schema.Config`
made from a composed config or a plain mapping (a logged ``config.yaml``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from softmax_exp.config.schema import Config
from softmax_exp.data.settings import DATASETS
from softmax_exp.features.settings import FEATURES
from softmax_exp.learn.model import MODELS
from softmax_exp.learn.optim import OPTIMIZERS
from softmax_exp.tracking.settings import TrackingConfig
from softmax_exp.util.constraints import SettingError
from softmax_exp.util.errors import one_line
from softmax_exp.util.paths import CONFIG_DIR, project_root

# the config groups and the schema of each choice (ConfigStore: schema/<group>/<choice>)
GROUPS: dict[str, Mapping[str, type]] = {"dataset": DATASETS, "features": FEATURES, "optimizer": OPTIMIZERS,
                                          "model": MODELS,
                                          "tracking": {"mlflow": TrackingConfig}}


class ConfigError(ValueError):
    """A configuration value is invalid; raised before any data is loaded. The message is one line."""


def register() -> None:
    """Put the schemas into Hydra's ConfigStore and register ``${project_root:}`` (idempotent)."""
    OmegaConf.register_new_resolver("project_root", lambda: str(project_root()), replace=True)
    cs = ConfigStore.instance()
    cs.store(group="schema", name="config", node=Config)
    for group, schemas in GROUPS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def compose(overrides: Sequence[str] = (), return_hydra_config: bool = False):
    """The project's config (conf/config.yaml) with Hydra ``overrides``, as a DictConfig, without a Hydra
    app running (scripts, the benchmark, tests). :func:`to_config` makes it a checked Config."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def to_config(cfg: Any) -> Config:
    """A checked :class:`Config` from Hydra's composed config (its ``hydra`` node, if any, is left out), or
    from a plain mapping shaped like one (a logged ``config.yaml``). Interpolations are resolved.

    Raises ConfigError (one line) for a key that is not an option, a value of the wrong type, a
    required value left out, or a value its constraint refuses.
    """
    try:
        if isinstance(cfg, DictConfig):
            node = cfg.copy()  # keeps the schema's type, which masked_copy would drop
            if "hydra" in node:
                with open_dict(node):
                    del node["hydra"]
        else:
            node = OmegaConf.merge(_schema_for(cfg), cfg)
        unknown = _unknown_keys(node)
        if unknown:
            key, options = unknown[0]
            raise ConfigError(f"unknown option {key}; the options there are: {', '.join(options)}")
        return OmegaConf.to_object(node)  # each dataclass checks itself as it is made
    except SettingError as e:
        raise ConfigError(str(e)) from None
    except MissingMandatoryValue as e:
        raise ConfigError(f"{e.full_key} is required; set it, e.g. {e.full_key}=...") from None
    except OmegaConfBaseException as e:
        raise ConfigError(one_line(e)) from None


def _schema_for(values: Mapping[str, Any]):
    """The structured schema of a plain config mapping: Config with the dataset, features, model and optimizer
    schemas its ``name`` keys choose (a config without ``model.name`` or ``features`` is from before there
    was another model than the softmax, or a feature stage)."""
    schema = OmegaConf.structured(Config)
    for key in ("dataset", "features", "model", "optimizer"):
        choices = GROUPS[key]
        name = (values.get(key) or {}).get("name", _BEFORE.get(key))
        if name not in choices:
            raise ConfigError(f"{key}.name must be one of {', '.join(choices)}; got {name!r}")
        schema[key] = OmegaConf.structured(choices[name])
    return schema


_BEFORE = {"model": "softmax", "features": "pixels"}  # what a logged config without the group had


def _unknown_keys(node, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Keys of a DictConfig that its schema does not have (an override ``+key=...`` adds them), with the
    schema's own keys; the schema drops them silently otherwise."""
    cls = OmegaConf.get_type(node)
    names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else None
    found = []
    for key, value in node.items_ex(resolve=False):
        full = f"{prefix}{key}"
        if names is not None and key not in names:
            found.append((full, names))
        elif isinstance(value, DictConfig):
            found += _unknown_keys(value, full + ".")
    return found


register()
