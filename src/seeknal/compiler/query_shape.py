"""What the comparison of two queries needs to know about the shape of one.

Pure functions over sqlglot trees: a SELECT's output columns and sources, whether it
aggregates or returns several rows per input row, and how expressions are walked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlglot import exp

# Functions that return several rows per input row when used in a select list.
_SET_RETURNING: tuple[type[exp.Expr], ...] = (
    exp.Explode,
    exp.ExplodeOuter,
    exp.Posexplode,
    exp.PosexplodeOuter,
    exp.Inline,
    exp.Unnest,
    exp.GenerateSeries,
    exp.ExplodingGenerateSeries,
)


_SET_RETURNING_NAMES = frozenset(
    {
        "unnest",
        "generate_series",
        "generate_subscripts",
        "json_each",
        "json_each_text",
        "jsonb_each",
        "jsonb_each_text",
        "json_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "json_tree",
        "regexp_split_to_table",
        "string_split_to_table",
        "flatten",
    }
)


def projections(select: exp.Select, dialect: str) -> list[tuple[str, exp.Expr]]:
    """(name, expression) of each output column; a star is named by its text."""
    out = []
    for i, projection in enumerate(select.expressions):
        if dynamic(projection):
            out.append((projection.sql(dialect=dialect), projection))
        else:
            out.append((projection.alias_or_name or f"_col_{i}", projection.unalias()))
    return out


def dynamic(projection: exp.Expr) -> bool:
    """A projection whose columns the engine picks: a star, COLUMNS(...), #n."""
    for node in projection.walk(prune=lambda n: isinstance(n, exp.Query | exp.Subquery)):
        if isinstance(node, exp.Columns | exp.PositionalColumn):
            return True
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            return True
    return False


def aggregates(select: exp.Select) -> bool:
    """Whether the SELECT returns one row per group rather than one per input row."""
    if select.args.get("group") is not None:
        return True
    having = select.args.get("having")
    return having is not None or any(aggregate_expr(e) for e in select.expressions)


def aggregate_expr(expression: exp.Expr) -> bool:
    return any(
        isinstance(node, exp.AggFunc)
        for node in expression.walk(
            prune=lambda n: isinstance(n, exp.Window | exp.Query | exp.Subquery)
        )
    )


def set_returning(expression: exp.Expr) -> bool:
    for node in expression.walk(prune=lambda n: isinstance(n, exp.Query | exp.Subquery)):
        if isinstance(node, _SET_RETURNING):
            return True
        if isinstance(node, exp.Anonymous) and node.name.lower() in _SET_RETURNING_NAMES:
            return True
    return False


def distinct_on(select: exp.Expr) -> bool:
    distinct = select.args.get("distinct")
    return distinct is not None and distinct.args.get("on") is not None


def sources(select: exp.Select) -> list[tuple[exp.Expr, exp.Expr]]:
    """(clause, item) of the FROM and of each JOIN, in order."""
    from_ = select.args.get("from_")
    clauses = ([from_] if from_ is not None else []) + list(select.args.get("joins") or [])
    return [(c, c.this) for c in clauses]


def source_alias(item: exp.Expr) -> str:
    return item.alias_or_name if isinstance(item, exp.Table) else item.alias


def plain_table(table: exp.Table) -> bool:
    return isinstance(table.this, exp.Identifier)


def table_text(table: exp.Table, dialect: str) -> str:
    copy = table.copy()
    copy.set("alias", None)
    return copy.sql(dialect=dialect, comments=False)


def unwrap(query: exp.Expr) -> exp.Expr:
    """``(SELECT ...)`` is the SELECT, unless the parentheses carry clauses of their own."""
    while isinstance(query, exp.Subquery) and not any(
        v for k, v in query.args.items() if k != "this"
    ):
        query = query.this
    return query


def recursive(query: exp.Expr) -> bool:
    with_ = query.args.get("with_")
    return bool(with_ is not None and with_.args.get("recursive"))


def nodes_outside_subqueries(node: exp.Expr) -> Iterator[exp.Expr]:
    """Every node of ``node`` in a fixed order, not entering subqueries."""
    return node.walk(
        bfs=False, prune=lambda n: n is not node and isinstance(n, exp.Query | exp.Subquery)
    )


def lambda_variable(column: exp.Column) -> bool:
    node = column.parent
    while node is not None:
        if isinstance(node, exp.Lambda) and column.name in {e.name for e in node.expressions}:
            return True
        node = node.parent
    return False


def positional_reference(node: exp.Expr) -> bool:
    """An integer that names an output column: GROUP BY 2, ORDER BY 1."""
    if not (isinstance(node, exp.Literal) and node.is_int):
        return False
    parent = node.parent
    return isinstance(parent, exp.Group) or (
        isinstance(parent, exp.Ordered) and isinstance(parent.parent, exp.Order)
    )


def order_by_all(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Var)
        and node.name.upper() == "ALL"
        and isinstance(node.parent, exp.Ordered)
    )


def longest_common(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """A longest common subsequence of two name lists (the columns that did not move)."""
    lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1
                if a[i] == b[j]
                else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def unqualified_names(expression: exp.Expr) -> set[str]:
    """Names of the columns an expression reads without a table (outside subqueries)."""
    return {
        node.name
        for node in nodes_outside_subqueries(expression)
        if isinstance(node, exp.Column) and not node.table
    }
