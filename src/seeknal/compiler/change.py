"""What changed between two versions of a node's SQL, and what must be rebuilt.

``categorize_change(old_sql, new_sql)`` reads two query texts and says, in the plan's
words, how the second differs from the first: a ``category`` (the verdict), ``details``
(the fine-grained edits, each naming its output column where one applies), the unified
diff of the two normalized texts, the existing output columns whose values may differ and
whether the set of rows may differ. It is a pure function of the two texts, the dialect
and the schema of the tables they read; the node-level categories (``added``,
``removed``, ``forward_only``, ``indirect_*``) are the plan's to decide, but the enum
carries all nine so that every tool speaks one vocabulary.

The verdict errs one way only. ``metadata`` is given only when both texts normalize to
the same SQL (normalization preserves meaning, see ``normal_form.py``) and
``non_breaking`` only when the comparison (``query_diff.py``) proves that every existing
row and column is unchanged; everything it cannot prove is ``breaking``. A false "safe"
would leave downstream tables stale; a false "breaking" only rebuilds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seeknal.errors import Diagnostic, ProjectError


class ChangeCategory(StrEnum):
    """The verdict on a node: what a plan must do about it and what is downstream."""

    ADDED = "added"
    REMOVED = "removed"
    UNCHANGED = "unchanged"  # the very same text
    METADATA = "metadata"  # same normalized SQL: formatting, comments, case, docs
    NON_BREAKING = "non_breaking"  # existing rows and columns provably unchanged
    BREAKING = "breaking"  # existing rows or columns may differ: downstream rebuilds
    FORWARD_ONLY = "forward_only"
    INDIRECT_BREAKING = "indirect_breaking"
    INDIRECT_NON_BREAKING = "indirect_non_breaking"


class EditKind(StrEnum):
    """One fine-grained edit; ``column_*`` kinds name an output column."""

    COLUMN_ADDED = "column_added"
    COLUMN_REMOVED = "column_removed"
    COLUMN_MODIFIED = "column_modified"
    COLUMN_RENAMED = "column_renamed"
    FILTER_CHANGED = "filter_changed"  # WHERE, HAVING, QUALIFY
    JOIN_CHANGED = "join_changed"  # join type, condition or joined table
    GROUPING_CHANGED = "grouping_changed"
    DISTINCT_CHANGED = "distinct_changed"
    LIMIT_CHANGED = "limit_changed"  # LIMIT, OFFSET, FETCH
    ORDER_CHANGED = "order_changed"  # ORDER BY
    SOURCE_CHANGED = "source_changed"  # a FROM table replaced by another
    MATERIALIZATION_CHANGED = "materialization_changed"  # node level, never from SQL
    SQL_LOGIC_CHANGED = "sql_logic_changed"  # anything else (set operations, column order)
    METADATA_CHANGED = "metadata_changed"  # node level, never from SQL
    # Node level: another environment's plan changed the table this one shared.
    TABLE_CHANGED_ELSEWHERE = "table_changed_elsewhere"


@dataclass(frozen=True, slots=True)
class ChangeDetail:
    """One edit. ``column`` is the output column it applies to (for ``column_renamed``
    the new name); ``previous`` is the old name of a renamed column, or the old
    expression of a modified one when its text changed."""

    kind: EditKind
    column: str | None = None
    previous: str | None = None

    def to_json(self) -> dict[str, str]:
        """The detail as the plan stores it, without empty fields.

        Example:
            >>> ChangeDetail(EditKind.COLUMN_RENAMED, "total", "amount").to_json()
            {'kind': 'column_renamed', 'column': 'total', 'previous': 'amount'}
        """
        out = {"kind": self.kind.value}
        if self.column is not None:
            out["column"] = self.column
        if self.previous is not None:
            out["previous"] = self.previous
        return out

    def sort_key(self) -> tuple[str, str, str]:
        return (self.kind.value, self.column or "", self.previous or "")


@dataclass(frozen=True, slots=True)
class Change:
    """How a new version of a query differs from the old one.

    ``changed_columns`` are the existing output columns (old names) whose values may
    differ: modified, removed, renamed away, or moved to another position. A reader of
    any of them must be rebuilt; when ``rows_changed`` is true every reader must.
    """

    category: ChangeCategory
    details: tuple[ChangeDetail, ...]
    sql_diff: str
    changed_columns: frozenset[str]
    rows_changed: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with sorted, deterministic content."""
        return {
            "category": self.category.value,
            "details": [d.to_json() for d in self.details],
            "sql_diff": self.sql_diff,
            "changed_columns": sorted(self.changed_columns),
            "rows_changed": self.rows_changed,
        }


class QueryError(ProjectError):
    """A text given to ``categorize_change`` is not exactly one query sqlglot parses.

    Its location names the side (``old SQL`` or ``new SQL``) and the line and column.
    """

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic)
        self.hint = diagnostic.hint


def categorize_change(
    old_sql: str,
    new_sql: str,
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Any] | None = None,
) -> Change:
    """Compare two versions of one query and say what a reader of its output must do.

    Args:
        old_sql: the query as it was (one SELECT, set operation or VALUES query).
        new_sql: the query as it is now.
        dialect: the sqlglot dialect both are written in.
        schema: the tables the queries read, in sqlglot's nested form
            (``{"raw": {"orders": {"order_id": "INTEGER"}}}``). With it, stars expand
            and every column is qualified, which makes the comparison more precise.

    Returns:
        The category, the details sorted by kind and column, the unified diff of the
        normalized texts (empty when they are equal), the existing columns whose values
        may differ and whether the rows may differ.

    Raises:
        QueryError: a text is not exactly one query sqlglot can parse.

    Example:
        >>> old = "SELECT id, amount FROM raw.orders"
        >>> categorize_change(old, "select id, amount  -- ok\\nfrom raw.orders").category
        <ChangeCategory.METADATA: 'metadata'>
        >>> change = categorize_change(old, "SELECT id, amount, amount * 2 AS x FROM raw.orders")
        >>> change.category, [d.to_json() for d in change.details]
        (<ChangeCategory.NON_BREAKING: 'non_breaking'>, [{'kind': 'column_added', 'column': 'x'}])
    """
    # Imported here: both modules use the value types above.
    from seeknal.compiler.normal_form import normal_forms, read_query
    from seeknal.compiler.query_diff import diff_queries

    old_tree = read_query(old_sql, "old", dialect)
    new_tree = read_query(new_sql, "new", dialect)
    old, new = normal_forms(old_tree, new_tree, dialect, schema)
    if old_sql == new_sql:
        return Change(ChangeCategory.UNCHANGED, (), "", frozenset(), False)
    sql_diff = unified_diff(old.text, new.text)
    if old.text == new.text and old.names == new.names:
        return Change(ChangeCategory.METADATA, (), "", frozenset(), False)
    delta = diff_queries(old.tree, new.tree, dialect)
    old_display = dict(zip(old.keys, old.names, strict=True))
    new_display = dict(zip(new.keys, new.names, strict=True))
    details: set[ChangeDetail] = set(delta.edits)
    changed: set[str] = set()
    rows = delta.rows or delta.unknown

    def was(name: str) -> str:
        return old_display.get(name, name)

    def now(name: str) -> str:
        return new_display.get(name, name)

    for name in delta.added:
        details.add(ChangeDetail(EditKind.COLUMN_ADDED, now(name)))
    for name in delta.removed:
        details.add(ChangeDetail(EditKind.COLUMN_REMOVED, was(name)))
        changed.add(name)
    for name, previous in delta.modified.items():
        details.add(ChangeDetail(EditKind.COLUMN_MODIFIED, was(name), previous))
        changed.add(name)
    for before, after in delta.renamed:
        if was(before) == now(after):
            continue  # an unaliased expression keeps its engine name (_col_1 -> _col_2)
        details.add(ChangeDetail(EditKind.COLUMN_RENAMED, now(after), was(before)))
        changed.add(before)
    for name in delta.moved:
        details.add(ChangeDetail(EditKind.SQL_LOGIC_CHANGED, was(name)))
        changed.add(name)
    for after, before in delta.to_old.items():
        # Same column, same normalized name, another spelling: DuckDB keeps an alias's
        # case in the table it creates, so a consumer sees a renamed column.
        if before == after and was(before) != now(after):
            details.add(ChangeDetail(EditKind.COLUMN_RENAMED, now(after), was(before)))
            changed.add(before)
    if delta.unknown:
        changed.update(k for k in old.keys if k not in old.dynamic)
    # An unaliased expression is named by the engine from its text, which seeknal can
    # only approximate: a reader of it is found through rows_changed instead.
    rows = rows or any(name in old.engine_named for name in changed)
    if not details:
        # The text differs but nothing reaches the output (e.g. an unused CTE changed).
        details.add(ChangeDetail(EditKind.SQL_LOGIC_CHANGED))
    breaking = rows or bool(changed) or any(d.kind is EditKind.ORDER_CHANGED for d in details)
    return Change(
        category=ChangeCategory.BREAKING if breaking else ChangeCategory.NON_BREAKING,
        details=tuple(sorted(details, key=ChangeDetail.sort_key)),
        sql_diff=sql_diff,
        changed_columns=frozenset(was(name) for name in changed),
        rows_changed=rows,
    )


def unified_diff(old_text: str, new_text: str) -> str:
    """The unified diff of two normalized texts, ``""`` when they are equal.

    Example:
        >>> print(unified_diff("SELECT\\n  a", "SELECT\\n  b"), end="")
        --- old
        +++ new
        @@ -1,2 +1,2 @@
         SELECT
        -  a
        +  b
    """
    if old_text == new_text:
        return ""
    import difflib  # only when there is a diff or a hint to show

    lines: Iterable[str] = difflib.unified_diff(
        old_text.splitlines(), new_text.splitlines(), "old", "new", lineterm=""
    )
    return "\n".join(lines) + "\n"
