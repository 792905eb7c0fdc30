"""End-to-end: change categories decide what a run builds, on real DuckDB files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import invoke, tables_of
from tests.conftest import copy_project, edit

ORDERS_SQL = "seeknal/transforms/customer_orders.sql"


def fresh_tables(project: Path, tmp: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every view's rows after a clean run of a copy of ``project`` (a full recompute)."""
    clean = copy_project(project, tmp)
    assert invoke(clean, "run", "-q").exit_code == 0
    return tables_of(clean / "target/warehouse.duckdb")


def plan_of(project: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((project / "target/plan.json").read_text())


def test_non_breaking_change_builds_one_table_and_matches_a_full_recompute(
    shop: Path, tmp_path: Path
) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    before = plan_of(shop)
    edit(shop / ORDERS_SQL, "    c.last_name,", "    c.last_name,\n    c.email,")
    result = invoke(shop, "run")
    assert result.exit_code == 0, result.output
    assert "built    transform.customer_orders" in result.output
    assert "built    transform.customer_lifetime_value" not in result.output
    after = plan_of(shop)
    clv = "transform.customer_lifetime_value"
    assert after["nodes"][clv]["snapshot"] == before["nodes"][clv]["snapshot"]
    assert tables_of(shop / "target/warehouse.duckdb") == fresh_tables(shop, tmp_path / "clean")
    # And the next compile sees nothing left to do.
    assert "0 snapshots to build" in invoke(shop, "compile").output


def test_breaking_change_rebuilds_readers_and_matches_a_full_recompute(
    shop: Path, tmp_path: Path
) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, "    c.last_name,", "    UPPER(c.last_name) AS last_name,")
    result = invoke(shop, "run")
    assert result.exit_code == 0, result.output
    assert "built    transform.customer_lifetime_value" in result.output
    assert tables_of(shop / "target/warehouse.duckdb") == fresh_tables(shop, tmp_path / "clean")


def test_forward_only_run_alters_the_kept_table(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    before = plan_of(shop)
    edit(shop / ORDERS_SQL, "    c.last_name,", "    c.last_name,\n    c.email,")
    result = invoke(shop, "run", "--forward-only")
    assert result.exit_code == 0, result.output
    node = "transform.customer_orders"
    assert plan_of(shop)["nodes"][node]["snapshot"] == before["nodes"][node]["snapshot"]
    tables = tables_of(shop / "target/warehouse.duckdb")
    # The existing rows are kept and gain the new column, empty.
    assert len(tables[node]) == 20
    assert all(row[-1] is None for row in tables[node])
    # Applying it again is harmless, and the next compile has nothing to do.
    assert invoke(shop, "execute", "--force").exit_code == 0
    assert "0 snapshots to build" in invoke(shop, "compile").output


def test_plan_json_and_markdown_summary(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, "    c.last_name,", "    UPPER(c.last_name) AS last_name,")
    applied = (shop / "target/plan.json").read_bytes()
    result = invoke(shop, "plan", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["counts"] == {"breaking": 1, "indirect_breaking": 1, "unchanged": 11}
    assert summary["impact"] == [
        {
            "node": "transform.customer_orders",
            "column": "last_name",
            "edit": "modified",
            "upstream": ["source.customers.last_name"],
            "affects": ["transform.customer_lifetime_value.customer_name"],
        }
    ]
    assert (shop / "target/plan.json").read_bytes() == applied  # plan writes no plan file
    md = shop / "review.md"
    assert invoke(shop, "compile", "--summary-md", str(md)).exit_code == 0
    text = md.read_text()
    assert "| breaking | 1 |" in text
    assert "```diff" in text and '+  UPPER("c"."last_name") AS "last_name",' in text


def test_plan_for_a_new_environment_compares_with_prod(shop: Path) -> None:
    assert invoke(shop, "run", "-q").exit_code == 0
    edit(shop / ORDERS_SQL, "    c.last_name,", "    c.last_name,\n    c.email,")
    result = invoke(shop, "plan", "dev", "--no-diff")
    assert result.exit_code == 0, result.output
    assert "Plan for environment 'dev' (new environment, starting from prod)" in result.output
    assert "Work: 1 snapshot to build (1 table)" in result.output
