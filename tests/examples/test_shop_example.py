"""The example shop: complete, self-contained, and valid SQL for plain DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from tests.bench.load import load_bench_module
from tests.conftest import EXAMPLE

NODE_IDS = {
    "source.customers",
    "source.orders",
    "source.payments",
    "seed.country_codes",
    "transform.stg_orders",
    "transform.customer_orders",
    "transform.daily_revenue",
    "transform.payment_methods",
    "transform.customer_lifetime_value",
    "rule.valid_orders",
    "source.events",
    "transform.daily_events",
    "transform.monthly_events",
}


def test_example_nodes_and_files() -> None:
    assert (EXAMPLE / ".gitignore").read_text(encoding="utf-8").split() == ["target/"]
    ids = set()
    for path in (EXAMPLE / "seeknal").rglob("*.yml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        ids.add(f"{spec['kind']}.{spec['name']}")
        for key in ("table", "path"):
            if key in spec:
                assert (EXAMPLE / spec[key]).is_file(), (path, spec[key])
        if "sql" in spec:
            assert (path.parent / spec["sql"]).is_file()
    assert ids == NODE_IDS
    assert not (EXAMPLE / "target").exists()


def test_example_builds_in_plain_duckdb(tmp_path: Path) -> None:
    direct = load_bench_module("direct")
    db = tmp_path / "shop.duckdb"
    direct.build_project(EXAMPLE, db)
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = {
            node: con.execute(f"SELECT COUNT(*) FROM {node}").fetchall()[0][0]
            for node in sorted(NODE_IDS)
        }
        segments = dict(
            con.execute(
                "SELECT segment, COUNT(*) FROM transform.customer_lifetime_value GROUP BY 1"
            ).fetchall()
        )
    finally:
        con.close()
    assert counts["source.customers"] == 20
    assert counts["source.orders"] == 100
    assert counts["transform.customer_lifetime_value"] == 20
    assert counts["transform.payment_methods"] == 5
    assert counts["transform.daily_revenue"] > 50
    assert counts["source.events"] == 4861
    assert counts["transform.daily_events"] == 366  # every day of 2024
    assert counts["transform.monthly_events"] == 12
    assert set(segments) == {"high", "regular", "prospect"}
