"""A process killed in the narrow windows between the engine's commit and state's record.

Each test runs ``execute_plan`` in a subprocess that dies (``os._exit``) at one exact
point, then changes the project back and checks that the next run repairs everything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from seeknal.compiler import compile_project
from seeknal.runtime import execute_plan

CHILD = """
import os, sys
from pathlib import Path
from seeknal.compiler import compile_project
from seeknal.runtime import execute_plan
import seeknal.state.file as state_file

calls = {{"n": 0}}
original = getattr(state_file.FileStateBackend, "{method}")

def dying(self, *args, **kwargs):
    calls["n"] += 1
    if calls["n"] == {die_on_call}:
        os._exit(9)  # as sudden as SIGKILL, at exactly this point
    return original(self, *args, **kwargs)

setattr(state_file.FileStateBackend, "{method}", dying)
project = Path(sys.argv[1])
execute_plan(compile_project(project).plan, project, threads=1)
"""


def run_and_die(project: Path, method: str, die_on_call: int) -> int:
    code = CHILD.format(method=method, die_on_call=die_on_call)
    return subprocess.run([sys.executable, "-c", code, str(project)], check=False).returncode


def rows(project: Path, relation: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(project / "target/warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_killed_after_an_in_place_rebuild_committed(minimal: Path) -> None:
    execute_plan(compile_project(minimal).plan, minimal)
    csv = minimal / "data/orders.csv"
    original = csv.read_text()
    csv.write_text("order_id,customer_id,amount\n1,10,1000.00\n")
    # Call 1 invalidates the source's record, the build commits, call 2 would record it.
    assert run_and_die(minimal, "record_snapshot", die_on_call=2) == 9
    csv.write_text(original)  # the user reverts the file
    execute_plan(compile_project(minimal).plan, minimal)
    source = [(o, c, float(a)) for o, c, a in rows(minimal, "source.orders")]
    in_file = duckdb.sql(f"SELECT * FROM read_csv_auto('{csv}') ORDER BY ALL").fetchall()
    assert source == [(o, c, float(a)) for o, c, a in in_file]
    expected = duckdb.sql(
        f"SELECT customer_id, SUM(amount) FROM read_csv_auto('{csv}') GROUP BY 1 ORDER BY 1"
    ).fetchall()
    got = [(c, float(t)) for c, t in rows(minimal, "transform.customer_totals")]
    assert got == [(c, float(t)) for c, t in expected]


def test_killed_after_promotion_committed_but_before_state_recorded_it(minimal: Path) -> None:
    execute_plan(compile_project(minimal).plan, minimal)
    transform = minimal / "seeknal/transforms/customer_totals.yml"
    original = transform.read_text()
    transform.write_text(
        original.replace("SUM(amount) AS total_amount", "COUNT(*) AS total_amount")
    )
    assert run_and_die(minimal, "set_environment", die_on_call=1) == 9
    transform.write_text(original)  # back to the definition state still records
    result = execute_plan(compile_project(minimal).plan, minimal)
    assert result.promoted  # the views were ahead of state: promoted again
    totals = dict(rows(minimal, "transform.customer_totals"))
    assert float(totals[10]) == 65.5
