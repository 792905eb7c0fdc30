"""Ctrl-C during execute_plan: running queries stop at once, completed work stays recorded."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seeknal.runtime import Event, EventKind, execute_plan
from seeknal.state.file import FileStateBackend
from tests.runtime.plans import STATE_DIR, NodeSpec, PlanBuilder, write_project

# Minutes of work for DuckDB unless interrupted: a 5-way cross join of 200 rows.
SLOW_SQL = (
    "SELECT SUM(a.range + b.range + c.range + d.range + e.range) AS s FROM range(200) a, "
    "range(200) b, range(200) c, range(200) d, range(200) e, {{ source.orders }} o "
    "WHERE o.order_id = 1"
)
ORDERS = NodeSpec(
    "source.orders",
    "SELECT * FROM read_csv('data/orders.csv', header=true)",
    data_file="data/orders.csv",
    columns=("order_id", "customer", "amount"),
)


def plan_with(project: Path, sql: str) -> dict[str, Any]:
    return (
        PlanBuilder(project)
        .add(ORDERS)
        .add(NodeSpec("transform.slow", sql, depends_on=("source.orders",), columns=("s",)))
        .build()
    )


def interrupt_when_started(
    node: str, delay: float = 0.3
) -> tuple[list[Event], Callable[[Event], None]]:
    """An event callback that sends SIGINT to the main thread once ``node`` started."""
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if event.kind == EventKind.NODE_STARTED and event.node == node:
            main = threading.main_thread().ident or 0
            threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT)).start()

    return events, on_event


def test_ctrl_c_interrupts_the_running_query_and_the_next_run_resumes(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    events, on_event = interrupt_when_started("transform.slow")
    started = time.monotonic()

    with pytest.raises(KeyboardInterrupt):
        execute_plan(plan_with(project, SLOW_SQL), project, threads=2, on_event=on_event)

    assert time.monotonic() - started < 10
    assert EventKind.NODE_BUILT in [e.kind for e in events]  # source.orders
    state = FileStateBackend(project / STATE_DIR).read()
    assert [r["node"] for r in state.snapshots.values()] == ["source.orders"]
    assert state.environments == {}

    # The lock and the warehouse were released; the completed snapshot is reused.
    fast = plan_with(project, SLOW_SQL.replace("range(200)", "range(2)"))
    resumed = execute_plan(fast, project)
    assert resumed.reused == ("source.orders",)
    assert resumed.built == ("transform.slow",)
    assert resumed.promoted
