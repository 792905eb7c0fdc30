"""Rules end to end: a violation fails the run and stops what reads the checked data."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeknal.compiler import compile_project
from seeknal.errors import CompileFailed
from tests.cli.conftest import run_process, tables_of

BAD_ORDER = "9999,101,2024-03-30 10:00:00,completed,-5.00\n"
WARN_RULE = """kind: rule
name: billable_orders_are_paid
severity: warn
rule: |
  SELECT o.order_id
  FROM transform.stg_orders AS o
  LEFT JOIN source.payments AS p ON p.order_id = o.order_id
  WHERE o.is_billable AND p.payment_id IS NULL
"""


def test_rule_is_planned_as_a_view_with_its_severity(shop: Path) -> None:
    node = compile_project(shop).plan["nodes"]["rule.valid_orders"]
    assert (node["kind"], node["materialized"], node["severity"]) == ("rule", "view", "error")
    assert node["depends_on"] == ["source.orders"]


def test_a_rule_cannot_be_read_by_other_nodes(shop: Path) -> None:
    (shop / "seeknal/transforms/reads_rule.yml").write_text(
        "kind: transform\nname: reads_rule\ntransform: SELECT * FROM {{ ref('rule.valid_orders') }}\n"
    )
    with pytest.raises(CompileFailed) as info:
        compile_project(shop)
    assert (
        "'rule.valid_orders' is a rule; a rule cannot be read by other nodes" in info.value.render()
    )


def test_a_violated_rule_fails_the_run_and_skips_what_reads_the_checked_data(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    warehouse = shop / "target/warehouse.duckdb"
    good = tables_of(warehouse)
    revenue_before = good["transform.daily_revenue"]
    with (shop / "data/orders.csv").open("a") as fh:
        fh.write(BAD_ORDER)

    failed = run_process(shop, "run")
    assert failed.returncode == 1
    assert "node rule.valid_orders failed: 1 row violates this rule:" in failed.stderr
    assert "order_id=9999, status='completed', amount=-5.00" in failed.stderr
    assert "skipped  transform.daily_revenue" in failed.stderr
    assert tables_of(warehouse)["transform.daily_revenue"] == revenue_before

    # Other good data: the rule is checked again, the skipped nodes are built.
    csv = shop / "data/orders.csv"
    csv.write_text(csv.read_text().replace(BAD_ORDER, BAD_ORDER.replace("-5.00", "5.00")))
    fixed = run_process(shop, "run")
    assert fixed.returncode == 0, fixed.stderr
    assert "passed   rule.valid_orders" in fixed.stdout
    assert "built    transform.daily_revenue" in fixed.stdout
    assert "nothing to do" in run_process(shop, "run").stdout

    # Back to the data of the first run: only the source is reloaded; everything else
    # was built and checked on exactly this data before.
    csv.write_text(csv.read_text().replace(BAD_ORDER.replace("-5.00", "5.00"), ""))
    back = run_process(shop, "run")
    assert back.returncode == 0, back.stderr
    assert tables_of(warehouse) == good


def test_a_warning_rule_reports_and_the_run_goes_on(shop: Path) -> None:
    (shop / "seeknal/rules/paid.yml").write_text(WARN_RULE)
    with (shop / "data/orders.csv").open("a") as fh:
        fh.write("9998,101,2024-03-30 11:00:00,completed,12.50\n")  # billable, never paid
    first = run_process(shop, "run")
    assert first.returncode == 0, first.stderr
    assert "WARN     rule.billable_orders_are_paid" in first.stderr
    assert "1 row violates it" in first.stderr
    again = run_process(shop, "run")
    assert "nothing to do" in again.stdout  # checked once per version of the data
    assert "WARN" not in again.stderr
