"""Change categories of whole projects, and what each category builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import applied, edit

from seeknal.compiler import compile_project
from seeknal.errors import CompileFailed

CUSTOMER_ORDERS = "seeknal/transforms/customer_orders.sql"
CUSTOMER_ORDERS_YML = "seeknal/transforms/customer_orders.yml"


def recompile(shop: Path, change: tuple[str, str, str], **kwargs: Any) -> tuple[dict, dict]:  # type: ignore[type-arg]
    before = compile_project(shop).plan
    state = applied(before)
    edit(shop / change[0], change[1], change[2])
    return before, compile_project(shop, state=state, **kwargs).plan


def category(plan: dict, node_id: str) -> str:  # type: ignore[type-arg]
    return str(plan["nodes"][node_id]["change"]["category"])


def test_adding_a_column_rebuilds_only_that_node(shop: Path) -> None:
    before, plan = recompile(
        shop,
        (CUSTOMER_ORDERS, "    c.last_name,\n", "    c.last_name,\n    c.email,\n"),
    )
    change = plan["nodes"]["transform.customer_orders"]["change"]
    assert change["category"] == "non_breaking"
    assert change["details"] == [{"kind": "column_added", "column": "email"}]
    assert "+" in change["sql_diff"] and "email" in change["sql_diff"]
    assert [w["node"] for w in plan["work"]] == ["transform.customer_orders"]
    # The reader of customer_orders keeps its table: none of the columns it reads changed.
    clv = "transform.customer_lifetime_value"
    assert category(plan, clv) == "indirect_non_breaking"
    assert plan["nodes"][clv]["snapshot"] == before["nodes"][clv]["snapshot"]
    assert plan["nodes"][clv]["fingerprint"]["data"] != before["nodes"][clv]["fingerprint"]["data"]


def test_a_modified_column_rebuilds_only_its_readers(shop: Path) -> None:
    before, plan = recompile(
        shop,
        (CUSTOMER_ORDERS, "    cc.country_name,", "    UPPER(cc.country_name) AS country_name,"),
    )
    change = plan["nodes"]["transform.customer_orders"]["change"]
    assert change["category"] == "breaking"
    assert {
        "kind": "column_modified",
        "column": "country_name",
        "previous": '"cc"."country_name"',
    } in change["details"]
    # customer_lifetime_value never reads country_name.
    clv = "transform.customer_lifetime_value"
    assert category(plan, clv) == "indirect_non_breaking"
    assert plan["nodes"][clv]["snapshot"] == before["nodes"][clv]["snapshot"]
    assert [w["node"] for w in plan["work"]] == ["transform.customer_orders"]


def test_a_column_the_reader_uses_makes_it_indirect_breaking(shop: Path) -> None:
    before, plan = recompile(
        shop, (CUSTOMER_ORDERS, "    c.last_name,", "    UPPER(c.last_name) AS last_name,")
    )
    clv = "transform.customer_lifetime_value"
    assert category(plan, clv) == "indirect_breaking"
    assert plan["nodes"][clv]["snapshot"] != before["nodes"][clv]["snapshot"]
    assert {w["node"] for w in plan["work"]} == {"transform.customer_orders", clv}


def test_a_filter_change_reaches_every_descendant(shop: Path) -> None:
    _, plan = recompile(
        shop, (CUSTOMER_ORDERS, "    WHERE is_billable\n", "    WHERE is_billable AND amount > 0\n")
    )
    assert category(plan, "transform.customer_orders") == "breaking"
    assert category(plan, "transform.customer_lifetime_value") == "indirect_breaking"


def test_formatting_is_metadata_and_builds_nothing(shop: Path) -> None:
    before, plan = recompile(
        shop, (CUSTOMER_ORDERS, "    c.first_name,\n", "    C.FIRST_NAME  ,  -- who\n")
    )
    assert plan["nodes"]["transform.customer_orders"]["change"] == {
        "category": "metadata",
        "details": [{"kind": "metadata_changed"}],
    }
    assert plan["work"] == []
    assert plan["promotion"] == before["promotion"]


def test_materialization_change_is_a_new_snapshot_for_the_node_only(shop: Path) -> None:
    before, plan = recompile(
        shop,
        (
            CUSTOMER_ORDERS_YML,
            "sql: customer_orders.sql",
            "sql: customer_orders.sql\nmaterialized: view",
        ),
    )
    change = plan["nodes"]["transform.customer_orders"]["change"]
    assert change == {
        "category": "non_breaking",
        "details": [{"kind": "materialization_changed"}],
    }
    clv = "transform.customer_lifetime_value"
    assert category(plan, clv) == "indirect_non_breaking"
    assert plan["nodes"][clv]["snapshot"] == before["nodes"][clv]["snapshot"]


def test_a_seed_with_new_rows_is_breaking(shop: Path) -> None:
    state = applied(compile_project(shop).plan)
    csv = shop / "seeds/country_codes.csv"
    last = csv.read_text().splitlines()[-1]
    csv.write_text(csv.read_text() + "ZZ" + last[last.index(",") :] + "\n")
    plan = compile_project(shop, state=state).plan
    change = plan["nodes"]["seed.country_codes"]["change"]
    assert change["category"] == "breaking"
    assert {"kind": "source_changed"} in change["details"]
    assert category(plan, "transform.customer_orders") == "indirect_breaking"


def test_forward_only_keeps_the_table_and_adds_columns(shop: Path) -> None:
    edit(
        shop / CUSTOMER_ORDERS_YML,
        "sql: customer_orders.sql",
        "sql: customer_orders.sql\nforward_only: true",
    )
    before, plan = recompile(
        shop, (CUSTOMER_ORDERS, "    c.last_name,\n", "    c.last_name,\n    c.email,\n")
    )
    node = "transform.customer_orders"
    assert category(plan, node) == "forward_only"
    assert plan["nodes"][node]["snapshot"] == before["nodes"][node]["snapshot"]
    assert plan["work"] == [
        {"node": node, "snapshot": before["nodes"][node]["snapshot"], "reason": "forward_only"}
    ]
    assert category(plan, "transform.customer_lifetime_value") == "unchanged"


def test_forward_only_flag_on_the_command_line(shop: Path) -> None:
    _, plan = recompile(
        shop,
        (CUSTOMER_ORDERS, "    c.last_name,\n", "    c.last_name,\n    c.email,\n"),
        forward_only=True,
    )
    assert category(plan, "transform.customer_orders") == "forward_only"


def test_forward_only_in_another_environment_is_built_as_a_preview(shop: Path) -> None:
    before = compile_project(shop).plan
    state = applied(before)
    edit(shop / CUSTOMER_ORDERS, "    c.last_name,\n", "    c.last_name,\n    c.email,\n")
    plan = compile_project(shop, state=state, environment="dev", forward_only=True).plan
    node = "transform.customer_orders"
    assert category(plan, node) == "forward_only"
    assert plan["nodes"][node]["snapshot"] != before["nodes"][node]["snapshot"]
    assert [w["reason"] for w in plan["work"] if w["node"] == node] == ["new"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    c.last_name,\n", "", "column removed 'last_name'"),
        ("    c.last_name,\n", "    c.last_name AS surname,\n", "column renamed 'last_name'"),
        (
            "    COALESCE(f.order_count, 0) AS order_count,",
            "    CAST(COALESCE(f.order_count, 0) AS VARCHAR) AS order_count,",
            "column 'order_count' changes type from BIGINT to VARCHAR",
        ),
    ],
)
def test_a_destructive_forward_only_change_is_refused(
    shop: Path, old: str, new: str, message: str
) -> None:
    state = applied(compile_project(shop).plan)
    edit(shop / CUSTOMER_ORDERS, old, new)
    if "last_name" in old:  # customer_lifetime_value reads it; keep that reader compiling
        edit(
            shop / "seeknal/transforms/customer_lifetime_value.yml",
            "co.first_name || ' ' || co.last_name",
            "co.first_name",
        )
    with pytest.raises(CompileFailed) as failed:
        compile_project(shop, state=state, forward_only=True)
    text = failed.value.render()
    assert "forward-only change to transform.customer_orders is destructive" in text
    assert message in text


def test_a_new_environment_is_compared_with_prod(shop: Path) -> None:
    state = applied(compile_project(shop).plan)
    edit(shop / CUSTOMER_ORDERS, "    c.last_name,\n", "    c.last_name,\n    c.email,\n")
    plan = compile_project(shop, environment="dev", state=state).plan
    assert plan["base_state"] is None
    assert category(plan, "transform.customer_orders") == "non_breaking"
    assert category(plan, "source.orders") == "unchanged"
    assert [w["node"] for w in plan["work"]] == ["transform.customer_orders"]
