"""The state protocol and the pieces every backend shares.

State is one document (see ``schemas/state.schema.json``):

- ``snapshots``: every snapshot built, with the ``data_version`` it was built from, the
  ``definition`` that wrote its table last, ``mixed`` once rows of more than one
  definition may be in it (a table kept through a change), and, for an incremental
  node, its completed intervals;
- ``environments``: per environment, the nodes it points at (snapshot, fingerprint,
  columns, normalized SQL) — the compiler compares a new project against this;
- ``history``: plans applied, promotions and rollbacks per environment (timestamps live
  here, never in a hash); the entry before the newest keeps the record it set, for
  rollback (the newest's is the environment's own);
- ``environment_info``: per environment, its base, when it was created and updated, and
  when it expires.

An environment's state hash is the sha256 of its canonical ``environments[env]`` record.
A plan stores the hash it was compiled against (``base_state``); the runtime refuses a
plan whose hash no longer matches. Building snapshots does not change any environment's
hash, so a run that failed half-way can be resumed by executing the same plan again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from seeknal.canonical import hash_value

STATE_FORMAT_VERSION = 4
# The newest history entries among which one keeps the environment record it set: the
# one before the newest, what `rollback` returns to (a second rollback returns to the
# newest, whose record is the environment's own until the next change, and is copied to
# its entry then). Every record kept is a copy of a whole environment, read by every
# compile and run: when the newest ten kept theirs, a 1,000-node project's state grew
# to 28 MB (a quarter of a second to read).
ROLLBACK_DEPTH = 2


@dataclass(frozen=True, slots=True)
class State:
    """A read-only view of the whole state document."""

    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    environment_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Environment hashes already computed: compile and execute both ask (a run holds one
    # State from before its compile), and a large environment takes a while to hash.
    # Not init fields: a State made by ``dataclasses.replace`` starts without them.
    _hashes: dict[str, str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # The bytes the backend read this state from, when it knows them (``source_digest``).
    _source: list[bytes] = field(default_factory=list, init=False, repr=False, compare=False)

    def environment(self, name: str) -> dict[str, Any] | None:
        """The record of environment ``name``, or None when it was never applied."""
        return self.environments.get(name)

    def environment_hash(self, name: str) -> str | None:
        """Hash of environment ``name``'s record; None for a new environment."""
        if name not in self._hashes:
            self._hashes[name] = environment_hash(self.environments.get(name))
        return self._hashes[name]

    def remember_hashes(self, hashes: dict[str, str | None]) -> None:
        """Hashes of this state's environment records, known without hashing them (the
        backend kept them for the very document it read)."""
        self._hashes.update(hashes)

    def remember_source(self, *parts: bytes) -> None:
        """The exact bytes this state was read from (a document, its journal): equal
        bytes mean an equal state, so :meth:`source_digest` can stand for its content."""
        self._source[:] = parts

    def source_digest(self) -> str | None:
        """sha256 of the bytes this state was read from, each part's length first;
        None when the backend did not say (then hash :meth:`to_document`)."""
        if not self._source:
            return None
        digest = hashlib.sha256()
        for part in self._source:
            digest.update(b"%d\n" % len(part))
            digest.update(part)
        return digest.hexdigest()

    def to_document(self) -> dict[str, Any]:
        return {
            "format_version": STATE_FORMAT_VERSION,
            "snapshots": self.snapshots,
            "environments": self.environments,
            "history": self.history,
            "environment_info": self.environment_info,
        }


def empty_state() -> State:
    return State()


def writer_token(record: Mapping[str, Any] | None) -> list[Any] | None:
    """What a snapshot's state record says wrote its table: ``[definition, mixed]``,
    the definition hash of the node that wrote it last (None in a record written
    before writers were recorded) and whether rows of another definition may be in it;
    None when state has no record of the snapshot."""
    if record is None:
        return None
    return [record.get("definition"), bool(record.get("mixed"))]


def written_by_another(token: list[Any] | None, definition: str | None) -> bool:
    """Whether a :func:`writer_token` says a definition other than ``definition`` wrote
    the table last (a record written before writers were recorded is taken at its word:
    its table holds the rows of the definition that named it)."""
    return token is not None and token[0] is not None and token[0] != definition


def environment_hash(record: dict[str, Any] | None) -> str | None:
    """The staleness key: sha256 of an environment's canonical record (None if absent)."""
    return None if record is None else hash_value(record)


# What an environment's record keeps of each node, besides its columns and SQL: one
# definition for building a record and for comparing one in place.
_RECORDED = ("kind", "materialized", "snapshot", "fingerprint", "data_version")
_RECORD_KEYS = frozenset((*_RECORDED, "columns", "sql"))


def environment_record(plan: dict[str, Any]) -> dict[str, Any]:
    """The environment record a plan leaves behind once applied (only what is hashed)."""
    nodes: dict[str, Any] = {}
    for node_id, node in plan["nodes"].items():
        if node["change"]["category"] == "removed":
            continue
        nodes[node_id] = {
            **{key: node[key] for key in _RECORDED},
            "columns": [{"name": c["name"], "type": c["type"]} for c in node["columns"]],
            "sql": node["sql"]["normalized"],
        }
    return {"nodes": nodes}


def holds_environment(plan: dict[str, Any], record: dict[str, Any] | None) -> bool:
    """Whether ``record`` is the environment record ``plan`` leaves behind: exactly
    ``environment_record(plan) == record``, compared in place, without building the
    record (a run checks it on every promotion, for every node of the project).

    Example:
        >>> holds_environment({"nodes": {}}, {"nodes": {}}), holds_environment({"nodes": {}}, None)
        (True, False)
    """
    if not isinstance(record, dict) or record.keys() != {"nodes"}:
        return False
    held = record["nodes"]
    if not isinstance(held, dict):
        return False
    count = 0
    for node_id, node in plan["nodes"].items():
        if node["change"]["category"] == "removed":
            continue
        count += 1
        kept = held.get(node_id)
        if not isinstance(kept, dict) or kept.keys() != _RECORD_KEYS:
            return False
        if any(kept[key] != node[key] for key in _RECORDED):
            return False
        if kept["sql"] != node["sql"]["normalized"]:
            return False
        columns = kept["columns"]
        if not isinstance(columns, list) or len(columns) != len(node["columns"]):
            return False
        for have, want in zip(columns, node["columns"], strict=True):
            if have != {"name": want["name"], "type": want["type"]}:
                return False
    return count == len(held)


class StateBackend(Protocol):
    """Where state lives. The compiler only calls ``read``; the runtime also writes."""

    def read(self) -> State:
        """The current state (an empty one when nothing was ever recorded)."""
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive lock for one run; raises StateError at once if another run holds it."""
        ...

    def exists(self) -> bool:
        """Whether anything was ever stored (or locked) here: locking creates the store."""
        ...

    def record_snapshot(self, name: str, record: dict[str, Any]) -> None:
        """Record that snapshot ``name`` was built (atomically, durably)."""
        ...

    def set_environment(
        self,
        env: str,
        record: dict[str, Any],
        plan_id: str,
        *,
        action: str = "apply",
        source: str | None = None,
        base: str | None = None,
        ttl_seconds: int | None = None,
    ) -> None:
        """Point environment ``env`` at ``record`` and add the change to its history.

        Args:
            env: The environment.
            record: Its new record (what its views point at).
            plan_id: The plan applied (or an id naming the promotion or rollback).
            action: ``apply``, ``promote`` or ``rollback``.
            source: For a promotion, the environment promoted from.
            base: For a new environment, the environment it was compared with.
            ttl_seconds: Expire this long after this change (None: never).
        """
        ...

    def delete_environment(self, env: str) -> None:
        """Forget environment ``env``: its record, history and info."""
        ...

    def forget_snapshots(self, names: Iterable[str]) -> None:
        """Drop the records of snapshots that no longer exist."""
        ...

    def compact(self) -> bool:
        """Fold what was recorded since the state was last written into it, when that
        has grown long (reading it costs every later run); True when it did. Called by
        a run holding the lock, at its end."""
        ...


def iter_snapshot_names(state: State) -> Iterator[str]:
    yield from sorted(state.snapshots)
