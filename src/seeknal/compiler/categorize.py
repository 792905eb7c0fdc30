"""Pass 7: what changed in each node against the environment, and what must be built.

A node's **direct** change comes from its own definition: its SQL compared with the
recorded normalized SQL by ``categorize_change`` (column by column), its materialization,
a seed's content, a rule's severity. Its **indirect** change comes from its inputs: it is
hit when an input's rows changed, or when it reads a column whose values changed (every
column the SQL mentions counts, filters and joins included). From both follow the
category and the snapshot:

- ``added``, ``breaking``, ``non_breaking``, ``indirect_breaking``: a new snapshot, named
  from the data fingerprint;
- ``unchanged``, ``metadata``, ``indirect_non_breaking``: the table the environment has
  is kept (a view is always named from its fingerprint: it costs nothing to create, and
  its name then says exactly which tables it reads);
- ``forward_only``: in prod the table is kept and new columns are added in place; the
  new SQL applies the next time the table is rebuilt. Elsewhere the change is built as a
  preview in a new snapshot, so no other environment sees it.

Which of a node's columns changed is passed on, so a descendant that reads none of them
keeps its table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seeknal.canonical import sha256_hex
from seeknal.compiler.change import (
    ChangeCategory,
    ChangeDetail,
    EditKind,
    categorize_change,
)
from seeknal.compiler.interval_work import (
    IntervalReason,
    NodeIntervals,
    RangeWork,
    Window,
    WorkNode,
    plan_intervals,
    restated_nodes,
    touched_by_intervals,
)
from seeknal.compiler.model import CompiledNode, Kind, Materialized
from seeknal.errors import Diagnostic, SeeknalError
from seeknal.naming import PROD, snapshot_name
from seeknal.state import State
from seeknal.state.base import writer_token, written_by_another

# Edits a forward-only change may not make: the kept table would lose or reinterpret data.
DESTRUCTIVE = frozenset({EditKind.COLUMN_REMOVED, EditKind.COLUMN_RENAMED})


class WorkReason(StrEnum):
    NEW = "new"
    SOURCE_DATA_CHANGED = "source_data_changed"
    FORWARD_ONLY = "forward_only"
    # Incremental nodes (see interval_work.py), and what reads them.
    BREAKING_CHANGE = "breaking_change"
    MISSING = "missing"
    LOOKBACK = "lookback"
    RESTATEMENT = "restatement"
    UPSTREAM_INTERVALS = "upstream_intervals"


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One snapshot to build. ``intervals`` is set (maybe empty) for an incremental node:
    the ranges to process; ``add_columns`` when its kept table gains columns first."""

    node: str
    snapshot: str
    reason: WorkReason
    intervals: tuple[RangeWork, ...] | None = None
    batch_size: int | None = None
    add_columns: bool = False


@dataclass(frozen=True, slots=True)
class NodeChange:
    """A node's change against the environment, and what its descendants must know of it.

    ``changed_columns`` (lower case) are the existing columns whose values may differ;
    ``rows_changed`` says the set of rows may differ. ``new_snapshot`` is set when the
    node does not keep the snapshot the environment has.
    """

    category: ChangeCategory
    details: tuple[ChangeDetail, ...] = ()
    sql_diff: str = ""
    changed_columns: frozenset[str] = frozenset()
    rows_changed: bool = False
    new_snapshot: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category.value}
        if self.details:
            out["details"] = [d.to_json() for d in self.details]
        if self.sql_diff:
            out["sql_diff"] = self.sql_diff
        return out


class ForwardOnlyError(SeeknalError):
    """A forward-only change that would drop or reinterpret data the kept table holds."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message, diagnostic.hint)
        self.diagnostic = diagnostic


@dataclass(frozen=True, slots=True)
class _Direct:
    breaking: bool
    details: tuple[ChangeDetail, ...]
    sql_diff: str
    changed_columns: frozenset[str]
    rows_changed: bool


def _unshared(
    fresh: str, node: CompiledNode, previous: Mapping[str, Any] | None, tables: Tables
) -> str:
    """The new snapshot of a changed node: ``fresh``, unless that table may hold rows
    another definition wrote.

    That happens when a table kept through a change (forward-only, or a non-breaking
    change to an incremental table in prod) keeps the name of the definition it was
    created with, and the SQL then goes back to that definition, at once or after
    other changes: the name is the original's, the rows are partly the kept
    definition's. The new snapshot then gets a name of its own, derived from the data
    fingerprint and the name it cannot have, and is built anew.
    """
    name = fresh
    if previous is not None and name == previous["snapshot"]:
        # The table the environment reads now: kept through the change being undone
        # (a state written before tables recorded their writers says no more).
        before = previous.get("fingerprint", {}).get("data", "")
        name = _salted(node, f"{node.data_fingerprint}\nafter kept {before}")
    while not tables.holds_only(name, node.definition):
        name = _salted(node, f"{node.data_fingerprint}\nafter {name}")
    return name


def _salted(node: CompiledNode, text: str) -> str:
    return snapshot_name(node.spec.kind, node.spec.name, sha256_hex(text.encode()))


class Tables:
    """What state says wrote each snapshot's table (``definition``, ``mixed``), and
    which ones a compile asked about: a plan kept for later compiles is still right
    only while their answers are the same (``memo.records_digest``)."""

    def __init__(self, snapshots: Mapping[str, Mapping[str, Any]]) -> None:
        self._snapshots = snapshots
        self.asked: dict[str, list[Any] | None] = {}

    def _writer(self, name: str) -> list[Any] | None:
        token = writer_token(self._snapshots.get(name))
        self.asked[name] = token
        return token

    def holds_only(self, name: str, definition: str) -> bool:
        """Whether the table ``name`` is absent, or holds rows ``definition`` wrote and
        no others (a record older than writers being recorded is taken at its word)."""
        token = self._writer(name)
        return token is None or token[0] is None or (token[0] == definition and not token[1])

    def last_written_by_another(self, name: str, definition: str) -> bool:
        """Whether another definition wrote the table ``name`` last."""
        return written_by_another(self._writer(name), definition)


def categorize_node(
    node: CompiledNode,
    previous: Mapping[str, Any] | None,
    upstream: Mapping[str, NodeChange],
    *,
    dialect: str,
    environment: str,
    tables: Tables,
    forward_only: bool = False,
) -> tuple[NodeChange, str]:
    """The node's change and the snapshot it gets.

    Args:
        node: The compiled node (its ``snapshot`` not chosen yet).
        previous: The environment's record of the node, or None.
        upstream: The changes of the node's inputs (already categorized).
        dialect: The project's SQL dialect.
        environment: The environment compiled for (forward-only keeps tables in prod only).
        tables: What state says wrote each snapshot's table.
        forward_only: ``--forward-only``: every changed table is forward-only.

    Raises:
        ForwardOnlyError: A forward-only change removes or renames a column, or changes a
            column's type.
    """
    fresh = snapshot_name(node.spec.kind, node.spec.name, node.data_fingerprint)
    every = frozenset(c.name.lower() for c in node.columns)
    if previous is None:
        return NodeChange(ChangeCategory.ADDED, (), "", every, True, True), _unshared(
            fresh, node, None, tables
        )

    direct = _direct_change(node, previous, dialect)
    hit_columns, hit_rows = _indirect_hit(node, upstream)
    metadata = previous.get("fingerprint", {}).get("metadata") != node.metadata_fingerprint
    meta_details = (ChangeDetail(EditKind.METADATA_CHANGED),) if metadata else ()
    incremental = node.spec.materialized is Materialized.INCREMENTAL_BY_TIME
    # A kept incremental table must already be one: a plain table's rows have no intervals.
    kept_kind = node.spec.materialized is Materialized.TABLE or (
        incremental and previous.get("materialized") == Materialized.INCREMENTAL_BY_TIME.value
    )
    is_table = kept_kind and node.spec.kind is Kind.TRANSFORM
    keep = previous["snapshot"] if kept_kind else fresh

    if direct is not None:
        changed = direct.changed_columns | hit_columns
        rows = direct.rows_changed or hit_rows
        if rows:
            changed = every
        if is_table and (forward_only or node.spec.forward_only):
            _refuse_destructive(node, previous, direct)
            if environment == PROD:
                # The table stays: descendants keep reading it, so nothing propagates.
                change = NodeChange(ChangeCategory.FORWARD_ONLY, direct.details, direct.sql_diff)
                return change, previous["snapshot"]
            category = ChangeCategory.FORWARD_ONLY
        elif direct.breaking or hit_columns or hit_rows:
            category = ChangeCategory.BREAKING
        else:
            category = ChangeCategory.NON_BREAKING
            if is_table and incremental and environment == PROD:
                # As in SQLMesh: the table stays, gains the new columns, and the new SQL
                # fills new intervals only (restate to recompute old ones).
                change = NodeChange(category, direct.details, direct.sql_diff, changed, rows)
                return change, previous["snapshot"]
        # The SQL as written is part of the metadata, so `metadata_changed` would only
        # repeat the data change here.
        change = NodeChange(category, direct.details, direct.sql_diff, changed, rows, True)
        return change, _unshared(fresh, node, previous, tables)

    if hit_columns or hit_rows:
        changed = every if hit_rows else hit_columns
        return NodeChange(
            ChangeCategory.INDIRECT_BREAKING, meta_details, "", changed, hit_rows, True
        ), _unshared(fresh, node, previous, tables)
    if kept_kind and tables.last_written_by_another(keep, node.definition):
        # Another environment's plan took the table over (a forward-only change, or a
        # non-breaking one kept in prod) and wrote it with its own SQL: this
        # environment, still on the SQL it had, gets a table of its own, and neither
        # reads nor writes rows of the other definition.
        return NodeChange(
            ChangeCategory.INDIRECT_BREAKING,
            (*meta_details, ChangeDetail(EditKind.TABLE_CHANGED_ELSEWHERE)),
            "",
            every,
            True,
            True,
        ), _unshared(fresh, node, previous, tables)
    if any(upstream[p].new_snapshot for p in node.depends_on):
        category = ChangeCategory.INDIRECT_NON_BREAKING
    elif metadata:
        category = ChangeCategory.METADATA
    else:
        category = ChangeCategory.UNCHANGED
    return NodeChange(category, meta_details, new_snapshot=keep != previous["snapshot"]), keep


def _direct_change(node: CompiledNode, previous: Mapping[str, Any], dialect: str) -> _Direct | None:
    """The node's own data change, or None when its definition is what the record says."""
    recorded = previous.get("fingerprint", {}).get("definition")
    if recorded == node.definition:
        return None
    details: list[ChangeDetail] = []
    changed: set[str] = set()
    rows = False
    breaking = False
    diff = ""
    if previous.get("materialized") != node.spec.materialized.value:
        details.append(ChangeDetail(EditKind.MATERIALIZATION_CHANGED))
    if previous.get("sql") != node.normalized_sql:
        try:
            sql_change = categorize_change(
                previous["sql"], node.normalized_sql, dialect=dialect, schema=node.input_schema
            )
        except SeeknalError:
            # Text seeknal wrote itself no longer parses (another sqlglot): assume the worst.
            details.append(ChangeDetail(EditKind.SQL_LOGIC_CHANGED))
            return _Direct(True, tuple(details), "", frozenset(), True)
        diff = sql_change.sql_diff
        details.extend(sql_change.details)
        changed |= sql_change.changed_columns
        rows = sql_change.rows_changed
        breaking = sql_change.category is ChangeCategory.BREAKING
    after = {c.name.lower(): c.name for c in node.columns}
    for column in previous.get("columns", []):
        old = column["name"]
        new = after.get(old.lower())
        if new == old:
            continue
        # Gone, or the same SQL once normalized while the engine's name changed case
        # (`total` -> "Total"): a reader of the old name breaks either way.
        breaking = True
        changed.add(old.lower())
        kind = EditKind.COLUMN_REMOVED if new is None else EditKind.COLUMN_RENAMED
        if not any(d.kind in DESTRUCTIVE and old.lower() in _names(d) for d in details):
            details.append(ChangeDetail(kind, old) if new is None else ChangeDetail(kind, new, old))
    if node.spec.kind is Kind.SEED and previous.get("sql") == node.normalized_sql:
        # Same columns, new rows: the seed's content is part of its definition.
        details.append(ChangeDetail(EditKind.SOURCE_CHANGED))
        breaking = rows = True
    if not details and node.spec.incremental is not None:
        # The `incremental:` block changed what the table holds (schedule, time column,
        # start, end): it is rebuilt.
        details.append(ChangeDetail(EditKind.MATERIALIZATION_CHANGED))
        breaking = rows = True
    if not details:
        # Something defining the rows changed that no rule above names (a rule's
        # severity, the dialect): the safe answer is breaking.
        details.append(ChangeDetail(EditKind.SQL_LOGIC_CHANGED))
        breaking = rows = True
    ordered = tuple(sorted(set(details), key=lambda d: (d.kind.value, d.column or "")))
    return _Direct(breaking, ordered, diff, frozenset(changed), rows)


def _names(detail: ChangeDetail) -> set[str]:
    return {n.lower() for n in (detail.column, detail.previous) if n}


def _indirect_hit(
    node: CompiledNode, upstream: Mapping[str, NodeChange]
) -> tuple[frozenset[str], bool]:
    """The node's output columns an input's change reaches, and whether its rows change."""
    every = frozenset(c.name.lower() for c in node.columns)
    hit: set[str] = set()
    for parent in node.depends_on:
        change = upstream[parent]
        if change.rows_changed:
            return every, True
        touched = node.reads.get(parent, frozenset()) & change.changed_columns
        if not touched:
            continue
        if node.row_reads.get(parent, frozenset()) & touched:
            return every, True
        reached = {
            c.name.lower()
            for c in node.columns
            if any(p == parent and col.lower() in touched for p, col in c.lineage)
        }
        lineage_reads = {col.lower() for c in node.columns for p, col in c.lineage if p == parent}
        if touched - lineage_reads:
            # Mentioned, but neither as a value nor as a row filter we can place.
            return every, True
        hit |= reached
    return frozenset(hit), False


def _refuse_destructive(node: CompiledNode, previous: Mapping[str, Any], direct: _Direct) -> None:
    bad = [d for d in direct.details if d.kind in DESTRUCTIVE]
    types = {c["name"].lower(): c.get("type") for c in previous.get("columns", [])}
    retyped = [
        c.name
        for c in node.columns
        if c.name.lower() in types and types[c.name.lower()] not in (None, c.type)
    ]
    if not bad and not retyped:
        return
    what = (
        f"{bad[0].kind.value.replace('_', ' ')} '{bad[0].previous or bad[0].column}'"
        if bad
        else f"column '{retyped[0]}' changes type from {types[retyped[0].lower()]} to "
        + next(c.type or "?" for c in node.columns if c.name == retyped[0])
    )
    spec = node.spec
    where = spec.at("forward_only", key=True) if spec.forward_only else spec.at("kind")
    raise ForwardOnlyError(
        Diagnostic(
            f"forward-only change to {spec.id} is destructive: {what}",
            where,
            hint="a forward-only change keeps the existing table, so it may only add "
            "columns; drop `forward_only` (and `--forward-only`) to rebuild the table",
        )
    )


def work_nodes(
    ordered: Sequence[CompiledNode], changes: Mapping[str, NodeChange]
) -> list[WorkNode]:
    """What :func:`plan_work` reads of each compiled node, in the same order."""
    return [
        WorkNode(
            id=node.id,
            depends_on=tuple(node.depends_on),
            snapshot=node.snapshot,
            data_version=node.data_version,
            materialized=node.spec.materialized,
            incremental=node.spec.incremental,
            category=changes[node.id].category.value,
            new_snapshot=changes[node.id].new_snapshot,
        )
        for node in ordered
    ]


def plan_work(
    ordered: Sequence[WorkNode],
    state: State,
    window: Window | None = None,
) -> list[WorkItem]:
    """Snapshots to build or alter, and intervals to process, in dependency order.

    A table, view or rule that reads rows this plan's interval work changes is rebuilt
    in the same run (reason ``upstream_intervals``), as is every node named by
    ``--restate`` or downstream of one (``restatement``). It reads only ``ordered``
    (:func:`work_nodes`), the state and the window: the plan memo recomputes the work
    of a remembered plan from the same three.
    """
    window = window or Window()
    fresh = {
        node.id: IntervalReason.NEW
        if node.category == ChangeCategory.ADDED or not node.new_snapshot
        else IntervalReason.BREAKING_CHANGE
        for node in ordered
    }
    intervals = plan_intervals(ordered, fresh, state, window)
    restated = restated_nodes(ordered, window.restate)
    touched = touched_by_intervals(ordered, intervals, restated)
    work = []
    for node in ordered:
        built = state.snapshots.get(node.snapshot)
        if node.id in intervals:
            item = _incremental_work(node, built, intervals[node.id])
            if item is not None:
                work.append(item)
        elif built is None:
            work.append(WorkItem(node.id, node.snapshot, WorkReason.NEW))
        elif built.get("data_version") != node.data_version:
            work.append(WorkItem(node.id, node.snapshot, WorkReason.SOURCE_DATA_CHANGED))
        elif node.category == ChangeCategory.FORWARD_ONLY:
            work.append(WorkItem(node.id, node.snapshot, WorkReason.FORWARD_ONLY))
        elif node.id in restated:
            work.append(WorkItem(node.id, node.snapshot, WorkReason.RESTATEMENT))
        elif node.id in touched:
            work.append(WorkItem(node.id, node.snapshot, WorkReason.UPSTREAM_INTERVALS))
    return work


def _incremental_work(
    node: WorkNode, built: Mapping[str, Any] | None, info: NodeIntervals
) -> WorkItem | None:
    """An incremental node's work: its ranges, and its table created or altered first."""
    config = node.incremental
    assert config is not None
    ranges = info.ranges
    if built is None:
        # Even with nothing to process yet, the table must exist for the view to read.
        reason = WorkReason(ranges[0].reason.value) if ranges else WorkReason.NEW
        if node.new_snapshot and node.category != ChangeCategory.ADDED:
            reason = WorkReason.BREAKING_CHANGE
        return WorkItem(node.id, node.snapshot, reason, ranges, config.batch_size)
    # A kept table whose columns changed gains them before new intervals use them.
    add = node.category == ChangeCategory.FORWARD_ONLY or (
        node.category == ChangeCategory.NON_BREAKING and not node.new_snapshot
    )
    if not ranges and not add:
        return None
    found = {r.reason for r in ranges}
    reason = next(
        (
            WorkReason(r.value)
            for r in (IntervalReason.RESTATEMENT, IntervalReason.MISSING, IntervalReason.LOOKBACK)
            if r in found
        ),
        WorkReason.FORWARD_ONLY,
    )
    if node.category == ChangeCategory.FORWARD_ONLY:
        reason = WorkReason.FORWARD_ONLY
    return WorkItem(node.id, node.snapshot, reason, ranges, config.batch_size, add)
