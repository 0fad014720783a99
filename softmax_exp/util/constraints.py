"""Settings checked from a declaration: each option's constraint is declared once, beside its field, and one
call checks a whole (nested) settings object at the public boundary.

The model is scikit-learn's ``_parameter_constraints`` with ``validate_params``: a table says what each
setting may be; the boundary checks the table; the code behind the boundary trusts its inputs. Here the
table is the dataclass itself: a field declared with :func:`option` carries its default, its constraint and
its meaning (what ``--help`` prints)::

    @dataclass
    class TrainParams:
        lr: float = option(3e-3, Real(low=0, low_open=True), "learning rate")

:func:`check` walks a dataclass (its nested dataclasses too) and raises :class:`SettingError`, one line
naming the key (dotted, from the root), what it must be and what it got. Rules that relate two settings
(``optimizer.min_lr <= lr``) are a dataclass's ``RULES``: (check, message) pairs run after its fields.
A dataclass deriving from :class:`Checked` checks itself when it is made.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class SettingError(ValueError):
    """A setting is not what its constraint allows; the message is one line naming the key."""


def option(default: Any = dataclasses.MISSING, constraint: Constraint | None = None, help: str = "",
           *, default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its ``constraint`` and ``help`` (one line: the option's meaning)."""
    meta = {"constraint": constraint, "help": help}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def help_of(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "")


def check(obj: Any) -> None:
    """Check the fields of the dataclass ``obj`` declared with a constraint, then its ``RULES``; raise
    SettingError naming the key (the class's ``KEY`` prefix, e.g. ``optimizer.``, and the field). Nested
    dataclasses (a config's groups) are not looked into: each checks itself when it is made."""
    prefix = getattr(type(obj), "KEY", "")
    for f in dataclasses.fields(obj):
        constraint = f.metadata.get("constraint")
        if constraint is not None:
            value = getattr(obj, f.name)
            problem = constraint.problem(value, obj)
            if problem is not None:
                raise SettingError(problem.format(key=prefix + f.name, value=_show(value)))
    for rule, message in getattr(type(obj), "RULES", ()):
        if not rule(obj):
            raise SettingError(message.format(obj=obj))


def check_values(values: Mapping[str, Any], table: Mapping[str, Constraint], prefix: str, what: str) -> None:
    """Check a mapping of settings against ``table`` (name -> constraint): a name it does not have, or a
    value its constraint refuses, is a SettingError naming ``prefix + name`` (``what`` says whose)."""
    for name, value in values.items():
        if name not in table:
            allowed = ", ".join(table) or "none"
            raise SettingError(f"{prefix}{name} is not an option of {what}; its options: {allowed}")
        problem = table[name].problem(value)
        if problem is not None:
            raise SettingError(problem.format(key=prefix + name, value=_show(value)) + f" ({what})")


class Checked:
    """A dataclass checked once, when it is made (``__post_init__``): its constraints and ``RULES``, with
    ``KEY`` (its place in the config, e.g. ``optimizer.``) before every key it names."""

    KEY = ""
    RULES: tuple = ()

    def __post_init__(self) -> None:
        check(self)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return repr(list(value))
    return repr(value)


# ----------------------------------------------------------------------------------------- constraints


class Constraint:
    """What a setting may be. :meth:`problem` returns None when ``value`` passes, else a message with
    ``{key}`` and ``{value}`` placeholders; ``owner`` is the dataclass holding the field."""

    def problem(self, value: Any, owner: Any = None) -> str | None:
        raise NotImplementedError


def is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Real(Constraint):
    """A number (not a bool) in the interval ``low .. high`` (open at an end when ``low_open`` /
    ``high_open``), finite (NaN and inf fail) unless ``finite=False``; None allowed when ``nullable``.
    ``note`` is added to the message; ``why_high`` says why there is an upper bound, when it is crossed
    (``high_text``: how the bound is printed)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True
    nullable: bool = False
    note: str = ""
    why_high: str = ""
    high_text: str = ""

    def _accepts(self, v: Any) -> bool:
        return is_real(v)

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if value is None and self.nullable:
            return None
        if value is None or not self._accepts(value) or (self.finite and not math.isfinite(value)):
            return f"{{key}} must be {self.describe()}; got {{value}}"
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return f"{{key}} must be {self.describe()}; got {{value}}"
        if self.high is not None and not (value < self.high if self.high_open else value <= self.high):
            if self.why_high:
                bound = self.high_text or _num(self.high)
                return f"{{key}} must be at most {bound} ({self.why_high}); got {{value}}"
            return f"{{key}} must be {self.describe()}; got {{value}}"
        return None

    def what(self) -> str:
        return "a finite number" if self.finite else "a number"

    def describe(self) -> str:
        if self.low is not None and self.high is not None and not self.why_high:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            kind = "an integer" if isinstance(self, Integer) else "a number"
            text = f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        elif self.low is not None:
            text = f"{self.what()} {'>' if self.low_open else '>='} {_num(self.low)}"
        else:
            text = self.what()
        if self.nullable:
            text = f"null or {text}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Integer(Real):
    """An integer (not a bool) in ``low .. high``; see :class:`Real`."""

    finite: bool = False

    def _accepts(self, v: Any) -> bool:
        return is_int(v)

    def what(self) -> str:
        return "an integer"


@dataclass(frozen=True)
class Boolean(Constraint):
    """True or false (None too when ``nullable``)."""

    nullable: bool = False

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if isinstance(value, (bool, np.bool_)) or value is None and self.nullable:
            return None
        return f"{{key}} must be {'null, ' if self.nullable else ''}true or false; got {{value}}"


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of ``choices`` (a sequence, or a function returning one: names known only once a module is
    imported)."""

    choices: Sequence[str] | Callable[[], Iterable[str]]

    def names(self) -> list[str]:
        return list(self.choices() if callable(self.choices) else self.choices)

    def problem(self, value: Any, owner: Any = None) -> str | None:
        names = self.names()
        if value in names:
            return None
        return f"unknown {{key}} {{value}}; choose one of: {', '.join(names)}"


@dataclass(frozen=True)
class AnyOf(Constraint):
    """What one of ``constraints`` allows, described as ``what``."""

    constraints: tuple[Constraint, ...]
    what: str

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if any(c.problem(value, owner) is None for c in self.constraints):
            return None
        return f"{{key}} must be {self.what}; got {{value}}"


@dataclass(frozen=True)
class GroupName(Constraint):
    """The ``name`` a config group sets: the name its dataclass is registered under in ``groups`` (a
    mapping name -> dataclass, or a function returning one), not a value a user types."""

    group: str
    groups: Callable[[], dict[str, type]]

    def problem(self, value: Any, owner: Any = None) -> str | None:
        groups = self.groups()
        mine = next((n for n, c in groups.items() if c is type(owner)), value)
        if value == mine:
            return None
        choose = " | ".join(f"{self.group}={n}" for n in groups) if len(groups) > 2 else \
            " or ".join(f"{self.group}={n}" for n in groups)
        return f"{{key}} is set by the {self.group} group, not by hand; got {{value}}: choose {choose}"


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string (None allowed when ``nullable``)."""

    nullable: bool = False

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if value is None and self.nullable:
            return None
        if isinstance(value, str) and value:
            return None
        return f"{{key}} must be a non-empty string{' or null' if self.nullable else ''}; got {{value}}"


MAX_PATH = 4096  # Linux's PATH_MAX


@dataclass(frozen=True)
class PathText(Text):
    """A path: non-empty, printable (no NUL, newline or other control character), at most MAX_PATH."""

    def problem(self, value: Any, owner: Any = None) -> str | None:
        problem = super().problem(value, owner)
        if problem is not None or value is None:
            return problem
        if len(value) > MAX_PATH:
            return f"{{key}} is {len(value)} characters long; a path has at most {MAX_PATH}"
        if not value.isprintable():
            return (f"{{key}} {_clip(value)} has a control character (NUL, newline, ...) in it; give a plain "
                    f"path")
        return None


@dataclass(frozen=True)
class Name(Text):
    """A name that also becomes part of a path (an experiment's artifact folder) or a URI: printable, at
    most ``max_chars``, none of ``forbidden``, not ``.`` or ``..``, no space at either end."""

    max_chars: int = 256
    forbidden: str = "/\\"

    def problem(self, value: Any, owner: Any = None) -> str | None:
        problem = super().problem(value, owner)
        if problem is not None or value is None:
            return problem
        fix = "give {key} a plain name, e.g. {key}=my-study"
        if len(value) > self.max_chars:
            return (f"{{key}} is {len(value)} characters long, MLflow takes at most {self.max_chars}; choose "
                    f"a shorter name")
        bad = sorted({c for c in value if c in self.forbidden or not c.isprintable()})
        if bad:
            shown = " ".join(map(repr, bad)).replace("{", "{{").replace("}", "}}")
            return (f"{{key}} {_clip(value)} has {shown} in it; {fix} (no {' '.join(self.forbidden)} or "
                    f"control character)")
        if value in (".", "..") or value != value.strip():
            return f"{{key}} {_clip(value)} is not a usable name; {fix}"
        return None


@dataclass(frozen=True)
class Pattern(Constraint):
    """A string matching ``regex`` in full (None allowed when ``nullable``), described as ``what``."""

    regex: str
    what: str
    nullable: bool = False

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if value is None and self.nullable:
            return None
        if isinstance(value, str) and re.fullmatch(self.regex, value):
            return None
        return f"{{key}} must be {self.what}{' or null' if self.nullable else ''}; got {{value}}"


@dataclass(frozen=True)
class Sizes(Constraint):
    """``count`` integers >= 1 (an image size [H, W]); None allowed when ``nullable``."""

    count: int
    what: str
    nullable: bool = True

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if value is None and self.nullable:
            return None
        if (isinstance(value, (list, tuple)) and len(value) == self.count
                and all(is_int(v) and v >= 1 for v in value)):
            return None
        return f"{{key}} must be {'null or ' if self.nullable else ''}{self.what}; got {{value}}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _clip(value: str, n: int = 60) -> str:
    return repr(value if len(value) <= n else value[:n] + "...").replace("{", "{{").replace("}", "}}")
