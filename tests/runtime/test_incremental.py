"""Incremental nodes on a real DuckDB warehouse: batches, guard, restatement, resumption."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from seeknal.canonical import canonical_json
from seeknal.compiler import compile_project
from seeknal.errors import ExecutionError
from seeknal.intervals import parse_time
from seeknal.runtime import Event, EventKind, execute_plan, load_plan
from seeknal.runtime.incremental import missing_intervals_for
from seeknal.state.file import FileStateBackend
from tests.conftest import FIXTURES, copy_project, edit
from tests.runtime.incremental import run_until, same_as_recompute, window

NODES = [
    "source.events",
    "transform.daily",
    "transform.hourly",
    "transform.weekly",
    "transform.summary",
]
DAILY = "transform.daily"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(FIXTURES / "incremental", tmp_path / "incremental")


def batches(events: list[Event], node: str = DAILY) -> list[tuple[str, str]]:
    return [
        (e.start[:10], e.end[:10])
        for e in events
        if e.kind == EventKind.BATCH_BUILT and e.node == node and e.start and e.end
    ]


def built(events: list[Event]) -> list[str]:
    return sorted(e.node for e in events if e.kind == EventKind.NODE_BUILT and e.node)


def intervals_of(project: Path, node: str) -> list[list[str]]:
    state = FileStateBackend(project / "target/state").read()
    record = next(r for r in state.snapshots.values() if r["node"] == node)
    return [[a[:10], b[:10]] for a, b in record["intervals"]]


def rows(project: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / "target/warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_first_run_fills_in_batches_and_equals_a_full_recompute(
    project: Path, tmp_path: Path
) -> None:
    _, events = run_until(project, "2024-01-09")
    assert batches(events) == [
        ("2024-01-01", "2024-01-04"),
        ("2024-01-04", "2024-01-07"),
        ("2024-01-07", "2024-01-10"),
    ]
    assert len(batches(events, "transform.hourly")) == 9  # 24 hours a batch
    assert batches(events, "transform.weekly") == [("2024-01-01", "2024-01-08")]
    assert intervals_of(project, DAILY) == [["2024-01-01", "2024-01-10"]]
    same_as_recompute(project, "2024-01-09", NODES, tmp_path)


def test_day_by_day_runs_process_only_the_new_day(project: Path, tmp_path: Path) -> None:
    run_until(project, "2024-01-05")
    for day in range(6, 15):
        end = f"2024-01-{day:02d}"
        _, events = run_until(project, end)
        # The new day, and the day before it again (lookback 1), in one batch.
        assert batches(events) == [(f"2024-01-{day - 1:02d}", f"2024-01-{day + 1:02d}")]
        assert "transform.summary" in built(events)
        same_as_recompute(project, end, NODES, tmp_path)
    assert intervals_of(project, DAILY) == [["2024-01-01", "2024-01-15"]]
    # Nothing new: nothing runs, not even the lookback.
    _, events = run_until(project, "2024-01-14")
    assert [e.kind for e in events if e.kind == EventKind.NOTHING_TO_DO]


def test_the_guard_keeps_every_batch_inside_its_interval(project: Path, tmp_path: Path) -> None:
    # Without a filter the query returns every day on every batch: the guard drops the rest.
    edit(
        project / "seeknal/transforms/daily.yml",
        "  WHERE event_at >= {{ start_ts }} AND event_at < {{ end_ts }}\n",
        "",
    )
    plan, events = run_until(project, "2024-01-06")
    assert "$start_ts" not in plan["nodes"][DAILY]["sql"]["engine"]
    dropped = [e.dropped for e in events if e.kind == EventKind.BATCH_BUILT and e.node == DAILY]
    assert dropped == [11, 11]  # 14 days of data, 3 in each batch
    node = next(e for e in events if e.kind == EventKind.NODE_BUILT and e.node == DAILY)
    assert node.dropped == 22
    assert "guard dropped 22 rows" in node.message
    same_as_recompute(project, "2024-01-06", NODES, tmp_path)


def test_restatement_rewrites_exactly_its_range(project: Path, tmp_path: Path) -> None:
    run_until(project, "2024-01-14")
    csv = project / "data/events.csv"
    lines = csv.read_text().splitlines()
    # Late corrections land on 2024-01-03 and 2024-01-11 (only the first is restated).
    changed = [
        line.replace(",", ",", 2)[: line.rindex(",")] + ",100.00"
        if line.split(",")[1].startswith(("2024-01-03", "2024-01-11"))
        else line
        for line in lines
    ]
    csv.write_text("\n".join(changed) + "\n")
    before = rows(project, "SELECT * FROM transform.daily ORDER BY day")
    _, events = run_until(project, "2024-01-04", start="2024-01-03", restate=(DAILY,))
    assert batches(events) == [("2024-01-03", "2024-01-05")]
    assert batches(events, "transform.weekly") == [("2024-01-01", "2024-01-08")]
    assert batches(events, "transform.hourly") == []  # not downstream of daily
    after = rows(project, "SELECT * FROM transform.daily ORDER BY day")
    changed_days = {a[0].isoformat() for a, b in zip(after, before, strict=True) if a != b}
    assert changed_days == {"2024-01-03"}
    assert intervals_of(project, DAILY) == [["2024-01-01", "2024-01-15"]]
    # A restatement over the whole window gives what a full recompute gives.
    run_until(project, "2024-01-14", restate=("source.events",))
    same_as_recompute(project, "2024-01-14", NODES, tmp_path)


def test_a_failed_batch_keeps_the_ones_before_and_the_next_run_resumes(
    project: Path, tmp_path: Path
) -> None:
    edit(
        project / "seeknal/transforms/daily.yml",
        "SUM(amount)",
        "SUM(CASE WHEN amount = 999.99 THEN error('bad row') ELSE amount END)",
    )
    with (project / "data/events.csv").open("a") as fh:
        fh.write("57,2024-01-08 12:00:00,999.99\n")
    plan = compile_project(project, window=window("2024-01-14")).plan
    events: list[Event] = []
    with pytest.raises(ExecutionError) as info:
        execute_plan(plan, project, on_event=events.append, threads=1)
    assert "bad row" in info.value.render()
    assert batches(events) == [("2024-01-01", "2024-01-04"), ("2024-01-04", "2024-01-07")]
    assert intervals_of(project, DAILY) == [["2024-01-01", "2024-01-07"]]
    skipped = {e.node for e in events if e.kind == EventKind.NODE_SKIPPED}
    assert skipped == {"transform.summary", "transform.weekly"}
    # The bad row is fixed: the source is reloaded and daily resumes where it stopped.
    csv = project / "data/events.csv"
    csv.write_text(csv.read_text().replace(",999.99", ",9.99"))
    _, events = run_until(project, "2024-01-14")
    assert batches(events) == [
        ("2024-01-06", "2024-01-09"),
        ("2024-01-09", "2024-01-12"),
        ("2024-01-12", "2024-01-15"),
    ]
    same_as_recompute(project, "2024-01-14", NODES, tmp_path)


CHILD = """
import os, sys
from pathlib import Path
import seeknal.state.file as state_file
from seeknal.runtime import execute_plan, load_plan

calls = {"n": 0}
original = state_file.FileStateBackend.record_snapshot

def dying(self, *args, **kwargs):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[3]):
        os._exit(9)  # as sudden as SIGKILL: the batch committed, state never heard of it
    return original(self, *args, **kwargs)

state_file.FileStateBackend.record_snapshot = dying
execute_plan(load_plan(sys.argv[2]), Path(sys.argv[1]), threads=1)
"""


def test_executing_the_same_plan_again_resumes_it(project: Path, tmp_path: Path) -> None:
    plan = compile_project(project, window=window("2024-01-14")).plan
    path = tmp_path / "plan.json"
    path.write_text(canonical_json(plan))
    # Records: source.events, daily's empty table, then one per batch; die at batch 3's.
    died = subprocess.run([sys.executable, "-c", CHILD, str(project), str(path), "5"])
    assert died.returncode == 9
    assert intervals_of(project, DAILY) == [["2024-01-01", "2024-01-07"]]
    events: list[Event] = []
    execute_plan(load_plan(path), project, on_event=events.append, threads=1)
    # Batch 3 committed before the crash: it runs again (delete, insert), nothing doubles.
    assert batches(events) == [
        ("2024-01-07", "2024-01-10"),
        ("2024-01-10", "2024-01-13"),
        ("2024-01-13", "2024-01-15"),
    ]
    same_as_recompute(project, "2024-01-14", NODES, tmp_path)
    # And executing it once more has nothing left to do for the intervals.
    events = []
    execute_plan(load_plan(path), project, on_event=events.append, threads=1)
    assert batches(events) == []


def test_a_lost_table_is_rebuilt_from_what_state_recorded(project: Path, tmp_path: Path) -> None:
    plan, _ = run_until(project, "2024-01-09")
    snapshot = plan["nodes"][DAILY]["snapshot"]
    schema, table = snapshot.split(".", 1)
    with duckdb.connect(str(project / "target/warehouse.duckdb")) as con:
        con.execute(f'DROP TABLE "{schema}"."{table}" CASCADE')
    _, events = run_until(project, "2024-01-09")
    assert batches(events) == [
        ("2024-01-01", "2024-01-04"),
        ("2024-01-04", "2024-01-07"),
        ("2024-01-07", "2024-01-10"),
    ]
    same_as_recompute(project, "2024-01-09", NODES, tmp_path)


def test_a_non_breaking_change_keeps_the_rows_and_adds_the_column(project: Path) -> None:
    run_until(project, "2024-01-05")
    edit(
        project / "seeknal/transforms/daily.yml",
        "SUM(amount) AS amount",
        "SUM(amount) AS amount, MAX(amount) AS biggest",
    )
    plan, events = run_until(project, "2024-01-07")
    assert plan["nodes"][DAILY]["change"]["category"] == "non_breaking"
    assert batches(events) == [("2024-01-05", "2024-01-08")]
    got = rows(project, "SELECT day, biggest IS NOT NULL FROM transform.daily ORDER BY day")
    # Old days keep their rows (no value in the new column) until restated.
    assert [has for _, has in got] == [False] * 4 + [True] * 3
    run_until(project, "2024-01-07", restate=(DAILY,))
    got = rows(project, "SELECT biggest IS NOT NULL FROM transform.daily")
    assert all(has for (has,) in got)


def test_timestamp_time_column_and_time_zone_bounds(project: Path, tmp_path: Path) -> None:
    edit(
        project / "seeknal/transforms/hourly.yml",
        '  schedule: "@hourly"',
        '  schedule: "@daily"\n  timezone: America/New_York',
    )
    plan, events = run_until(project, "2024-01-05")
    assert plan["nodes"]["transform.hourly"]["incremental"]["timezone"] == "America/New_York"
    # New York days: 05:00 UTC to 05:00 UTC; the first starts on the first local midnight.
    starts = [
        e.start for e in events if e.kind == EventKind.BATCH_BUILT and e.node == "transform.hourly"
    ]
    assert starts == ["2024-01-01T05:00:00Z"]
    got = rows(project, "SELECT MIN(hour), MAX(hour), SUM(events) FROM transform.hourly")
    lo, hi, count = got[0]
    assert lo.isoformat() == "2024-01-01T07:00:00" and hi.isoformat() == "2024-01-05T01:00:00"
    assert count == 3 + 4 * 3 + 1  # 07:00 on the first day .. 01:00 on the fifth


def test_missing_intervals_for_promotion(project: Path) -> None:
    plan, _ = run_until(project, "2024-01-09")
    state = FileStateBackend(project / "target/state").read()
    node = plan["nodes"][DAILY]
    assert missing_intervals_for(node, state, end="2024-01-10T00:00:00Z") == ()
    missing = missing_intervals_for(node, state, end="2024-01-12T00:00:00Z")
    assert [(i.start, i.end) for i in missing] == [
        (parse_time("2024-01-10"), parse_time("2024-01-12"))
    ]
    assert missing_intervals_for(plan["nodes"]["transform.summary"], state) == ()


def test_a_run_recalls_the_catalog_the_last_run_left(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.engines.duckdb import DuckDBEngine

    run_until(project, "2024-01-05")
    queries: list[str] = []
    original = DuckDBEngine._query_catalog

    def counted(engine: DuckDBEngine) -> Any:
        queries.append("catalog")
        return original(engine)

    monkeypatch.setattr(DuckDBEngine, "_query_catalog", counted)
    # Nothing to do: the warehouse is as the last run left it, and stays so.
    _, events = run_until(project, "2024-01-05")
    assert batches(events) == [] and queries == []
    # A new day: recalled at the start; the table downstream is rebuilt (a statement
    # that changes the catalog), so the catalog is read once, at the end, to remember.
    _, events = run_until(project, "2024-01-06")
    assert batches(events)  # the new day (and its lookback)
    assert queries == ["catalog"]
    # A view dropped behind seeknal's back: the file changed, so the next run asks
    # DuckDB at its start, and again at its end (it promoted the view again).
    queries.clear()
    with duckdb.connect(str(project / "target/warehouse.duckdb")) as con:
        con.execute('DROP VIEW "transform"."summary"')
    _, events = run_until(project, "2024-01-06")
    assert queries == ["catalog", "catalog"]
    assert any(e.kind == EventKind.PROMOTED for e in events)
    same_as_recompute(project, "2024-01-06", NODES, tmp_path)
