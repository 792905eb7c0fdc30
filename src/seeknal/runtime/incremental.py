"""Incremental nodes at run time: batches, their parameters, and what state records.

A plan lists, per incremental node, merged ranges to process with a reason each. The
runtime cuts them into batches of ``batch_size`` schedule intervals (``seeknal.intervals``,
the same module the compiler planned them with) and runs the batches of one node in time
order. Each batch is one engine transaction — the query runs with the batch's bounds
bound, the interval's rows are deleted and the query's rows inside the interval are
inserted — and state records the node's completed intervals right after it commits.

What keeps a crash harmless, at any moment:

- a batch committed but not recorded is simply run again (delete + insert);
- before the first batch of the run commits, state forgets the intervals this run
  restates (``forget``), so a run killed half-way leaves them missing, and the next
  run — whatever it is asked — fills them;
- a table the warehouse lost, while state still lists its intervals, is recorded
  empty before it is created again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seeknal.engines.base import BatchResult
from seeknal.intervals import (
    Interval,
    IntervalError,
    Intervals,
    Schedule,
    format_short,
    intersect,
    parse_time,
    ranges_from_json,
    ranges_to_json,
    split_batches,
    subtract,
    union,
)
from seeknal.state.base import State

INCREMENTAL = "incremental_by_time"
# Ranges processed only where state does not already have them (a resumed run skips
# what its crashed attempt finished); the others are reprocessed by definition.
FILL_REASONS = frozenset({"new", "breaking_change", "missing"})


@dataclass(frozen=True, slots=True)
class TimeBinding:
    """How one incremental node binds a batch: its time column and its parameters."""

    time_column: str
    time_type: str  # date | timestamp | timestamptz
    schedule: Schedule
    parameters: tuple[str, ...]

    @classmethod
    def from_plan(cls, entry: Mapping[str, Any]) -> TimeBinding:
        """From a plan node's ``incremental`` section."""
        return cls(
            time_column=entry["time_column"],
            time_type=entry["time_type"],
            schedule=Schedule.parse(entry["schedule"], entry["timezone"]),
            parameters=tuple(entry["parameters"]),
        )

    def parameters_for(self, interval: Interval) -> dict[str, Any]:
        """Values of ``$start_ts``, ``$end_ts`` (UTC TIMESTAMP) and ``$start_date``,
        ``$end_date`` (DATE in the schedule's zone) for one batch; both ends exclusive.

        Example:
            >>> from seeknal.intervals import DAY
            >>> b = TimeBinding("d", "date", Schedule.parse("@daily"), ("end_date", "start_ts"))
            >>> b.parameters_for(Interval(0, DAY))
            {'end_date': datetime.date(1970, 1, 2), 'start_ts': datetime.datetime(1970, 1, 1, 0, 0)}
        """
        values = {
            "start_ts": _naive_utc(interval.start),
            "end_ts": _naive_utc(interval.end),
            "start_date": datetime.fromtimestamp(interval.start, self.schedule.tz).date(),
            "end_date": datetime.fromtimestamp(interval.end, self.schedule.tz).date(),
        }
        return {name: values[name] for name in self.parameters}

    def bounds(self, interval: Interval) -> tuple[Any, Any]:
        """The guard's bounds, typed like the time column so DuckDB compares them exactly."""
        if self.time_type == "date":
            tz = self.schedule.tz
            return (
                datetime.fromtimestamp(interval.start, tz).date(),
                datetime.fromtimestamp(interval.end, tz).date(),
            )
        if self.time_type == "timestamptz":
            return (
                datetime.fromtimestamp(interval.start, UTC),
                datetime.fromtimestamp(interval.end, UTC),
            )
        return _naive_utc(interval.start), _naive_utc(interval.end)


def _naive_utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of a node: ``index`` of ``count`` in this run, in time order."""

    node: str
    index: int
    count: int
    interval: Interval
    reasons: tuple[str, ...]

    def describe(self, schedule: Schedule) -> str:
        """``[2024-01-01, 2024-02-01) 31 intervals`` for people."""
        n = schedule.count(self.interval)
        tz = schedule.tz
        noun = "interval" if n == 1 else "intervals"
        return (
            f"[{format_short(self.interval.start, tz)}, {format_short(self.interval.end, tz)}) "
            f"{n} {noun}"
        )


@dataclass(slots=True)
class Ledger:
    """What one incremental snapshot holds, as this run changes it; feeds state's record.

    Mutable on purpose: a node's batches run one after another (each waits for the
    previous one), each adding its interval right after its transaction commits.
    """

    record: dict[str, Any]
    completed: Intervals
    rows: int | None
    create: bool = False
    add_columns: bool = False
    batches: list[Batch] = field(default_factory=list)

    def add(self, interval: Interval, result: BatchResult) -> dict[str, Any]:
        """Count a committed batch in; return the record state must now hold."""
        self.completed = union(self.completed, [interval])
        if self.rows is not None:
            self.rows += result.inserted - result.deleted
        return self.current()

    def current(self) -> dict[str, Any]:
        return {**self.record, "rows": self.rows, "intervals": ranges_to_json(self.completed)}


@dataclass(frozen=True, slots=True)
class Preparation:
    """What must happen before a node's batches, and the state writes to do at once."""

    ledger: Ledger
    forget: dict[str, Any] | None  # a record to write before any batch of the run


def recorded_intervals(record: Mapping[str, Any] | None) -> Intervals | None:
    """The completed ranges of a state record; None when there is no incremental record."""
    if record is None or record.get("materialized") != INCREMENTAL:
        return None
    try:
        return ranges_from_json(record.get("intervals") or ())
    except (IntervalError, ValueError, TypeError):
        return ()


def prepare(
    record: dict[str, Any],
    ranges: Sequence[tuple[Interval, str]],
    binding: TimeBinding,
    batch_size: int | None,
    previous: Mapping[str, Any] | None,
    present: bool,
    *,
    add_columns: bool = False,
) -> Preparation:
    """Decide a node's batches from the plan's ranges and what state and warehouse hold.

    Args:
        record: The node's state record without ``rows`` and ``intervals``.
        ranges: The plan's ranges with their reasons.
        binding: The node's schedule and time column.
        batch_size: Schedule intervals per batch (None: one per range).
        previous: State's record of the snapshot, if any.
        present: Whether the warehouse has the table.
        add_columns: The kept table gains the plan's columns first.
    """
    completed = recorded_intervals(previous)
    forget = None
    redo: Intervals = ()
    create = completed is None or not present
    if create:
        # A new table, or one the warehouse lost: whatever state listed must be redone,
        # and state must stop listing it before the (empty) table exists again.
        redo = completed or ()
        if previous is not None:
            forget = {**record, "rows": 0, "intervals": []}
        completed = ()
        rows: int | None = 0
    else:
        assert completed is not None and previous is not None
        rows = previous.get("rows")
        restated = [r for r, reason in ranges if reason == "restatement"]
        if intersect(completed, restated):
            completed = subtract(completed, restated)
            forget = {**record, "rows": rows, "intervals": ranges_to_json(completed)}
    fill = subtract([r for r, reason in ranges if reason in FILL_REASONS], completed)
    again = [r for r, reason in ranges if reason not in FILL_REASONS]
    todo = split_batches(union(fill, again, redo), binding.schedule, batch_size)
    by_reason = [(r, reason) for r, reason in ranges]
    node = record["node"]
    batches = [
        Batch(
            node,
            index,
            len(todo),
            interval,
            tuple(sorted({reason for r, reason in by_reason if intersect([r], [interval])}))
            or ("missing",),
        )
        for index, interval in enumerate(todo)
    ]
    ledger = Ledger(record, completed, rows, create, add_columns, batches)
    return Preparation(ledger, forget)


def missing_intervals_for(
    node: Mapping[str, Any], state: State, *, now: int | None = None, end: str | None = None
) -> Intervals:
    """The intervals a plan node's snapshot still lacks: what promotion should check.

    Expected is the node's schedule from its ``start`` to the last interval complete at
    ``now`` (or ``end``, or the node's own end); completed is what ``state`` records for
    the node's snapshot. An environment whose incremental tables miss intervals shows
    incomplete data.

    Args:
        node: A node of a verified plan (``plan["nodes"][id]``).
        state: The current state.
        now: Seconds since the epoch (default: the clock).
        end: An exclusive end (ISO-8601) instead of ``now``.

    Returns:
        The missing ranges, merged; empty for a node that is not incremental.

    Example:
        >>> missing_intervals_for(plan["nodes"]["transform.events_daily"], state)  # doctest: +SKIP
        (Interval(start=1717200000, end=1717286400),)
    """
    entry = node.get("incremental")
    if entry is None:
        return ()
    schedule = Schedule.parse(entry["schedule"], entry["timezone"])
    cap = parse_time(end) if end is not None else now
    if cap is None:
        cap = int(datetime.now(UTC).timestamp())
    if "end" in entry:
        cap = min(cap, parse_time(entry["end"]))
    start = parse_time(entry["start"])
    expected = schedule.inward(Interval(start, cap)) if start < cap else None
    completed = recorded_intervals(state.snapshots.get(node["snapshot"])) or ()
    return subtract([expected], completed) if expected is not None else ()
