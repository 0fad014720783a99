"""``python -m softmax_exp.train --help``: what the tool does, every option with its type, default and
meaning, the config groups and their choices, and examples.

The text is made from the schema itself (the dataclasses :mod:`softmax_exp.config.schema` composes, each
field's declared meaning: :func:`softmax_exp.util.constraints.option`) and the files of ``conf/``, so it
cannot drift from them. Hydra shows it through its help template (``hydra.help.template:
${softmax_exp_help:}`` in conf/config.yaml).
"""

from __future__ import annotations

import dataclasses
import textwrap

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from softmax_exp.config.compose import GROUPS
from softmax_exp.config.schema import Config
from softmax_exp.util.constraints import help_of
from softmax_exp.util.paths import CONFIG_DIR

ABOUT = """\
python -m softmax_exp.train: train a linear image classifier (the softmax, or the multiclass SVM) on
pixels or image features by minibatch SGD, as in Stanford CS231n's assignment 1, and track every training
in MLflow (params, loss and accuracies, pictures of W, the model). One training by default; -m runs a
sweep: one job per combination of the values given (lr=1e-3,1e-2 reg=0.1,1), one parent MLflow run with a
child run per job.
Every option is an override KEY=VALUE, checked against its type before any data is loaded."""

EXAMPLES = """\
Examples:
  python -m softmax_exp.train                                         one training on digits (offline)
  python -m softmax_exp.train lr=1e-2 reg=0.1 optimizer=momentum num_iters=1500
  python -m softmax_exp.train -m lr=1e-3,1e-2 reg=1e-2,1 hydra/launcher=joblib_2w   a 2 x 2 sweep, 2 at once
  python -m softmax_exp.train +experiment=cs231n_grid dataset.root=data/cifar10     the course's grid
  python -m softmax_exp.train -m model=softmax,svm features=hog_color dataset=cifar10   both, on features
  python -m softmax_exp.train -m hydra/sweeper=optuna_lr_reg hydra.sweeper.pruner=median   an Optuna search

More: --cfg job [overrides] prints the composed config; --hydra-help Hydra's own flags; README.md, docs/."""

HYDRA_CHOICES = {"hydra/launcher": "Hydra's: basic (default), joblib, submitit_local, submitit_slurm",
                 "hydra/sweeper": "optuna (no preset space); Hydra's basic"}
# the search's options (hydra/sweeper=optuna_lr_reg, or optuna): hydra_plugins/softmax_exp_optuna_sweeper
SEARCH_OPTIONS = {
    "n_trials": "the study's trials in all, whichever process runs them",
    "n_jobs": "trials asked and launched together (hydra/launcher=joblib_2w runs them at once)",
    "direction": "of the task's return value (val_acc here): minimize | maximize [optuna_lr_reg: maximize]",
    "storage": "RDB URL (sqlite:///FILE, postgresql+psycopg://...) or a journal file; null: "
               "optuna.journal in the sweep folder",
    "study_name": "null: the app's job name [optuna_lr_reg: softmax_lr_reg]; the same command goes on "
                  "with it",
    "pruner": "none | median | successive_halving | hyperband, with hydra.sweeper.pruner_args",
    "max_failure_rate": "the share of a batch's trials whose job may raise before the search stops",
    "params": "KEY: a space (tag(log, interval(a, b)), range, choice, a,b,c); a sweep on the command line "
              "replaces it",
    "custom_search_space": "a function (cfg, trial) that suggests more parameters (its dotted "
                           "path)",
    "sampler.seed": "the sampler's seed; the k-th process to join a study draws with seed + k "
                    "[optuna_lr_reg: "
                    "${seed}]",
}


def help_text() -> str:
    """The whole --help page (``$`` is doubled: Hydra passes it through string.Template)."""
    lines = [ABOUT, "", "Usage: python -m softmax_exp.train [KEY=VALUE ...] [GROUP=CHOICE ...] "
             "[+experiment=NAME] [-m]", "", "Options (KEY=VALUE; type, default, meaning):"]
    lines += _rows([_row(Config, f, "") for f in dataclasses.fields(Config) if f.name not in GROUPS])
    lines += ["", "Groups (GROUP=CHOICE) and their options (GROUP.KEY=VALUE):"]
    for group, default in (("dataset", "digits"), ("features", "pixels"), ("optimizer", "sgd"),
                           ("model", "softmax"), ("tracking", "mlflow")):
        schemas = GROUPS[group]
        lines.append("  " + group + "=" + ", ".join(f"{n} (default)" if n == default else n for n in schemas))
        base = schemas[default]
        common = {f.name for f in dataclasses.fields(base)}
        rows = []
        for f in dataclasses.fields(base):
            if f.name == "name":
                continue
            others = [f"{n}: {_default(_field(c, f.name))}" for n, c in schemas.items()
                      if n != default and _default(_field(c, f.name)) != _default(f)]
            rows.append(_row(base, f, group + ".", f" [{'; '.join(others)}]" if others else ""))
        for name, schema in schemas.items():
            rows += [_row(schema, f, group + ".", f" [{name} only]") for f in dataclasses.fields(schema)
                     if f.name not in common]
        lines += _rows(rows, indent=4)
    lines += ["", "  +experiment=NAME     a whole study, added with + (not in the defaults list): "
              + ", ".join(_conf_choices("experiment"))]
    for group, builtin in HYDRA_CHOICES.items():
        choices = ", ".join(_conf_choices(group))
        lines.append(f"  {group}=NAME  this project's: {choices}; {builtin}")
    lines += ["", "Search options (-m hydra/sweeper=optuna_lr_reg; hydra.sweeper.KEY=VALUE; default, "
              "meaning):"]
    lines += _rows(_search_rows(), indent=4)
    samplers = [k.removesuffix(".yaml") for k in _stored("hydra", "sweeper", "sampler") or {}]
    lines += ["    hydra/sweeper/sampler=NAME  " + ", ".join(samplers) + " (tpe by default)",
              "                                grid: each point of the choices and ranges once"]
    lines += ["", EXAMPLES]
    return "\n".join(lines).replace("$", "$$")


def _search_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) of the search's options, their defaults from its schema as the sweeper
    plugin registers it (Hydra has scanned the plugins when it shows --help)."""
    node = _stored("hydra", "sweeper", "optuna.yaml")
    schema = node.node if node is not None else {}
    rows = []
    for key, meaning in SEARCH_OPTIONS.items():
        value = OmegaConf.select(schema, key, default=None) if schema else None
        shown = "null" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        rows.append(("hydra.sweeper." + key, "", shown, meaning))
    return rows


def _stored(*path: str):
    """A node of Hydra's ConfigStore (a group's dict, or a ConfigNode), None if it is not there."""
    node = ConfigStore.instance().repo
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _field(schema: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(schema) if f.name == name)


def _row(schema: type, f: dataclasses.Field, prefix: str, extra: str = "") -> tuple[str, str, str, str]:
    """(key, type, default, meaning) of one option; the meaning is the one declared with the field by the
    first class of ``schema``'s bases that declares it (a subclass that changes a default may say why)."""
    declared = next((help_of(g) for cls in reversed(schema.__mro__) if dataclasses.is_dataclass(cls)
                     for g in dataclasses.fields(cls) if g.name == f.name and help_of(g)), "")
    meaning = " ".join(p for p in (declared, extra.strip()) if p)
    return prefix + f.name, _type_name(f.type), _default(f), meaning


def _rows(rows: list[tuple[str, str, str, str]], indent: int = 2, width: int = 110) -> list[str]:
    """Aligned columns; a long meaning wraps under itself, a long default (a URL) takes a line of its own."""
    wk, wt = (max(len(r[i]) for r in rows) for i in (0, 1))
    wd = min(16, max(len(r[2]) for r in rows))
    blank = " " * (indent + wk + wt + wd + 6)
    out = []
    for key, typ, default, meaning in rows:
        head = f"{' ' * indent}{key:<{wk}}  {typ:<{wt}}  {default:<{wd}}  "
        if len(default) > wd:
            out.append(f"{' ' * indent}{key:<{wk}}  {typ:<{wt}}  {default}")
            head = blank
            if not meaning:
                continue
        for i, part in enumerate(textwrap.wrap(meaning, max(30, width - len(blank))) or [""]):
            out.append((head if i == 0 else blank) + part)
    return [line.rstrip() for line in out]


def _type_name(annotation) -> str:
    return str(annotation).replace("typing.", "").replace(" | None", "|null").replace(" ", "")


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if value is MISSING or value == "???":
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _conf_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


# conf/config.yaml's ``hydra.help.template: ${softmax_exp_help:}``; the entrypoint imports this module
OmegaConf.register_new_resolver("softmax_exp_help", help_text, replace=True)
