"""`seeknal show`, `query` and `lineage` on a built shop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import invoke, run_process
from tests.cli.test_rules import BAD_ORDER


@pytest.fixture
def built(shop: Path) -> Path:
    assert run_process(shop, "run").returncode == 0
    return shop


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1 AS a) TO '{out}'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv('data/orders.csv')",
        "ATTACH '{out}' AS other",
        "SET enable_external_access = true",
    ],
)
def test_query_cannot_touch_files(built: Path, sql: str, tmp_path: Path) -> None:
    out = tmp_path / "leak.csv"

    result = invoke(built, "query", sql.format(out=out))

    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: query failed: ")
    assert not out.exists()


def test_query_still_reads_sources_transforms_and_rules(built: Path) -> None:
    for sql in (
        "SELECT COUNT(*) FROM source.orders",
        "SELECT COUNT(*) FROM transform.customer_lifetime_value",
        'SELECT COUNT(*) FROM "rule".valid_orders',
        "SELECT COUNT(*) FROM seed.country_codes",
    ):
        result = invoke(built, "query", sql)
        assert result.exit_code == 0, (sql, result.output)
    assert invoke(built, "show", "source.orders", "-n", "1").exit_code == 0


@pytest.mark.parametrize("sql", ["", "   ", "\n"])
def test_an_empty_query_is_an_error(built: Path, sql: str) -> None:
    result = invoke(built, "query", sql)
    assert result.exit_code == 2
    assert result.output.startswith("error: the query is empty")


def test_show_after_a_failed_first_run_says_why_nothing_is_promoted(shop: Path) -> None:
    with (shop / "data/orders.csv").open("a") as fh:
        fh.write(BAD_ORDER)
    failed = run_process(shop, "run")
    assert failed.returncode == 1

    result = invoke(shop, "show", "rule.valid_orders")

    assert result.exit_code == 2
    assert (
        "environment 'prod' has not been promoted yet: its last run failed, and a run "
        "promotes only when every node succeeded" in result.output
    )
    assert "that run's output says which node failed and why" in result.output
    assert "nothing is built in 'prod' yet" not in result.output
    # Another environment really has nothing built yet.
    other = invoke(shop, "show", "rule.valid_orders", "--env", "qa")
    assert "nothing is built in 'qa' yet: `seeknal run --env qa`" in other.output


def test_example_rule_does_not_promise_show_lists_violations(shop: Path) -> None:
    text = (shop / "seeknal/rules/valid_orders.yml").read_text()
    assert "seeknal show" not in text
    assert "the failure message lists the first" in " ".join(text.split())


def test_lineage_both_flags_mean_both_directions(shop: Path) -> None:
    both = invoke(shop, "lineage", "transform.stg_orders", "--upstream", "--downstream")
    neither = invoke(shop, "lineage", "transform.stg_orders")
    up = invoke(shop, "lineage", "transform.stg_orders", "--upstream")
    down = invoke(shop, "lineage", "transform.stg_orders", "--downstream")

    assert both.exit_code == 0, both.output
    assert both.output == neither.output
    assert "upstream:" in both.output and "downstream:" in both.output
    assert "upstream:" in up.output and "downstream:" not in up.output
    assert "downstream:" in down.output and "upstream:" not in down.output


def test_lineage_tree_marks_last_siblings(shop: Path) -> None:
    result = invoke(shop, "lineage", "source.orders", "--downstream")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "source.orders",
        "downstream:",
        "  ├─ rule.valid_orders",
        "  └─ transform.stg_orders",
        "     ├─ transform.customer_lifetime_value",
        "     ├─ transform.customer_orders",
        "     │  └─ transform.customer_lifetime_value",
        "     ├─ transform.daily_revenue",
        "     └─ transform.payment_methods",
    ]


def test_lineage_suggests_only_close_names_of_the_same_kind(shop: Path) -> None:
    nope = invoke(shop, "lineage", "transform.nope")
    assert nope.exit_code == 2
    assert "did you mean" not in nope.output
    assert "hint: its transform nodes: transform.customer_lifetime_value" in nope.output

    typo = invoke(shop, "lineage", "transform.daily_revenu.revenue")
    assert "did you mean 'transform.daily_revenue.revenue'?" in typo.output
    kind = invoke(shop, "lineage", "transfrom.stg_orders")
    assert "did you mean 'transform.stg_orders'?" in kind.output


def test_lineage_help_says_column_lineage_follows_values(shop: Path) -> None:
    shown = " ".join(invoke(shop, "lineage", "--help").output.split())
    assert "Column lineage follows values" in shown
    assert "only joins on or filters by are not its lineage" in shown
