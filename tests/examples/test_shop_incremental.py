"""The example's incremental model over a year of daily data, day by day and restated.

After every run the warehouse equals a full recompute in plain DuckDB, every row of every
node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.cli.conftest import invoke
from tests.conftest import EXAMPLE
from tests.runtime.incremental import node_tables, same_as_recompute

DAILY = "transform.daily_events"
NODES = sorted(
    f"{spec['kind']}.{spec['name']}"
    for spec in (yaml.safe_load(p.read_text()) for p in (EXAMPLE / "seeknal").rglob("*.yml"))
)


def run_json(project: Path, *args: str) -> list[dict[str, Any]]:
    result = invoke(project, "run", "--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def work_of(project: Path) -> dict[str, dict[str, Any]]:
    plan = json.loads((project / "target/plan.json").read_text())
    return {w["node"]: w for w in plan["work"]}


def test_day_n_processes_only_the_new_day(shop: Path, tmp_path: Path) -> None:
    run_json(shop, "--end", "2024-05-31")
    for day in ("2024-06-01", "2024-06-02", "2024-06-03"):
        events = run_json(shop, "--end", day)
        work = work_of(shop)
        missing = [r for r in work[DAILY]["intervals"] if r["reason"] == "missing"]
        # The one new day is missing; the two before it are the lookback.
        assert [(r["start"][:10], r["end"][:10]) for r in missing] == [
            (day, day[:8] + f"{int(day[8:]) + 1:02d}")
        ]
        assert {r["reason"] for r in work[DAILY]["intervals"]} == {"missing", "lookback"}
        assert set(work) == {DAILY, "transform.monthly_events"}
        built = {e["node"] for e in events if e["event"] == "node_built"}
        assert built == {DAILY, "transform.monthly_events"}
        same_as_recompute(shop, day, NODES, tmp_path)


def test_restating_a_week_rewrites_exactly_that_week(shop: Path, tmp_path: Path) -> None:
    run_json(shop, "--end", "2024-06-30")
    before = node_tables(shop / "target/warehouse.duckdb", [DAILY, "transform.monthly_events"])
    # Corrections arrive for 2024-03-04 .. 2024-03-10: every purchase there was 1.00 more.
    csv = shop / "data/events.csv"
    lines = csv.read_text().splitlines()
    fixed = [lines[0]]
    corrected: set[str] = set()
    for line in lines[1:]:
        fields = line.split(",")
        if "2024-03-04" <= fields[2][:10] <= "2024-03-10" and fields[3] == "purchase":
            fields[4] = f"{float(fields[4]) + 1:.2f}"
            corrected.add(fields[2][:10])
        fixed.append(",".join(fields))
    csv.write_text("\n".join(fixed) + "\n")
    # A plain run reloads the source but leaves the incremental table alone.
    run_json(shop, "--end", "2024-06-30")
    assert set(work_of(shop)) == {"source.events"}
    events = run_json(
        shop, "--restate", DAILY, "--start", "2024-03-04", "--end", "2024-03-10", "--threads", "1"
    )
    batches = [(e["start"][:10], e["end"][:10]) for e in events if e["event"] == "batch_built"]
    assert batches == [("2024-03-04", "2024-03-11")]
    after = node_tables(shop / "target/warehouse.duckdb", [DAILY, "transform.monthly_events"])
    changed = {row[0].isoformat() for row in set(after[DAILY]) - set(before[DAILY])}
    assert corrected and changed == corrected  # the week's days with a corrected purchase
    assert len(after[DAILY]) == len(before[DAILY])
    # Its dependent table was rebuilt: March moved, no other month did.
    moved = {
        str(row[0])[:7]
        for row in set(after["transform.monthly_events"]) - set(before["transform.monthly_events"])
    }
    assert moved == {"2024-03"}
    same_as_recompute(shop, "2024-06-30", NODES, tmp_path)
