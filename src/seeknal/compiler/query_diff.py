"""How two versions of one query differ, as seen from its output (for ``change.py``).

The comparison walks both normalized trees in step, query by query. For every SELECT it
pairs the sources (the FROM item and each JOIN, by position), compares every clause and
every output column, and returns a ``QueryDelta``: the output columns added, removed,
renamed, moved or whose values may differ, and whether the rows may differ.

Expressions are compared through *signatures* (see query_scope.py), which follow every
column to the source it reads and say whether that column may hold other values (a
*dirty* read). So a CTE that changes one column marks exactly the outer expressions that
read it: a filter on it changes the rows, a projection of it changes that column, and a
source whose rows may differ makes every reader's rows differ.

What the walk cannot follow (a recursive CTE, a star or ``COLUMNS(...)`` over a changed
source, a clause it has no rule for) makes the delta ``unknown``: every column and the
rows may differ. There is no other way out, so an edit is never overlooked: it is
either understood or breaking.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from seeknal.compiler.change import ChangeDetail, EditKind
from seeknal.compiler.query_scope import (
    Binding,
    ExpressionComparison,
    Frame,
    Outputs,
    PositionMap,
    Same,
    Scope,
    source_query,
    with_ctes,
)
from seeknal.compiler.query_shape import (
    FunctionKind,
    Functions,
    distinct_on,
    dynamic,
    longest_common,
    plain_table,
    projections,
    recursive,
    source_alias,
    sources,
    table_text,
    unqualified_names,
    unwrap,
)

# Clauses of a SELECT with an edit kind of their own; any other clause that differs
# makes the delta unknown.
_CLAUSE_KINDS = {
    "where": EditKind.FILTER_CHANGED,
    "having": EditKind.FILTER_CHANGED,
    "qualify": EditKind.FILTER_CHANGED,
    "group": EditKind.GROUPING_CHANGED,
    "distinct": EditKind.DISTINCT_CHANGED,
    "limit": EditKind.LIMIT_CHANGED,
    "offset": EditKind.LIMIT_CHANGED,
    "order": EditKind.ORDER_CHANGED,
}


# Compared on their own, not as clauses.
_STRUCTURE = frozenset({"expressions", "from_", "joins", "with_", "this", "expression"})


@dataclass(slots=True)
class QueryDelta:
    """How a query's output differs; column names are the old version's unless said."""

    old_names: tuple[str, ...] | None = None  # None: not known (a table read as it is)
    new_names: tuple[str, ...] | None = None
    to_old: dict[str, str] = field(default_factory=dict)  # new name -> old name, kept columns
    rows: bool = False  # the set or multiplicity of rows may differ
    unknown: bool = False  # columns cannot be followed: any of them may differ
    modified: dict[str, str | None] = field(default_factory=dict)  # -> old text if it changed
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # new names
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    moved: list[str] = field(default_factory=list)
    edits: set[ChangeDetail] = field(default_factory=set)

    @property
    def visible(self) -> bool:
        """Whether a reader of this query's output can see any difference."""
        return bool(
            self.rows
            or self.unknown
            or self.modified
            or self.removed
            or self.added
            or self.renamed
            or self.moved
        )

    def old_name(self, new_name: str) -> str:
        return self.to_old.get(new_name, new_name)

    def dirty(self, old_name: str) -> bool:
        """Whether the values of old column ``old_name`` may differ (or it is gone)."""
        return self.unknown or old_name in self.modified or old_name in self.removed

    def touches(self, name: str) -> bool:
        """Whether ``name`` may resolve differently, or to other values, in a reader."""
        return self.dirty(name) or name in self.added or any(name in pair for pair in self.renamed)

    def give_up(self, kind: EditKind) -> QueryDelta:
        self.unknown = True
        self.rows = True
        self.edits.add(ChangeDetail(kind))
        return self


def diff_queries(old: exp.Query, new: exp.Query, dialect: str) -> QueryDelta:
    """How ``new`` differs from ``old`` (both normalized the same way, see normal_form).

    Example:
        >>> import sqlglot
        >>> old = sqlglot.parse_one("SELECT a, b FROM t")
        >>> new = sqlglot.parse_one("SELECT a, b + 1 AS b FROM t WHERE a > 0")
        >>> delta = diff_queries(old, new, "duckdb")
        >>> delta.rows, sorted(delta.modified)
        (True, ['b'])
    """
    return _Walk(dialect).query(old, new, Scope({}, {}, ()))


class _Walk(ExpressionComparison):
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.sql_dialect = Dialect.get_or_raise(dialect)
        self.functions = Functions.of(dialect)
        self.tags = itertools.count()
        self.cte_deltas: dict[tuple[int, int], QueryDelta] = {}

    # -- queries ------------------------------------------------------------------
    def query(
        self,
        old: exp.Expr,
        new: exp.Expr,
        scope: Scope,
        positions: PositionMap | None = None,
    ) -> QueryDelta:
        """Compare two queries; ``positions`` pairs the columns of a set operation's
        later branch (see ``compare_columns``)."""
        old, new = unwrap(old), unwrap(new)
        if recursive(old) or recursive(new):
            return QueryDelta().give_up(EditKind.SQL_LOGIC_CHANGED)
        scope = Scope(
            with_ctes(old, scope.old_ctes, scope),
            with_ctes(new, scope.new_ctes, scope),
            scope.frames,
        )
        if isinstance(old, exp.Select) and isinstance(new, exp.Select):
            return self.select(old, new, scope, positions)
        if isinstance(old, exp.SetOperation) and isinstance(new, exp.SetOperation):
            return self.set_operation(old, new, scope, positions)
        if isinstance(old, exp.Subquery) and isinstance(new, exp.Subquery):
            # (SELECT ...) ORDER BY ...: parentheses with clauses of their own.
            inner = self.query(old.this, new.this, scope, positions)
            keys = (set(old.args) | set(new.args)) - {"this"}
            if all(
                self.compare(old.args.get(k), new.args.get(k), scope) is Same.SAME for k in keys
            ):
                return inner
        elif type(old) is type(new) and self.compare(old, new, scope) is Same.SAME:
            return QueryDelta()
        return QueryDelta().give_up(EditKind.SQL_LOGIC_CHANGED)

    def select(
        self, old: exp.Select, new: exp.Select, scope: Scope, positions: PositionMap | None
    ) -> QueryDelta:
        delta = QueryDelta()
        frames = (*scope.frames, (Frame(), Frame()))
        here = Scope(scope.old_ctes, scope.new_ctes, frames)
        self.bind_sources(old, new, scope, here, delta)
        old_cols, new_cols = projections(old, self.dialect), projections(new, self.dialect)
        self.compare_columns(old_cols, new_cols, here, delta, positions)
        old_names, new_names = delta.old_names or (), delta.new_names or ()
        changed = _changed_names(delta)
        outputs = Outputs(
            changed=changed,
            position_same=lambda n: _same_position(n, old_names, new_names, delta),
            all_same=not (changed[0] or changed[1] or delta.moved),
        )
        self.select_semantics(old, new, old_cols, new_cols, delta)
        limited = any(s.args.get(k) for s in (old, new) for k in ("limit", "offset"))
        limited = limited or any(distinct_on(s) for s in (old, new))
        for key in sorted((set(old.args) | set(new.args)) - _STRUCTURE):
            before, after = old.args.get(key), new.args.get(key)
            if not before and not after:
                continue
            if self.compare(before, after, here, outputs) is Same.SAME:
                continue
            kind = _CLAUSE_KINDS.get(key)
            if kind is None:
                delta.give_up(EditKind.SQL_LOGIC_CHANGED)
            elif kind is EditKind.ORDER_CHANGED:
                # Order decides rows only where a LIMIT or DISTINCT ON picks some.
                delta.edits.add(ChangeDetail(kind))
                delta.rows = delta.rows or limited
            else:
                delta.edits.add(ChangeDetail(kind))
                delta.rows = True
        return delta

    def bind_sources(
        self, old: exp.Select, new: exp.Select, outer: Scope, here: Scope, delta: QueryDelta
    ) -> None:
        """Pair the FROM and JOIN items, compare each, and bind them in ``here``."""
        old_frame, new_frame = here.frames[-1]
        old_items, new_items = sources(old), sources(new)
        tag = next(self.tags)
        for i in range(max(len(old_items), len(new_items))):
            kind = EditKind.SOURCE_CHANGED if i == 0 else EditKind.JOIN_CHANGED
            if i >= len(old_items) or i >= len(new_items):
                # A join added or dropped: its columns are new keys on each side.
                for frame, items, side in (
                    (old_frame, old_items, "o"),
                    (new_frame, new_items, "n"),
                ):
                    if i < len(items):
                        lost = QueryDelta().give_up(kind)
                        frame.bind(source_alias(items[i][1]), Binding(f"s{tag}.{i}{side}", lost))
                delta.rows = True
                delta.edits.add(ChangeDetail(kind))
                continue
            (old_clause, old_item), (new_clause, new_item) = old_items[i], new_items[i]
            source = self.source(old_item, new_item, outer, here)
            if source is None:
                source = QueryDelta().give_up(kind)
            binding = Binding(f"s{tag}.{i}", source)
            old_frame.bind(source_alias(old_item), binding)
            new_frame.bind(source_alias(new_item), binding)
            delta.rows = delta.rows or source.rows or source.unknown
            delta.edits.update(e for e in source.edits if e.column is None)
            if i > 0 and self.join_differs(old_clause, new_clause, here):
                delta.rows = True
                delta.edits.add(ChangeDetail(EditKind.JOIN_CHANGED))

    def join_differs(self, old: exp.Expr, new: exp.Expr, here: Scope) -> bool:
        """Whether the join type, condition or USING list differ, or read changed data."""
        for key in sorted((set(old.args) | set(new.args)) - {"this"}):
            if self.compare(old.args.get(key), new.args.get(key), here) is not Same.SAME:
                return True
        old_frame, new_frame = here.frames[-1]
        for frame in (old_frame, new_frame):
            if old.args.get("method") == "NATURAL" and any(b.delta.visible for b in frame.bindings):
                return True  # the common columns, or their values, may differ
            using = [i.name for i in old.args.get("using") or []]
            if any(b.delta.touches(name) for b in frame.bindings for name in using):
                return True
        return False

    def source(self, old: exp.Expr, new: exp.Expr, outer: Scope, here: Scope) -> QueryDelta | None:
        """The delta of one paired FROM/JOIN item; None when it reads something else."""
        old_query = source_query(old, outer.old_ctes, self.dialect)
        new_query = source_query(new, outer.new_ctes, self.dialect)
        if old_query is not None and new_query is not None:
            frames = outer.frames
            if old_query.frames is not None and old_query.frames is new_query.frames:
                frames = old_query.frames  # two CTEs defined at the same level
            scope = Scope(
                outer.old_ctes if old_query.ctes is None else old_query.ctes,
                outer.new_ctes if new_query.ctes is None else new_query.ctes,
                frames,
            )
            key = (id(old_query.body), id(new_query.body))
            if key not in self.cte_deltas:
                self.cte_deltas[key] = self.query(old_query.body, new_query.body, scope)
            inner = self.cte_deltas[key]
            if old_query.around != new_query.around:
                return QueryDelta().give_up(EditKind.SQL_LOGIC_CHANGED)
            if old_query.around:
                # Column aliases name columns by position, a PIVOT by value: a reader
                # sees the difference only if there is one.
                if inner.visible:
                    return QueryDelta().give_up(EditKind.SQL_LOGIC_CHANGED)
                return QueryDelta()
            return inner
        if old_query is not None or new_query is not None:
            return None
        if isinstance(old, exp.Table) and isinstance(new, exp.Table) and plain_table(old):
            same = plain_table(new) and table_text(old, self.dialect) == table_text(
                new, self.dialect
            )
            return QueryDelta() if same else None
        # Table functions, UNNEST, LATERAL, VALUES: compared as expressions.
        return QueryDelta() if self.compare(old, new, here) is Same.SAME else None

    def set_operation(
        self,
        old: exp.SetOperation,
        new: exp.SetOperation,
        scope: Scope,
        positions: PositionMap | None,
    ) -> QueryDelta:
        if type(old) is not type(new):
            return QueryDelta().give_up(EditKind.SQL_LOGIC_CHANGED)
        left = self.query(old.this, new.this, scope, positions)
        # The first branch names the columns; the others pair with it by position.
        right = self.query(old.expression, new.expression, scope, _position_map(left))
        branches = [left, right]
        delta = QueryDelta()
        for branch in branches:
            delta.rows = delta.rows or branch.rows
            delta.edits.update(e for e in branch.edits if e.column is None)
        maps = [_position_map(b) for b in branches]
        # Columns pair by position: a column added or moved in one branch only shifts
        # every column after it. BY NAME pairs them by name: not followed.
        aligned = None not in maps and maps[0] == maps[1]
        by_name = old.args.get("by_name") or new.args.get("by_name")
        if (by_name or not aligned) and any(b.visible for b in branches):
            return delta.give_up(EditKind.SQL_LOGIC_CHANGED)
        delta.old_names, delta.new_names = left.old_names, left.new_names
        delta.to_old = dict(left.to_old)
        delta.removed, delta.added = list(left.removed), list(left.added)
        delta.renamed, delta.moved = list(left.renamed), list(left.moved)
        modified_at: set[int] = set()
        for branch in branches:
            names = branch.old_names or ()
            modified_at.update(names.index(n) for n in branch.modified if n in names)
            if branch.unknown:
                delta.unknown = True
        old_names = left.old_names or ()
        delta.modified = {
            old_names[i]: left.modified.get(old_names[i]) for i in sorted(modified_at)
        }
        distinct = bool(new.args.get("distinct")) or not isinstance(new, exp.Union)
        if bool(old.args.get("distinct")) != bool(new.args.get("distinct")):
            delta.rows = True
            delta.edits.add(ChangeDetail(EditKind.DISTINCT_CHANGED))
        elif distinct and (delta.modified or delta.removed or delta.added):
            # UNION removes duplicates, INTERSECT and EXCEPT match rows: on whole rows.
            kind = EditKind.DISTINCT_CHANGED if isinstance(new, exp.Union) else None
            delta.rows = True
            delta.edits.add(ChangeDetail(kind or EditKind.SQL_LOGIC_CHANGED))
        changed = _changed_names(delta)
        old_names, new_names = delta.old_names or (), delta.new_names or ()
        outputs = Outputs(
            changed=changed,
            position_same=lambda n: _same_position(n, old_names, new_names, delta),
            all_same=not (changed[0] or changed[1] or delta.moved),
        )
        for key in sorted((set(old.args) | set(new.args)) - _STRUCTURE - {"distinct"}):
            if self.compare(old.args.get(key), new.args.get(key), scope, outputs) is Same.SAME:
                continue
            kind = _CLAUSE_KINDS.get(key)
            if kind in (EditKind.ORDER_CHANGED, EditKind.LIMIT_CHANGED):
                delta.edits.add(ChangeDetail(kind))
                limited = any(s.args.get(k) for s in (old, new) for k in ("limit", "offset"))
                delta.rows = delta.rows or kind is EditKind.LIMIT_CHANGED or limited
            else:
                delta.give_up(EditKind.SQL_LOGIC_CHANGED)
        return delta

    # -- output columns -----------------------------------------------------------
    def compare_columns(
        self,
        old_cols: list[tuple[str, exp.Expr]],
        new_cols: list[tuple[str, exp.Expr]],
        here: Scope,
        delta: QueryDelta,
        positions: PositionMap | None,
    ) -> None:
        """Pair the output columns and compare each pair.

        Columns pair by name, or, in a set operation's later branch (whose names
        nobody sees), by the positions the first branch's columns moved to.
        """
        old_names = [name for name, _ in old_cols]
        new_names = [name for name, _ in new_cols]
        delta.old_names, delta.new_names = tuple(old_names), tuple(new_names)
        if len(set(old_names)) < len(old_names) or len(set(new_names)) < len(new_names):
            # Two columns of one name: readers cannot tell them apart either.
            same = len(old_cols) == len(new_cols) and all(
                self.compare(a, b, here) is Same.SAME
                for (_, a), (_, b) in zip(old_cols, new_cols, strict=False)
            )
            if not same:
                delta.give_up(EditKind.SQL_LOGIC_CHANGED)
            return
        if self.dynamic_columns_differ(old_cols, new_cols, here):
            # Which columns a star yields is not known here: nothing can be named.
            delta.old_names = delta.new_names = None
            delta.give_up(EditKind.SQL_LOGIC_CHANGED)
            return
        old_exprs, new_exprs = dict(old_cols), dict(new_cols)
        if positions is not None and len(positions) == len(new_names):
            pairs = {
                new_names[j]: old_names[i]
                for j, i in enumerate(positions)
                if i is not None and i < len(old_names)
            }
        else:
            pairs = {n: n for n in new_names if n in old_exprs}
        results = {
            after: self.compare(old_exprs[before], new_exprs[after], here)
            for after, before in pairs.items()
        }
        # DuckDB lets a column use an earlier alias (SELECT x AS a, a + 1 AS b): repeat
        # until no column reads one that changed.
        while True:
            differ = [after for after, r in results.items() if r is not Same.SAME]
            changed = (
                frozenset([pairs[n] for n in differ] + _unpaired(old_names, pairs.values())),
                frozenset(differ + _unpaired(new_names, pairs)),
            )
            again = [
                after
                for after, before in pairs.items()
                if results[after] is Same.SAME
                and unqualified_names(new_exprs[after]) & (changed[1] - {after})
                and self.compare(
                    old_exprs[before], new_exprs[after], here, Outputs(changed, (before, after))
                )
                is not Same.SAME
            ]
            if not again:
                break
            results.update(dict.fromkeys(again, Same.DIRTY))
        removed = _unpaired(old_names, pairs.values())
        added = _unpaired(new_names, pairs)
        for after in list(added) if positions is None else []:
            match = next(
                (
                    before
                    for before in removed
                    if self.compare(
                        old_exprs[before],
                        new_exprs[after],
                        here,
                        Outputs(changed, (before, after)),
                    )
                    is Same.SAME
                ),
                None,
            )
            if match is not None:
                removed.remove(match)
                added.remove(after)
                delta.renamed.append((match, after))
        delta.removed, delta.added = removed, added
        delta.to_old = dict(pairs) | {after: before for before, after in delta.renamed}
        for after, before in pairs.items():
            if results[after] is Same.DIFFERENT:
                delta.modified[before] = old_exprs[before].sql(dialect=self.dialect)
            elif results[after] is Same.DIRTY:
                delta.modified[before] = None
        order = [delta.to_old[n] for n in new_names if n in delta.to_old]
        stay = set(longest_common(order, [n for n in old_names if n in set(order)]))
        delta.moved = [n for n in old_names if n in set(order) and n not in stay]

    def dynamic_columns_differ(
        self,
        old_cols: list[tuple[str, exp.Expr]],
        new_cols: list[tuple[str, exp.Expr]],
        here: Scope,
    ) -> bool:
        """A star or COLUMNS(...) left unexpanded: its columns are its sources'."""
        old_dynamic = [(n, e) for n, e in old_cols if dynamic(e)]
        new_dynamic = [(n, e) for n, e in new_cols if dynamic(e)]
        if not old_dynamic and not new_dynamic:
            return False
        if [n for n, _ in old_dynamic] != [n for n, _ in new_dynamic]:
            return True
        old_frame, new_frame = here.frames[-1]
        if any(b.delta.visible for b in (*old_frame.bindings, *new_frame.bindings)):
            return True
        return any(
            self.compare(a, b, here) is not Same.SAME
            for (_, a), (_, b) in zip(old_dynamic, new_dynamic, strict=True)
        )

    def select_semantics(
        self,
        old: exp.Select,
        new: exp.Select,
        old_cols: list[tuple[str, exp.Expr]],
        new_cols: list[tuple[str, exp.Expr]],
        delta: QueryDelta,
    ) -> None:
        """What the column edits do to the rows: DISTINCT, GROUP BY ALL, aggregates."""
        old_exprs, new_exprs = dict(old_cols), dict(new_cols)
        touched_old = [*delta.modified, *delta.removed]
        touched_new = [*delta.added, *delta.modified]
        touched = [
            *((n, old_exprs[n]) for n in touched_old if n in old_exprs),
            *((n, new_exprs[n]) for n in touched_new if n in new_exprs),
        ]
        before, after = self.functions.aggregation(old), self.functions.aggregation(new)
        unsure = "maybe" in (before, after) and any(
            self.functions.kinds(expr) - {FunctionKind.SCALAR} for _, expr in touched
        )
        if before != after or unsure:
            # An aggregate added to a plain query (or the last one removed) changes
            # one row per input row into one row per group, or back. A function of
            # unknown kind in an edited column may be such an aggregate.
            delta.rows = True
            delta.edits.add(ChangeDetail(EditKind.GROUPING_CHANGED))
        for name, expr in touched:
            if self.functions.set_returning(expr):
                delta.rows = True
                delta.edits.add(ChangeDetail(EditKind.SQL_LOGIC_CHANGED, name))
        if not (touched_old or touched_new):
            return
        if old.args.get("distinct") or new.args.get("distinct"):
            # DISTINCT compares whole rows: another column, other rows.
            delta.rows = True
            delta.edits.add(ChangeDetail(EditKind.DISTINCT_CHANGED))
        for select, exprs, names in ((old, old_exprs, touched_old), (new, new_exprs, touched_new)):
            group = select.args.get("group")
            # GROUP BY ALL groups by every column that is not an aggregate.
            if (
                group is not None
                and group.args.get("all")
                and any(n in exprs and not self.functions.aggregate(exprs[n]) for n in names)
            ):
                delta.rows = True
                delta.edits.add(ChangeDetail(EditKind.GROUPING_CHANGED))


def _unpaired(names: Sequence[str], paired: Iterable[str]) -> list[str]:
    taken = set(paired)
    return [n for n in names if n not in taken]


def _changed_names(delta: QueryDelta) -> tuple[frozenset[str], frozenset[str]]:
    """Names of the output columns that differ, in the old and in the new version."""
    renamed_old = [old for old, _ in delta.renamed]
    renamed_new = [new for _, new in delta.renamed]
    return (
        frozenset([*delta.modified, *delta.removed, *renamed_old]),
        frozenset([*delta.modified, *delta.added, *renamed_new]),
    )


def _same_position(
    position: int, old_names: Sequence[str], new_names: Sequence[str], delta: QueryDelta
) -> bool:
    """Whether GROUP BY/ORDER BY ``position`` names the same, unchanged column in both."""
    i = position - 1
    if delta.unknown or not (0 <= i < len(old_names) and 0 <= i < len(new_names)):
        return False
    before, after = old_names[i], new_names[i]
    return delta.to_old.get(after) == before and before not in delta.modified


def _position_map(delta: QueryDelta) -> PositionMap | None:
    """For each new column, the position of the same old column (None: a new one)."""
    if delta.unknown or delta.old_names is None or delta.new_names is None:
        return None
    old = delta.old_names
    return tuple(old.index(delta.to_old[n]) if n in delta.to_old else None for n in delta.new_names)
