"""What a run reports while it happens, and what it leaves when it ends.

The runtime never prints: it hands :class:`Event` values to a callback, always from the
thread that called :func:`~seeknal.runtime.execute.execute_plan`, so a renderer needs no
locking of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventKind(enum.StrEnum):
    """Every kind of event a run emits."""

    RUN_STARTED = "run_started"
    NODE_STARTED = "node_started"
    NODE_BUILT = "node_built"
    BATCH_BUILT = "batch_built"
    NODE_REUSED = "node_reused"
    NODE_FAILED = "node_failed"
    NODE_SKIPPED = "node_skipped"
    PROMOTED = "promoted"
    NOTHING_TO_DO = "nothing_to_do"
    RUN_FINISHED = "run_finished"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened during a run.

    Attributes:
        kind: What happened.
        node: The node id, for ``node_*`` events.
        snapshot: The snapshot built, reused, failed or skipped.
        seconds: Duration of a build (``node_built``, ``node_failed``) or of the run
            (``run_finished``).
        rows: Rows of a table snapshot just built; None for views.
        message: A one-line sentence for humans; every event has one.
        reason: Why: the work item's reason (``new``, ``source_data_changed``) on
            ``node_started``/``node_built``; ``already_built`` on ``node_reused``;
            the failed upstream node id on ``node_skipped``; on ``batch_built``, the
            reasons of the ranges the batch covers (``missing``, ``lookback``, ...).
        environment: The environment the run applies to.
        start: On ``batch_built``, the batch's first instant (ISO-8601 UTC).
        end: On ``batch_built``, the batch's exclusive end.
        dropped: On ``batch_built`` and an incremental ``node_built``, rows the query
            returned outside the batch's interval, which the guard kept out.

    Example:
        >>> Event(EventKind.NODE_REUSED, node="source.orders", message="reused").kind
        <EventKind.NODE_REUSED: 'node_reused'>
    """

    kind: EventKind
    node: str | None = None
    snapshot: str | None = None
    seconds: float | None = None
    rows: int | None = None
    message: str = ""
    reason: str | None = None
    environment: str | None = None
    start: str | None = None
    end: str | None = None
    dropped: int | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a successful run did, node ids sorted (a failed run raises ExecutionError).

    Attributes:
        built: Nodes whose snapshot was built in this run.
        reused: Work items whose snapshot state already recorded with the same data
            version (an earlier, interrupted or failed run built them). The run's summary
            line also counts the nodes that had no work: every node it did not build.
        failed: Nodes that failed (always empty on a returned result; kept for symmetry
            with the events and for callers that build results themselves).
        skipped: Nodes not built because an upstream node failed (likewise).
        promoted: Whether the environment's views were (re)pointed.
        seconds: Wall-clock duration of the run.
    """

    environment: str
    plan_id: str
    built: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    promoted: bool = False
    seconds: float = 0.0

    @property
    def nothing_to_do(self) -> bool:
        """True when the run neither built nor promoted anything."""
        return not self.built and not self.promoted and not self.failed
