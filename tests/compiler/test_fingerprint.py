"""Fingerprints, snapshot names, change categories and the work list."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import applied, edit

from seeknal.compiler import compile_project
from seeknal.compiler.fingerprint import (
    data_fingerprint,
    data_version,
    files_version,
    metadata_fingerprint,
)


def test_data_fingerprint_depends_on_definition_and_upstream_only() -> None:
    base = data_fingerprint({"sql": "SELECT 1"}, {"source.a": "x"})
    assert base == data_fingerprint({"sql": "SELECT 1"}, {"source.a": "x"})
    assert base != data_fingerprint({"sql": "SELECT 2"}, {"source.a": "x"})
    assert base != data_fingerprint({"sql": "SELECT 1"}, {"source.a": "y"})


def test_metadata_fingerprint_ignores_tag_order() -> None:
    assert metadata_fingerprint("d", "o", ["a", "b"], {}) == metadata_fingerprint(
        "d", "o", ["b", "a"], {}
    )
    assert metadata_fingerprint("d", "o", [], {}) != metadata_fingerprint("d2", "o", [], {})


def test_data_version_follows_snapshot_and_files() -> None:
    assert data_version("s", files_version("sha1", {})) != data_version(
        "s", files_version("sha2", {})
    )
    assert files_version(None, {"source.a": "v1"}) != files_version(None, {"source.a": "v2"})
    assert data_version("s1", None) != data_version("s2", None)


def test_formatting_and_comments_change_nothing(shop: Path) -> None:
    state = applied(compile_project(shop).plan)
    edit(
        shop / "seeknal/transforms/payment_methods.yml",
        "COUNT(*) AS payment_count,",
        "count(*)   as payment_count, -- how many\n",
    )
    plan = compile_project(shop, state=state).plan
    assert plan["work"] == []
    assert plan["nodes"]["transform.payment_methods"]["change"] == {
        "category": "metadata",
        "details": [{"kind": "metadata_changed"}],
    }
    assert plan["nodes"]["transform.customer_lifetime_value"]["change"] == {"category": "unchanged"}


def test_description_change_is_metadata_and_builds_nothing(shop: Path) -> None:
    before = compile_project(shop).plan
    state = applied(before)
    edit(shop / "seeknal/transforms/daily_revenue.yml", "owner: finance", "owner: analytics")
    plan = compile_project(shop, state=state).plan
    node = plan["nodes"]["transform.daily_revenue"]
    assert node["change"] == {"category": "metadata", "details": [{"kind": "metadata_changed"}]}
    assert node["snapshot"] == before["nodes"]["transform.daily_revenue"]["snapshot"]
    assert plan["work"] == []
    assert plan["base_state"] == state.environment_hash("prod")


def test_sql_change_rebuilds_the_node_and_everything_downstream(shop: Path) -> None:
    before = compile_project(shop).plan
    state = applied(before)
    edit(
        shop / "seeknal/transforms/stg_orders.yml",
        "status <> 'cancelled'",
        "status NOT IN ('cancelled')",
    )
    plan = compile_project(shop, state=state).plan
    rebuilt = {w["node"] for w in plan["work"]}
    downstream = {
        "transform.stg_orders",
        "transform.daily_revenue",
        "transform.customer_orders",
        "transform.payment_methods",
        "transform.customer_lifetime_value",
    }
    assert rebuilt == downstream
    assert all(w["reason"] == "new" for w in plan["work"])
    assert plan["nodes"]["transform.stg_orders"]["change"]["category"] == "breaking"
    for node_id in downstream - {"transform.stg_orders"}:
        assert plan["nodes"][node_id]["change"] == {"category": "indirect_breaking"}
    for node_id in downstream:
        assert plan["nodes"][node_id]["snapshot"] != before["nodes"][node_id]["snapshot"]
    assert plan["nodes"]["source.orders"]["change"] == {"category": "unchanged"}


def test_removed_node_is_listed_and_loses_its_view(shop: Path) -> None:
    state = applied(compile_project(shop).plan)
    (shop / "seeknal/transforms/payment_methods.yml").unlink()
    plan = compile_project(shop, state=state).plan
    assert plan["nodes"]["transform.payment_methods"]["change"] == {"category": "removed"}
    assert "transform.payment_methods" not in plan["promotion"]


def test_a_new_environment_has_no_base_state_and_reuses_built_snapshots(shop: Path) -> None:
    state = applied(compile_project(shop).plan)
    plan = compile_project(shop, environment="dev", state=state).plan
    assert plan["base_state"] is None
    assert plan["work"] == []
    assert all(view.split(".")[0].endswith("__dev") for view in plan["promotion"])
