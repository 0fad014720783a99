"""The typed configuration: the schema composed from each group's settings (``schema``), Hydra's side of it
(``compose``: the ConfigStore, composing, checking), what identifies a run (``fingerprints``), overrides as
run names (``overrides``), the ``--help`` page (``help``) and Hydra's private API (``hydra_internals``)."""

from softmax_exp.config.compose import ConfigError, compose, to_config
from softmax_exp.config.schema import Config, as_dict, to_yaml

__all__ = ["Config", "ConfigError", "as_dict", "compose", "to_config", "to_yaml"]
