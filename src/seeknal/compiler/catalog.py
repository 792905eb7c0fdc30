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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
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


def _list_literal(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def _is_type_text(text: str) -> bool:
    """No ``;``, no comment, and parentheses that never close below where they started."""
    if any(mark in text for mark in (";", "--", "/*", "*/")):
        return False
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


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
    """One per compile. Not thread-safe; the compiler walks nodes in order on one thread.

    Sealed: the only files it can open are ``readable`` (the project's data files, by
    resolved absolute path), it cannot install or load extensions (no network), and its
    configuration is locked, so no SQL a project writes can read anything else.

    Args:
        readable: The data files whose headers compile reads.
    """

    def __init__(self, readable: Iterable[Path] = ()) -> None:
        self._con = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        allowed = sorted({str(p) for p in readable})
        # allowed_paths can only be set once the database runs, and before access is cut.
        self._con.execute(f"SET allowed_paths = {_list_literal(allowed)}")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._fast_bind = hasattr(self._con, "_bind")
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
        """The engine's spelling of a SQL type (``integer`` -> ``INTEGER``).

        A type is pasted into SQL, so it must be only a type: no statement separator,
        no comment, and no parenthesis closed that it did not open
        (``INTEGER) AS t, (SELECT ...``).
        """
        if not _is_type_text(type_sql):
            raise BindError(f"invalid type '{type_sql}'", None)
        described = self.describe(f"SELECT CAST(NULL AS {type_sql}) AS t")
        if len(described) != 1 or described[0][0] != "t":
            raise BindError(f"invalid type '{type_sql}'", None)
        return described[0][1]

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
            names, types = self._bind(query, parameters)
        except duckdb.Error as exc:
            raise _bind_error(exc) from None
        return [(str(name), str(type_)) for name, type_ in zip(names, types, strict=True)]

    def _bind(
        self, query: str, parameters: Mapping[str, Any] | None
    ) -> tuple[list[Any], list[Any]]:
        # DuckDB 2's connections bind a statement without building a relation, at half
        # the cost of `sql()` (which parses the text twice and scans it for parameters).
        # It is not a documented API, so its answer is taken only for the plain case (one
        # query, no parameters); anything else, errors included, goes through `sql()`,
        # whose answers and messages are the ones seeknal has always given.
        if self._fast_bind and not parameters:
            try:
                names, types, wanted, returns, deferred, *_ = self._con._bind(query)
                if not wanted and returns == "query_result" and not deferred:
                    return list(names), list(types)
            except duckdb.Error:
                pass
            except Exception:
                self._fast_bind = False
        relation = self._con.sql(query, params=dict(parameters) if parameters else None)
        return list(relation.columns), list(relation.types)
