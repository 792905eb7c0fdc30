"""What a plan changes, for people: changes by category, column-level impact, work counts.

A pure reading of a plan dict, shared by ``seeknal plan``, ``compile --summary-md`` and
any tool that reviews a plan file. It imports nothing else from seeknal, so the compiler
and the runtime may both use it.

Example:
    >>> plan = {"environment": "prod", "base_state": None, "nodes": {}, "work": []}
    >>> summarize_plan(plan).counts
    {}
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The order changes are shown in: what needs a reviewer's attention first.
CATEGORY_ORDER = (
    "breaking",
    "forward_only",
    "non_breaking",
    "indirect_breaking",
    "added",
    "removed",
    "metadata",
    "indirect_non_breaking",
    "unchanged",
)
# Details that name an existing column whose values a reader sees change.
_COLUMN_EDITS = {
    "column_modified": "modified",
    "column_removed": "removed",
    "column_renamed": "renamed",
    "column_added": "added",
}


@dataclass(frozen=True, slots=True)
class ColumnImpact:
    """One changed column: where its values come from and which columns read it."""

    node: str
    column: str
    edit: str  # modified | removed | renamed | added
    previous: str | None
    upstream: tuple[str, ...]  # node.column it reads
    affects: tuple[str, ...]  # node.column downstream, transitively

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "node": self.node,
            "column": self.column,
            "edit": self.edit,
            "upstream": list(self.upstream),
            "affects": list(self.affects),
        }
        if self.previous is not None:
            out["previous"] = self.previous
        return out


@dataclass(frozen=True, slots=True)
class NodeSummary:
    node: str
    category: str
    details: tuple[Mapping[str, Any], ...]
    sql_diff: str
    snapshot: str | None
    materialized: str | None


@dataclass(frozen=True, slots=True)
class IntervalWork:
    """An incremental node's ranges in the plan: ``(start, end, reason)``, ISO-8601 UTC."""

    node: str
    ranges: tuple[tuple[str, str, str], ...]
    batch_size: int | None

    def describe(self) -> str:
        """``[2024-06-01, 2024-06-02) missing; ...`` (dates when the bounds are midnights)."""
        if not self.ranges:
            return "an empty table (no complete interval yet)"
        text = "; ".join(
            f"[{_day_or_time(a)}, {_day_or_time(b)}) {reason}" for a, b, reason in self.ranges
        )
        if self.batch_size is not None:
            text += f" (batches of {self.batch_size})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "intervals": [{"start": a, "end": b, "reason": r} for a, b, r in self.ranges],
            **({"batch_size": self.batch_size} if self.batch_size is not None else {}),
        }


def _day_or_time(iso: str) -> str:
    """``2024-06-01T00:00:00Z`` -> ``2024-06-01``; other times keep hours and minutes."""
    day, _, clock = iso.rstrip("Z").partition("T")
    if clock in ("", "00:00:00"):
        return day
    return f"{day} {clock[:5] if clock.endswith(':00') else clock}"


@dataclass(frozen=True, slots=True)
class PlanSummary:
    environment: str
    base_state: str | None
    by_category: dict[str, list[NodeSummary]]
    impact: list[ColumnImpact]
    work: Counter[str] = field(default_factory=Counter)  # reason -> snapshots
    work_materialized: Counter[str] = field(default_factory=Counter)  # table/view -> snapshots
    base_environment: str | None = None
    intervals: list[IntervalWork] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {c: len(nodes) for c, nodes in self.by_category.items()}

    @property
    def changed(self) -> list[NodeSummary]:
        return [n for c in CATEGORY_ORDER if c != "unchanged" for n in self.by_category.get(c, [])]

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "base_state": self.base_state,
            "counts": self.counts,
            "changes": [
                {
                    "node": n.node,
                    "category": n.category,
                    "details": [dict(d) for d in n.details],
                    **({"sql_diff": n.sql_diff} if n.sql_diff else {}),
                }
                for n in self.changed
            ],
            "impact": [i.to_json() for i in self.impact],
            "work": dict(sorted(self.work.items())),
            "intervals": [i.to_json() for i in self.intervals],
        }


def summarize_plan(plan: Mapping[str, Any]) -> PlanSummary:
    """Group a plan's nodes by change category and trace every changed column downstream."""
    nodes: Mapping[str, Any] = plan["nodes"]
    by_category: dict[str, list[NodeSummary]] = {}
    for node_id in sorted(nodes):
        node = nodes[node_id]
        change = node["change"]
        by_category.setdefault(change["category"], []).append(
            NodeSummary(
                node_id,
                change["category"],
                tuple(change.get("details", ())),
                change.get("sql_diff", ""),
                node.get("snapshot"),
                node.get("materialized"),
            )
        )
    ordered = {c: by_category[c] for c in CATEGORY_ORDER if c in by_category}
    ordered.update({c: v for c, v in by_category.items() if c not in ordered})
    work = Counter(w["reason"] for w in plan["work"])
    materialized = Counter(
        _KINDS_OF_TABLE.get(m, m)
        for w in plan["work"]
        if w["reason"] != "forward_only"
        for m in [nodes[w["node"]].get("materialized", "table")]
    )
    intervals = [
        IntervalWork(
            w["node"],
            tuple((r["start"], r["end"], r["reason"]) for r in w["intervals"]),
            w.get("batch_size"),
        )
        for w in plan["work"]
        if "intervals" in w
    ]
    return PlanSummary(
        plan["environment"],
        plan["base_state"],
        ordered,
        column_impact(nodes),
        work,
        materialized,
        plan.get("base_environment"),
        intervals,
    )


# How the work line names what it builds: "1 incremental table", "2 tables".
_KINDS_OF_TABLE = {"incremental_by_time": "incremental table"}


def column_impact(nodes: Mapping[str, Any]) -> list[ColumnImpact]:
    """Every column a change edits, its upstream columns, and the columns that read it."""
    readers: dict[tuple[str, str], set[tuple[str, str]]] = {}
    spelled: dict[str, dict[str, str]] = {}
    for node_id, node in nodes.items():
        spelled[node_id] = {c["name"].lower(): c["name"] for c in node.get("columns", ())}
        for column in node.get("columns", ()):
            for source in column.get("lineage", ()):
                key = (source["node"], source["column"].lower())
                readers.setdefault(key, set()).add((node_id, column["name"].lower()))
    out = []
    for node_id in sorted(nodes):
        node = nodes[node_id]
        for detail in node["change"].get("details", ()):
            edit = _COLUMN_EDITS.get(detail["kind"])
            if edit is None or "column" not in detail:
                continue
            # A renamed column is read downstream by its old name (``previous``); for a
            # modified column ``previous`` is the old expression.
            renamed = detail["kind"] == "column_renamed" and detail.get("previous")
            old = detail["previous"] if renamed else detail["column"]
            column = next(
                (
                    c
                    for c in node.get("columns", ())
                    if c["name"].lower() == detail["column"].lower()
                ),
                None,
            )
            upstream = tuple(
                sorted(f"{s['node']}.{s['column']}" for s in (column or {}).get("lineage", ()))
            )
            affects = _downstream(readers, (node_id, old.lower()))
            out.append(
                ColumnImpact(
                    node_id,
                    detail["column"],
                    edit,
                    detail.get("previous") if renamed else None,
                    upstream,
                    tuple(f"{n}.{spelled.get(n, {}).get(c, c)}" for n, c in affects),
                )
            )
    return out


def _downstream(
    readers: Mapping[tuple[str, str], set[tuple[str, str]]], start: tuple[str, str]
) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    queue = deque([start])
    while queue:
        for reader in readers.get(queue.popleft(), ()):
            if reader not in seen:
                seen.add(reader)
                queue.append(reader)
    return sorted(seen)


@dataclass(frozen=True, slots=True)
class NodeDiff:
    node: str
    changes: tuple[str, ...]  # "category breaking -> non_breaking", "snapshot ...", ...
    sql_diff: str


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """What differs between two plan files, node by node."""

    plan_ids: tuple[str, str]
    environments: tuple[str, str]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    changed: tuple[NodeDiff, ...]
    other: tuple[str, ...]  # plan-level differences (environment, base state, work)

    @property
    def same(self) -> bool:
        return not (self.only_a or self.only_b or self.changed or self.other)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_ids": list(self.plan_ids),
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
            "changed": [
                {"node": n.node, "changes": list(n.changes), "sql_diff": n.sql_diff}
                for n in self.changed
            ],
            "other": list(self.other),
        }


def diff_plans(a: Mapping[str, Any], b: Mapping[str, Any]) -> PlanDiff:
    """Compare two plans for a review: which nodes appear, vanish or differ, and how.

    Example:
        >>> p = {"plan_id": "1", "environment": "prod", "base_state": None, "nodes": {},
        ...      "work": []}
        >>> diff_plans(p, p).same
        True
    """
    import difflib

    na, nb = a["nodes"], b["nodes"]
    changed = []
    for node_id in sorted(set(na) & set(nb)):
        x, y = na[node_id], nb[node_id]
        notes = []
        for label, get in (
            ("category", lambda n: n["change"]["category"]),
            ("materialized", lambda n: n.get("materialized")),
            ("snapshot", lambda n: n.get("snapshot")),
            ("columns", lambda n: [c["name"] for c in n.get("columns", ())]),
        ):
            if get(x) != get(y):
                notes.append(f"{label} {_short(get(x))} -> {_short(get(y))}")
        old_sql = x.get("sql", {}).get("normalized", "")
        new_sql = y.get("sql", {}).get("normalized", "")
        sql_diff = ""
        if old_sql != new_sql:
            notes.append("sql changed")
            sql_diff = "".join(
                difflib.unified_diff(
                    old_sql.splitlines(keepends=True), new_sql.splitlines(keepends=True), "a", "b"
                )
            )
        if notes:
            changed.append(NodeDiff(node_id, tuple(notes), sql_diff))
    other = []
    for key in ("environment", "base_state", "base_environment"):
        if a.get(key) != b.get(key):
            other.append(f"{key} {_short(a.get(key))} -> {_short(b.get(key))}")
    work_a = {_work_key(w) for w in a["work"]}
    work_b = {_work_key(w) for w in b["work"]}
    other += [f"work - {n} ({r})" for n, r in sorted(work_a - work_b)]
    other += [f"work + {n} ({r})" for n, r in sorted(work_b - work_a)]
    return PlanDiff(
        (a["plan_id"], b["plan_id"]),
        (a["environment"], b["environment"]),
        tuple(sorted(set(na) - set(nb))),
        tuple(sorted(set(nb) - set(na))),
        tuple(changed),
        tuple(other),
    )


def _work_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """A work item as the diff shows it: its node, and its reason and ranges."""
    if "intervals" not in item:
        return item["node"], item["reason"]
    ranges = IntervalWork(
        item["node"],
        tuple((r["start"], r["end"], r["reason"]) for r in item["intervals"]),
        item.get("batch_size"),
    )
    return item["node"], f"{item['reason']}: {ranges.describe()}"


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
