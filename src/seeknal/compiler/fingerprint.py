"""Pass 6: fingerprints and data versions.

- definition: what the node itself says about its rows — kind, materialization,
  normalized SQL (or the source definition), output column names. Compared with the
  environment's record to find the node's own edits.
- data fingerprint: the definition plus the snapshot (physical table) of every input.
  Equal fingerprints mean the same SQL over the same tables. A new snapshot is named
  from it.
- metadata fingerprint: description, owner, tags, column descriptions and the SQL text as
  written (formatting, comments). Changes nothing in the warehouse.
- files version: the content of every data file upstream (transitively).
- data version: what a built snapshot must match to be current. For a table or a rule,
  its snapshot name and files version: a changed CSV keeps every snapshot name but
  changes the data version of everything downstream, which is rebuilt in place (work
  reason ``source_data_changed``). For a view, its snapshot name only: a view reads live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seeknal.canonical import hash_value, sha256_hex


def definition_hash(definition: Mapping[str, Any]) -> str:
    """sha256 of a node's own data definition (no upstream)."""
    return hash_value(dict(definition))


def data_fingerprint(definition: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """sha256 of a node's data definition and the snapshots of its inputs."""
    return hash_value({"definition": dict(definition), "upstream": dict(sorted(upstream.items()))})


def metadata_fingerprint(
    description: str | None,
    owner: str | None,
    tags: Sequence[str],
    column_descriptions: Mapping[str, str],
    sql_text: str | None = None,
) -> str:
    return hash_value(
        {
            "description": description,
            "owner": owner,
            "tags": sorted(tags),
            "columns": dict(sorted(column_descriptions.items())),
            # The SQL as written: a reformatting is a metadata change, never a data one.
            "sql": None if sql_text is None else sha256_hex(sql_text.encode("utf-8")),
        }
    )


def files_version(file_sha256: str | None, upstream: Mapping[str, str]) -> str:
    """sha256 of a node's own data file and its inputs' files versions."""
    return hash_value({"file": file_sha256, "upstream": dict(sorted(upstream.items()))})


def data_version(snapshot: str, files: str | None) -> str:
    """What a built snapshot must match to be current (``files`` None: a view)."""
    return hash_value({"snapshot": snapshot, "files": files})
