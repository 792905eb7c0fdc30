"""End-to-end: virtual environments — plan, apply, promote, rollback, janitor, diff."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from seeknal.runtime.environments import find_garbage
from seeknal.state.file import FileStateBackend
from tests.cli.conftest import invoke, run_process, tables_of, tree_state
from tests.conftest import edit

ORDERS_SQL = "seeknal/transforms/customer_orders.sql"
BREAKING = ("    c.last_name,", "    UPPER(c.last_name) AS last_name,")


def relations(project: Path) -> dict[str, int]:
    """Every table in the warehouse with its row count (views excluded)."""
    con = duckdb.connect(str(project / "target/warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() WHERE NOT internal"
        ).fetchall()
        return {
            f"{s}.{t}": con.execute(f'SELECT COUNT(*) FROM "{s}"."{t}"').fetchone()[0]
            for s, t, _ in rows
        }  # type: ignore[index]
    finally:
        con.close()


def state_of(project: Path) -> FileStateBackend:
    return FileStateBackend(project / "target/state")


def views_of(project: Path, env: str) -> dict[str, list[tuple[object, ...]]]:
    schema_suffix = "" if env == "prod" else f"__{env}"
    return {
        name: rows
        for name, rows in tables_of(project / "target/warehouse.duckdb").items()
        if name.split(".")[0].endswith(schema_suffix)
        and (env != "prod" or "__" not in name.split(".")[0])
    }


def test_a_breaking_change_in_dev_leaves_prod_untouched_and_promote_builds_nothing(
    shop: Path,
) -> None:
    assert invoke(shop, "plan", "--yes").exit_code == 0
    prod_before = views_of(shop, "prod")
    prod_snapshots = dict(state_of(shop).read().environments["prod"]["nodes"])
    edit(shop / ORDERS_SQL, *BREAKING)

    result = invoke(shop, "plan", "dev", "--yes", "--no-diff")
    assert result.exit_code == 0, result.output
    assert "breaking (1)" in result.output
    assert "(new environment, starting from prod)" in result.output
    # prod: the same rows, the same snapshots.
    assert views_of(shop, "prod") == prod_before
    assert state_of(shop).read().environments["prod"]["nodes"] == prod_snapshots
    dev = views_of(shop, "dev")
    assert dev["transform__dev.customer_orders"] != prod_before["transform.customer_orders"]

    tables = relations(shop)
    snapshots = dict(state_of(shop).read().snapshots)
    result = invoke(shop, "promote", "dev", "prod")
    assert result.exit_code == 0, result.output
    assert "nothing rebuilt" in result.output
    # No table was created or filled: the same tables with the same row counts.
    assert relations(shop) == tables
    assert state_of(shop).read().snapshots == snapshots
    prod_after = views_of(shop, "prod")
    assert prod_after["transform.customer_orders"] == dev["transform__dev.customer_orders"]

    # Rollback restores the previous results, again without building anything.
    result = invoke(shop, "rollback", "prod")
    assert result.exit_code == 0, result.output
    assert views_of(shop, "prod") == prod_before
    assert relations(shop) == tables
    # A second rollback redoes the promotion, a third undoes it again.
    assert invoke(shop, "rollback", "prod").exit_code == 0
    assert views_of(shop, "prod") == prod_after
    assert invoke(shop, "rollback", "prod").exit_code == 0
    assert views_of(shop, "prod") == prod_before
    assert relations(shop) == tables
    # State keeps one copy of prod's record besides prod's own: what rollback returns to.
    history = state_of(shop).read().history["prod"]
    assert ["record" in entry for entry in history][-2:] == [True, False]


def test_a_stale_plan_is_refused_before_any_side_effect(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, *BREAKING)
    result = invoke(shop, "plan", "--out", "target/review.json")
    assert result.exit_code == 0, result.output
    assert "apply it with `seeknal apply prod target/review.json`" in result.output
    # Meanwhile somebody else changes prod (another node, from another checkout).
    edit(shop / ORDERS_SQL, BREAKING[1], BREAKING[0])
    edit(
        shop / "seeknal/transforms/payment_methods.yml",
        "COUNT(*) AS payment_count,",
        "COUNT(*) AS payment_count, MAX(p.amount) AS largest,",
    )
    assert invoke(shop, "run", "-q").exit_code == 0
    before = tree_state(shop / "target")
    result = run_process(shop, "apply", "prod", "target/review.json")
    assert result.returncode == 2
    assert "plan is stale: environment 'prod' changed since this plan was compiled" in result.stderr
    assert "apply of " in result.stderr
    assert "now different: transform.payment_methods" in result.stderr
    assert tree_state(shop / "target") == before


def test_a_second_apply_while_one_runs_is_refused_before_writing(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, *BREAKING)
    assert invoke(shop, "plan", "--out", "target/review.json").exit_code == 0
    before = tree_state(shop / "target")
    with state_of(shop).lock():  # another apply holds the environment
        result = run_process(shop, "apply", "prod", "target/review.json")
    assert result.returncode == 2
    assert "another" in result.stderr.lower() and "run" in result.stderr.lower()
    after = tree_state(shop / "target")
    after.pop("state/lock", None)
    before.pop("state/lock", None)
    assert after == before


def test_apply_refuses_a_plan_compiled_for_another_environment(shop: Path) -> None:
    assert invoke(shop, "compile", "--env", "dev", "--out", "target/dev.json").exit_code == 0
    result = run_process(shop, "apply", "prod", "target/dev.json")
    assert result.returncode == 2
    assert "target/dev.json was compiled for environment 'dev', not 'prod'" in result.stderr
    assert not (shop / "target/state").exists()  # refused before anything was locked


def test_ci_workflow_compile_review_execute(shop: Path) -> None:
    """The pull-request flow: compile in CI, diff the plans, execute in the deploy job."""
    assert invoke(shop, "run", "-q").exit_code == 0
    assert invoke(shop, "compile", "--out", "target/main.json").exit_code == 0
    edit(shop / ORDERS_SQL, *BREAKING)
    assert invoke(shop, "compile", "--out", "target/pr.json").exit_code == 0
    result = invoke(shop, "diff", "target/main.json", "target/pr.json")
    assert result.exit_code == 0, result.output
    assert "~ transform.customer_orders: category unchanged -> breaking" in result.output
    assert "sql changed" in result.output
    assert "~ work + transform.customer_orders (new)" in result.output
    as_json = json.loads(
        invoke(shop, "diff", "--json", "target/main.json", "target/pr.json").output
    )
    assert [c["node"] for c in as_json["changed"]] == [
        "transform.customer_lifetime_value",
        "transform.customer_orders",
    ]
    assert invoke(shop, "execute", "target/pr.json").exit_code == 0
    same = invoke(shop, "diff", "target/pr.json", "target/pr.json")
    assert "the plans are identical" in same.output


def test_env_list_delete_and_janitor(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, *BREAKING)
    assert invoke(shop, "plan", "dev", "--yes").exit_code == 0
    listing = json.loads(invoke(shop, "env", "list", "--json").output)
    dev = next(e for e in listing if e["name"] == "dev")
    assert dev["base"] == "prod" and dev["changed"] == 2 and dev["expires_at"] is not None
    assert next(e for e in listing if e["name"] == "prod")["expires_at"] is None

    # Expiry: seven days (the default) after the last change, dev is garbage; prod never.
    state = state_of(shop).read()
    later = find_garbage(state, (), now="2999-01-01T00:00:00Z")
    assert later.environments == ("dev",)
    assert len(later.snapshots) == 2  # what only dev used

    assert "nothing to drop" in invoke(shop, "janitor").output
    dev_only = set(state.snapshots) - {
        n["snapshot"] for n in state.environments["prod"]["nodes"].values()
    }
    assert invoke(shop, "env", "delete", "dev").exit_code == 0
    shown = invoke(shop, "janitor").output
    assert all(f"would drop snapshot {s}" in shown for s in dev_only)
    assert set(relations(shop)) >= dev_only  # only shown, not dropped
    result = invoke(shop, "janitor", "--apply")
    assert result.exit_code == 0, result.output
    assert not set(relations(shop)) & dev_only
    assert not set(state_of(shop).read().snapshots) & dev_only
    # prod still answers, and a run has nothing to do.
    assert invoke(shop, "show", "transform.customer_orders").exit_code == 0
    edit(shop / ORDERS_SQL, BREAKING[1], BREAKING[0])
    assert "0 snapshots to build" in invoke(shop, "compile").output


def test_prod_cannot_be_deleted_and_unknown_environments_are_named(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    result = run_process(shop, "env", "delete", "prod")
    assert result.returncode == 2 and "prod cannot be deleted" in result.stderr
    result = run_process(shop, "promote", "nope", "prod")
    assert result.returncode == 2 and "environment 'nope' does not exist" in result.stderr
    result = run_process(shop, "rollback", "prod")
    assert result.returncode == 2 and "no earlier state to roll back to" in result.stderr


def test_promote_refuses_to_lose_intervals_the_target_serves(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(
        shop / "seeknal/transforms/daily_events.yml",
        "COUNT(*) AS events,",
        "COUNT(*) + 0 AS events,",
    )
    # dev builds the changed incremental table for January only.
    result = invoke(shop, "run", "--env", "dev", "--end", "2024-01-31", "-q")
    assert result.exit_code == 0, result.output
    before = tables_of(shop / "target/warehouse.duckdb")
    result = run_process(shop, "promote", "dev", "prod")
    assert result.returncode == 2
    assert "promoting would leave 'prod' with missing intervals" in result.stderr
    assert "transform.daily_events lacks [2024-02-01, 2025-01-01)" in result.stderr
    assert tables_of(shop / "target/warehouse.duckdb") == before
    # Once dev has every interval, the promotion goes through.
    assert invoke(shop, "run", "--env", "dev", "-q").exit_code == 0
    assert invoke(shop, "promote", "dev", "prod").exit_code == 0


def test_run_holds_the_lock_from_before_it_compiles(shop: Path) -> None:
    """While another run holds the state, `seeknal run` stops before compiling: it writes
    no plan and changes nothing. Its compile then runs on the state it executes on."""
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, *BREAKING)
    before = tree_state(shop / "target")
    with state_of(shop).lock():
        result = run_process(shop, "run", "-q")
    assert result.returncode == 2
    assert "another seeknal run holds the state lock" in result.stderr
    assert tree_state(shop / "target") == before
    assert invoke(shop, "run", "-q").exit_code == 0  # released: the edit is built


def test_a_run_that_fails_to_compile_releases_the_lock(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    before = tree_state(shop / "target")
    sql = shop / ORDERS_SQL
    good = sql.read_text()
    sql.write_text(good.replace("SELECT", "SELEC", 1))
    result = run_process(shop, "run", "-q")
    assert result.returncode == 2 and "error:" in result.stderr
    assert tree_state(shop / "target") == before
    with state_of(shop).lock():
        pass  # nobody holds it
    sql.write_text(good)
    assert invoke(shop, "run", "-q").exit_code == 0


def test_a_first_run_that_fails_to_compile_leaves_nothing(shop: Path) -> None:
    sql = shop / ORDERS_SQL
    sql.write_text(sql.read_text().replace("SELECT", "SELEC", 1))
    result = run_process(shop, "run", "-q")
    assert result.returncode == 2 and "error:" in result.stderr
    assert not (shop / "target").exists()


def test_a_run_with_a_broken_project_file_reports_it_without_locking(shop: Path) -> None:
    (shop / "seeknal_project.yml").write_text("name: shop\nunknown_setting: 1\n")
    result = run_process(shop, "run", "-q")
    assert result.returncode == 2
    assert "seeknal_project.yml:2:1: error:" in result.stderr
    assert not (shop / "target" / "state").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["janitor"],
        ["janitor", "--apply"],
        ["rollback", "prod"],
        ["promote", "dev", "prod"],
        ["env", "delete", "dev"],
    ],
)
def test_environment_commands_on_a_project_never_run_create_nothing(
    shop: Path, command: list[str]
) -> None:
    done = run_process(shop, *command)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "error: no warehouse at target/warehouse.duckdb yet",
        "hint: build it first with `seeknal run`",
    ]
    assert not (shop / "target").exists()


def test_environment_commands_without_the_state_create_none(shop: Path) -> None:
    assert run_process(shop, "run", "--end", "2024-06-10").returncode == 0
    shutil.rmtree(shop / "target/state")
    done = run_process(shop, "janitor")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: no state at target/state yet")
    assert not (shop / "target/state").exists()
