"""Pass 6: fingerprints and data versions.

- data fingerprint: what defines the rows — kind, materialization, normalized SQL (or the
  source definition), and the data fingerprints of every upstream node. It names the
  snapshot, so any change to it means a new physical table.
- metadata fingerprint: description, owner, tags, column descriptions. Changes nothing
  in the warehouse.
- data version: the data fingerprint plus the content of the data files upstream. A
  changed CSV changes the data version but not the snapshot name, so the dependent tables
  are rebuilt in place (work reason ``source_data_changed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seeknal.canonical import hash_value


def data_fingerprint(definition: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """sha256 of a node's data definition and its upstream data fingerprints."""
    return hash_value({"definition": dict(definition), "upstream": dict(sorted(upstream.items()))})


def metadata_fingerprint(
    description: str | None,
    owner: str | None,
    tags: Sequence[str],
    column_descriptions: Mapping[str, str],
) -> str:
    return hash_value(
        {
            "description": description,
            "owner": owner,
            "tags": sorted(tags),
            "columns": dict(sorted(column_descriptions.items())),
        }
    )


def data_version(
    fingerprint: str, file_sha256: str | None, upstream_versions: Mapping[str, str]
) -> str:
    return hash_value(
        {
            "fingerprint": fingerprint,
            "file": file_sha256,
            "upstream": dict(sorted(upstream_versions.items())),
        }
    )
