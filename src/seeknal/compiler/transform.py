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

from collections.abc import Mapping
from typing import Any

from sqlglot import exp
from sqlglot.schema import MappingSchema

from seeknal.compiler.catalog import BindError, ScratchCatalog
from seeknal.compiler.fingerprint import (
    data_fingerprint,
    definition_hash,
    files_version,
    metadata_fingerprint,
)
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


def compile_sql_node(
    spec: NodeSpec,
    parsed: ParsedSql,
    schema: Mapping[str, Any],
    compiled: Mapping[str, CompiledNode],
    dialect: str,
    catalog: ScratchCatalog,
    diags: list[Diagnostic],
) -> CompiledNode:
    """Everything the plan says about a transform or rule; warnings go to ``diags``.

    Raises:
        SqlError: the query is wrong (unknown column, engine error, duplicate names).
    """
    assert spec.sql is not None
    parameters = time_parameters(spec, parsed)
    # Only the inputs' schemas: a schema of the whole project per node would make
    # compiling quadratic in the number of nodes.
    visible: dict[str, Any] = {}
    for ref in parsed.refs:
        kind, name = ref.split(".", 1)
        visible.setdefault(kind, {})[name] = schema[kind][name]
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
    upstream = {ref: compiled[ref] for ref in parsed.refs}

    sql = engine_sql(parsed, lambda ref: _physical(upstream[ref].snapshot), dialect, "duckdb")
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
    if columns is None:
        assert analysis_error is not None
        every = tuple(sorted((ref, c.name) for ref, node in upstream.items() for c in node.columns))
        columns = [ColumnInfo(name, None, every) for name, _ in bound]
        check_columns(spec, columns)
        reason = analysis_error.diagnostics[0].message
        diags.append(
            Diagnostic(
                f"column lineage of {spec.id} is approximate: the SQL analyzer cannot follow "
                f"this query ({reason}), although DuckDB accepts it",
                spec.sql.locate(1, 1),
                hint="each column is taken to read every column of its inputs",
                severity="warning",
            )
        )
    columns = _with_engine_names_and_types(columns, bound, upstream)
    check_column_names(spec, [c.name for c in columns])
    check_declared_types(spec, bound, catalog)
    kind_of_time = time_type(spec, bound) if spec.incremental is not None else None
    definition: dict[str, Any] = {
        "kind": spec.kind.value,
        "materialized": spec.materialized.value,
        # The same text can transpile differently from another dialect.
        "dialect": dialect,
        "sql": normalized,
        # Normalized text folds identifier case; the engine keeps an alias's case, and a
        # consumer of the table sees it: renaming `total` to "Total" is a change.
        "columns": [c.name for c in columns],
    }
    if spec.severity is not None:
        # A rule that now fails the run must be checked again, even on unchanged data.
        definition["severity"] = spec.severity.value
    if spec.incremental is not None:
        definition["incremental"] = spec.incremental.definition()
    described = {c.name.lower(): c.description for c in spec.columns if c.description}
    columns = [
        ColumnInfo(c.name, c.type, c.lineage, described.get(c.name.lower())) for c in columns
    ]
    reads, row_reads = _column_reads(None if analysis_error else qualified, upstream)
    return CompiledNode(
        spec=spec,
        depends_on=parsed.refs,
        raw_sql=spec.sql.text,
        normalized_sql=normalized,
        engine_sql=sql,
        columns=tuple(columns),
        definition=definition_hash(definition),
        data_fingerprint=data_fingerprint(definition, {r: n.snapshot for r, n in upstream.items()}),
        metadata_fingerprint=metadata_fingerprint(
            spec.description,
            spec.owner,
            spec.tags,
            {c.name: c.description for c in spec.columns if c.description},
            spec.sql.text,
        ),
        files_version=files_version(None, {r: n.files_version or "" for r, n in upstream.items()}),
        reads=reads,
        row_reads=row_reads,
        input_schema=visible,
        time_type=kind_of_time,
        parameters=parameters,
    )


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


def _physical(snapshot: str) -> tuple[str, str]:
    schema, table = snapshot.split(".", 1)
    return schema, table


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
