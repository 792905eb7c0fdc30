"""Canonical JSON and sha256: the one way seeknal serializes and hashes anything.

Same value -> same bytes, on every machine: sorted keys, two-space indent, UTF-8,
trailing newline. Both halves (compiler and runtime) use these, so a plan's id can be
recomputed by the runtime exactly as the compiler computed it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Serialize ``value`` canonically.

    >>> canonical_json({"b": 1, "a": [2]})
    '{\\n  "a": [\\n    2\\n  ],\\n  "b": 1\\n}\\n'
    """
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def sha256_hex(data: str | bytes) -> str:
    """Hex sha256 of text (UTF-8) or bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def hash_value(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


def file_sha256(path: str | bytes | Any, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def compute_plan_id(plan: dict[str, Any]) -> str:
    """The plan's id: sha256 of its canonical content without ``plan_id``."""
    return hash_value({k: v for k, v in plan.items() if k != "plan_id"})
