"""TEMPORARY STUB (replaced by the real module from the issue-4-core branch)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ChangeCategory(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    UNCHANGED = "unchanged"
    METADATA = "metadata"
    NON_BREAKING = "non_breaking"
    BREAKING = "breaking"
    FORWARD_ONLY = "forward_only"
    INDIRECT_BREAKING = "indirect_breaking"
    INDIRECT_NON_BREAKING = "indirect_non_breaking"


class EditKind(StrEnum):
    COLUMN_ADDED = "column_added"
    COLUMN_REMOVED = "column_removed"
    COLUMN_MODIFIED = "column_modified"
    COLUMN_RENAMED = "column_renamed"
    FILTER_CHANGED = "filter_changed"
    JOIN_CHANGED = "join_changed"
    GROUPING_CHANGED = "grouping_changed"
    DISTINCT_CHANGED = "distinct_changed"
    LIMIT_CHANGED = "limit_changed"
    ORDER_CHANGED = "order_changed"
    SOURCE_CHANGED = "source_changed"
    MATERIALIZATION_CHANGED = "materialization_changed"
    SQL_LOGIC_CHANGED = "sql_logic_changed"
    METADATA_CHANGED = "metadata_changed"


@dataclass(frozen=True, slots=True)
class ChangeDetail:
    kind: EditKind
    column: str | None = None
    previous: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.column is not None:
            out["column"] = self.column
        if self.previous is not None:
            out["previous"] = self.previous
        return out


@dataclass(frozen=True, slots=True)
class Change:
    category: ChangeCategory
    details: tuple[ChangeDetail, ...]
    sql_diff: str
    changed_columns: frozenset[str]
    rows_changed: bool


def categorize_change(
    old_sql: str, new_sql: str, *, dialect: str = "duckdb", schema: Mapping[str, Any] | None = None
) -> Change:
    import sqlglot

    old = sqlglot.parse_one(old_sql, read=dialect)
    new = sqlglot.parse_one(new_sql, read=dialect)
    diff = "".join(
        difflib.unified_diff(
            old.sql(dialect, pretty=True).splitlines(keepends=True),
            new.sql(dialect, pretty=True).splitlines(keepends=True),
        )
    )
    if old == new:
        cat = ChangeCategory.UNCHANGED if old_sql == new_sql else ChangeCategory.METADATA
        return Change(cat, (), diff, frozenset(), False)
    o = {s.alias_or_name.lower(): s for s in old.selects}
    n = {s.alias_or_name.lower(): s for s in new.selects}
    a = old.copy()
    b = new.copy()
    a.set("expressions", [])
    b.set("expressions", [])
    if a == b and all(k in n and n[k] == v for k, v in o.items()):
        added = tuple(ChangeDetail(EditKind.COLUMN_ADDED, k) for k in n if k not in o)
        if not old.args.get("distinct") and not any(
            isinstance(n[k], sqlglot.exp.AggFunc) for k in n if k not in o
        ):
            return Change(ChangeCategory.NON_BREAKING, added, diff, frozenset(), False)
    details = []
    changed = set()
    for k, v in o.items():
        if k not in n:
            details.append(ChangeDetail(EditKind.COLUMN_REMOVED, k))
            changed.add(k)
        elif n[k] != v:
            details.append(ChangeDetail(EditKind.COLUMN_MODIFIED, k))
            changed.add(k)
    rows = a != b
    if rows:
        details.append(ChangeDetail(EditKind.SQL_LOGIC_CHANGED))
    return Change(ChangeCategory.BREAKING, tuple(details), diff, frozenset(changed), rows)
