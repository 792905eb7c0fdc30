"""Sources and seeds: their columns (declared, or read from the file) and their load SQL.

A file's schema is read by the scratch catalog (an in-memory DuckDB, see catalog.py); the
compiler never opens the project's warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlglot

from seeknal.compiler.catalog import BindError, ScratchCatalog
from seeknal.compiler.model import DeclaredColumn, Kind, NodeSpec, SourceFormat
from seeknal.errors import Diagnostic

_READERS = {
    SourceFormat.CSV: ("read_csv", {"header": True, "auto_detect": True}),
    SourceFormat.PARQUET: ("read_parquet", {}),
    SourceFormat.JSON: ("read_json_auto", {}),
}


class SourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def reader_sql(spec: NodeSpec) -> str:
    """The FROM clause item that reads the node's data: a table function or a table."""
    if spec.kind is Kind.SEED:
        fmt = SourceFormat.CSV
    else:
        assert spec.source_format is not None
        fmt = spec.source_format
    if fmt is SourceFormat.TABLE:
        assert spec.table is not None
        return ".".join(quote_identifier(p) for p in spec.table.split("."))
    function, defaults = _READERS[fmt]
    options = {**defaults, **dict(spec.options)}
    assert spec.data_path is not None
    args = [_literal(spec.data_path)] + [f"{k} = {_literal(v)}" for k, v in sorted(options.items())]
    return f"{function}({', '.join(args)})"


def source_columns(spec: NodeSpec, root: Path, catalog: ScratchCatalog) -> list[DeclaredColumn]:
    """Declared columns (types in the engine's spelling) or, when none, the file's schema."""
    if spec.columns:
        out = []
        for col in spec.columns:
            if col.type is None:
                raise SourceError(
                    Diagnostic(
                        f"column '{col.name}' of {spec.kind} '{spec.name}' has no type",
                        spec.at("columns", col.name),
                        hint="declare it as `name: type`, e.g. amount: decimal(12,2)",
                    )
                )
            try:
                type_ = catalog.canonical_type(col.type)
            except BindError:
                raise SourceError(
                    Diagnostic(
                        f"unknown type '{col.type}' for column '{col.name}'",
                        spec.at("columns", col.name),
                        hint="use a SQL type such as integer, bigint, double, decimal(12,2), "
                        "varchar, date, timestamp",
                    )
                ) from None
            out.append(DeclaredColumn(col.name, type_, col.description))
    else:
        assert spec.data_path is not None
        absolute = _literal(str(root / spec.data_path))
        reader = reader_sql(spec).replace(_literal(spec.data_path), absolute, 1)
        try:
            described = catalog.describe(f"SELECT * FROM {reader}")
        except BindError as exc:
            key = "path" if spec.kind is Kind.SEED else "table"
            raise SourceError(
                Diagnostic(
                    f"cannot read the schema of '{spec.data_path}': {exc.message}",
                    spec.at(key),
                    hint="check the file's format, or declare `columns:` with types",
                )
            ) from None
        out = [DeclaredColumn(name, type_) for name, type_ in described]
    return out


def load_sql(spec: NodeSpec, columns: Iterable[DeclaredColumn], dialect: str) -> str:
    """SELECT that loads the node with exactly the planned columns and types."""
    items = ",\n  ".join(
        f"CAST({quote_identifier(c.name)} AS {c.type}) AS {quote_identifier(c.name)}"
        for c in columns
    )
    text = f"SELECT\n  {items}\nFROM {reader_sql(spec)}"
    # Round-trip through sqlglot so the text is canonical in the target dialect.
    return sqlglot.transpile(text, read="duckdb", write=dialect, pretty=True)[0]
