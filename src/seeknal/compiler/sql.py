"""Pass 3: parse rendered SQL, resolve refs, qualify, normalize, and make engine SQL.

Three texts come out of one parse:

- ``normalized``: for hashing and comparison only — comments dropped, identifiers
  normalized and quoted, columns qualified and stars expanded (sqlglot ``qualify``). These
  passes preserve meaning; the simplifier/optimizer is never used.
- ``engine``: the user's SQL (not the qualified one) with every ref replaced by the
  upstream snapshot's physical table, generated in the engine dialect.
- output columns and lineage come from the qualified tree (see lineage.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from seeknal.compiler.model import NODE_KINDS, SqlText
from seeknal.compiler.sql_errors import (
    NotOneQuery,
    clean_message,
    find_word,
    optimize_diagnostic,
    parse_one_query,
    query_names,
)
from seeknal.errors import Diagnostic

# Table functions that read no data: every other one (read_csv, glob, query_table,
# parquet_schema, ...) would read something seeknal neither tracks nor fingerprints.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# What sqlglot parses them into, in DuckDB and in other dialects.
_TABLE_FUNCTION_TYPES = (exp.GenerateSeries, exp.ExplodingGenerateSeries, exp.Unnest)

# {db: {table: {column: type}}}, sqlglot's nested schema form.
SchemaMapping = dict[str, Any]


class SqlError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "sql error")
        self.diagnostics = diagnostics


@dataclass(frozen=True, slots=True)
class ParsedSql:
    """A node's rendered SQL parsed once; ``refs`` are the node ids it reads, sorted."""

    tree: exp.Query
    refs: tuple[str, ...]


def parse_sql(
    rendered: str,
    origin: SqlText,
    dialect: str,
    known_nodes: Mapping[str, object],
    *,
    kind: str = "transform",
) -> ParsedSql:
    """Parse one SELECT statement and resolve its refs to node ids.

    Raises:
        SqlError: syntax errors, more than one statement, unknown refs or tables, table
            functions that read untracked data, a PIVOT whose columns depend on the data.
    """
    try:
        tree = parse_one_query(rendered, dialect, origin)
    except NotOneQuery as exc:
        raise SqlError(
            [
                exc.diagnostic
                or Diagnostic(
                    f"a transform is one SELECT query, found {exc.found}",
                    origin.locate(1, 1),
                    hint="seeknal creates the table or view itself; write only the query",
                )
            ]
        ) from None
    refs, diagnostics = _resolve_tables(tree, origin, known_nodes, kind)
    diagnostics.extend(_check_pivots(tree, origin))
    if diagnostics:
        raise SqlError(diagnostics)
    return ParsedSql(tree=tree, refs=tuple(sorted(refs)))


def _resolve_tables(
    tree: exp.Expr, origin: SqlText, known_nodes: Mapping[str, object], node_kind: str
) -> tuple[set[str], list[Diagnostic]]:
    refs: set[str] = set()
    diags: list[Diagnostic] = []
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        fn = table.this
        if isinstance(fn, exp.Anonymous) and fn.name.lower() == "ref":
            # bare ref('source.orders') in the SQL text
            args = fn.expressions
            if len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].is_string:
                diags.append(
                    Diagnostic(
                        "ref() takes one quoted node id",
                        origin.find("ref("),
                        hint="e.g. ref('source.orders')",
                    )
                )
                continue
            node_id = args[0].name
            if node_id.split(".", 1)[0] not in NODE_KINDS or "." not in node_id:
                diags.append(
                    Diagnostic(
                        f"invalid ref '{node_id}'",
                        origin.find(node_id),
                        hint="a ref is 'kind.name', e.g. ref('source.orders')",
                    )
                )
                continue
            kind, name = node_id.split(".", 1)
            alias = table.args.get("alias")
            new = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(kind))
            if alias is not None:
                new.set("alias", alias)
            table.replace(new)
            table = new
        elif not isinstance(fn, exp.Identifier):
            continue  # a table function: checked below
        if table.args.get("catalog") is not None:
            diags.append(_unknown_table(table, origin, known_nodes))
            continue
        if not table.db:
            if table.name.lower() in cte_names:
                continue
            diags.append(_unknown_table(table, origin, known_nodes))
            continue
        matched = _match_node(table, known_nodes)
        if matched is None:
            diags.append(_unknown_table(table, origin, known_nodes))
            continue
        node_id = matched
        # Spell the ref exactly as the node id, so every later pass compares ids.
        kind, name = node_id.split(".", 1)
        table.set("db", exp.to_identifier(kind))
        table.set("this", exp.to_identifier(name))
        refs.add(node_id)
    for fn in _table_functions(tree):
        name = _function_name(fn)
        if name == "ref":
            continue  # a bare ref() that is not a valid one: reported above
        if name not in TABLE_FUNCTIONS and not isinstance(fn, _TABLE_FUNCTION_TYPES):
            diags.append(
                Diagnostic(
                    f"table function {name} is not allowed in a {node_kind}: "
                    "it would read data seeknal does not track",
                    find_word(origin, [name]),
                    hint="declare the file as a source node and ref() it; the table "
                    "functions a query may use are " + ", ".join(sorted(TABLE_FUNCTIONS)),
                )
            )
    return refs, diags


def _table_functions(tree: exp.Expr) -> Iterator[exp.Expr]:
    """Every function a query reads rows from: FROM f(...), JOIN f(...), LATERAL f(...)."""
    for node in tree.find_all(exp.Table, exp.Lateral, exp.From, exp.Join):
        inner = node.this
        if isinstance(node, exp.Table):
            if inner is not None and not isinstance(inner, exp.Identifier):
                yield inner
        elif isinstance(inner, exp.Func):
            yield inner


def _function_name(fn: exp.Expr) -> str:
    if isinstance(fn, exp.Anonymous):
        args = fn.expressions
        if fn.name.lower() == "table" and len(args) == 1 and isinstance(args[0], exp.Func):
            return _function_name(args[0])  # TABLE(read_csv(...))
        return fn.name.lower()
    if isinstance(fn, exp.Func):
        return fn.sql_name().lower()
    return fn.key.lower()


def _check_pivots(tree: exp.Expr, origin: SqlText) -> list[Diagnostic]:
    """A PIVOT needs its values listed: its output columns are the values it finds.

    Compile never reads data (the scratch catalog's tables are empty), so the plan's
    columns for a PIVOT without `IN (...)` would be whatever an empty table yields.
    """
    diags = []
    for pivot in tree.find_all(exp.Pivot):
        if pivot.args.get("unpivot"):
            continue
        # FROM t PIVOT (agg FOR col IN (...)) keeps them in `fields`; PIVOT t ON col ...
        # in `expressions`.
        fields = pivot.args.get("fields")
        on = fields or pivot.expressions
        example = (
            "PIVOT (agg FOR col IN ('a', 'b'))" if fields else "PIVOT ... ON col IN ('a', 'b')"
        )
        for item in on:
            listed = isinstance(item, exp.In) and not any(
                isinstance(v, exp.Query) for v in item.expressions
            )
            if listed and item.expressions:
                continue
            column = item.this if isinstance(item, exp.In) else item
            diags.append(
                Diagnostic(
                    f"PIVOT on {column.sql(dialect='duckdb')} has no list of values: its "
                    "columns would depend on the data, which compile does not read",
                    find_word(origin, ["PIVOT"]),
                    hint=f"list the values: {example}",
                )
            )
    return diags


def _match_node(table: exp.Table, known_nodes: Mapping[str, object]) -> str | None:
    """The node a table reference names; unquoted identifiers match case-insensitively."""
    written = f"{table.db}.{table.name}"
    if written in known_nodes:
        return written
    db_quoted = bool(table.args["db"].args.get("quoted"))
    name_quoted = bool(table.this.args.get("quoted"))
    matches = [
        node_id
        for node_id in known_nodes
        if (
            node_id.split(".", 1)[0] == table.db
            or (not db_quoted and node_id.split(".", 1)[0] == table.db.lower())
        )
        and (
            node_id.split(".", 1)[1] == table.name
            or (not name_quoted and node_id.split(".", 1)[1].lower() == table.name.lower())
        )
    ]
    return matches[0] if len(matches) == 1 else None


def _unknown_table(
    table: exp.Table, origin: SqlText, known_nodes: Mapping[str, object]
) -> Diagnostic:
    import difflib

    parts = [p for p in (table.catalog, table.db, table.name) if p]
    written = ".".join(parts)
    close = difflib.get_close_matches(written, sorted(known_nodes), n=1, cutoff=0.6)
    if table.db.lower() in NODE_KINDS:
        message = f"unknown ref '{written}'"
    else:
        message = f"unknown table '{written}': not a node of this project"
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif table.db.lower() in NODE_KINDS:
        hint = "no node has this id; node ids are `kind.name` from the files under seeknal/"
    else:
        hint = "read other nodes as kind.name (e.g. source.orders); declare outside tables as `kind: source` with `source: table`"
    where = origin.find(written) if written in origin.text else origin.find(table.name)
    return Diagnostic(message, where, hint=hint)


def qualify_sql(
    parsed: ParsedSql, schema: MappingSchema, dialect: str, origin: SqlText
) -> exp.Query:
    """Qualify columns against upstream schemas and expand stars (a copy of the tree).

    Raises:
        SqlError: an unknown column, with did-you-mean against the visible columns.
    """
    try:
        qualified = qualify(
            parsed.tree.copy(),
            schema=schema,
            dialect=dialect,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
        )
    except OptimizeError as exc:
        names = query_names(parsed.tree, parsed.refs, schema)
        raise SqlError([optimize_diagnostic(str(exc), parsed.tree, names, origin)]) from None
    except SqlglotError as exc:
        raise SqlError(
            [
                Diagnostic(
                    f"cannot analyze SQL: {clean_message(str(exc))}",
                    origin.locate(1, 1),
                    hint="check the SQL near this position",
                )
            ]
        ) from None
    assert isinstance(qualified, exp.Query)
    return qualified


def normalized_sql(qualified: exp.Query, dialect: str) -> str:
    """Canonical text for hashing: comment-free, quoted, qualified, pretty.

    Redundant parentheses are dropped only where they cannot change meaning (see
    ``strip_redundant_parens``); the tree is otherwise as the user wrote it. Rewrites
    ``qualified`` in place: it is the caller's private copy, read last here.
    """
    # copy=False: the tree is ours and read last here; the generator need not copy it.
    return strip_redundant_parens(qualified).sql(
        dialect=dialect, pretty=True, comments=False, copy=False
    )


def unqualified_sql(parsed: ParsedSql, dialect: str) -> str:
    """Canonical text of a query the analyzer cannot qualify: identifiers normalized,
    comments and redundant parentheses dropped, columns as written."""
    tree = normalize_identifiers(parsed.tree.copy(), dialect=dialect)
    return strip_redundant_parens(tree).sql(
        dialect=dialect, pretty=True, comments=False, identify=True, copy=False
    )


_ATOMS = (exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Star)
_DELIMITING = (exp.Where, exp.Having, exp.Qualify, exp.Paren, exp.Alias, exp.Tuple)


def strip_redundant_parens(tree: exp.Expr) -> exp.Expr:
    """Remove parentheses around an atom, or that are the whole of a delimited slot.

    The generator does not re-add parentheses by precedence, so only removals whose
    context already delimits the expression are safe: ``(a + b) * c`` keeps its parens.
    """
    for paren in list(tree.find_all(exp.Paren)):
        inner = paren.this
        parent = paren.parent
        if isinstance(inner, exp.Query | exp.Subquery):
            continue
        atom = isinstance(inner, _ATOMS) or (
            isinstance(inner, exp.Func)
            and not isinstance(inner, exp.Binary | exp.Unary | exp.Connector)
        )
        delimited = (
            isinstance(parent, _DELIMITING)
            or (isinstance(parent, exp.Select) and paren.arg_key == "expressions")
            or (isinstance(parent, exp.Join) and paren.arg_key == "on")
            or (
                isinstance(parent, exp.Func)
                and not isinstance(parent, exp.Binary | exp.Unary | exp.Connector | exp.Predicate)
            )
        )
        if atom or delimited:
            paren.replace(inner)
    return tree


def engine_sql(
    parsed: ParsedSql,
    physical: Callable[[str], tuple[str, str]],
    dialect: str,
    engine_dialect: str,
) -> str:
    """The user's SQL with refs pointing at upstream snapshots, in the engine's dialect.

    ``physical(node_id)`` returns the snapshot's (schema, table). A ref without an alias
    keeps its old name as alias, so ``orders.amount`` still resolves; two refs of one
    FROM that share a name (``source.t JOIN seed.t``) are aliased ``source__t`` and
    ``seed__t``, and their columns written ``source.t.b`` follow.
    """
    tree = parsed.tree  # the last pass to read it: rewritten in place, no copy
    aliases = _ref_aliases(tree, parsed.refs)
    # Columns written with a node qualifier (source.orders.amount) drop the kind part.
    for column in list(tree.find_all(exp.Column)):
        if column.args.get("db") is not None and column.args["db"].name.lower() in NODE_KINDS:
            alias = _alias_in_scope(column, aliases)
            column.set("db", None)
            if alias is not None:
                column.set("table", exp.to_identifier(alias))
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or not table.db:
            continue
        node_id = f"{table.db}.{table.name}"
        if node_id not in parsed.refs:
            continue
        schema_name, table_name = physical(node_id)
        table_alias = table.args.get("alias") or exp.TableAlias(
            this=exp.to_identifier(aliases.get(id(table), table.name))
        )
        table.replace(
            exp.Table(
                this=exp.to_identifier(table_name, quoted=True),
                db=exp.to_identifier(schema_name, quoted=True),
                alias=table_alias,
            )
        )
    return tree.sql(dialect=engine_dialect, pretty=True, comments=False, copy=False)


def _scope_tables(select: exp.Expr) -> list[exp.Table]:
    """The tables a SELECT reads directly: its FROM and JOIN items."""
    clauses = [select.args.get("from_"), *(select.args.get("joins") or [])]
    return [c.this for c in clauses if c is not None and isinstance(c.this, exp.Table)]


def _ref_aliases(tree: exp.Expr, refs: tuple[str, ...]) -> dict[int, str]:
    """The alias each unaliased ref gets in the engine SQL, by ``id()`` of its Table."""
    out: dict[int, str] = {}
    for select in tree.find_all(exp.Select):
        bare = [
            t
            for t in _scope_tables(select)
            if f"{t.db}.{t.name}" in refs and t.args.get("alias") is None
        ]
        counts = Counter(t.name.lower() for t in bare)
        for t in bare:
            out[id(t)] = f"{t.db}__{t.name}" if counts[t.name.lower()] > 1 else t.name
    return out


def _alias_in_scope(column: exp.Column, aliases: Mapping[int, str]) -> str | None:
    """The engine alias of the unaliased ref a ``kind.name.col`` column names, if any."""
    wanted = f"{column.args['db'].name}.{column.table}".lower()
    scope = column.parent
    while scope is not None:
        if isinstance(scope, exp.Select):
            for table in _scope_tables(scope):
                if id(table) in aliases and f"{table.db}.{table.name}".lower() == wanted:
                    return aliases[id(table)]
        scope = scope.parent
    return None
