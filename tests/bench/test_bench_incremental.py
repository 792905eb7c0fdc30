"""The incremental benchmark and the example's events file: deterministic, and runnable."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

from tests.bench.load import load_bench_module

events = load_bench_module("events")
incremental = load_bench_module("incremental")
SEEKNAL = str(Path(sys.executable).parent / "seeknal")
EXAMPLE_EVENTS = Path(__file__).parents[2] / "src/seeknal/examples/shop/data/events.csv"


def test_the_example_events_are_what_the_generator_writes(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    assert events.write_events(path) == 4861
    assert path.read_bytes() == EXAMPLE_EVENTS.read_bytes()


def test_one_new_day_is_measured(tmp_path: Path) -> None:
    result = incremental.measure(SEEKNAL, tmp_path, per_day=300, repeat=1)
    assert result["rows"] == 300 * 31
    for key in ("runs", "executes", "day_sql", "start_up"):
        assert len(result[key]) == 1 and result[key][0] > 0
    assert result["overhead_ratio"] > 0
    assert "target 1.10x" in incremental.describe(result)
    warehouse = tmp_path / "incremental/target/warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        days = con.execute(
            "SELECT COUNT(DISTINCT event_date), MAX(event_date) FROM transform.daily_events"
        ).fetchone()
    assert days is not None and days[0] == 21 and str(days[1]) == "2024-01-21"
