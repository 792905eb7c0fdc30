"""A table kept through a change (forward-only, or non-breaking in prod) holds rows of
more than one definition: no later plan may take it for a table of one definition, and
no environment still on the old SQL may read or write it. End to end, on real DuckDB,
each compared with the same project run from scratch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seeknal.state.file import FileStateBackend
from tests.cli.conftest import invoke, tables_of
from tests.conftest import EXAMPLE, copy_project

DAILY = "transform.daily_events"
DAILY_FILE = "seeknal/transforms/daily_events.yml"
A = "COUNT(*) AS events"
B = "COUNT(*) * 10 AS events"  # forward-only: the kept table's later days hold B's rows
C = "SUM(amount) * 2 AS revenue"  # breaking, on another column


def edit(project: Path, old: str, new: str) -> None:
    path = project / DAILY_FILE
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def ok(project: Path, *args: str) -> str:
    result = invoke(project, *args)
    assert result.exit_code == 0, result.output
    return result.output


def from_scratch(
    tmp_path: Path, end: str, edits: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """Every view of the example project as it is after ``edits``, run once from nothing."""
    fresh = copy_project(EXAMPLE, tmp_path / "from_scratch")
    for old, new in edits:
        edit(fresh, old, new)
    ok(fresh, "run", "-q", "--end", end)
    return tables_of(fresh / "target/warehouse.duckdb")


def compiled(project: Path, *args: str) -> dict[str, Any]:
    ok(project, "compile", "-o", "target/check.json", *args)
    return dict(json.loads((project / "target/check.json").read_text()))


def views(tables: dict[str, Any], schema_suffix: str = "") -> dict[str, Any]:
    """The views of one environment, named as prod names them."""
    out = {}
    for name, rows in tables.items():
        schema, view = name.split(".", 1)
        if schema_suffix and schema.endswith(schema_suffix):
            out[f"{schema.removesuffix(schema_suffix)}.{view}"] = rows
        elif not schema_suffix and "__" not in schema:
            out[name] = rows
    return out


def test_going_back_after_a_kept_change_and_another_change(shop: Path, tmp_path: Path) -> None:
    # A, then B forward-only (the table keeps A's name, its later days get B's rows),
    # then C (a new table), then A again: A's name must not be taken for the kept table.
    ok(shop, "run", "-q", "--end", "2024-01-10")
    original = compiled(shop, "--end", "2024-01-20")["nodes"][DAILY]["snapshot"]
    edit(shop, A, B)
    ok(shop, "run", "-q", "--forward-only", "--end", "2024-01-20")
    edit(shop, "SUM(amount) AS revenue", C)
    ok(shop, "run", "-q", "--end", "2024-01-20")
    edit(shop, C, "SUM(amount) AS revenue")
    edit(shop, B, A)
    back = compiled(shop, "--end", "2024-01-20")["nodes"][DAILY]
    assert back["change"]["category"] == "breaking"
    # A's name is the kept table's, which holds B's rows from 2024-01-09 on.
    assert back["snapshot"] != original
    ok(shop, "run", "-q", "--end", "2024-01-20")
    assert tables_of(shop / "target/warehouse.duckdb") == from_scratch(tmp_path, "2024-01-20")
    # And the run after does nothing more.
    assert "nothing to do" in ok(shop, "run", "--end", "2024-01-20")


def test_an_environment_on_the_old_sql_gets_a_table_of_its_own(shop: Path, tmp_path: Path) -> None:
    # dev shares prod's table; prod then changes it in place (forward-only). dev, still
    # on the old SQL, must neither write its rows into prod's table nor read prod's.
    ok(shop, "run", "-q", "--end", "2024-01-10")
    ok(shop, "run", "-q", "--env", "dev", "--end", "2024-01-10")
    # A second compile of dev: the plan memo now keeps dev's plan for any state in
    # which dev's record is the same, unless a table it asked about was taken over.
    ok(shop, "run", "-q", "--env", "dev", "--end", "2024-01-12")
    edit(shop, A, B)
    ok(shop, "run", "-q", "--forward-only", "--end", "2024-01-20")
    prod = views(tables_of(shop / "target/warehouse.duckdb"))
    edit(shop, B, A)
    plan = compiled(shop, "--env", "dev", "--end", "2024-01-20")
    daily = plan["nodes"][DAILY]
    assert daily["change"] == {
        "category": "indirect_breaking",
        "details": [{"kind": "table_changed_elsewhere"}],
    }
    assert [w["reason"] for w in plan["work"] if w["node"] == DAILY] == ["breaking_change"]
    ok(shop, "run", "-q", "--env", "dev", "--end", "2024-01-20")
    tables = tables_of(shop / "target/warehouse.duckdb")
    assert views(tables) == prod  # prod's rows untouched
    assert views(tables, "__dev") == from_scratch(tmp_path, "2024-01-20")
    assert "nothing to do" in ok(shop, "run", "--env", "dev", "--end", "2024-01-20")


def refused_as_taken_over(project: Path, plan: str) -> dict[str, Any]:
    """Execute ``plan``: refused as stale (a table it writes was taken over since it was
    compiled), changing nothing. Returns the views, as they stay."""
    before = tables_of(project / "target/warehouse.duckdb")
    result = invoke(project, "execute", plan)
    assert result.exit_code == 2, result.output
    assert "was written with other SQL" in " ".join(result.output.split())
    assert tables_of(project / "target/warehouse.duckdb") == before
    return before


def test_a_plan_that_would_write_a_table_taken_over_since_is_stale(shop: Path) -> None:
    ok(shop, "run", "-q", "--end", "2024-01-10")
    ok(shop, "run", "-q", "--env", "dev", "--end", "2024-01-10")
    ok(shop, "compile", "--env", "dev", "--end", "2024-01-20", "-o", "target/dev.json")
    edit(shop, A, B)
    ok(shop, "run", "-q", "--forward-only", "--end", "2024-01-20")
    refused_as_taken_over(shop, "target/dev.json")


def test_a_plan_going_back_to_a_table_taken_over_since_is_stale(shop: Path) -> None:
    # dev goes back to prod's SQL: its plan names prod's table as its new snapshot (only
    # that SQL wrote it then). Prod then takes the table over: the plan is refused, or
    # it would write dev's rows into prod's table and dev would read prod's.
    ok(shop, "run", "-q", "--end", "2024-01-10")
    edit(shop, "SUM(amount) AS revenue", C)
    ok(shop, "run", "-q", "--env", "dev", "--end", "2024-01-10")
    edit(shop, C, "SUM(amount) AS revenue")
    plan = compiled(shop, "--env", "dev", "--end", "2024-01-20")
    assert plan["nodes"][DAILY]["change"]["category"] == "breaking"
    ok(shop, "compile", "--env", "dev", "--end", "2024-01-20", "-o", "target/dev.json")
    edit(shop, A, B)
    ok(shop, "run", "-q", "--forward-only", "--end", "2024-01-20")
    before = refused_as_taken_over(shop, "target/dev.json")
    # Compiled again, dev gets a table of its own and prod's rows stay as they are.
    edit(shop, B, A)
    ok(shop, "run", "-q", "--env", "dev", "--end", "2024-01-20")
    tables = tables_of(shop / "target/warehouse.duckdb")
    assert views(tables) == views(before)


def test_a_forward_only_plan_resumed_after_a_failure_is_not_stale(shop: Path) -> None:
    # The plan that takes a table over writes other SQL into its environment's own
    # table, on purpose: stopped after a batch (state then says B wrote the table, the
    # environment still says A), executed again, it goes on.
    ok(shop, "run", "-q", "--end", "2024-01-10")
    edit(shop, A, B)
    ok(shop, "compile", "--forward-only", "--end", "2024-01-20", "-o", "target/fo.json")
    plan = json.loads((shop / "target/fo.json").read_text())
    daily = plan["nodes"][DAILY]
    assert daily["change"]["category"] == "forward_only"
    backend = FileStateBackend(shop / "target/state")
    with backend.lock():
        record = backend.read().snapshots[daily["snapshot"]]
        assert record["definition"] != daily["fingerprint"]["definition"]
        record = {**record, "definition": daily["fingerprint"]["definition"], "mixed": True}
        backend.record_snapshot(daily["snapshot"], record)
    ok(shop, "execute", "target/fo.json")
    ok(shop, "execute", "target/fo.json")  # applied: executing it again does nothing
