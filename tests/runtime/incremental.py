"""Helpers for incremental runs: run up to a day, and recompute everything in plain DuckDB."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from seeknal.compiler import compile_project
from seeknal.compiler.interval_work import Window
from seeknal.intervals import parse_time
from seeknal.runtime import Event, execute_plan
from tests.bench.load import load_bench_module


def window(
    end: str | None = None, start: str | None = None, restate: tuple[str, ...] = ()
) -> Window:
    """A run's window as the CLI builds it: a date-only ``end`` includes that day."""
    return Window(
        start=None if start is None else parse_time(start),
        end=None if end is None else parse_time(end, day_end=True),
        restate=restate,
    )


def run_until(project: Path, end: str | None, **kwargs: Any) -> tuple[dict[str, Any], list[Event]]:
    """Compile and execute with ``--end end`` (and ``start``/``restate``); return the
    plan and the events."""
    plan = compile_project(project, window=window(end, **kwargs)).plan
    events: list[Event] = []
    execute_plan(plan, project, on_event=events.append, threads=2)
    return plan, events


def node_tables(database: Path, nodes: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of each node (``kind.name``), sorted."""
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            node: con.execute(
                f'SELECT * FROM "{node.split(".")[0]}"."{node.split(".")[1]}" ORDER BY ALL'
            ).fetchall()
            for node in nodes
        }


def recompute(project: Path, database: Path, end: str | None) -> None:
    """Build the whole project in plain DuckDB (bench/direct.py), incremental nodes in
    one go up to ``end`` (a date: that day included)."""
    direct = load_bench_module("direct")
    until = None
    if end is not None:
        until = datetime.fromisoformat(end) + (timedelta(days=1) if len(end) == 10 else timedelta())
    direct.build_project(project, database, until)


def same_as_recompute(project: Path, end: str | None, nodes: list[str], tmp: Path) -> None:
    """Assert that the warehouse's nodes equal a full recompute, every row."""
    database = tmp / f"recompute-{len(list(tmp.glob('recompute-*')))}.duckdb"
    recompute(project, database, end)
    built = node_tables(project / "target/warehouse.duckdb", nodes)
    expected = node_tables(database, nodes)
    for node in nodes:
        assert built[node] == expected[node], node
