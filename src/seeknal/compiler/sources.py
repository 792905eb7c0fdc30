"""Sources and seeds: their columns (declared, or read from the file) and their load SQL.

A file's schema is read by the scratch catalog (an in-memory DuckDB, see catalog.py); the
compiler never opens the project's warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seeknal.compiler.catalog import BindError, ScratchCatalog
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.model import DeclaredColumn, Kind, NodeSpec, SourceFormat
from seeknal.errors import Diagnostic
from seeknal.naming import IDENTIFIER_HINT, unsafe_column_name

_READERS = {
    SourceFormat.CSV: ("read_csv", {"header": True, "auto_detect": True}),
    SourceFormat.PARQUET: ("read_parquet", {}),
    SourceFormat.JSON: ("read_json_auto", {}),
}


class SourceError(Exception):
    """One or more problems with a source or seed; ``diagnostic`` is the first."""

    def __init__(self, diagnostic: Diagnostic, *more: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.diagnostics = [diagnostic, *more]


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
    """Declared columns (types in the engine's spelling) or, when none, the file's schema.

    A data file's header is read either way: a declared column the file does not have
    is an error now, not half-way through a run.

    Raises:
        SourceError: an empty or unreadable file, a declared column it lacks, a bad type.
    """
    in_file = None if spec.data_path is None else _file_columns(spec, root, catalog)
    if not spec.columns:
        assert in_file is not None  # load.py rejects a `source: table` without columns
        return in_file
    declared = [_declared_column(spec, col, catalog) for col in spec.columns]
    if in_file is not None:
        _check_declared_in_file(spec, declared, [c.name for c in in_file])
    return declared


def _declared_column(
    spec: NodeSpec, col: DeclaredColumn, catalog: ScratchCatalog
) -> DeclaredColumn:
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
    return DeclaredColumn(col.name, type_, col.description)


def _file_columns(spec: NodeSpec, root: Path, catalog: ScratchCatalog) -> list[DeclaredColumn]:
    """The columns DuckDB reads from the data file's header (never its rows)."""
    assert spec.data_path is not None
    key = "path" if spec.kind is Kind.SEED else "table"
    path = root / spec.data_path
    if path.stat().st_size == 0:
        raise SourceError(
            Diagnostic(
                f"file is empty: '{spec.data_path}'",
                spec.at(key),
                hint="a data file needs at least its header line; add the data, or remove the node",
            )
        )
    absolute = _literal(str(path.resolve()))  # the scratch catalog may open only this
    reader = reader_sql(spec).replace(_literal(spec.data_path), absolute, 1)
    try:
        described = catalog.describe(f"SELECT * FROM {reader}")
    except BindError as exc:
        raise SourceError(
            Diagnostic(
                f"cannot read the schema of '{spec.data_path}': {exc.message}",
                spec.at(key),
                hint="check the file's format and `options:`",
            )
        ) from None
    if not spec.columns:  # only the columns that are loaded become the node's
        _check_column_names(spec, key, [name for name, _ in described])
    return [DeclaredColumn(name, type_) for name, type_ in described]


def _check_column_names(spec: NodeSpec, key: str, names: list[str]) -> None:
    problems = []
    for name in names:
        reason = unsafe_column_name(name)
        if reason is not None:
            problems.append(
                Diagnostic(
                    f"column {name!r} of '{spec.data_path}' is not a safe column name: {reason}",
                    spec.at(key),
                    hint=f"rename it in the file's header ({IDENTIFIER_HINT}); or declare "
                    "`columns:` to load only the columns you name",
                )
            )
    if problems:
        raise SourceError(*problems)


def _check_declared_in_file(
    spec: NodeSpec, declared: list[DeclaredColumn], in_file: list[str]
) -> None:
    present = {name.lower() for name in in_file}
    problems = [
        Diagnostic(
            f"column '{col.name}' is declared but '{spec.data_path}' has no such column",
            spec.at("columns", col.name, key=True),
            hint=did_you_mean(col.name, in_file) or "the file's columns: " + ", ".join(in_file),
        )
        for col in declared
        if col.name.lower() not in present
    ]
    if problems:
        raise SourceError(*problems)


def load_sql(spec: NodeSpec, columns: Iterable[DeclaredColumn], dialect: str) -> str:
    """SELECT that loads the node with exactly the planned columns and types."""
    items = ",\n  ".join(
        f"CAST({quote_identifier(c.name)} AS {c.type}) AS {quote_identifier(c.name)}"
        for c in columns
    )
    text = f"SELECT\n  {items}\nFROM {reader_sql(spec)}"
    # Round-trip through sqlglot so the text is canonical in the target dialect. Imported
    # here: a source whose data file changed needs its columns again, and its load SQL
    # only when they changed (``compile._load_source``).
    import sqlglot

    return sqlglot.transpile(text, read="duckdb", write=dialect, pretty=True)[0]
