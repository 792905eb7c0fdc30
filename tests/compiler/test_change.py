"""categorize_change as an API: its values, errors, determinism, speed and properties.

The labelled corpus is in test_change_corpus.py; this file checks the contract around
it, and two properties with hypothesis: reformatting a query is never a change, and
editing a literal of its filter is never a safe one.
"""

from __future__ import annotations

import doctest
import statistics
import time

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seeknal.compiler
from seeknal.compiler import (
    Change,
    ChangeCategory,
    ChangeDetail,
    EditKind,
    QueryError,
    categorize_change,
    change,
    normal_form,
    query_diff,
)
from seeknal.errors import SeeknalError

SHOP = {
    "raw": {
        "orders": {
            "order_id": "INTEGER",
            "customer_id": "INTEGER",
            "amount": "DECIMAL(12,2)",
            "status": "VARCHAR",
        },
        "customers": {"customer_id": "INTEGER", "name": "VARCHAR", "country": "VARCHAR"},
    }
}


def test_the_nine_categories_and_fifteen_edit_kinds() -> None:
    assert [c.value for c in ChangeCategory] == [
        "added",
        "removed",
        "unchanged",
        "metadata",
        "non_breaking",
        "breaking",
        "forward_only",
        "indirect_breaking",
        "indirect_non_breaking",
    ]
    assert {k.value for k in EditKind} == {
        "column_added",
        "column_removed",
        "column_modified",
        "column_renamed",
        "filter_changed",
        "join_changed",
        "grouping_changed",
        "distinct_changed",
        "limit_changed",
        "order_changed",
        "source_changed",
        "materialization_changed",
        "sql_logic_changed",
        "metadata_changed",
        "table_changed_elsewhere",
    }
    for name in ("categorize_change", "Change", "ChangeCategory", "ChangeDetail", "EditKind"):
        assert name in seeknal.compiler.__all__


def test_detail_to_json_omits_empty_fields() -> None:
    assert ChangeDetail(EditKind.FILTER_CHANGED).to_json() == {"kind": "filter_changed"}
    assert ChangeDetail(EditKind.COLUMN_ADDED, "x").to_json() == {
        "kind": "column_added",
        "column": "x",
    }
    assert ChangeDetail(EditKind.COLUMN_RENAMED, "total", "amount").to_json() == {
        "kind": "column_renamed",
        "column": "total",
        "previous": "amount",
    }


def test_change_to_json() -> None:
    got = categorize_change(
        "SELECT order_id, amount FROM raw.orders",
        "SELECT order_id, amount AS total FROM raw.orders WHERE amount > 0",
    )
    as_json = got.to_json()
    assert as_json["category"] == "breaking"
    assert as_json["details"] == [
        {"kind": "column_renamed", "column": "total", "previous": "amount"},
        {"kind": "filter_changed"},
    ]
    assert as_json["changed_columns"] == ["amount"]
    assert as_json["rows_changed"] is True
    assert as_json["sql_diff"].startswith("--- old\n+++ new\n")


def test_details_are_sorted_and_the_result_is_deterministic() -> None:
    old = "SELECT a, b, c FROM raw.t WHERE x > 1"
    new = "SELECT c + 1 AS c, b AS bb, d FROM raw.t WHERE x > 2 ORDER BY d"
    first = categorize_change(old, new)
    assert all(categorize_change(old, new) == first for _ in range(3))
    assert list(first.details) == sorted(first.details, key=ChangeDetail.sort_key)
    assert {d.kind for d in first.details} >= {
        EditKind.COLUMN_REMOVED,
        EditKind.COLUMN_ADDED,
        EditKind.COLUMN_RENAMED,
        EditKind.COLUMN_MODIFIED,
        EditKind.FILTER_CHANGED,
        EditKind.ORDER_CHANGED,
    }


def test_sql_diff_is_a_unified_diff_of_pretty_normalized_sql() -> None:
    got = categorize_change(
        "SELECT order_id, amount FROM raw.orders WHERE amount > 10",
        "select order_id, amount from raw.orders where amount > 20",
    )
    assert got.sql_diff == (
        "--- old\n"
        "+++ new\n"
        "@@ -3,4 +3,4 @@\n"
        '   "amount" AS "amount"\n'
        ' FROM "raw"."orders" AS "orders"\n'
        " WHERE\n"
        '-  "amount" > 10\n'
        '+  "amount" > 20\n'
    )
    same = categorize_change("SELECT 1 AS x", "select 1 as x  -- one")
    assert (same.category, same.sql_diff) == (ChangeCategory.METADATA, "")
    assert categorize_change("SELECT 1 AS x", "SELECT 1 AS x").sql_diff == ""


def test_unchanged_needs_the_same_text() -> None:
    assert categorize_change("SELECT 1 AS x", "SELECT 1 AS x").category is ChangeCategory.UNCHANGED
    assert categorize_change("SELECT 1 AS x", "SELECT 1 AS x ").category is ChangeCategory.METADATA


def test_a_syntax_error_names_the_side_line_and_column() -> None:
    with pytest.raises(QueryError) as caught:
        categorize_change("SELECT 1 AS x", "SELECT a\nFROM raw.orders WHERE")
    error = caught.value
    assert isinstance(error, SeeknalError)
    assert error.exit_code == 2
    rendered = error.render()
    assert rendered.startswith("new SQL:2:")
    assert "error: SQL syntax error" in rendered
    assert "hint: check the SQL near this position" in rendered
    assert error.hint == "check the SQL near this position"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "found no statement"),
        ("SELECT 1; SELECT 2", "found 2 statements"),
        ("CREATE TABLE t (a INT)", "found a CREATE statement"),
        ("SELECT 'unterminated", "SQL syntax error"),
    ],
)
def test_not_one_query_is_an_error(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as caught:
        categorize_change(sql, "SELECT 1 AS x")
    assert str(caught.value.diagnostic.location).startswith("old SQL")
    assert caught.value.hint


def test_an_unknown_dialect_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(QueryError, match="unknown SQL dialect 'duckbd'") as caught:
        categorize_change("SELECT 1", "SELECT 1", dialect="duckbd")
    assert caught.value.hint == "did you mean 'duckdb'?"


def test_an_unreadable_schema_is_an_error() -> None:
    with pytest.raises(QueryError, match="invalid schema"):
        categorize_change(
            "SELECT 1", "SELECT 2", schema={"raw": {"orders": {"a": "INT"}}, "x": "INT"}
        )


def test_the_schema_expands_stars() -> None:
    explicit = "SELECT order_id, customer_id, amount, status FROM raw.orders"
    with_schema = categorize_change("SELECT * FROM raw.orders", explicit, schema=SHOP)
    assert with_schema.category is ChangeCategory.METADATA
    # Without the schema nothing says what the star stands for: it errs safe.
    without = categorize_change("SELECT * FROM raw.orders", explicit)
    assert without.category is ChangeCategory.BREAKING
    assert without.rows_changed
    added = categorize_change(
        "SELECT * FROM raw.orders", f"{explicit[:-15]}, 1 AS one FROM raw.orders", schema=SHOP
    )
    assert added.category is ChangeCategory.NON_BREAKING


def test_the_schema_places_columns_of_a_join() -> None:
    old = "SELECT o.order_id, c.name FROM raw.orders o JOIN raw.customers c USING (customer_id)"
    new = "SELECT order_id, name FROM raw.orders o JOIN raw.customers c USING (customer_id)"
    assert categorize_change(old, new, schema=SHOP).category is ChangeCategory.METADATA
    assert categorize_change(old, new).category is ChangeCategory.BREAKING


def test_changed_columns_and_rows_of_a_cte_edit() -> None:
    old = """
        WITH o AS (SELECT order_id, customer_id, amount FROM raw.orders)
        SELECT o.order_id, o.amount, c.name
        FROM o JOIN raw.customers c ON c.customer_id = o.customer_id
    """
    amount = categorize_change(old, old.replace("amount FROM", "amount * 2 AS amount FROM"))
    assert (amount.category, amount.changed_columns, amount.rows_changed) == (
        ChangeCategory.BREAKING,
        frozenset({"amount"}),
        False,
    )
    key = categorize_change(
        old, old.replace("customer_id, amount", "customer_id + 1 AS customer_id, amount")
    )
    assert key.rows_changed
    assert EditKind.JOIN_CHANGED in {d.kind for d in key.details}


def test_a_case_only_alias_rename_is_a_rename() -> None:
    got = categorize_change("SELECT 1 AS Total", "SELECT 1 AS total")
    assert got.category is ChangeCategory.BREAKING
    assert got.details == (ChangeDetail(EditKind.COLUMN_RENAMED, "total", "Total"),)
    assert got.changed_columns == frozenset({"Total"})


def test_module_examples() -> None:
    for module in (change, normal_form, query_diff):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__


# -- speed ---------------------------------------------------------------------------

LONG = """
WITH paid AS (
  SELECT p.order_id, SUM(p.amount) AS paid, COUNT(*) AS payments
  FROM raw.payments p
  WHERE p.method IN ('card', 'cash')
  GROUP BY p.order_id
),
customer_orders AS (
  SELECT o.customer_id, o.order_id, o.amount, o.status, paid.paid, paid.payments,
         ROW_NUMBER() OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at DESC) AS recency
  FROM raw.orders o
  LEFT JOIN paid ON paid.order_id = o.order_id
  WHERE o.status <> 'cancelled'
)
SELECT
  c.customer_id,
  c.name,
  c.country,
  co.order_id AS last_order,
  co.amount AS last_amount,
  COALESCE(co.paid, 0) AS last_paid,
  CASE WHEN co.paid >= co.amount THEN 'settled' ELSE 'open' END AS state,
  (SELECT COUNT(*) FROM raw.orders x WHERE x.customer_id = c.customer_id) AS orders
FROM raw.customers c
JOIN customer_orders co ON co.customer_id = c.customer_id AND co.recency = 1
WHERE c.country IS NOT NULL
ORDER BY c.customer_id
"""
LONG_SCHEMA = {
    "raw": {
        **SHOP["raw"],
        "orders": {**SHOP["raw"]["orders"], "ordered_at": "TIMESTAMP"},
        "payments": {
            "payment_id": "INTEGER",
            "order_id": "INTEGER",
            "amount": "DECIMAL(12,2)",
            "method": "VARCHAR",
        },
    }
}
EDITS = [
    ("'card', 'cash'", "'card'"),
    ("o.amount, o.status", "o.amount * 2 AS amount, o.status"),
    ("AS state,", "AS state, co.status,"),
    ("WHERE c.country IS NOT NULL", "WHERE c.country = 'DE'"),
    ("LEFT JOIN paid", "JOIN paid"),
]


@pytest.mark.parametrize("schema", [None, LONG_SCHEMA], ids=["no-schema", "schema"])
def test_a_forty_line_query_takes_under_100_ms(schema: dict | None) -> None:
    """CPU time of this process, so that other work on the machine does not count."""
    categorize_change(LONG, LONG.replace(*EDITS[0]), schema=schema)  # warm up
    times = []
    for before, after in EDITS * 3:
        start = time.process_time()
        got = categorize_change(LONG, LONG.replace(before, after), schema=schema)
        times.append(time.process_time() - start)
        assert got.category in (ChangeCategory.BREAKING, ChangeCategory.NON_BREAKING)
    assert statistics.median(times) < 0.1, f"median {statistics.median(times) * 1000:.1f} ms"


# -- properties ----------------------------------------------------------------------

QUERIES = [
    "SELECT order_id , amount FROM raw.orders WHERE amount > 10 AND status = 'shipped'",
    "SELECT customer_id , SUM ( amount ) AS total , COUNT ( * ) AS n FROM raw.orders "
    "GROUP BY customer_id HAVING COUNT ( * ) > 1 ORDER BY total DESC LIMIT 5",
    "WITH big AS ( SELECT order_id , amount FROM raw.orders WHERE amount > 50 ) "
    "SELECT b.order_id , c.name FROM big b LEFT JOIN raw.customers c ON c.customer_id = b.order_id",
    "SELECT DISTINCT status FROM raw.orders WHERE NOT ( amount IS NULL ) OR status IN ( 'a' , 'b' )",
    "SELECT order_id , CASE WHEN amount > 5 THEN 'x' ELSE 'y' END AS size , "
    "ROW_NUMBER ( ) OVER ( PARTITION BY customer_id ORDER BY order_id ) AS rn FROM raw.orders",
    "SELECT customer_id FROM raw.customers UNION ALL SELECT customer_id FROM raw.orders",
]
KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "group", "by", "having", "order",
    "desc", "limit", "with", "as", "left", "join", "on", "distinct", "is", "null", "in",
    "case", "when", "then", "else", "end", "over", "partition", "union", "all", "sum",
    "count", "row_number",
}  # fmt: skip
SPACES = [" ", "  ", "\n", "\n    ", "\t", "\n\n"]
GAPS = [*SPACES, " /* note */ ", " -- note\n"]
# sqlglot reads ORDER BY, GROUP BY and PARTITION BY as one token: no comment inside.
TWO_WORD = {"order", "group", "partition"}


@st.composite
def reformatted(draw: st.DrawFn) -> tuple[str, str]:
    """A query and the same query with other whitespace, keyword case and comments."""
    query = draw(st.sampled_from(QUERIES))
    words = query.split(" ")
    out = []
    for word in words:
        if word.lower() in KEYWORDS:
            word = draw(st.sampled_from([word.lower(), word.upper(), word.capitalize()]))
        out.append(word)
        out.append(draw(st.sampled_from(SPACES if word.lower() in TWO_WORD else GAPS)))
    return query, "".join(out[:-1]) + draw(st.sampled_from(["", "\n", " -- end", ";"]))


@settings(max_examples=150, deadline=None)
@given(reformatted(), st.booleans())
def test_reformatting_is_never_a_change(pair: tuple[str, str], with_schema: bool) -> None:
    old, new = pair
    got = categorize_change(old, new, schema=SHOP if with_schema else None)
    assert got.category in (ChangeCategory.METADATA, ChangeCategory.UNCHANGED), new
    assert got.details == () and got.sql_diff == ""


FILTERED = [
    ("SELECT order_id, amount FROM raw.orders WHERE amount > {}", False),
    ("SELECT order_id FROM raw.orders WHERE status = 'x' AND customer_id <> {}", False),
    (
        "WITH o AS (SELECT order_id, amount FROM raw.orders WHERE amount BETWEEN 1 AND {}) "
        "SELECT order_id FROM o",
        False,
    ),
    (
        "SELECT customer_id, SUM(amount) AS total FROM raw.orders GROUP BY customer_id "
        "HAVING SUM(amount) > {}",
        False,
    ),
    ("SELECT order_id FROM raw.orders WHERE status = '{}'", True),
    (
        "SELECT o.order_id FROM raw.orders o WHERE o.customer_id IN "
        "(SELECT customer_id FROM raw.customers WHERE name LIKE '{}%')",
        True,
    ),
]
literals = st.one_of(
    st.integers(-1000, 1000).map(str), st.from_regex(r"[A-Za-z ]{0,6}", fullmatch=True)
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(FILTERED), st.integers(-1000, 1000), st.text("abcXYZ _", max_size=6), st.data()
)
def test_editing_a_filter_literal_is_never_safe(
    template: tuple[str, bool], number: int, text: str, data: st.DataObject
) -> None:
    sql, is_text = template
    before = text if is_text else str(number)
    after = data.draw(
        st.text("abcXYZ _", max_size=6) if is_text else st.integers(-1000, 1000).map(str)
    )
    if after == before:
        return
    got = categorize_change(
        sql.format(before), sql.format(after), schema=data.draw(st.sampled_from([None, SHOP]))
    )
    assert got.category is ChangeCategory.BREAKING
    assert got.rows_changed
    assert EditKind.FILTER_CHANGED in {d.kind for d in got.details}


# Differential: whenever two expressions are called a mere reformatting, DuckDB must
# compute the same values for both (normal_form drops parentheses and spells joins and
# orders one way; none of that may merge two different queries).
numbers = st.recursive(
    st.sampled_from(["x", "y", "z", "1", "2", "NULL"]),
    lambda inner: (
        st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        | inner.map(lambda e: f"(- {e})")
    ),
    max_leaves=4,
)
predicates = st.recursive(
    st.tuples(numbers, st.sampled_from(["<", "=", "<>", "IS NOT DISTINCT FROM"]), numbers).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    | numbers.map(lambda e: f"({e} IS NULL)")
    | numbers.map(lambda e: f"({e} IN (1, 2))"),
    lambda inner: (
        st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        | inner.map(lambda p: f"(NOT {p})")
    ),
    max_leaves=5,
)
ROWS = [(x, y, z) for x in (-1, 0, 2, None) for y in (0, 1, None) for z in (1, 3)]


def drop_one_pair(expression: str, which: int) -> str:
    pairs, stack = [], []
    for i, ch in enumerate(expression):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            start = stack.pop()
            if start == 0 or expression[start - 1] in " (":
                pairs.append((start, i))
    if not pairs:
        return expression
    start, end = pairs[which % len(pairs)]
    return expression[:start] + expression[start + 1 : end] + expression[end + 1 :]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t (x INTEGER, y INTEGER, z INTEGER)")
    connection.executemany("INSERT INTO t VALUES (?, ?, ?)", ROWS)
    return connection


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(predicates, st.integers(0, 40), st.sampled_from(["WHERE", "SELECT"]))
def test_metadata_means_the_same_values(
    con: duckdb.DuckDBPyConnection, expression: str, which: int, clause: str
) -> None:
    variant = drop_one_pair(expression, which)

    def query(e: str) -> str:
        if clause == "WHERE":
            return f"SELECT x, y, z FROM t WHERE {e}"
        return f"SELECT x, y, z, {e} AS v FROM t"

    try:
        got = categorize_change(query(expression), query(variant))
    except QueryError:
        return  # the variant does not parse: nothing to compare
    if got.category in (ChangeCategory.METADATA, ChangeCategory.UNCHANGED):

        def values(sql: str) -> object:
            try:
                return sorted(map(repr, con.execute(sql).fetchall()))
            except duckdb.Error as exc:
                return type(exc).__name__

        assert values(query(expression)) == values(query(variant)), (expression, variant)


def test_change_is_a_frozen_value() -> None:
    got = categorize_change("SELECT 1 AS x", "SELECT 2 AS x")
    assert isinstance(got, Change)
    with pytest.raises(AttributeError):
        got.category = ChangeCategory.METADATA  # type: ignore[misc]
