"""The engine protocol: what the runtime asks of a warehouse, and how names become SQL.

An engine only ever sees two kinds of relation names, both ``schema.name``:

- a snapshot, ``seeknal__transform.orders__0123456789ab``: the physical table or view
  one node version is built into;
- an environment view, ``transform.orders`` (prod) or ``transform__dev.orders``: what
  users query; it selects from a snapshot.

Every identifier an engine puts into SQL goes through :func:`quote_identifier`, so a
name is never pasted raw into a statement.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from seeknal.errors import EngineError

__all__ = ["EngineError"]  # engines raise the shared error; re-exported for callers


class Materialization(enum.StrEnum):
    """How a snapshot is stored in the warehouse."""

    TABLE = "table"
    VIEW = "view"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine can do; the runtime picks its strategy from these, never from a name.

    Attributes:
        transactional_ddl: CREATE/DROP can be rolled back, so a build or a promotion is
            all-or-nothing.
        create_or_replace_table: ``CREATE OR REPLACE TABLE ... AS`` exists (otherwise a
            build must drop then create inside its transaction).
        create_or_replace_view: ``CREATE OR REPLACE VIEW`` exists.
        concurrent_builds: several worker threads may build snapshots at the same time.
    """

    transactional_ddl: bool
    create_or_replace_table: bool
    create_or_replace_view: bool
    concurrent_builds: bool


def quote_identifier(name: str) -> str:
    """Quote one identifier for SQL: double quotes, embedded quotes doubled.

    Example:
        >>> quote_identifier('or"ders')
        '"or""ders"'
    """
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a string literal for SQL: single quotes, embedded quotes doubled.

    Example:
        >>> quote_literal("it's")
        "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Relation:
    """A schema-qualified relation name, e.g. ``seeknal__source.orders__0123456789ab``."""

    schema: str
    name: str

    @classmethod
    def parse(cls, qualified: str) -> Relation:
        """Split ``schema.name`` at the first dot (names may not contain one, schemas never do).

        Example:
            >>> Relation.parse("transform__dev.orders")
            Relation(schema='transform__dev', name='orders')
        """
        schema, dot, name = qualified.partition(".")
        if not dot or not schema or not name:
            raise EngineError(
                f"relation name {qualified!r} is not schema-qualified",
                hint="relation names look like 'schema.name'",
            )
        return cls(schema, name)

    @property
    def sql(self) -> str:
        """The quoted ``"schema"."name"`` to put in a statement."""
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one incremental batch did to its table.

    Attributes:
        inserted: Rows written for the batch's interval.
        deleted: Rows of that interval removed first (an earlier run's, or a crashed one's).
        dropped: Rows the query returned outside the interval, which the guard kept out.
    """

    inserted: int
    deleted: int
    dropped: int


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the warehouse holds, read in one catalog query; names in lower case
    (identifiers are case-insensitive).

    A run reads it once, not once per node: per-node lookups grow with the catalog and
    would make a run quadratic in the size of the project.

    Attributes:
        relations: Every table and view, as ``schema.name``.
        views: Every view with its SQL, lower case, quotes removed: promotion checks
            what the views really select from, not what state says.
        schemas: Every schema.
    """

    relations: frozenset[str]
    views: Mapping[str, str]
    schemas: frozenset[str]


class Engine(Protocol):
    """One warehouse connection, safe to call from several worker threads.

    Every method that writes runs in one transaction of the engine (when
    ``capabilities.transactional_ddl``), so a crash leaves either the old or the new
    relation, never half of one.
    """

    name: str
    capabilities: Capabilities

    def ensure_schemas(self, names: Iterable[str]) -> None:
        """Create every schema in ``names`` that does not exist yet."""
        ...

    def build_snapshot(self, snapshot: str, sql: str, materialized: Materialization) -> int | None:
        """(Re)build ``snapshot`` from ``sql``; the row count of a table, None for a view."""
        ...

    def add_columns(self, snapshot: str, columns: Sequence[tuple[str, str]]) -> None:
        """Add each ``(name, type)`` the table lacks, in one transaction (forward-only)."""
        ...

    def create_table(self, snapshot: str, columns: Sequence[tuple[str, str]]) -> None:
        """(Re)create ``snapshot`` as an empty table of ``(name, type)`` columns."""
        ...

    def insert_batch(
        self,
        snapshot: str,
        sql: str,
        parameters: Mapping[str, Any],
        time_column: str,
        bounds: tuple[Any, Any],
    ) -> BatchResult:
        """Replace one interval of an incremental table, in one transaction.

        Runs ``sql`` with ``parameters`` bound, deletes the table's rows whose
        ``time_column`` lies in ``[bounds[0], bounds[1])`` and inserts the query's rows
        that lie there; rows outside are dropped and counted. Repeating it gives the
        same table.
        """
        ...

    def promote(self, views: Mapping[str, str], drop: Iterable[str] = ()) -> None:
        """Point each view at its snapshot and drop the ``drop`` views, all at once."""
        ...

    def drop_relations(self, names: Iterable[str]) -> None:
        """Drop the tables and views ``schema.name`` that exist, in one transaction."""
        ...

    def query(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read query; return its column names and (at most ``limit``) rows."""
        ...

    def relation_exists(self, name: str) -> bool:
        """Whether the table or view ``schema.name`` exists."""
        ...

    def catalog(self) -> Catalog:
        """The warehouse's tables, views and schemas, in one catalog query."""
        ...

    def interrupt(self) -> None:
        """Stop the statements running now, from any thread (a run was interrupted).

        Each one fails in its own thread with an :class:`EngineError`, rolled back.
        """
        ...

    def close(self, *, remember: bool = True, leave: bool = False) -> None:
        """Release every connection; the engine cannot be used afterwards.

        Never fails, even while statements still run (an interrupted run shutting down).
        ``remember``: whether what the session knows of the warehouse (its catalog) may
        be kept for the next one; False when the run did not finish. ``leave``: a
        finished session whose process ends next (``seeknal.process``) may make its
        writes durable and leave the connection for the process's end to release.
        """
        ...
