from __future__ import annotations

import pytest
from sqlglot.schema import MappingSchema

from seeknal.compiler.model import SqlText
from seeknal.compiler.sql import SqlError, engine_sql, normalized_sql, parse_sql, qualify_sql

NODES = {"source.orders": 1, "source.customers": 1, "transform.stg": 1}
SCHEMA_DICT = {
    "source": {
        "orders": {"order_id": "INT", "customer_id": "INT", "amount": "DECIMAL(10, 2)"},
        "customers": {"id": "INT", "name": "TEXT"},
    },
    "transform": {"stg": {"order_id": "INT"}},
}
SCHEMA = MappingSchema(SCHEMA_DICT, dialect="duckdb")
ORIGIN = SqlText("", "seeknal/t.yml", line_offset=3, col_offset=2)


def normalize(sql: str) -> str:
    parsed = parse_sql(sql, ORIGIN, "duckdb", NODES)
    return normalized_sql(qualify_sql(parsed, SCHEMA, "duckdb", ORIGIN), "duckdb")


def test_three_ref_styles_are_the_same_query() -> None:
    jinja_rendered = 'SELECT amount FROM "source"."orders"'
    bare = "SELECT amount FROM ref('source.orders')"
    plain = "SELECT amount FROM source.orders"
    assert normalize(jinja_rendered) == normalize(bare) == normalize(plain)
    assert parse_sql(bare, ORIGIN, "duckdb", NODES).refs == ("source.orders",)


@pytest.mark.parametrize(
    "variant",
    [
        "select amount from source.orders where amount > 0",
        "SELECT   amount\nFROM source.orders\n-- a comment\nWHERE amount > 0",
        "/* header */ Select AMOUNT From Source.Orders Where Amount > 0",
        "SELECT orders.amount FROM source.orders WHERE (amount > 0)",
    ],
)
def test_formatting_comments_and_case_normalize_to_one_text(variant: str) -> None:
    assert normalize(variant) == normalize("SELECT amount FROM source.orders WHERE amount > 0")


def test_a_real_change_is_never_normalized_away() -> None:
    base = normalize("SELECT amount FROM source.orders WHERE amount > 0")
    assert normalize("SELECT amount FROM source.orders WHERE amount >= 0") != base
    assert normalize("SELECT (amount + 1) * 2 AS x FROM source.orders") != normalize(
        "SELECT amount + 1 * 2 AS x FROM source.orders"
    )
    assert normalize("SELECT NOT (amount > 1 AND amount < 5) AS x FROM source.orders") != normalize(
        "SELECT NOT amount > 1 AND amount < 5 AS x FROM source.orders"
    )
    assert normalize("SELECT 2024 - amount < 25 AS x FROM source.orders") != normalize(
        "SELECT amount < 2049 AS x FROM source.orders"
    )


def test_star_is_expanded_in_the_normalized_text() -> None:
    text = normalize("SELECT * FROM source.customers")
    assert '"customers"."id"' in text and '"customers"."name"' in text


def test_engine_sql_points_refs_at_snapshots_and_keeps_the_users_sql() -> None:
    parsed = parse_sql(
        "SELECT orders.amount, c.name FROM source.orders JOIN ref('source.customers') c ON c.id = orders.customer_id",
        ORIGIN,
        "duckdb",
        NODES,
    )
    sql = engine_sql(
        parsed,
        lambda node: ("seeknal__" + node.split(".")[0], node.split(".")[1] + "__abc"),
        "duckdb",
        "duckdb",
    )
    assert '"seeknal__source"."orders__abc" AS orders' in sql
    assert '"seeknal__source"."customers__abc" AS c' in sql
    assert "orders.amount" in sql  # not qualified/rewritten by the optimizer


@pytest.mark.parametrize(
    ("sql", "message", "line", "col"),
    [
        ("SELECT *\nFROM source.ordrs", "unknown ref 'source.ordrs'", 5, 8),
        ("SELECT *\nFROM raw_orders", "unknown table 'raw_orders'", 5, 8),
        ("SELECT * FROM read_csv('x.csv')", "cannot read files directly", 4, 17),
        ("SELECT 1; SELECT 2", "found 2 statements", 4, 3),
        ("SELECT * FROM\nWHERE", "SQL syntax error", 5, 3),
    ],
)
def test_errors_point_into_the_yaml_file(sql: str, message: str, line: int, col: int) -> None:
    origin = SqlText(sql, "seeknal/t.yml", line_offset=3, col_offset=2)
    with pytest.raises(SqlError) as info:
        parse_sql(sql, origin, "duckdb", NODES)
    diag = info.value.diagnostics[0]
    assert message in diag.message
    assert (diag.location.line, diag.location.col) == (line, col)


def test_unknown_column_has_did_you_mean() -> None:
    origin = SqlText("SELECT amout FROM source.orders", "t.sql")
    parsed = parse_sql(origin.text, origin, "duckdb", NODES)
    with pytest.raises(SqlError) as info:
        qualify_sql(parsed, SCHEMA, "duckdb", origin)
    diag = info.value.diagnostics[0]
    assert diag.message == "unknown column 'amout' (not in source.orders)"
    assert diag.hint == "did you mean 'amount'?"
    assert (diag.location.line, diag.location.col) == (1, 8)
