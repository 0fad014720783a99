"""The typed configuration: the schema of ``conf/`` and its checks, Hydra's composition of it, overrides as
run names, and the ``--help`` page made from the schema."""

from softmax_exp.config.schema import (
    Config,
    ConfigError,
    as_dict,
    compose,
    flatten,
    is_result_key,
    one_line,
    to_config,
    to_yaml,
)

__all__ = ["Config", "ConfigError", "as_dict", "compose", "flatten", "is_result_key", "one_line", "to_config",
           "to_yaml"]
