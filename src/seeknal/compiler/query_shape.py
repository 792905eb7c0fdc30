"""What the comparison of two queries needs to know about the shape of one.

Pure functions over sqlglot trees: a SELECT's output columns and sources, whether it
aggregates or returns several rows per input row, and how expressions are walked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import duckdb
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


class FunctionKind(Enum):
    SCALAR = "scalar"
    AGGREGATE = "aggregate"
    SET = "set"  # several rows per input row
    UNKNOWN = "unknown"  # a function the dialect's catalog does not describe


@dataclass(frozen=True, slots=True)
class Functions:
    """What the functions a query calls are: scalar, aggregate or set-returning.

    sqlglot knows many functions; others it parses as anonymous calls. For DuckDB their
    kind comes from DuckDB's own catalog; in other dialects an anonymous function may be
    anything, and is taken to be anything.
    """

    catalog: Mapping[str, frozenset[str]] | None  # DuckDB: name -> its function types

    @staticmethod
    def of(dialect: str) -> Functions:
        return Functions(_duckdb_functions() if dialect == "duckdb" else None)

    def kind(self, function: exp.Func) -> FunctionKind:
        if isinstance(function, exp.AggFunc):
            return FunctionKind.AGGREGATE
        if isinstance(function, _SET_RETURNING):
            return FunctionKind.SET
        if not isinstance(function, exp.Anonymous):
            if self.catalog is not None and "aggregate" in self.catalog.get(
                function.sql_name().lower(), ()
            ):
                return FunctionKind.AGGREGATE
            return FunctionKind.SCALAR
        name = function.name.lower()
        if self.catalog is None:
            return FunctionKind.SET if name in _SET_RETURNING_NAMES else FunctionKind.UNKNOWN
        types = self.catalog.get(name, frozenset())
        if "aggregate" in types:
            return FunctionKind.AGGREGATE
        if "macro" in types or not types:
            # A macro (some aggregate), or a function DuckDB does not have (a UDF).
            return FunctionKind.UNKNOWN
        if "scalar" in types:  # in a select list, range() is the scalar one
            return FunctionKind.SCALAR
        return FunctionKind.SET if types & {"table", "table_macro"} else FunctionKind.UNKNOWN

    def kinds(self, expression: exp.Expr) -> set[FunctionKind]:
        """The kinds of the functions an expression calls outside subqueries; a window
        function itself is left out (it keeps the rows), its arguments are not."""
        out = set()
        for node in nodes_outside_subqueries(expression):
            if isinstance(node, exp.Func) and not (
                isinstance(node.parent, exp.Window) and node.arg_key == "this"
            ):
                out.add(self.kind(node))
        return out

    def aggregation(self, select: exp.Select) -> str:
        """``yes`` when the SELECT returns one row per group, ``no`` when one per input
        row, ``maybe`` when a function of unknown kind decides."""
        if select.args.get("group") is not None or select.args.get("having") is not None:
            return "yes"
        kinds = set().union(*(self.kinds(e) for e in select.expressions))
        if FunctionKind.AGGREGATE in kinds:
            return "yes"
        return "maybe" if FunctionKind.UNKNOWN in kinds else "no"

    def aggregate(self, expression: exp.Expr) -> bool:
        """Whether the expression is surely an aggregate."""
        return FunctionKind.AGGREGATE in self.kinds(expression)

    def set_returning(self, expression: exp.Expr) -> bool:
        """Whether the expression may return several rows per input row."""
        kinds = self.kinds(expression)
        unknown_may = self.catalog is None and FunctionKind.UNKNOWN in kinds
        return FunctionKind.SET in kinds or unknown_may


@functools.cache
def _duckdb_functions() -> Mapping[str, frozenset[str]]:
    """DuckDB's functions by name, with their types (scalar, aggregate, table, macro...)."""
    found: dict[str, set[str]] = {}
    with duckdb.connect() as con:
        for name, kind in con.execute(
            "SELECT function_name, function_type FROM duckdb_functions()"
        ).fetchall():
            found.setdefault(str(name).lower(), set()).add(str(kind))
    return {name: frozenset(kinds) for name, kinds in found.items()}


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
