"""sqlglot's errors as diagnostics: the user's words and positions, not sqlglot's internals.

sqlglot's messages name its own objects (``<Token token_type: TokenType.WHERE, ...>``,
``<class 'sqlglot.expressions.query.Where'>``) and point at the last character of a
token. The functions here rewrite them into what the user wrote and where it starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.schema import MappingSchema

from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.model import NODE_KINDS, SqlText
from seeknal.errors import Diagnostic, SourceLocation

_TOKEN = re.compile(
    r"<Token token_type: [\w.]+, text: (?P<text>.*?), line: (?P<line>\d+), col: (?P<col>\d+), "
    r"start: \d+, end: \d+, comments: \[.*?\]>"
)
_CLASS = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")
_POSITION = re.compile(r"\.? ?\(?Line: (\d+), Col: (\d+)\)?\.?")
_SYNTAX_HINT = "check the SQL near this position"


def clean_message(message: str) -> str:
    """sqlglot's message without object reprs, positions or a trailing excerpt."""
    text = message.splitlines()[0] if message else ""
    text = _TOKEN.sub(lambda m: _token_words(m.group("text")), text)
    text = _CLASS.sub(lambda m: m.group(1).upper(), text)
    text = _POSITION.sub("", text).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def _token_words(text: str) -> str:
    return "the end of the query" if text == "SENTINEL" else f"'{text}'"


def syntax_diagnostic(
    exc: ParseError | TokenError, rendered: str, origin: SqlText, dialect: str | None = None
) -> Diagnostic:
    """A parse or tokenize error at the start of the token it is about."""
    if isinstance(exc, TokenError):
        return _token_diagnostic(exc, rendered, origin)
    first = exc.errors[0] if exc.errors else {}
    description = str(first.get("description") or exc)
    highlight = str(first.get("highlight") or "")
    true = _TruePositions(rendered, dialect)
    line, col = first.get("line"), first.get("col")
    if isinstance(line, int) and isinstance(col, int):
        line, col = true.of(line, col)
    if col is not None and highlight and "\n" not in highlight:
        col = max(1, col - len(highlight) + 1)  # sqlglot points at the token's end
    token = _TOKEN.search(description)
    if token and token.group("text") != "SENTINEL":
        # The message names the offending token: point at it, not at sqlglot's cursor.
        line, col = true.of(int(token.group("line")), int(token.group("col")))
        col = max(1, col - len(token.group("text")) + 1)
    message = _syntax_message(description, highlight)
    return Diagnostic(f"SQL syntax error: {message}", origin.locate(line, col), hint=_SYNTAX_HINT)


def _syntax_message(description: str, highlight: str) -> str:
    near = f"'{highlight}'" if highlight and "\n" not in highlight else None
    text = clean_message(description)
    table = re.match(r"expected table name but got (.*)", text)
    if table:
        return f"expected a table name, found {table.group(1)}"
    if text == "invalid expression / Unexpected token":
        return f"unexpected {near}" if near else "unexpected token"
    if text.startswith("required keyword:"):
        return f"something is missing after {near}" if near else "incomplete expression"
    expecting = re.match(r"expecting (\S+)$", text)
    if expecting:
        found = f", found {near}" if near else ""
        return f"expected '{expecting.group(1)}'{found}"
    after = re.match(r"expected (\w+) after (.+)$", text)
    if after:
        text = f"expected a {after.group(1).lower()} after {after.group(2)}"
    if near and near.strip("'").lower() not in text.lower():
        joiner = ", found" if text.startswith("expected") else " near"
        return f"{text}{joiner} {near}"
    return text


def _token_diagnostic(exc: TokenError, rendered: str, origin: SqlText) -> Diagnostic:
    messages = [str(exc)]
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        messages.insert(0, str(cause))
    for text in messages:
        missing = re.match(r"Missing (\S+) from (\d+):(\d+)", text)
        if missing:
            # sqlglot reports the line and the character offset of the opening quote.
            line, col = _line_col(rendered, int(missing.group(3)))
            return Diagnostic(
                f"SQL syntax error: {missing.group(1)} opened here is never closed",
                origin.locate(line, col),
                hint=f"close it with {missing.group(1)}; inside a string, write '' for a quote",
            )
        number = re.match(r"Numeric string contains invalid characters from (\d+):(\d+)", text)
        if number:
            line, col = _line_col(rendered, int(number.group(2)))
            return Diagnostic(
                "SQL syntax error: invalid number", origin.locate(line, col), hint=_SYNTAX_HINT
            )
    start = getattr(exc, "start", None)
    where = origin.locate(*_line_col(rendered, start)) if isinstance(start, int) else None
    return Diagnostic(
        "SQL syntax error: the SQL text cannot be read",
        where or origin.locate(1, 1),
        hint=_SYNTAX_HINT,
    )


class _TruePositions:
    """Where the token sqlglot places at (line, col) really is.

    sqlglot's tokenizer (30.x, DuckDB's and PostgreSQL's dialects) counts every newline
    after a ``$name`` parameter twice, so every line and column it reports below one is
    wrong, while the token's offsets are right: an incremental node's
    ``{{ end_ts }}`` would move its errors below the end of the file. The tokens are
    read again (an error is being reported) and each placed by its offsets.
    """

    def __init__(self, rendered: str, dialect: str | None) -> None:
        self._where: dict[tuple[int, int], tuple[int, int]] = {}
        if "$" not in rendered:
            return
        import sqlglot

        try:
            tokens = sqlglot.tokenize(rendered, read=dialect)
        except Exception:  # already failing: keep sqlglot's own positions
            return
        for token in tokens:
            self._where[(token.line, token.col)] = _line_col(rendered, token.end)

    def of(self, line: int, col: int) -> tuple[int, int]:
        return self._where.get((line, col), (line, col))


def true_positions(tree: exp.Expr, rendered: str) -> None:
    """Give every node of ``tree`` the line and column of its offsets in ``rendered``
    (see :class:`_TruePositions`; only SQL with a ``$name`` is affected)."""
    if "$" not in rendered:
        return
    for node in tree.walk():
        meta = node._meta
        if meta and isinstance(meta.get("end"), int) and "line" in meta:
            meta["line"], meta["col"] = _line_col(rendered, meta["end"])


def _line_col(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@dataclass(frozen=True, slots=True)
class QueryNames:
    """What a query reads: its refs, and which ref each table alias stands for."""

    refs: tuple[str, ...]
    aliases: dict[str, str | None]  # alias (lower case) -> node id, None for a CTE/subquery
    schema: MappingSchema

    def columns_of(self, node_id: str) -> list[str]:
        kind, name = node_id.split(".", 1)
        return list(self.schema.column_names(exp.table_(name, db=kind)))

    def visible(self) -> list[str]:
        return sorted({c for ref in self.refs for c in self.columns_of(ref)})

    def owners(self, column: str) -> list[str]:
        """The refs that have ``column`` (case-insensitively)."""
        return [r for r in self.refs if column.lower() in {c.lower() for c in self.columns_of(r)}]


def query_names(tree: exp.Expr, refs: tuple[str, ...], schema: MappingSchema) -> QueryNames:
    aliases: dict[str, str | None] = {}
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and table.db.lower() in NODE_KINDS:
            aliases[table.alias_or_name.lower()] = f"{table.db}.{table.name}"
    for source in tree.find_all(exp.CTE, exp.Subquery):
        if source.alias:
            aliases.setdefault(source.alias.lower(), None)
    return QueryNames(refs, aliases, schema)


def optimize_diagnostic(
    message: str, tree: exp.Expr, names: QueryNames, origin: SqlText
) -> Diagnostic:
    """A qualify error (unknown or ambiguous column, bad USING, unknown alias) explained."""
    text = message.splitlines()[0] if message else ""
    pos = _POSITION.search(text)
    unresolved = re.match(r"Column '([^']+)' could not be resolved( for table: '([^']+)')?", text)
    if unresolved and unresolved.group(3):
        return _unknown_alias(unresolved.group(3), tree, names, origin)
    if unresolved:
        column = unresolved.group(1)
        node = _column_at(tree, int(pos.group(1)), int(pos.group(2))) if pos else None
        if pos:
            # sqlglot points at the column's last character; we want its first.
            col = int(pos.group(2)) - len(column) + 1
            where = origin.locate(int(pos.group(1)), max(col, 1))
        else:
            where = _column_location(tree, column, None, origin) or origin.find(column)
        return _unresolved_column(column, node, names, where)
    unknown = re.match(r"Unknown column: (.+)$", text)
    if unknown:
        return _unknown_qualified_column(unknown.group(1), tree, names, origin)
    ambiguous = re.match(r"Ambiguous column '([^']+)'", text)
    if ambiguous:
        column = ambiguous.group(1)
        where = _column_location(tree, column, None, origin) or origin.find(column)
        return _ambiguous(column, names.owners(column), where)
    join = re.match(r"Cannot automatically join: (.+)$", text)
    if join:
        return _bad_using(join.group(1), tree, names, origin)
    table = re.match(r"Unknown table: (.+)$", text)
    if table:
        return _unknown_alias(table.group(1), tree, names, origin)
    position = re.match(r"Unknown output column: (\d+)$", text)
    if position:
        return Diagnostic(
            f"there is no output column {position.group(1)}",
            find_word(origin, [position.group(1)]),
            hint="a number in GROUP BY or ORDER BY counts the SELECT's columns from 1",
        )
    where = origin.locate(int(pos.group(1)), None) if pos else origin.locate(1, 1)
    return Diagnostic(f"cannot analyze SQL: {clean_message(text)}", where, hint=_SYNTAX_HINT)


def _column_at(tree: exp.Expr, line: int, col: int) -> exp.Column | None:
    for node in tree.find_all(exp.Column):
        meta = node.this.meta
        if meta.get("line") == line and meta.get("col") == col:
            return node
    return None


def _unresolved_column(
    column: str, node: exp.Column | None, names: QueryNames, where: SourceLocation
) -> Diagnostic:
    """An unqualified column no table of its SELECT resolves: unknown, ambiguous, hidden."""
    select = node.find_ancestor(exp.Select) if node is not None else None
    if select is None:
        return _unknown_column(column, None, names, where)
    direct = [_source_ref(clause, names) for clause in _from_items(select)]
    readable = [ref for ref in direct if ref is not None and ref in names.owners(column)]
    if len(readable) > 1:
        return _ambiguous(column, readable, where)
    holders = names.owners(column)
    if not readable and holders:
        return Diagnostic(
            f"unknown column '{column}': no table of this SELECT has it",
            where,
            hint=f"{holders[0]} has it, but this SELECT reads a subquery or CTE "
            f"that does not select '{column}'",
        )
    return _unknown_column(column, None, names, where)


def _from_items(select: exp.Expr) -> list[exp.Expr]:
    return [c for c in [select.args.get("from_"), *(select.args.get("joins") or [])] if c]


def _unknown_column(
    column: str, owner: str | None, names: QueryNames, where: SourceLocation
) -> Diagnostic:
    choices = names.columns_of(owner) if owner else names.visible()
    hint = did_you_mean(column, choices)
    if hint is None and choices:
        hint = "available columns: " + ", ".join(sorted(choices)[:20])
    inputs = owner or ", ".join(names.refs) or "its inputs"
    return Diagnostic(f"unknown column '{column}' (not in {inputs})", where, hint=hint)


def _ambiguous(column: str, holders: list[str], where: SourceLocation) -> Diagnostic:
    listed = " and ".join(holders) if holders else "several inputs"
    example = holders[0].split(".", 1)[1] if holders else "t"
    return Diagnostic(
        f"ambiguous column '{column}' (in {listed})",
        where,
        hint=f"qualify it with its table or alias, e.g. {example}.{column}",
    )


def _unknown_qualified_column(
    column: str, tree: exp.Expr, names: QueryNames, origin: SqlText
) -> Diagnostic:
    """``s.amountt`` where ``s`` is a known table that has no such column."""
    for node in tree.find_all(exp.Column):
        if node.name.lower() != column.lower() or not node.table:
            continue
        owner = _owner_of(node, names)
        if owner is not None and column.lower() in {c.lower() for c in names.columns_of(owner)}:
            continue  # this one exists: another column with the same name is the culprit
        where = _identifier_location(node.this, origin) or origin.find(column)
        if owner is None:
            return _unknown_column(column, None, names, where)
        return _unknown_column(column, owner, names, where)
    return _unknown_column(column, None, names, origin.find(column))


def _owner_of(column: exp.Column, names: QueryNames) -> str | None:
    if column.args.get("db") is not None and column.db.lower() in NODE_KINDS:
        return f"{column.db}.{column.table}"
    return names.aliases.get(column.table.lower())


def _unknown_alias(alias: str, tree: exp.Expr, names: QueryNames, origin: SqlText) -> Diagnostic:
    where = None
    for node in tree.find_all(exp.Column):
        qualifier = node.args.get("table")
        if qualifier is not None and node.table.lower() == alias.lower():
            where = _identifier_location(qualifier, origin)
            break
    known = sorted(names.aliases)
    hint = did_you_mean(alias, known)
    if hint is None:
        hint = "tables in this query: " + ", ".join(known) if known else None
    return Diagnostic(f"unknown table or alias '{alias}'", where or origin.find(alias), hint=hint)


def _bad_using(column: str, tree: exp.Expr, names: QueryNames, origin: SqlText) -> Diagnostic:
    """``JOIN x USING (col)`` where one side has no ``col``: say which side."""
    for select in tree.find_all(exp.Select):
        seen: list[str | None] = [_source_ref(select.args.get("from_"), names)]
        for join in select.args.get("joins") or []:
            right = _source_ref(join, names)
            using = [u for u in join.args.get("using") or [] if u.name.lower() == column.lower()]
            if using:
                where = _identifier_location(using[0], origin) or origin.find(column)
                return _using_diagnostic(column, right, [s for s in seen if s], names, where)
            seen.append(right)
    return Diagnostic(
        f"cannot join USING ({column}): a side of the join has no column '{column}'",
        origin.find(column),
        hint="write the join condition with ON instead",
    )


def _source_ref(clause: exp.Expr | None, names: QueryNames) -> str | None:
    table = clause.this if clause is not None else None
    if isinstance(table, exp.Table) and isinstance(table.this, exp.Identifier):
        return names.aliases.get(table.alias_or_name.lower())
    return None


def _using_diagnostic(
    column: str, right: str | None, left: list[str], names: QueryNames, where: SourceLocation
) -> Diagnostic:
    def has(ref: str) -> bool:
        return column.lower() in {c.lower() for c in names.columns_of(ref)}

    if right is not None and not has(right):
        lacking, choices = right, names.columns_of(right)
    elif left and not any(has(ref) for ref in left):
        lacking, choices = " / ".join(left), [c for ref in left for c in names.columns_of(ref)]
    else:
        return Diagnostic(
            f"cannot join USING ({column}): '{column}' is not a column of both sides",
            where,
            hint="write the join condition with ON instead",
        )
    return Diagnostic(
        f"cannot join USING ({column}): {lacking} has no column '{column}'",
        where,
        hint=did_you_mean(column, choices) or "write the join condition with ON instead",
    )


def _column_location(
    tree: exp.Expr, column: str, table: str | None, origin: SqlText
) -> SourceLocation | None:
    for node in tree.find_all(exp.Column):
        if node.name.lower() == column.lower() and (table is None or node.table == table):
            return _identifier_location(node.this, origin)
    return None


def _identifier_location(node: exp.Expr, origin: SqlText) -> SourceLocation | None:
    """Where an identifier the parser read starts (sqlglot keeps its line and last column)."""
    meta = node.meta if isinstance(node, exp.Expr) else {}
    line, col = meta.get("line"), meta.get("col")
    if not isinstance(line, int) or not isinstance(col, int):
        return None
    width = len(node.name) + (2 if isinstance(node, exp.Identifier) and node.quoted else 0)
    return origin.locate(line, max(1, col - width + 1))


def find_word(origin: SqlText, words: Iterable[str]) -> SourceLocation:
    """The first of ``words`` in the SQL, any case, as a whole word (or the SQL's start)."""
    for word in words:
        match = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", origin.text, re.IGNORECASE)
        if match:
            return origin.at_offset(match.start())
    return origin.locate(1, 1)


def too_deep(origin: SqlText) -> Diagnostic:
    """A query nested deeper than the analysis can follow (Python's recursion limit)."""
    return Diagnostic(
        "the query is nested too deeply to analyze",
        origin.locate(1, 1),
        hint="split the deepest expression into CTEs or into nodes of their own",
    )


class NotOneQuery(Exception):
    """The text is not exactly one query: ``found`` says what it is instead."""

    def __init__(self, found: str, diagnostic: Diagnostic | None = None) -> None:
        super().__init__(found)
        self.found = found
        self.diagnostic = diagnostic  # a syntax error, worded with its position


def parse_one_query(sql: str, dialect: str, origin: SqlText) -> exp.Query:
    """Parse ``sql`` as exactly one query (the one check both node SQL and
    ``categorize_change`` make; each words the refusal for its reader).

    Raises:
        NotOneQuery: a syntax error (``diagnostic`` set), or no statement, several, or
            one that is not a query.
    """
    import sqlglot

    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        raise NotOneQuery("a syntax error", syntax_diagnostic(exc, sql, origin, dialect)) from None
    except RecursionError:
        raise NotOneQuery("a query nested too deeply", too_deep(origin)) from None
    if len(statements) == 1 and isinstance(statements[0], exp.Query):
        true_positions(statements[0], sql)
        return statements[0]
    if not statements:
        raise NotOneQuery("no statement")
    if len(statements) > 1:
        raise NotOneQuery(f"{len(statements)} statements")
    raise NotOneQuery(f"a {statements[0].key.upper()} statement")
