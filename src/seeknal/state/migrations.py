"""Upgrades of old state documents to the current ``format_version``.

Each entry of :data:`DOCUMENT_MIGRATIONS` takes a document of format ``N`` and returns
one of format ``N + 1``; :func:`migrate_document` chains them. A stored format is never
dropped: a golden file per old version stays in the tests and keeps loading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seeknal.errors import StateError
from seeknal.state.base import STATE_FORMAT_VERSION

Document = dict[str, Any]


def _v1_to_v2(doc: Document) -> Document:
    """v2 adds ``environment_info`` (base, created, expires) and rollback records in history.

    A v1 environment's creation time is unknown: its first history entry stands in, and
    it expires like any environment of its kind from now on (prod never).
    """
    info = {}
    for env in doc.get("environments", {}):
        entries = doc.get("history", {}).get(env, [])
        first = entries[0]["applied_at"] if entries else "1970-01-01T00:00:00Z"
        last = entries[-1]["applied_at"] if entries else first
        info[env] = {"base": None, "created_at": first, "updated_at": last, "expires_at": None}
    return {**doc, "format_version": 2, "environment_info": info}


def _v2_to_v3(doc: Document) -> Document:
    """v3 adds incremental snapshots (``materialized: incremental_by_time`` with their
    completed ``intervals``); a v2 document has none, so only its version changes."""
    return {**doc, "format_version": 3}


def _v3_to_v4(doc: Document) -> Document:
    """v4 adds what wrote each snapshot's table (``definition``, ``mixed``); a v3 record
    has neither and is taken at its word (its table holds the rows of the definition
    that named it), so only the version changes."""
    return {**doc, "format_version": 4}


# format_version N -> function upgrading a version-N document to version N + 1.
DOCUMENT_MIGRATIONS: dict[int, Callable[[Document], Document]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}


def migrate_document(
    doc: Document,
    *,
    where: str,
    migrations: dict[int, Callable[[Document], Document]] | None = None,
) -> Document:
    """Upgrade a state document to :data:`STATE_FORMAT_VERSION`.

    Args:
        doc: A parsed state document, not validated yet.
        where: Names the document in errors (e.g. its file path).
        migrations: The chain to use; the built-in one when omitted (tests pass their own).

    Returns:
        The document, upgraded step by step; unchanged when it is current. A document
        without an integer ``format_version`` is returned as is: validation reports it.

    Raises:
        StateError: The document is newer than this seeknal, or no migration exists.

    Example:
        >>> migrate_document({"format_version": 1}, where="state.json")
        {'format_version': 4, 'environment_info': {}}
    """
    chain = DOCUMENT_MIGRATIONS if migrations is None else migrations
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return doc
    if version > STATE_FORMAT_VERSION:
        raise StateError(
            f"{where} has format_version {version}; this seeknal reads up to "
            f"{STATE_FORMAT_VERSION}",
            hint="upgrade seeknal (a newer version wrote this state)",
        )
    while version < STATE_FORMAT_VERSION:
        step = chain.get(version)
        if step is None:
            raise StateError(
                f"{where} has format_version {version}, and this seeknal has no migration from it",
                hint="migrate the state with the seeknal release that last read it",
            )
        doc = step(doc)
        upgraded = doc.get("format_version")
        if upgraded != version + 1:
            raise StateError(
                f"the state migration from format_version {version} produced "
                f"format_version {upgraded!r}, not {version + 1}"
            )
        version = upgraded
    return doc
