"""Fingerprints: the sha256 of a value's canonical JSON form (keys sorted, no spaces).

Equal values give equal fingerprints whatever their key order; the dataset cache names its entries by
one, and the MLflow runs of a configuration or a sweep are found again by theirs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def json_digest(value: Any) -> str:
    """64 hex digits: sha256 of ``value`` as JSON with sorted keys (non-JSON values as ``str``)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
