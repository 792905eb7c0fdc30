"""Pass 4: output columns, their types, and column-level lineage.

Works on the qualified tree (stars expanded, every column qualified) with one scope walk:
an output column's lineage is the set of upstream ``(node, column)`` pairs whose values
flow into it, traced through CTEs, derived tables, set operations, joins, aggregates,
window functions and scalar subqueries. Columns used only to filter or join are not
lineage (they decide which rows, not what values).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

from seeknal.compiler.model import ColumnInfo

Lineage = frozenset[tuple[str, str]]


def output_columns(qualified: exp.Query) -> list[ColumnInfo]:
    """Name and lineage of every output column, in order (types come from the engine)."""
    root = build_scope(qualified)
    if root is None:
        return []
    scopes: dict[int, Scope] = {id(s.expression): s for s in root.traverse()}
    tracer = _Tracer(scopes)
    out = []
    for index, name in enumerate(qualified.named_selects):
        lineage = tracer.trace_output(root, name, index)
        out.append(
            ColumnInfo(
                name=name,
                type=None,
                lineage=tuple(sorted(lineage)),
            )
        )
    return out


class _Tracer:
    def __init__(self, scopes: dict[int, Scope]) -> None:
        self.scopes = scopes
        self.memo: dict[tuple[int, str, int], Lineage] = {}

    def trace_output(self, scope: Scope, name: str, index: int) -> Lineage:
        key = (id(scope), name, index)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = frozenset()  # recursion guard (recursive CTEs)
        expression = scope.expression
        result: set[tuple[str, str]] = set()
        if isinstance(expression, exp.SetOperation):
            # A column of a UNION is the column at the same position in every branch.
            for branch in scope.set_operation_scopes:
                result |= self.trace_output(branch, _name_at(branch, index, name), index)
        elif isinstance(expression, exp.Select):
            projection = _projection(expression, name, index)
            if projection is not None:
                result |= self.trace_expression(scope, projection)
        elif isinstance(expression, exp.Lateral):
            # LATERAL (SELECT ...) AS s: the column is the inner query's column.
            for source in scope.sources.values():
                if isinstance(source, Scope) and isinstance(source.expression, exp.Query):
                    names = _named_selects(source)
                    position = names.index(name) if name in names else index
                    result |= self.trace_output(source, name, position)
        else:
            # A table function such as UNNEST([a, b]) AS u(x): x reads every column
            # among its arguments.
            for column in expression.find_all(exp.Column):
                result |= self.trace_column(scope, column)
        self.memo[key] = frozenset(result)
        return self.memo[key]

    def trace_expression(self, scope: Scope, expression: exp.Expr) -> set[tuple[str, str]]:
        result: set[tuple[str, str]] = set()
        for node in expression.walk(bfs=False):
            if isinstance(node, exp.Column) and _owner(node) is scope.expression:
                result |= self.trace_column(scope, node)

            elif isinstance(node, exp.Query) and node is not scope.expression:
                nested = self.scopes.get(id(node))
                if nested is not None and _owner(node) is scope.expression:
                    for i, sel in enumerate(node.named_selects):
                        result |= self.trace_output(nested, sel, i)
        return result

    def trace_column(self, scope: Scope, column: exp.Column) -> set[tuple[str, str]]:
        table = column.table
        current: Scope | None = scope
        while current is not None:
            source = current.sources.get(table)
            if source is not None:
                if isinstance(source, Scope):
                    target = source
                    names = _named_selects(target)
                    index = names.index(column.name) if column.name in names else -1
                    return set(self.trace_output(target, column.name, index))
                if isinstance(source, exp.Table) and source.db:
                    return {(f"{source.db}.{source.name}", column.name)}
                return set()
            current = current.parent  # correlated reference to an outer query
        return set()


def _owner(node: exp.Expr) -> exp.Expr | None:
    """The innermost query that contains ``node`` (its own scope's expression)."""
    parent = node.parent
    while parent is not None and (
        not isinstance(parent, exp.Query) or isinstance(parent, exp.Subquery)
    ):
        parent = parent.parent
    return parent


def _projection(select: exp.Select, name: str, index: int) -> exp.Expr | None:
    selects = select.selects
    if 0 <= index < len(selects) and selects[index].alias_or_name == name:
        return selects[index]
    for projection in selects:
        if projection.alias_or_name == name:
            return projection
    return None


def _name_at(scope: Scope, index: int, default: str) -> str:
    names = _named_selects(scope)
    return names[index] if 0 <= index < len(names) else default


def _named_selects(scope: Scope) -> list[str]:
    expression = scope.expression
    return list(expression.named_selects) if isinstance(expression, exp.Query) else []
