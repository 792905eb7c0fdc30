"""The events a run emits about its work items, worded for people and for machines."""

from __future__ import annotations

from typing import Any

from seeknal.intervals import format_time
from seeknal.runtime.events import Event, EventKind
from seeknal.runtime.incremental import INCREMENTAL
from seeknal.runtime.work import BuildOutcome, WorkItem
from seeknal.wording import count_of


def _event(kind: EventKind, item: WorkItem, env: str, message: str, **fields: Any) -> Event:
    """An event about ``item``: its node and snapshot, the environment, and ``fields``."""
    return Event(
        kind,
        node=item.node,
        snapshot=item.snapshot,
        environment=env,
        message=f"{item.node}: {message}",
        **fields,
    )


def started_event(item: WorkItem, env: str) -> Event:
    return _event(
        EventKind.NODE_STARTED,
        item,
        env,
        f"building {item.materialized.value} {item.snapshot} ({item.reason})",
        reason=item.reason,
    )


def reused_event(item: WorkItem, env: str) -> Event:
    return _event(
        EventKind.NODE_REUSED,
        item,
        env,
        f"reusing {item.snapshot}, built by an earlier run",
        reason="already_built",
    )


def batch_built_event(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    batch, result = outcome.batch, outcome.result
    assert batch is not None and result is not None and item.binding is not None
    dropped = f", guard dropped {count_of(result.dropped, 'row')}" if result.dropped else ""
    return _event(
        EventKind.BATCH_BUILT,
        item,
        env,
        f"batch {batch.index + 1}/{batch.count} "
        f"{batch.describe(item.binding.schedule)}, {count_of(result.inserted, 'row')}{dropped}, "
        f"{outcome.seconds:.2f}s",
        seconds=outcome.seconds,
        rows=result.inserted,
        reason=",".join(batch.reasons),
        start=format_time(batch.interval.start),
        end=format_time(batch.interval.end),
        dropped=result.dropped,
    )


def skipped_event(item: WorkItem, cause: str | None, env: str) -> Event:
    return _event(
        EventKind.NODE_SKIPPED,
        item,
        env,
        f"skipped, upstream {cause} failed",
        reason=cause,
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
    return _event(
        EventKind.NODE_BUILT,
        item,
        env,
        f"built {what} in {outcome.seconds:.2f}s{rows}",
        seconds=outcome.seconds,
        rows=outcome.rows,
        reason=item.reason,
        dropped=dropped,
    )


def failed_event(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    return _event(
        EventKind.NODE_FAILED,
        item,
        env,
        f"failed: {outcome.error}",
        seconds=outcome.seconds,
        reason=item.reason,
    )
