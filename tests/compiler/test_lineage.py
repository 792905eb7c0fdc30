from __future__ import annotations

import sqlglot
from sqlglot.optimizer.qualify import qualify

from seeknal.compiler.lineage import output_columns

SCHEMA = {
    "source": {
        "orders": {"order_id": "INT", "customer_id": "INT", "amount": "DECIMAL(10, 2)"},
        "customers": {"id": "INT", "name": "TEXT", "region": "TEXT"},
    }
}


def lineage(sql: str) -> dict[str, set[tuple[str, str]]]:
    tree = qualify(sqlglot.parse_one(sql, dialect="duckdb"), schema=SCHEMA, dialect="duckdb")
    return {c.name: set(c.lineage) for c in output_columns(tree)}


AMOUNT = ("source.orders", "amount")
NAME = ("source.customers", "name")


def test_direct_columns_and_star() -> None:
    assert lineage("SELECT * FROM source.customers") == {
        "id": {("source.customers", "id")},
        "name": {NAME},
        "region": {("source.customers", "region")},
    }


def test_through_ctes_joins_and_aggregates() -> None:
    got = lineage(
        """
        WITH o AS (SELECT customer_id, amount * 2 AS doubled FROM source.orders)
        SELECT c.name, SUM(o.doubled) AS total, COUNT(*) AS n
        FROM o JOIN source.customers c ON c.id = o.customer_id
        GROUP BY c.name
        """
    )
    assert got == {"name": {NAME}, "total": {AMOUNT}, "n": set()}


def test_window_functions_read_their_partition_and_order_columns() -> None:
    got = lineage(
        "SELECT RANK() OVER (PARTITION BY c.region ORDER BY c.name) AS r FROM source.customers c"
    )
    assert got == {"r": {("source.customers", "region"), NAME}}


def test_union_reads_every_branch_by_position() -> None:
    got = lineage(
        "SELECT name AS label FROM source.customers UNION ALL SELECT CAST(amount AS TEXT) FROM source.orders"
    )
    assert got == {"label": {NAME, AMOUNT}}


def test_derived_table_and_scalar_subquery() -> None:
    got = lineage(
        """
        SELECT t.name,
               (SELECT MAX(o.amount) FROM source.orders o WHERE o.customer_id = t.id) AS biggest
        FROM (SELECT id, name FROM source.customers) AS t
        """
    )
    assert got == {"name": {NAME}, "biggest": {AMOUNT}}


def test_table_functions_and_lateral_subqueries() -> None:
    assert lineage("SELECT x FROM source.orders, UNNEST([amount, order_id]) AS u(x)") == {
        "x": {AMOUNT, ("source.orders", "order_id")}
    }
    assert lineage(
        "SELECT s.x FROM source.orders AS o, LATERAL (SELECT o.amount + 1 AS x) AS s"
    ) == {"x": {AMOUNT}}
