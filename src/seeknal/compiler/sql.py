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

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from seeknal.compiler.model import NODE_KINDS, SqlText
from seeknal.errors import Diagnostic

FILE_READERS = re.compile(r"^(read_|.*_scan$|glob$|sniff_csv$)", re.IGNORECASE)

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
) -> ParsedSql:
    """Parse one SELECT statement and resolve its refs to node ids.

    Raises:
        SqlError: syntax errors, more than one statement, unknown refs or tables.
    """
    try:
        statements = [s for s in sqlglot.parse(rendered, dialect=dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = str(first.get("description") or exc).split(". Line")[0]
        line, col = first.get("line"), first.get("col")
        highlight = str(first.get("highlight") or "")
        if col is not None and highlight and "\n" not in highlight:
            col = max(1, col - len(highlight) + 1)  # sqlglot points at the token's end
        if highlight:
            desc = f"{desc} near '{highlight}'"
        raise SqlError(
            [
                Diagnostic(
                    f"SQL syntax error: {desc}",
                    origin.locate(line, col),
                    hint="check the SQL near this position",
                )
            ]
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        what = "no statement" if not statements else f"a {statements[0].key.upper()} statement"
        if len(statements) > 1:
            what = f"{len(statements)} statements"
        raise SqlError(
            [
                Diagnostic(
                    f"a transform is one SELECT query, found {what}",
                    origin.locate(1, 1),
                    hint="seeknal creates the table or view itself; write only the query",
                )
            ]
        )
    tree = statements[0]
    assert isinstance(tree, exp.Query)
    refs, diagnostics = _resolve_tables(tree, origin, known_nodes)
    if diagnostics:
        raise SqlError(diagnostics)
    return ParsedSql(tree=tree, refs=tuple(sorted(refs)))


def _resolve_tables(
    tree: exp.Expr, origin: SqlText, known_nodes: Mapping[str, object]
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
        elif isinstance(fn, exp.Func) or not isinstance(fn, exp.Identifier):
            fname = fn.sql(dialect="duckdb").split("(", 1)[0].strip() if fn is not None else ""
            if FILE_READERS.match(fname):
                diags.append(
                    Diagnostic(
                        f"a transform cannot read files directly ({fname.lower()})",
                        origin.find(fname) if fname in origin.text else origin.find(fname.lower()),
                        hint="declare the file as a source node and ref() it",
                    )
                )
            continue
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
    return refs, diags


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
        raise SqlError([_optimize_diagnostic(str(exc), parsed, schema, origin)]) from None
    except SqlglotError as exc:
        raise SqlError([Diagnostic(f"cannot analyze SQL: {exc}", origin.locate(1, 1))]) from None
    assert isinstance(qualified, exp.Query)
    return qualified


_POSITION = re.compile(r"Line: (\d+), Col: (\d+)")


def _optimize_diagnostic(
    message: str, parsed: ParsedSql, schema: MappingSchema, origin: SqlText
) -> Diagnostic:
    import difflib

    match = re.search(r"Column '([^']+)' could not be resolved", message)
    pos = _POSITION.search(message)
    if match:
        column = match.group(1)
        visible = sorted({c for ref in parsed.refs for c in _columns_of(schema, ref)})
        close = difflib.get_close_matches(column, visible, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif visible:
            hint = "available columns: " + ", ".join(visible[:20])
        else:
            hint = None
        if pos:
            # sqlglot points at the column's last character; we want its first.
            line, col = int(pos.group(1)), int(pos.group(2)) - len(column) + 1
            where = origin.locate(line, max(col, 1))
        else:
            where = origin.find(column)
        inputs = ", ".join(parsed.refs) or "its inputs"
        return Diagnostic(f"unknown column '{column}' (not in {inputs})", where, hint=hint)
    clean = _POSITION.sub("", message).strip().rstrip(".")
    return Diagnostic(f"cannot analyze SQL: {clean}", origin.locate(1, 1))


def _columns_of(schema: MappingSchema, node_id: str) -> list[str]:
    kind, name = node_id.split(".", 1)
    return list(schema.column_names(exp.table_(name, db=kind)))


def normalized_sql(qualified: exp.Query, dialect: str) -> str:
    """Canonical text for hashing: comment-free, quoted, qualified, pretty.

    Redundant parentheses are dropped only where they cannot change meaning (see
    ``_strip_redundant_parens``); the tree is otherwise as the user wrote it. Rewrites
    ``qualified`` in place: it is the caller's private copy, read last here.
    """
    # copy=False: the tree is ours and read last here; the generator need not copy it.
    return _strip_redundant_parens(qualified).sql(
        dialect=dialect, pretty=True, comments=False, copy=False
    )


def unqualified_sql(parsed: ParsedSql, dialect: str) -> str:
    """Canonical text of a query the analyzer cannot qualify: identifiers normalized,
    comments and redundant parentheses dropped, columns as written."""
    tree = normalize_identifiers(parsed.tree.copy(), dialect=dialect)
    return _strip_redundant_parens(tree).sql(
        dialect=dialect, pretty=True, comments=False, identify=True, copy=False
    )


_ATOMS = (exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Star)
_DELIMITING = (exp.Where, exp.Having, exp.Qualify, exp.Paren, exp.Alias, exp.Tuple)


def _strip_redundant_parens(tree: exp.Expr) -> exp.Expr:
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
    keeps its old name as alias, so ``orders.amount`` still resolves.
    """
    tree = parsed.tree  # the last pass to read it: rewritten in place, no copy
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or not table.db:
            continue
        node_id = f"{table.db}.{table.name}"
        if node_id not in parsed.refs:
            continue
        schema_name, table_name = physical(node_id)
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        table.replace(
            exp.Table(
                this=exp.to_identifier(table_name, quoted=True),
                db=exp.to_identifier(schema_name, quoted=True),
                alias=alias,
            )
        )
    # Columns written with a node qualifier (source.orders.amount) drop the kind part.
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None and column.args["db"].name.lower() in NODE_KINDS:
            column.set("db", None)
    return tree.sql(dialect=engine_dialect, pretty=True, comments=False, copy=False)
