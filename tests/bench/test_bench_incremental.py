"""The incremental benchmark and the example's events file: deterministic, and runnable."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
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
    for key in incremental._SERIES:
        assert len(result[key]) == 1 and result[key][0] > 0, key
    assert result["work_ratio"] > 0 and result["overhead_ratio"] > 0
    assert "target 1.10x" in incremental.describe(result)
    # A warm-up day, then the timed one: two days after the fill are done.
    done = incremental.FILLED_UNTIL + timedelta(days=2)
    warehouse = tmp_path / "incremental/target/warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        seeknal_rows = con.execute("SELECT * FROM transform.daily_events ORDER BY ALL").fetchall()
    assert len({row[0] for row in seeknal_rows}) == done.day
    assert max(row[0] for row in seeknal_rows) == done
    # The plain DuckDB job did the same day to a copy: the same table, row for row.
    snapshot = _snapshot_table(tmp_path / "incremental/target/plan.json")
    with duckdb.connect(str(tmp_path / "plain.duckdb"), read_only=True) as con:
        plain_rows = con.execute(f"SELECT * FROM {snapshot} ORDER BY ALL").fetchall()
    assert plain_rows == seeknal_rows


def test_the_timed_runs_imported_what_a_run_imports(tmp_path: Path) -> None:
    incremental.measure(SEEKNAL, tmp_path, per_day=300, repeat=1)
    modules = (tmp_path / "incremental-modules.txt").read_text().split()
    assert "seeknal.runtime.execute" in modules and "duckdb" in modules
    assert "sqlglot" not in modules  # a warm one-day run compiles nothing


def _snapshot_table(plan_path: Path) -> str:
    snapshot = json.loads(plan_path.read_text())["nodes"][incremental.NODE]["snapshot"]
    schema, _, name = snapshot.partition(".")
    return f'"{schema}"."{name}"'


def test_one_new_day_beside_other_transforms(tmp_path: Path) -> None:
    result = incremental.measure(SEEKNAL, tmp_path, per_day=300, repeat=1, beside=3)
    assert result["beside"] == 3
    assert "3 other transforms" in incremental.describe(result)
    project = tmp_path / "incremental-3"
    plan = json.loads((project / "target/plan.json").read_text())
    assert len([n for n in plan["nodes"] if n.startswith("transform.")]) == 4
    # Only the new day was work; the other transforms were built once, when filling.
    assert [w["node"] for w in plan["work"]] == [incremental.NODE]
    with duckdb.connect(str(project / "target/warehouse.duckdb"), read_only=True) as con:
        seeknal_rows = con.execute("SELECT * FROM transform.daily_events ORDER BY ALL").fetchall()
    snapshot = _snapshot_table(project / "target/plan.json")
    with duckdb.connect(str(tmp_path / "plain.duckdb"), read_only=True) as con:
        plain_rows = con.execute(f"SELECT * FROM {snapshot} ORDER BY ALL").fetchall()
    done = incremental.FILLED_UNTIL + timedelta(days=2)  # the warm-up day and the timed one
    assert plain_rows == seeknal_rows and len({row[0] for row in seeknal_rows}) == done.day


def test_a_ratio_without_a_positive_denominator_is_shown_as_such() -> None:
    medians = dict.fromkeys(incremental._SERIES, 0.1)
    result = {"per_day": 300, "rows": 9300, "medians": medians, "work_ratio": 1.0}
    text = incremental.describe({**result, "job_ratio": None, "overhead_ratio": None})
    lines = {" ".join(line.split()) for line in text.splitlines()}
    assert "(run - start-up) / (job - start-up) n/a (whole processes)" in lines
    assert "(run - start-up) / day's SQL n/a" in lines


def test_a_growing_source_is_measured_loaded_and_read_in_place(tmp_path: Path) -> None:
    result = incremental.measure_growing(SEEKNAL, tmp_path, per_day=300, repeat=1)
    for key in incremental.GROWING_SERIES:
        assert len(result[key]) == 1 and result[key][0] > 0, key
    assert "read in place (view)" in incremental.describe_growing(result)
    # Both projects processed the same days from the same grown file: the same rows.
    tables = []
    for mode in ("table", "view"):
        root = tmp_path / f"growing-{mode}"
        with duckdb.connect(str(root / "target/warehouse.duckdb"), read_only=True) as con:
            con.execute("SET file_search_path = ?", [str(root)])
            tables.append(
                con.execute("SELECT * FROM transform.daily_events ORDER BY ALL").fetchall()
            )
    assert tables[0] == tables[1]
    done = incremental.FILLED_UNTIL + timedelta(days=2)
    assert max(row[0] for row in tables[0]) == done
    events = (tmp_path / "growing-view/data/events.parquet").as_posix()
    ((last,),) = duckdb.sql(f"SELECT max(event_at) FROM read_parquet('{events}')").fetchall()
    assert last.date() == done
