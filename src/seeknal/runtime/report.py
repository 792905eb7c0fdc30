"""The events a run emits about its work items, worded for people and for machines."""

from __future__ import annotations

from seeknal.intervals import format_time
from seeknal.runtime.events import Event, EventKind
from seeknal.runtime.incremental import INCREMENTAL
from seeknal.runtime.work import BuildOutcome, WorkItem
from seeknal.wording import count_of


def started_event(item: WorkItem, env: str) -> Event:
    return Event(
        EventKind.NODE_STARTED,
        node=item.node,
        snapshot=item.snapshot,
        reason=item.reason,
        environment=env,
        message=f"{item.node}: building {item.materialized.value} {item.snapshot} ({item.reason})",
    )


def reused_event(item: WorkItem, env: str) -> Event:
    return Event(
        EventKind.NODE_REUSED,
        node=item.node,
        snapshot=item.snapshot,
        reason="already_built",
        environment=env,
        message=f"{item.node}: reusing {item.snapshot}, built by an earlier run",
    )


def batch_built_event(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    batch, result = outcome.batch, outcome.result
    assert batch is not None and result is not None and item.binding is not None
    dropped = f", guard dropped {count_of(result.dropped, 'row')}" if result.dropped else ""
    return Event(
        EventKind.BATCH_BUILT,
        node=item.node,
        snapshot=item.snapshot,
        seconds=outcome.seconds,
        rows=result.inserted,
        reason=",".join(batch.reasons),
        environment=env,
        start=format_time(batch.interval.start),
        end=format_time(batch.interval.end),
        dropped=result.dropped,
        message=f"{item.node}: batch {batch.index + 1}/{batch.count} "
        f"{batch.describe(item.binding.schedule)}, {count_of(result.inserted, 'row')}{dropped}, "
        f"{outcome.seconds:.2f}s",
    )


def skipped_event(item: WorkItem, cause: str | None, env: str) -> Event:
    return Event(
        EventKind.NODE_SKIPPED,
        node=item.node,
        snapshot=item.snapshot,
        reason=cause,
        environment=env,
        message=f"{item.node}: skipped, upstream {cause} failed",
    )


def built_event(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    rows = "" if outcome.rows is None else f", {count_of(outcome.rows, 'row')}"
    if item.kind == "rule":
        rows = f", {count_of(outcome.rows, 'violating row')}" if outcome.rows else ", passed"
    what = item.materialized.value
    dropped = None
    if item.binding is not None:
        what = INCREMENTAL
        dropped = outcome.result.dropped if outcome.result is not None else 0
        rows = f", {count_of(outcome.rows or 0, 'row')} written"
        if dropped:
            rows += f", guard dropped {count_of(dropped, 'row')}"
    return Event(
        EventKind.NODE_BUILT,
        node=item.node,
        snapshot=item.snapshot,
        seconds=outcome.seconds,
        rows=outcome.rows,
        reason=item.reason,
        environment=env,
        dropped=dropped,
        message=f"{item.node}: built {what} in {outcome.seconds:.2f}s{rows}",
    )


def failed_event(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    return Event(
        EventKind.NODE_FAILED,
        node=item.node,
        snapshot=item.snapshot,
        seconds=outcome.seconds,
        reason=item.reason,
        environment=env,
        message=f"{item.node}: failed: {outcome.error}",
    )
