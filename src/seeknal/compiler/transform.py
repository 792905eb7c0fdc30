"""Compile one SQL node (a transform or a rule) whose inputs are already compiled.

Two analyzers look at every query. sqlglot qualifies it against the inputs' schemas,
which gives column lineage and the normalized text; the scratch catalog binds the engine
SQL in DuckDB, which gives exact types and the engine's own errors. When sqlglot cannot
analyze a construct that DuckDB accepts (a PIVOT, say), the node still compiles: its
normalized text is the unqualified query, and each column's lineage is every column of
every input — an over-approximation, so impact analysis stays on the safe side — with a
warning that says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlglot import exp
from sqlglot.schema import MappingSchema

from seeknal.compiler.analysis import (
    SLOT_PREFIX,
    SqlAnalysis,
    fill_slots,
    input_schema,
    split_slots,
)
from seeknal.compiler.catalog import BindError, ScratchCatalog
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.incremental import sample_values, time_parameters, time_type
from seeknal.compiler.lineage import output_columns
from seeknal.compiler.model import ColumnInfo, CompiledNode, NodeSpec
from seeknal.compiler.sql import (
    ParsedSql,
    SqlError,
    engine_sql,
    normalized_sql,
    qualify_sql,
    unqualified_sql,
)
from seeknal.errors import Diagnostic
from seeknal.naming import IDENTIFIER_HINT, unsafe_column_name


def analyze_sql_node(
    spec: NodeSpec,
    parsed: ParsedSql,
    upstream: Mapping[str, CompiledNode],
    dialect: str,
    catalog: ScratchCatalog,
) -> SqlAnalysis:
    """The analysis of a transform or rule whose inputs are compiled and declared in
    ``catalog`` under their snapshot names (``analysis.sql_node`` builds the node).

    Raises:
        SqlError: the query is wrong (unknown column, engine error, duplicate names).
    """
    assert spec.sql is not None
    parameters = time_parameters(spec, parsed)
    # Only the inputs' schemas: a schema of the whole project per node would make
    # compiling quadratic in the number of nodes.
    visible: dict[str, object] = dict(input_schema(upstream))
    analysis_error: SqlError | None = None
    columns: list[ColumnInfo] | None = None
    qualified: exp.Query | None = None
    try:
        qualified = qualify_sql(parsed, MappingSchema(visible, dialect=dialect), dialect, spec.sql)
    except SqlError as exc:
        analysis_error = exc
        normalized = unqualified_sql(parsed, dialect)
    else:
        if _has_dynamic_columns(qualified):
            # COLUMNS(...) and #n pick columns the engine resolves, not sqlglot.
            analysis_error = SqlError(
                [Diagnostic("COLUMNS(...) or #n selects columns by pattern or position")]
            )
        else:
            columns = output_columns(qualified)
            check_columns(spec, columns)
        normalized = normalized_sql(qualified, dialect)
    # Column reads before engine_sql, which rewrites the parsed tree in place.
    reads, row_reads = _column_reads(None if analysis_error else qualified, upstream)

    template = _engine_template(parsed, dialect)
    sql = fill_slots(template, parsed.refs, {ref: node.snapshot for ref, node in upstream.items()})
    try:
        bound = describe(spec, sql, catalog, sample_values(parameters))
    except SqlError:
        if analysis_error is not None:
            raise analysis_error from None  # both refuse it: the analyzer says it better
        raise
    if columns is not None and len(columns) != len(bound):
        # The two analyzers disagree on the shape: trust the engine, approximate lineage.
        analysis_error = SqlError(
            [Diagnostic(f"it sees {len(columns)} columns where DuckDB sees {len(bound)}")]
        )
        columns = None
    approximate = None
    if columns is None:
        assert analysis_error is not None
        every = tuple(sorted((ref, c.name) for ref, node in upstream.items() for c in node.columns))
        columns = [ColumnInfo(name, None, every) for name, _ in bound]
        check_columns(spec, columns)
        approximate = analysis_error.diagnostics[0].message
        reads, row_reads = _column_reads(None, upstream)
    columns = _with_engine_names_and_types(columns, bound, upstream)
    check_column_names(spec, [c.name for c in columns])
    check_declared_types(spec, bound, catalog)
    kind_of_time = time_type(spec, bound) if spec.incremental is not None else None
    return SqlAnalysis(
        normalized=normalized,
        engine=tuple(template),
        columns=tuple((c.name, c.type, c.lineage) for c in columns),
        reads={ref: tuple(sorted(cols)) for ref, cols in reads.items()},
        row_reads={ref: tuple(sorted(cols)) for ref, cols in row_reads.items()},
        approximate=approximate,
        time_type=kind_of_time,
        parameters=parameters,
    )


def _engine_template(parsed: ParsedSql, dialect: str) -> list[str | int]:
    """The engine SQL with a slot for each input's snapshot table (``analysis.fill_slots``).

    The slots are quoted identifiers like the snapshot tables they stand for, so the text
    around them is exactly what naming the tables would give.
    """
    # A random token: no text the user wrote can look like a slot.
    token = secrets.token_hex(8)
    names = {ref: f"{SLOT_PREFIX}{token}_{i}" for i, ref in enumerate(parsed.refs)}
    text = engine_sql(
        parsed, lambda ref: (f"seeknal__{ref.split('.', 1)[0]}", names[ref]), dialect, "duckdb"
    )
    return split_slots(text, token, len(parsed.refs))


# Clauses whose columns decide which rows come out (or how many).
_ROW_CLAUSES = (exp.Where, exp.Join, exp.Group, exp.Having, exp.Qualify, exp.Unnest, exp.Lateral)


def _column_reads(
    qualified: exp.Query | None, upstream: Mapping[str, CompiledNode]
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Per input, the columns the query mentions, and those that decide its rows.

    Both over-approximate (a name is matched wherever it appears), which errs on the safe
    side: a downstream node is rebuilt for a column it might read. Without an analyzable
    query every column of every input counts for both.
    """
    every = {ref: frozenset(c.name.lower() for c in node.columns) for ref, node in upstream.items()}
    if qualified is None:
        return every, every
    mentioned = {c.name.lower() for c in qualified.find_all(exp.Column)}
    deciding: set[str] = set()
    for clause in qualified.find_all(*_ROW_CLAUSES):
        deciding.update(i.name.lower() for i in clause.find_all(exp.Column, exp.Identifier))
    if qualified.find(exp.Limit, exp.Fetch) is not None:
        for order in qualified.find_all(exp.Order):
            deciding.update(c.name.lower() for c in order.find_all(exp.Column))
    if _dedupes(qualified):
        deciding = mentioned
    reads = {ref: cols & mentioned for ref, cols in every.items()}
    return reads, {ref: cols & deciding for ref, cols in every.items()}


def _dedupes(qualified: exp.Query) -> bool:
    """DISTINCT or a set operation that removes duplicates: every column decides rows."""
    if qualified.find(exp.Distinct) is not None:
        return True
    return any(
        isinstance(op, exp.Intersect | exp.Except) or op.args.get("distinct")
        for op in qualified.find_all(exp.SetOperation)
    )


def _has_dynamic_columns(qualified: exp.Query) -> bool:
    """COLUMNS('pattern') or #n: which columns they read is the engine's to decide."""
    return qualified.find(exp.Columns, exp.PositionalColumn) is not None


def _with_engine_names_and_types(
    columns: list[ColumnInfo],
    bound: list[tuple[str, str]],
    upstream: Mapping[str, CompiledNode],
) -> list[ColumnInfo]:
    """Names and types as DuckDB gives them; lineage spelled as the inputs' columns are."""
    # The engine's names keep the case the user wrote ("UpperName"); the analyzer's are
    # normalized. Identifiers are case-insensitive, so the two match one to one.
    spelled = {
        ref: {c.name.lower(): c.name for c in node.columns} for ref, node in upstream.items()
    }
    return [
        ColumnInfo(
            name,
            type_,
            tuple(
                sorted((ref, spelled.get(ref, {}).get(col.lower(), col)) for ref, col in c.lineage)
            ),
        )
        for c, (name, type_) in zip(columns, bound, strict=True)
    ]


def describe(
    spec: NodeSpec, sql: str, catalog: ScratchCatalog, parameters: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """Bind the engine SQL in the scratch catalog: exact types now, engine errors now."""
    assert spec.sql is not None
    try:
        return catalog.describe_query(sql, parameters)
    except BindError as exc:
        where = (
            spec.sql.find(exc.token)
            if exc.token and exc.token in spec.sql.text
            else spec.sql.locate(1, 1)
        )
        raise SqlError(
            [
                Diagnostic(
                    f"the engine rejects this query: {exc.message}",
                    where,
                    hint="check function names and argument types against DuckDB's SQL",
                )
            ]
        ) from None


def check_columns(spec: NodeSpec, columns: list[ColumnInfo]) -> None:
    assert spec.sql is not None
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise SqlError(
                [
                    Diagnostic(
                        f"the query returns two columns named '{column.name}'",
                        spec.sql.find(column.name),
                        hint="give one of them an alias, or use SELECT * EXCLUDE (...)",
                    )
                ]
            )
        seen.add(column.name)
    lowered = {name.lower() for name in seen}
    for declared in spec.columns:
        if declared.name.lower() not in lowered:
            raise SqlError(
                [
                    Diagnostic(
                        f"column '{declared.name}' is declared but the query does not return it",
                        spec.at("columns", declared.name, key=True),
                        hint=did_you_mean(declared.name, seen)
                        or "the query returns: " + ", ".join(c.name for c in columns),
                    )
                ]
            )


def check_column_names(spec: NodeSpec, names: list[str]) -> None:
    """No output column name can break out of its quotes (``AS "x; DROP TABLE y"``)."""
    assert spec.sql is not None
    problems = []
    for name in names:
        reason = unsafe_column_name(name)
        if reason is not None:
            problems.append(
                Diagnostic(
                    f"output column {name!r} is not a safe column name: {reason}",
                    spec.sql.find(name),
                    hint=f"give it an alias of {IDENTIFIER_HINT}, e.g. `AS order_count`",
                )
            )
    if problems:
        raise SqlError(problems)


def check_declared_types(
    spec: NodeSpec, bound: list[tuple[str, str]], catalog: ScratchCatalog
) -> None:
    """A declared column type is a contract: the query must return exactly that type.

    Types are compared in the engine's own spelling (``integer`` is ``INTEGER``,
    ``text`` is ``VARCHAR``), so only a real difference is reported.
    """
    returned = {name.lower(): type_ for name, type_ in bound}
    problems = []
    for declared in spec.columns:
        actual = returned.get(declared.name.lower())
        if declared.type is None or actual is None:
            continue  # no contract, or a missing column (check_columns reports it)
        where = spec.at("columns", declared.name, "type")
        try:
            expected = catalog.canonical_type(declared.type)
        except BindError:
            problems.append(
                Diagnostic(
                    f"unknown type '{declared.type}' for column '{declared.name}'",
                    where,
                    hint="use a SQL type such as integer, bigint, double, decimal(12,2), "
                    "varchar, date, timestamp",
                )
            )
            continue
        if expected != actual:
            problems.append(
                Diagnostic(
                    f"column '{declared.name}' is declared {declared.type} "
                    f"but the query returns {actual}",
                    where,
                    hint="CAST it in the query, or change the declared type",
                )
            )
    if problems:
        raise SqlError(problems)
