"""Passwords in URLs (``postgresql+psycopg://user:password@host/db``) are never recorded: a URL is written
down without its password (a tag, sweep.json, a config file, an artifact) and shown with ``***`` in its
place (a line printed or logged). The password comes from the command line or the environment
(``PGPASSWORD``, ``~/.pgpass``) whenever the URL is used."""

from __future__ import annotations

import re

from softmax_exp.util.atomic import write_text

# scheme://user:password@ : the user may be empty (scheme://:password@host), the password may hold anything
# but '@', '/' and white space (a '@' in a password is percent-encoded in a URL)
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@/\s]+)@")


def without_password(text: str) -> str:
    """``text`` with every URL's password left out (``scheme://user@host``): what is recorded."""
    return _CREDENTIALS.sub(lambda m: f"{m['head']}@", text)


def masked(text: str) -> str:
    """``text`` with every URL's password shown as ``***``: what is printed."""
    return _CREDENTIALS.sub(lambda m: f"{m['head']}:***@", text)


def has_password(text: str) -> bool:
    return _CREDENTIALS.search(text) is not None


def scrub_files(paths) -> None:
    """Rewrite each of ``paths`` that exists and holds a URL's password (Hydra's own record of a job's or
    a sweep's config: .hydra/*.yaml, multirun.yaml) without it, whole or not at all."""
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if has_password(text):
            write_text(path, without_password(text))
