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
        (
            "SELECT * FROM read_csv('x.csv')",
            "table function read_csv is not allowed in a transform",
            4,
            17,
        ),
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


def analyze_error(sql: str, nodes: dict[str, int] | None = None) -> tuple[str, str, str]:
    """(message, line:col, hint) of the first error parsing or qualifying ``sql``."""
    origin = SqlText(sql, "t.sql")
    with pytest.raises(SqlError) as info:
        parsed = parse_sql(sql, origin, "duckdb", nodes or NODES)
        qualify_sql(parsed, SCHEMA, "duckdb", origin)
    diag = info.value.diagnostics[0]
    assert "<Token" not in diag.message and "<class" not in diag.message
    assert diag.location is not None
    return diag.message, f"{diag.location.line}:{diag.location.col}", diag.hint or ""


@pytest.mark.parametrize(
    ("sql", "message", "where", "hint"),
    [
        (
            "SELECT o.amountt FROM source.orders o",
            "unknown column 'amountt' (not in source.orders)",
            "1:10",
            "did you mean 'amount'?",
        ),
        (
            "SELECT c.name,\n  o.amout\nFROM source.orders o JOIN source.customers c ON c.id = o.customer_id",
            "unknown column 'amout' (not in source.orders)",
            "2:5",
            "did you mean 'amount'?",
        ),
        (
            "SELECT source.orders.amountt FROM source.orders",
            "unknown column 'amountt' (not in source.orders)",
            "1:22",
            "did you mean 'amount'?",
        ),
        (
            "SELECT x.amount FROM source.orders o",
            "unknown table or alias 'x'",
            "1:8",
            "tables in this query: o",
        ),
        (
            "SELECT order_id FROM source.orders JOIN source.customers USING (customer_idd)",
            "cannot join USING (customer_idd): source.customers has no column 'customer_idd'",
            "1:65",
            "write the join condition with ON",
        ),
        (
            "SELECT order_id FROM source.orders o JOIN source.customers c USING (name)",
            "cannot join USING (name): source.orders has no column 'name'",
            "1:69",
            "",
        ),
        (
            "SELECT order_id FROM source.orders, transform.stg",
            "ambiguous column 'order_id' (in source.orders and transform.stg)",
            "1:8",
            "qualify it with its table or alias, e.g. orders.order_id",
        ),
        (
            "SELECT amount FROM (SELECT order_id FROM source.orders)",
            "unknown column 'amount': no table of this SELECT has it",
            "1:8",
            "source.orders has it",
        ),
        (
            "SELECT amount FROM source.orders ORDER BY 3",
            "there is no output column 3",
            "1:43",
            "counts the SELECT's columns from 1",
        ),
    ],
)
def test_analyzer_errors_are_explained(sql: str, message: str, where: str, hint: str) -> None:
    got, at, got_hint = analyze_error(sql)
    assert (got, at) == (message, where)
    assert hint in got_hint


@pytest.mark.parametrize(
    ("sql", "message", "where"),
    [
        ("SELECT *\nFROM\nWHERE amount > 0", "expected a table name, found 'WHERE'", "3:1"),
        (
            "SELECT * FROM source.orders JOIN",
            "expected a table name, found the end of the query",
            "1:29",
        ),
        ("SELECT *\nFROM source.orders\nWHERE", "something is missing after 'WHERE'", "3:1"),
        ("SELECT (amount FROM source.orders", "expected ')', found 'FROM'", "1:16"),
        (
            "SELECT CAST(amount AS) FROM source.orders",
            "expected a type after CAST, found ')'",
            "1:22",
        ),
        ("SELECT amount FORM source.orders", "unexpected 'source'", "1:20"),
        ("SELECT 'abc FROM source.orders", "' opened here is never closed", "1:8"),
        ('SELECT 1,\n  "abc FROM source.orders', '" opened here is never closed', "2:3"),
    ],
)
def test_syntax_errors_name_the_token_where_it_starts(sql: str, message: str, where: str) -> None:
    got, at, hint = analyze_error(sql)
    assert got == f"SQL syntax error: {message}"
    assert at == where
    assert hint


ALLOWED = [
    "SELECT * FROM range(10)",
    "SELECT * FROM range(1, 10, 2) AS r(i)",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT * FROM unnest([1, 2]) AS u(x)",
    "SELECT o.order_id, u.x FROM source.orders o, unnest([o.amount]) AS u(x)",
    "SELECT o.order_id FROM source.orders o, LATERAL unnest([o.amount]) AS u(x)",
    "SELECT * FROM (VALUES (1), (2)) AS v(a)",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_table_functions_that_read_no_data_are_allowed(sql: str) -> None:
    parse_sql(sql, SqlText(sql, "t.sql"), "duckdb", NODES)
    parse_sql(sql, SqlText(sql, "t.sql"), "postgres", NODES)


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM query_table('source.orders')", "query_table"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM read_parquet('x.parquet')", "read_parquet"),
        ("SELECT * FROM read_csv_auto('x.csv')", "read_csv_auto"),
        ("SELECT * FROM glob('*.csv')", "glob"),
        ("SELECT * FROM parquet_schema('x.parquet')", "parquet_schema"),
        ("SELECT * FROM sqlite_scan('x.db', 't')", "sqlite_scan"),
        ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
        ("SELECT * FROM source.orders o, LATERAL read_csv(o.name)", "read_csv"),
        ("SELECT * FROM TABLE(read_json('x.json'))", "read_json"),
        ("SELECT * FROM range(3) UNION ALL SELECT * FROM read_text('x')", "read_text"),
        ("SELECT * FROM source.orders WHERE order_id IN (SELECT * FROM glob('x'))", "glob"),
    ],
)
def test_any_other_table_function_is_an_error(sql: str, name: str) -> None:
    origin = SqlText(sql, "t.sql")
    with pytest.raises(SqlError) as info:
        parse_sql(sql, origin, "duckdb", NODES)
    diag = info.value.diagnostics[0]
    assert diag.message == (
        f"table function {name} is not allowed in a transform: "
        "it would read data seeknal does not track"
    )
    assert "declare the file as a source node and ref() it" in (diag.hint or "")
    assert diag.location is not None
    assert sql[diag.location.col - 1 :].lower().startswith(name)
    with pytest.raises(SqlError) as info:
        parse_sql(sql, origin, "duckdb", NODES, kind="rule")
    assert f"table function {name} is not allowed in a rule" in info.value.diagnostics[0].message


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        (
            "SELECT * FROM source.orders PIVOT (sum(amount) FOR customer_id IN "
            "(SELECT id FROM source.customers))",
            "PIVOT (agg FOR col IN ('a', 'b'))",
        ),
        ("SELECT * FROM (PIVOT source.orders ON customer_id USING sum(amount)) p", "ON col IN"),
        (
            "SELECT * FROM (PIVOT source.orders ON order_id IN (1, 2), customer_id USING sum(amount))",
            "ON col IN",
        ),
    ],
)
def test_a_pivot_without_a_list_of_values_is_an_error(sql: str, hint: str) -> None:
    with pytest.raises(SqlError) as info:
        parse_sql(sql, SqlText(sql, "t.sql"), "duckdb", NODES)
    diag = info.value.diagnostics[0]
    assert "has no list of values" in diag.message
    assert hint in (diag.hint or "")
    assert diag.location is not None and sql[diag.location.col - 1 :].startswith("PIVOT")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM source.orders PIVOT (sum(amount) FOR customer_id IN (10, 11))",
        "SELECT * FROM (PIVOT source.orders ON customer_id IN (10, 11) USING sum(amount))",
        "SELECT * FROM (UNPIVOT source.customers ON name INTO NAME k VALUE v)",
    ],
)
def test_a_pivot_with_its_values_listed_parses(sql: str) -> None:
    parse_sql(sql, SqlText(sql, "t.sql"), "duckdb", NODES)


def test_unaliased_refs_sharing_a_name_get_distinct_aliases() -> None:
    nodes = {"source.t": 1, "seed.t": 1}
    sql = (
        "SELECT source.t.b, seed.t.b AS b2 FROM source.t JOIN seed.t ON source.t.a = seed.t.a "
        "WHERE source.t.a IN (SELECT t.a FROM seed.t)"
    )
    parsed = parse_sql(sql, SqlText(sql, "t.sql"), "duckdb", nodes)
    text = engine_sql(
        parsed, lambda n: ("seeknal__" + n.split(".")[0], "t__abc"), "duckdb", "duckdb"
    )
    assert '"seeknal__source"."t__abc" AS source__t' in text
    assert '"seeknal__seed"."t__abc" AS seed__t' in text
    assert "source__t.b" in text and "seed__t.b AS b2" in text
    assert "ON source__t.a = seed__t.a" in text
    # A subquery is its own scope: its only ref keeps its name.
    assert '"seeknal__seed"."t__abc" AS t' in text and "SELECT\n      t.a" in text


def test_a_bad_bare_ref_is_one_error_not_also_a_table_function() -> None:
    sql = "SELECT * FROM ref(1)"
    with pytest.raises(SqlError) as info:
        parse_sql(sql, SqlText(sql, "t.sql"), "duckdb", NODES)
    assert [d.message for d in info.value.diagnostics] == ["ref() takes one quoted node id"]
