"""Errors said in one line: a Hydra or OmegaConf error (their messages span lines and end with the config
search path), or an OSError of an output folder, as the one line that says what to fix."""

from __future__ import annotations


def one_line(error: BaseException) -> str:
    """``error`` as one line naming the key (or the file) and the fix."""
    if isinstance(error, OSError) and error.filename:
        return (f"{error.strerror}: {error.filename}; make it a writable folder with free space, or write "
                f"the outputs elsewhere with hydra.run.dir=DIR (a sweep: hydra.sweep.dir=DIR)")
    message = first_part(error)
    override = getattr(error, "override", None)  # hydra.errors.OverrideParseException
    if override:
        return f"cannot parse the override {override!r}: {message}"
    cause = error.__cause__
    key = getattr(cause, "full_key", None) or getattr(error, "full_key", None)
    if cause is not None and key and "not in" in str(cause).split("\n")[0]:
        return f"unknown option {key}; `python -m softmax_exp.train --help` lists the options"
    if cause is not None and key:
        return f"{key}: {first_part(cause)}"
    if key and message.split()[:1] != [key]:
        return f"{key}: {message}"
    return message


def first_part(error: BaseException) -> str:
    """The message of ``error`` on one line, without Hydra's config search path or OmegaConf's key and type
    lines."""
    text = str(error).split("Config search path")[0]
    lines = [line for line in text.splitlines() if not line.strip().startswith(("full_key:", "object_type=",
                                                                                "reference_type="))]
    return " ".join(" ".join(lines).split())
