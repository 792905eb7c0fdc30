"""End-to-end: compile, execute, run on real DuckDB files through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.cli.conftest import invoke, run_process, tables_of, tree_state
from tests.conftest import FIXTURES, copy_project


def test_compile_twice_is_byte_identical(shop: Path) -> None:
    assert invoke(shop, "compile").exit_code == 0
    first = (shop / "target/plan.json").read_bytes()
    assert invoke(shop, "compile", "--out", "target/again.json").exit_code == 0
    assert (shop / "target/again.json").read_bytes() == first
    assert not (shop / "target/warehouse.duckdb").exists()
    assert not (shop / "target/state").exists()


def test_run_builds_every_node_and_matches_plain_duckdb(shop: Path) -> None:
    result = run_process(shop, "run")
    assert result.returncode == 0, result.stderr
    assert "built    transform.daily_revenue" in result.stdout
    tables = tables_of(shop / "target/warehouse.duckdb")
    plan = json.loads((shop / "target/plan.json").read_text())
    assert sorted(tables) == sorted(plan["nodes"])
    # The same numbers straight from the CSV with plain DuckDB.
    con = duckdb.connect()
    expected = con.execute(
        "SELECT CAST(ordered_at AS DATE) d, COUNT(*) FROM read_csv_auto(?) "
        "WHERE status <> 'cancelled' AND CAST(ordered_at AS DATE) >= DATE '2024-01-01' GROUP BY 1 ORDER BY 1",
        [str(shop / "data/orders.csv")],
    ).fetchall()
    got = [(row[0], row[1]) for row in tables["transform.daily_revenue"]]
    assert got == expected


def test_second_run_builds_nothing_and_says_so(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    state_before = tree_state(shop / "target/state")
    second = run_process(shop, "run")
    assert second.returncode == 0
    assert "0 snapshots to build" in second.stdout
    assert "nothing to do" in second.stdout
    assert "  built  " not in second.stdout
    assert tree_state(shop / "target/state") == state_before


def test_execute_runs_exactly_the_compiled_plan(shop: Path) -> None:
    assert invoke(shop, "compile").exit_code == 0
    result = run_process(shop, "execute", "target/plan.json", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    built = sorted(e["node"] for e in events if e["event"] == "node_built")
    plan = json.loads((shop / "target/plan.json").read_text())
    assert built == sorted(w["node"] for w in plan["work"])
    assert all("seconds" in e for e in events if e["event"] == "node_built")


def test_tampered_plan_is_refused_and_changes_nothing(shop: Path) -> None:
    assert invoke(shop, "compile").exit_code == 0
    path = shop / "target/plan.json"
    plan = json.loads(path.read_text())
    node = plan["nodes"]["transform.daily_revenue"]
    node["sql"]["engine"] = node["sql"]["engine"].replace("SUM(amount)", "SUM(amount) * 100")
    path.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    result = run_process(shop, "execute", "target/plan.json")
    assert result.returncode == 2
    assert "modified after it was compiled" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (shop / "target/warehouse.duckdb").exists()
    assert not (shop / "target/state").exists()


def test_newer_schema_version_is_refused(shop: Path) -> None:
    assert invoke(shop, "compile").exit_code == 0
    path = shop / "target/plan.json"
    plan = json.loads(path.read_text())
    plan["schema_version"] = 99
    path.write_text(json.dumps(plan))
    result = run_process(shop, "execute", "target/plan.json")
    assert result.returncode == 2
    assert "schema_version 99" in result.stderr


def test_stale_plan_is_refused_unless_forced(shop: Path) -> None:
    assert invoke(shop, "compile", "--out", "target/old.json").exit_code == 0
    stg = shop / "seeknal/transforms/payment_methods.yml"
    stg.write_text(
        stg.read_text().replace("COUNT(*) AS payment_count", "COUNT(*) AS payment_count, 1 AS one")
    )
    assert run_process(shop, "run").returncode == 0
    warehouse = shop / "target/warehouse.duckdb"
    before = (tables_of(warehouse), tree_state(shop / "target/state"))
    stale = run_process(shop, "execute", "target/old.json")
    assert stale.returncode == 2
    assert "stale" in stale.stderr
    assert (tables_of(warehouse), tree_state(shop / "target/state")) == before
    forced = run_process(shop, "execute", "target/old.json", "--force")
    assert forced.returncode == 0, forced.stderr
    con = duckdb.connect(str(warehouse), read_only=True)
    columns = [d[0] for d in con.execute("SELECT * FROM transform.payment_methods").description]
    assert "one" not in columns


def test_changed_source_file_rebuilds_dependent_tables(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    csv = shop / "data/orders.csv"
    lines = csv.read_text().splitlines()
    fields = lines[-1].split(",")
    fields[0] = "100000"
    csv.write_text("\n".join([*lines, ",".join(fields)]) + "\n")
    result = run_process(shop, "run")
    assert result.returncode == 0, result.stderr
    assert "[source data changed]" in result.stdout
    count = (
        duckdb.connect(str(shop / "target/warehouse.duckdb"), read_only=True)
        .execute("SELECT COUNT(*) FROM source.orders")
        .fetchone()
    )
    assert count == (len(lines),)


def test_broken_project_exits_2_and_touches_nothing(tmp_path: Path) -> None:
    project = copy_project(FIXTURES / "broken_unknown_ref", tmp_path / "p")
    before = tree_state(project)
    result = run_process(project, "run")
    assert result.returncode == 2
    assert result.stderr.startswith("seeknal/transforms/customer_totals.yml:5:")
    assert "hint: did you mean 'source.orders'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_state(project) == before


def test_failing_node_keeps_completed_work_and_the_next_run_resumes(shop: Path) -> None:
    bad = shop / "seeknal/transforms/payment_methods.yml"
    original = bad.read_text()
    # Valid SQL that fails at run time: a division by zero on an integer cast.
    bad.write_text(
        original.replace(
            "COUNT(*) AS payment_count", "CAST('x' || p.method AS INTEGER) AS payment_count"
        )
    )
    first = run_process(shop, "run")
    assert first.returncode == 1
    assert "transform.payment_methods" in first.stderr
    assert "Traceback" not in first.stderr
    assert not (
        shop / "target/warehouse.duckdb"
    ).exists() or "transform.payment_methods" not in tables_of(shop / "target/warehouse.duckdb")
    bad.write_text(original)
    second = run_process(shop, "run")
    assert second.returncode == 0, second.stderr
    assert "built    transform.payment_methods" in second.stdout
    assert "built    transform.daily_revenue" not in second.stdout  # kept from the failed run


def test_show_query_and_lineage(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    shown = invoke(shop, "show", "transform.daily_revenue", "--limit", "3")
    assert shown.exit_code == 0, shown.output
    assert "3 rows" in shown.output
    queried = invoke(shop, "query", "SELECT COUNT(*) AS n FROM source.orders", "--json")
    assert json.loads(queried.output) == [{"n": 100}]
    lineage = invoke(shop, "lineage", "transform.daily_revenue.revenue", "--upstream")
    assert lineage.exit_code == 0
    assert "source.orders.amount" in lineage.output
    unknown = invoke(shop, "lineage", "transform.daily_revenu")
    assert unknown.exit_code == 2
    assert "did you mean 'transform.daily_revenue'" in unknown.output


def test_init_creates_a_project_that_compiles(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from seeknal.cli.main import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path / "blank")]).exit_code == 0
    assert (tmp_path / "blank/seeknal_project.yml").exists()
    built = run_process(tmp_path / "blank", "run")
    assert built.returncode == 0, built.stderr
    assert "built    transform.events_per_day" in built.stdout
    assert built.stderr == ""  # no warnings on a fresh project
    again = runner.invoke(cli, ["init", str(tmp_path / "blank")])
    assert again.exit_code == 2
    assert "not empty" in again.output


BROKEN = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("broken_"))


@pytest.mark.parametrize("name", BROKEN)
@pytest.mark.parametrize("command", ["compile", "run"])
def test_every_broken_project_exits_2_with_file_and_line(
    name: str, command: str, tmp_path: Path
) -> None:
    project = copy_project(FIXTURES / name, tmp_path / name)
    before = tree_state(project)
    result = invoke(project, command)
    assert result.exit_code == 2, result.output
    first = result.output.splitlines()[0]
    path, line, col, rest = first.split(":", 3)
    assert (project / path).is_file() and int(line) >= 1 and int(col) >= 1
    assert rest.startswith(" error: ")
    assert "hint: " in result.output
    assert "Traceback" not in result.output
    assert tree_state(project) == before


def test_a_defect_after_a_good_run_leaves_warehouse_and_state_untouched(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    before = (tables_of(shop / "target/warehouse.duckdb"), tree_state(shop / "target"))
    daily = shop / "seeknal/transforms/daily_revenue.yml"
    daily.write_text(daily.read_text().replace("SUM(amount)", "SUM(amount_typo)"))
    result = run_process(shop, "run")
    assert result.returncode == 2
    assert "unknown column 'amount_typo'" in result.stderr
    assert (tables_of(shop / "target/warehouse.duckdb"), tree_state(shop / "target")) == before


def test_a_deleted_warehouse_is_rebuilt_from_the_plan(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    expected = tables_of(shop / "target/warehouse.duckdb")
    (shop / "target/warehouse.duckdb").unlink()
    result = run_process(shop, "run")
    assert result.returncode == 0, result.stderr
    assert "[was missing from the warehouse]" in result.stdout
    assert tables_of(shop / "target/warehouse.duckdb") == expected
    assert "nothing to do" in run_process(shop, "run").stdout


def test_show_unknown_node_suggests_one(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    result = invoke(shop, "show", "transform.daily_revenu")
    assert result.exit_code == 2
    assert "node 'transform.daily_revenu' is not in environment 'prod'" in result.output
    assert "did you mean 'transform.daily_revenue'?" in result.output
    fresh = invoke(shop, "show", "transform.daily_revenue", "--env", "qa")
    assert fresh.exit_code == 2
    assert "nothing is built in 'qa' yet" in fresh.output


def test_outside_a_project_says_so(tmp_path: Path) -> None:
    result = invoke(tmp_path, "compile")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path} has no seeknal_project.yml")


def test_a_damaged_warehouse_says_so_and_deleting_it_rebuilds_everything(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    warehouse = shop / "target/warehouse.duckdb"
    expected = tables_of(warehouse)
    warehouse.write_bytes(b"\x00garbage" * 4096)

    for command in (["run"], ["show", "source.orders"]):
        damaged = run_process(shop, *command)
        assert damaged.returncode in (1, 2), damaged.stderr
        assert "not a valid DuckDB database file" in damaged.stderr
        assert "hint: the file is damaged; delete it and run again" in damaged.stderr
        assert "another process" not in damaged.stderr and "Traceback" not in damaged.stderr

    warehouse.unlink()  # what the hint says
    rebuilt = run_process(shop, "run")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert tables_of(warehouse) == expected


def test_an_interactive_run_parses_its_plan_once(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.compiler.compile import CompileResult

    # The second run compiles against the state the first left, and the memo keeps that
    # plan: the third gets it as text only.
    assert invoke(shop, "run", "--quiet").exit_code == 0
    assert invoke(shop, "run", "--quiet").exit_code == 0

    def unparsed(result: CompileResult) -> dict[str, Any]:
        if result._plan is None:  # the text would be parsed here, and again in the runtime
            raise AssertionError("the run parsed the plan beside the runtime")
        return result._plan

    # The summary line comes from the plan the runtime parsed and verified.
    monkeypatch.setattr(CompileResult, "plan", property(unparsed))
    result = invoke(shop, "run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("compiled 13 nodes for environment 'prod' (13 unchanged)")
    assert "nothing to do" in result.output


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "(" * 20_000 + "1" + " + 1)" * 20_000 + " AS x",  # too deep to parse
        # Parses, but too deep for the analysis after it.
        "SELECT x FROM (" * 450 + "SELECT 1 AS x" + "".join(f") AS t{i}" for i in range(450)),
    ],
    ids=["parse", "analysis"],
)
@pytest.mark.parametrize("earlier_run", [False, True], ids=["first-run", "later-run"])
def test_a_query_nested_too_deeply_is_an_error_of_its_node(
    shop: Path, sql: str, earlier_run: bool
) -> None:
    if earlier_run:  # a run with state compiles in a helper thread (runtime/session.py)
        assert run_process(shop, "run").returncode == 0
    deep = shop / "seeknal/transforms/deep.yml"
    deep.write_text(f"kind: transform\nname: deep\ntransform: |\n  {sql}\n")
    before = tree_state(shop)
    result = run_process(shop, "run")
    assert result.returncode == 2, result.stderr
    first = result.stderr.splitlines()
    assert first[0] == (
        "seeknal/transforms/deep.yml:4:3: error: the query is nested too deeply to analyze"
    )
    assert first[1].startswith("   4 |   SELECT ") and first[1].endswith("...")
    assert max(len(line) for line in first) < 140  # the excerpt shows part of the line
    assert "hint: split the deepest expression into CTEs" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert tree_state(shop) == before


def test_seeknals_threads_have_the_stack_a_deep_query_needs(shop: Path) -> None:
    # A run with state compiles in a helper thread and builds in worker threads; `query`
    # runs in one too. Some platforms give threads small stacks (set here by hand):
    # seeknal's own must not depend on that.
    assert run_process(shop, "run").returncode == 0
    deep = "SELECT x FROM (" * 300 + "SELECT 1 AS x" + "".join(f") AS t{i}" for i in range(300))
    (shop / "seeknal/transforms/deep.yml").write_text(
        f"kind: transform\nname: deep\ntransform: |\n  {deep}\n"
    )
    code = (
        "import sys, threading\n"
        "threading.stack_size(256 * 1024)\n"
        "from seeknal.cli.main import main\n"
        f"sys.argv = ['seeknal', '--project', {str(shop)!r}, 'run']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "built    transform.deep" in result.stdout
    query = code.replace("'run'", f"'query', {deep!r}")
    result = subprocess.run([sys.executable, "-c", query], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "│ 1 │" in result.stdout, result.stdout


def test_a_run_after_the_project_moved_its_warehouse_builds_the_new_one(shop: Path) -> None:
    """A run starts on the warehouse and state the last run used (left in the user's
    cache); the project file now names others: the old ones are left as they were."""
    assert run_process(shop, "run", "--end", "2024-06-10").returncode == 0
    old = shop / "target/warehouse.duckdb"
    before = old.read_bytes()
    project_file = shop / "seeknal_project.yml"
    text = project_file.read_text().replace("target/warehouse.duckdb", "target/moved.duckdb")
    project_file.write_text(text.replace("  backend: file\n", "  backend: file\n  path: moved\n"))
    moved = run_process(shop, "run", "--end", "2024-06-10")
    assert moved.returncode == 0, moved.stderr
    assert "built 13" in moved.stdout
    assert old.read_bytes() == before
    assert tables_of(shop / "target/moved.duckdb") == tables_of(old)
    again = run_process(shop, "run", "--end", "2024-06-11")
    assert again.returncode == 0, again.stderr
    assert old.read_bytes() == before
