"""What a query sees while two versions of it are compared, and how two expressions
compare within it.

Both versions are walked in step. Each SELECT binds its sources (FROM and JOIN items)
under keys shared by both versions, with the delta of what each source yields; each
query sees the CTEs of its version and the sources of the SELECTs around it.

Two expressions compare through *signatures*: the SQL text with each column reference
replaced by the key of the source it reads and that source column's old name, and each
subquery by a placeholder (compared on its own). A signature also says whether the
expression reads a column whose values may have changed upstream (a *dirty* read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from seeknal.compiler.query_shape import (
    lambda_variable,
    nodes_outside_subqueries,
    order_by_all,
    plain_table,
    positional_reference,
)

if TYPE_CHECKING:
    from seeknal.compiler.query_diff import QueryDelta


class Same(Enum):
    SAME = "same"  # same text, same values
    DIRTY = "dirty"  # same text, but it reads values that may differ
    DIFFERENT = "different"  # the text differs


@dataclass(slots=True)
class Binding:
    """A source of a SELECT, under a key shared by both versions."""

    key: str
    delta: QueryDelta


@dataclass(slots=True)
class Frame:
    """The sources one SELECT reads, by alias (None: an alias used twice)."""

    aliases: dict[str, Binding | None] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)

    def bind(self, alias: str, binding: Binding) -> None:
        self.bindings.append(binding)
        if alias:
            self.aliases[alias] = None if alias in self.aliases else binding


# For each new output column, the position of the same column in the old version.
PositionMap = tuple[int | None, ...]


# (old frame, new frame) of each enclosing SELECT, outermost first.
Frames = tuple[tuple[Frame, Frame], ...]


@dataclass(frozen=True, slots=True)
class Cte:
    body: exp.Expr
    definition: exp.Expr
    ctes: dict[str, Cte]  # the CTEs its body sees
    frames: Frames  # the SELECTs enclosing the query that defines it


@dataclass(frozen=True, slots=True)
class Scope:
    """What a query can see: the CTEs of each version, and the enclosing SELECTs."""

    old_ctes: dict[str, Cte]
    new_ctes: dict[str, Cte]
    frames: Frames


@dataclass(slots=True)
class _Signature:
    text: str
    dirty: bool = False
    subqueries: list[exp.Expr] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outputs:
    """How a clause may depend on the output columns of its own SELECT."""

    # Per side (old, new): names of that version's output columns that differ.
    changed: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    # Per side: the column being compared, which does not read its own alias.
    own: tuple[str | None, str | None] = (None, None)
    position_same: Callable[[int], bool] = lambda _: True  # GROUP BY 2, ORDER BY 1
    all_same: bool = True  # ORDER BY ALL


@dataclass(frozen=True, slots=True)
class SourceQuery:
    """A FROM item that is a query: a CTE or a derived table."""

    body: exp.Expr
    around: tuple[str, ...]  # what the item adds: column aliases, pivots, samples
    ctes: dict[str, Cte] | None  # what the body sees; None: the reader's CTEs
    frames: Frames | None  # enclosing SELECTs where it is defined; None: the reader's


def source_query(item: exp.Expr, ctes: dict[str, Cte], dialect: str) -> SourceQuery | None:
    if isinstance(item, exp.Subquery):
        return SourceQuery(item.this, tuple(_around(item, dialect)), None, None)
    if (
        isinstance(item, exp.Table)
        and plain_table(item)
        and not item.args.get("db")
        and item.name in ctes
    ):
        cte = ctes[item.name]
        around = (*_around(item, dialect), *_around(cte.definition, dialect))
        return SourceQuery(cte.body, around, cte.ctes, cte.frames)
    return None


def _around(item: exp.Expr, dialect: str) -> list[str]:
    """What a FROM item or CTE adds to its query, as text; its names left out."""
    out = []
    for key, value in sorted(item.args.items()):
        if key in ("this", "db", "catalog") or not value:
            continue
        if key == "alias":
            columns = value.columns if isinstance(value, exp.TableAlias) else []
            if columns:
                # AS s(x, y) names the query's columns by position.
                out.append("columns:" + ",".join(c.name for c in columns))
            continue
        values = value if isinstance(value, list) else [value]
        text = ",".join(
            v.sql(dialect=dialect, comments=False) if isinstance(v, exp.Expr) else repr(v)
            for v in values
        )
        out.append(f"{key}:{text}")
    return out


def with_ctes(query: exp.Expr, ctes: dict[str, Cte], scope: Scope) -> dict[str, Cte]:
    with_ = query.args.get("with_")
    if with_ is None:
        return ctes
    out = dict(ctes)
    for cte in with_.expressions:
        # Each CTE sees the ones before it (and the outer ones), as SQL defines.
        out[cte.alias_or_name] = Cte(cte.this, cte, dict(out), scope.frames)
    return out


def _lookup(frames: Frames, side: int, alias: str) -> Binding | None:
    for frame_pair in reversed(frames):
        frame = frame_pair[side]
        if alias in frame.aliases:
            return frame.aliases[alias]  # None when ambiguous: treated as unresolved
    return None


def _any_visible(frames: Frames, side: int) -> bool:
    return any(b.delta.visible for f in frames for b in f[side].bindings)


class ExpressionComparison:
    """Compares expressions of two paired queries through their signatures.

    A subclass says how to compare two whole queries (``query``): a subquery inside an
    expression is compared that way, and the expression reads changed data when the
    subquery's delta is visible.
    """

    dialect: str
    sql_dialect: Dialect

    def query(
        self,
        old: exp.Expr,
        new: exp.Expr,
        scope: Scope,
        positions: PositionMap | None = None,
    ) -> QueryDelta:
        raise NotImplementedError

    def compare(
        self, old: object, new: object, scope: Scope, outputs: Outputs | None = None
    ) -> Same:
        """Compare two clause values (expressions, lists of them, flags) of paired nodes."""
        before = self.signature(old, 0, scope, outputs)
        after = self.signature(new, 1, scope, outputs)
        if before.text != after.text:
            return Same.DIFFERENT
        dirty = before.dirty or after.dirty
        for a, b in zip(before.subqueries, after.subqueries, strict=True):
            if self.query(a, b, scope).visible:
                dirty = True
        return Same.DIRTY if dirty else Same.SAME

    def signature(
        self, value: object, side: int, scope: Scope, outputs: Outputs | None
    ) -> _Signature:
        if value is None:
            return _Signature("")
        if isinstance(value, list):
            parts = [self.signature(v, side, scope, outputs) for v in value]
            return _Signature(
                "\x1f".join(p.text for p in parts),
                any(p.dirty for p in parts),
                [q for p in parts for q in p.subqueries],
            )
        if not isinstance(value, exp.Expr):
            return _Signature(repr(value))
        out = _Signature("")
        placeholders: list[tuple[exp.Expr, exp.Expr]] = []
        for node in nodes_outside_subqueries(value):
            if node is not value and isinstance(node, exp.Query | exp.Subquery):
                out.subqueries.append(node)
                placeholders.append((node, exp.Var(this=f"<subquery {len(out.subqueries)}>")))
            elif isinstance(node, exp.Column):
                text, dirty = self.column(node, side, scope, outputs)
                out.dirty = out.dirty or dirty
                placeholders.append((node, exp.Var(this=text)))
            elif outputs is not None and positional_reference(node):
                out.dirty = out.dirty or not outputs.position_same(int(node.name))
            elif outputs is not None and order_by_all(node):
                out.dirty = out.dirty or not outputs.all_same
        if placeholders and placeholders[0][0] is value:
            text = self.generate(placeholders[0][1])  # the whole value is one column
        else:
            # Generating from the tree itself, its columns and subqueries swapped for
            # placeholders for the moment, spares a copy of every subquery.
            for node, placeholder in placeholders:
                node.replace(placeholder)
            try:
                text = self.generate(value)
            finally:
                for node, placeholder in reversed(placeholders):
                    placeholder.replace(node)
        out.text = f"{type(value).__name__}:{text}"
        return out

    def generate(self, node: exp.Expr) -> str:
        # The generator may rewrite the tree it is given: it gets a copy.
        return self.sql_dialect.generate(node, copy=True, comments=False)

    def column(
        self, column: exp.Column, side: int, scope: Scope, outputs: Outputs | None
    ) -> tuple[str, bool]:
        """The column's text in a signature, and whether its values may have changed."""
        frames = scope.frames
        if column.table:
            binding = _lookup(frames, side, column.table)
            name = column.name
            if binding is None and column.args.get("db") is not None:
                # t.s.f: field f of struct column s of t.
                binding, name = _lookup(frames, side, column.text("db")), column.table
            if binding is None:
                return column.sql(dialect=self.dialect), _any_visible(frames, side)
            if isinstance(column.this, exp.Star):
                return f"<{binding.key}>.*", binding.delta.visible
            old = name if side == 0 else binding.delta.old_name(name)
            suffix = f".{column.name}" if name != column.name else ""
            return f"<{binding.key}>.{old}{suffix}", binding.delta.dirty(old)
        name = column.name
        if lambda_variable(column):
            return f"<lambda>.{name}", False
        dirty = any(b.delta.touches(name) for f in frames for b in f[side].bindings)
        if outputs is not None and name in outputs.changed[side] and name != outputs.own[side]:
            dirty = True  # an output alias read by a clause or by another column
        innermost = frames[-1][side] if frames else None
        if len(frames) == 1 and innermost is not None and len(innermost.bindings) == 1:
            # One source and no enclosing query: the column can only be that source's.
            binding = innermost.bindings[0]
            old = name if side == 0 else binding.delta.old_name(name)
            return f"<{binding.key}>.{old}", dirty or binding.delta.dirty(old)
        return f"<?>.{name}", dirty
