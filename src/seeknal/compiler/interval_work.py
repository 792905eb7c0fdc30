"""Which intervals of each incremental node a plan processes, and why.

For an incremental node the compiler compares three sets of half-open UTC ranges:

- **expected**: the schedule's whole intervals from the node's ``start`` up to the
  last complete one before now (or the run's ``--end``, or the node's ``end``);
- **completed**: what state records for the node's snapshot (nothing for a new one);
- **allowed**: expected, limited to the run's window (``--start``) and to what every
  incremental node upstream will have completed once this plan ran — a node never
  processes an interval whose upstream interval is missing.

From them come the ranges to process, each with a reason: ``new`` or
``breaking_change`` (a new snapshot: everything allowed), ``missing`` (allowed but not
completed: every gap, not just the newest), ``lookback`` (the ``lookback`` completed
intervals just before each missing range, for late data) and ``restatement``
(completed intervals in the window of a node named by ``--restate``, or downstream of
one). Reasons never overlap: restatement wins over lookback.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seeknal.compiler.model import CompiledNode, IncrementalConfig, Materialized
from seeknal.intervals import (
    Interval,
    IntervalError,
    Intervals,
    Schedule,
    format_time,
    intersect,
    lookback_ranges,
    merge,
    ranges_from_json,
    subtract,
    union,
)
from seeknal.state import State

_FOREVER = 2**62  # beyond any end


class IntervalReason(StrEnum):
    NEW = "new"
    BREAKING_CHANGE = "breaking_change"
    MISSING = "missing"
    LOOKBACK = "lookback"
    RESTATEMENT = "restatement"


@dataclass(frozen=True, slots=True)
class Window:
    """What a run is asked to cover: ``--start``, ``--end``, ``--restate``.

    ``end`` (exclusive) replaces the clock: a plan compiled with ``--end`` is the same
    on every day. Without it, ``now`` (or the wall clock) caps the intervals.
    """

    start: int | None = None
    end: int | None = None
    restate: tuple[str, ...] = ()
    now: int | None = None

    @property
    def cap(self) -> int:
        if self.end is not None:
            return self.end
        return self.now if self.now is not None else int(time.time())


@dataclass(frozen=True, slots=True)
class WorkNode:
    """What planning a node's work reads, and nothing more: the plan's work list is a
    function of these, the state and the window.

    ``category`` and ``new_snapshot`` are the node's change against the environment
    (``categorize.NodeChange``). Kept as JSON by the plan memo (:meth:`to_json`), so a
    compile whose only new input is the state recomputes the work from them.
    """

    id: str
    depends_on: tuple[str, ...]
    snapshot: str
    data_version: str
    materialized: Materialized
    incremental: IncrementalConfig | None
    category: str
    new_snapshot: bool

    def to_json(self) -> dict[str, Any]:
        config = self.incremental
        return {
            "id": self.id,
            "depends_on": list(self.depends_on),
            "snapshot": self.snapshot,
            "data_version": self.data_version,
            "materialized": self.materialized.value,
            "incremental": None
            if config is None
            else {
                "time_column": config.time_column,
                "schedule": config.schedule.expression,
                "timezone": config.schedule.timezone,
                "start": config.start,
                "end": config.end,
                "batch_size": config.batch_size,
                "lookback": config.lookback,
            },
            "category": self.category,
            "new_snapshot": self.new_snapshot,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkNode:
        config = data["incremental"]
        return cls(
            id=data["id"],
            depends_on=tuple(data["depends_on"]),
            snapshot=data["snapshot"],
            data_version=data["data_version"],
            materialized=Materialized(data["materialized"]),
            incremental=None
            if config is None
            else IncrementalConfig(
                time_column=config["time_column"],
                schedule=Schedule.parse(config["schedule"], config["timezone"]),
                start=config["start"],
                end=config["end"],
                batch_size=config["batch_size"],
                lookback=config["lookback"],
            ),
            category=data["category"],
            new_snapshot=data["new_snapshot"],
        )


@dataclass(frozen=True, slots=True)
class RangeWork:
    """One merged range to process, and why."""

    interval: Interval
    reason: IntervalReason

    def to_json(self) -> dict[str, str]:
        return {
            "start": format_time(self.interval.start),
            "end": format_time(self.interval.end),
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class NodeIntervals:
    """One incremental node's intervals as the plan sees them."""

    expected: Intervals
    completed: Intervals
    ranges: tuple[RangeWork, ...]
    waiting: Intervals  # expected and not completed, but blocked by upstream

    @property
    def after(self) -> Intervals:
        """What the node will have completed once the plan ran."""
        return union(self.completed, (r.interval for r in self.ranges))

    @property
    def missing(self) -> Intervals:
        return subtract(self.expected, self.completed)


def restated_nodes(ordered: Sequence[WorkNode], restate: Sequence[str]) -> frozenset[str]:
    """The nodes named by ``--restate`` and every node downstream of them."""
    chosen = set(restate)
    for node in ordered:
        if any(parent in chosen for parent in node.depends_on):
            chosen.add(node.id)
    return frozenset(chosen)


def completed_intervals(state: State, snapshot: str) -> Intervals | None:
    """The ranges state records for ``snapshot``; None when it records no such snapshot."""
    record = state.snapshots.get(snapshot)
    if record is None:
        return None
    try:
        return ranges_from_json(record.get("intervals") or ())
    except (IntervalError, ValueError, TypeError):
        return ()  # unreadable ranges: redo them rather than trust them


def plan_intervals(
    ordered: Sequence[WorkNode],
    fresh: Mapping[str, IntervalReason],
    state: State,
    window: Window,
) -> dict[str, NodeIntervals]:
    """Every incremental node's intervals, in dependency order.

    Args:
        ordered: The compiled nodes, upstream first.
        fresh: Per incremental node, the reason its ranges get when state has no record
            of its snapshot: ``new``, or ``breaking_change`` for a changed node.
        state: The state compiled against.
        window: The run's window and restatements.
    """
    restated = restated_nodes(ordered, window.restate)
    upstream: dict[str, frozenset[str]] = {}
    out: dict[str, NodeIntervals] = {}
    for node in ordered:
        nearest: set[str] = set()
        for parent in node.depends_on:
            nearest |= {parent} if parent in out else upstream.get(parent, frozenset())
        upstream[node.id] = frozenset(nearest)
        config = node.incremental
        if config is None or node.materialized is not Materialized.INCREMENTAL_BY_TIME:
            continue
        covered = [out[p].after for p in sorted(nearest)]
        out[node.id] = _node_intervals(
            node,
            config,
            covered,
            completed_intervals(state, node.snapshot),
            fresh_reason=fresh.get(node.id, IntervalReason.NEW),
            restate=node.id in restated,
            window=window,
        )
    return out


def _node_intervals(
    node: WorkNode,
    config: IncrementalConfig,
    covered: list[Intervals],
    completed: Intervals | None,
    *,
    fresh_reason: IntervalReason,
    restate: bool,
    window: Window,
) -> NodeIntervals:
    schedule = config.schedule
    end = min(window.cap, config.end if config.end is not None else _FOREVER)
    whole = _inward(schedule, [Interval(config.start, end)] if config.start < end else [])

    def upstream_complete(ranges: Intervals) -> Intervals:
        """The whole intervals of ``ranges`` every incremental input will have."""
        for upstream in covered:
            ranges = _inward(schedule, intersect(ranges, upstream))
        return ranges

    # A restatement takes every completed interval touching the window, even one
    # reaching past its ends: a week holding two restated days is restated whole.
    lowest = window.start if window.start is not None else config.start
    outer = schedule.outward(Interval(lowest, end)) if restate and lowest < end else None
    allowed = upstream_complete(whole)
    if window.start is not None:
        # A restated node fills from where its restatement starts: the same command run
        # again after a crash refills what the killed run had forgotten.
        lower = window.start if outer is None else min(window.start, outer.start)
        allowed = _inward(schedule, intersect(allowed, [Interval(lower, _FOREVER)]))
    if completed is None:  # a new snapshot: everything allowed
        ranges = tuple(RangeWork(r, fresh_reason) for r in allowed)
        return NodeIntervals(whole, (), ranges, subtract(whole, allowed))
    missing = subtract(allowed, completed)
    restated: Intervals = ()
    if outer is not None:
        restated = upstream_complete(intersect(completed, [outer]))
    looked = subtract(
        intersect(
            lookback_ranges(missing, completed, schedule, config.lookback, floor=config.start),
            allowed,
        ),
        restated,
    )
    work = sorted(
        [RangeWork(r, IntervalReason.MISSING) for r in missing]
        + [RangeWork(r, IntervalReason.RESTATEMENT) for r in restated]
        + [RangeWork(r, IntervalReason.LOOKBACK) for r in looked],
        key=lambda w: w.interval,
    )
    waiting = subtract(subtract(whole, completed), allowed)
    return NodeIntervals(whole, completed, tuple(work), waiting)


def _inward(schedule: Schedule, ranges: Sequence[Interval]) -> Intervals:
    """Each range shrunk to the whole schedule intervals it holds."""
    return merge(r for r in (schedule.inward(i) for i in ranges) if r is not None)


def touched_by_intervals(
    ordered: Sequence[WorkNode],
    intervals: Mapping[str, NodeIntervals],
    restated: frozenset[str],
) -> frozenset[str]:
    """Tables, views and rules that read rows this plan's interval work changes.

    They are rebuilt in the same run: a table built on an incremental node must show
    the intervals just added or restated. An incremental node below them is not: it
    processes its own intervals.
    """
    changed: set[str] = {n for n, info in intervals.items() if info.ranges}
    touched: set[str] = set()
    for node in ordered:
        if node.id in intervals:
            continue
        if node.id in restated or any(p in changed for p in node.depends_on):
            changed.add(node.id)
            touched.add(node.id)
    return frozenset(touched)


def incremental_entry(node: CompiledNode) -> dict[str, Any]:
    """The plan's ``incremental`` section of a node: what the runtime needs per batch."""
    config = node.spec.incremental
    assert config is not None
    entry: dict[str, Any] = {
        "time_column": config.time_column,
        "time_type": node.time_type,
        "schedule": config.schedule.expression,
        "timezone": config.schedule.timezone,
        "start": format_time(config.start),
        "lookback": config.lookback,
        "parameters": list(node.parameters),
    }
    if config.end is not None:
        entry["end"] = format_time(config.end)
    if config.batch_size is not None:
        entry["batch_size"] = config.batch_size
    return entry
