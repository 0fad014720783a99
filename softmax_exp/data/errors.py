"""The one exception type of the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input to the data layer: a missing or corrupt file, a bad option, an unsafe archive.

    The message is one line that names what is wrong and how to fix it.
    """
