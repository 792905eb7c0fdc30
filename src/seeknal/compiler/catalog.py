"""The scratch catalog: an empty, in-memory DuckDB that mirrors the project's schemas.

Every node becomes an empty table here, under its snapshot's physical name, in dependency
order: sources and seeds with their declared or inferred columns, transforms with the columns the
engine binds their SQL to (bound, never executed). So the
engine itself binds each query before anything runs, and the compiler learns

- the exact type of every output column, as the warehouse will have it;
- the engine's own errors (an unknown function, a type mismatch) at compile time, with the
  file and line of the node, instead of half-way through a run.

It never sees a row of data and never opens the warehouse: compiling stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from seeknal.compiler.model import NODE_KINDS


class BindError(Exception):
    """The engine refused a query; ``message`` is its first line, ``token`` what it named."""

    def __init__(self, message: str, token: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.token = token


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(snapshot: str) -> str:
    schema, name = snapshot.split(".", 1)
    return f"{_quote(schema)}.{_quote(name)}"


# Names DuckDB quotes in its messages: "col", 'func(...)', function name foo, etc.
_TOKEN = re.compile(r'"([^"]+)"|\'([A-Za-z_][\w.]*)\(|name (\w+) does not exist|column (\w+)')


def _bind_error(exc: duckdb.Error) -> BindError:
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    match = _TOKEN.search(first)
    token = next((g for g in match.groups() if g), None) if match else None
    return BindError(first, token)


class ScratchCatalog:
    """One per compile. Not thread-safe; the compiler walks nodes in order on one thread."""

    def __init__(self) -> None:
        self._con = duckdb.connect(":memory:")
        for kind in sorted(NODE_KINDS):
            self._con.execute(f"CREATE SCHEMA {_quote('seeknal__' + kind)}")

    def close(self) -> None:
        self._con.close()

    def describe(self, query: str) -> list[tuple[str, str]]:
        """Column names and engine types of ``query`` (reads at most a file's header)."""
        try:
            rows = self._con.execute(f"DESCRIBE {query}").fetchall()
        except duckdb.Error as exc:
            raise _bind_error(exc) from None
        return [(str(row[0]), str(row[1])) for row in rows]

    def canonical_type(self, type_sql: str) -> str:
        """The engine's spelling of a SQL type (``integer`` -> ``INTEGER``)."""
        if ";" in type_sql or "--" in type_sql:
            raise BindError(f"invalid type '{type_sql}'", None)
        return self.describe(f"SELECT CAST(NULL AS {type_sql}) AS t")[0][1]

    def declare(self, snapshot: str, columns: Sequence[tuple[str, str]]) -> None:
        """An empty table for a source or seed, with these (name, engine type) columns."""
        body = ", ".join(f"{_quote(name)} {type_}" for name, type_ in columns)
        try:
            self._con.execute(f"CREATE TABLE {_relation(snapshot)} ({body})")
        except duckdb.Error as exc:
            raise _bind_error(exc) from None

    def describe_query(
        self, query: str, parameters: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """Bind a node's engine SQL (never executed): its columns and engine types.

        Tables here carry the snapshots' physical names, so ``query`` is exactly the SQL
        the runtime will run. The caller then ``declare``s the node's own table.
        ``parameters`` gives sample values for an incremental node's ``$start_ts``, ...
        """
        try:
            relation = self._con.sql(query, params=dict(parameters) if parameters else None)
            return [
                (str(name), str(type_))
                for name, type_ in zip(relation.columns, relation.types, strict=True)
            ]
        except duckdb.Error as exc:
            raise _bind_error(exc) from None
