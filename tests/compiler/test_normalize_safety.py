"""Normalization must never make two different queries look equal.

Differential property test: build a random expression, write it with every pair of
parentheses explicit, then drop one pair (which may or may not change its meaning). When
the two normalize to the same text, DuckDB must compute the same values for both on
sample rows. A violation would let a real change pass as a mere reformatting.
"""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot.schema import MappingSchema

from seeknal.compiler.model import SqlText
from seeknal.compiler.sql import normalized_sql, parse_sql, qualify_sql

NODES = {"source.t": 1}
SCHEMA = MappingSchema(
    {"source": {"t": {"x": "INTEGER", "y": "INTEGER", "z": "INTEGER"}}}, dialect="duckdb"
)
ORIGIN = SqlText("", "t.sql")
ROWS = [(x, y, z) for x in (-2, 0, 3) for y in (-1, 1, 4) for z in (0, 2, 5)]

numbers = st.recursive(
    st.sampled_from(["x", "y", "z", "1", "2", "3", "ABS(x)", "COALESCE(y, 0)"]),
    lambda inner: (
        st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        | inner.map(lambda e: f"(- {e})")
    ),
    max_leaves=6,
)
predicates = st.recursive(
    st.tuples(numbers, st.sampled_from(["<", "<=", "=", "<>", ">"]), numbers).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    lambda inner: (
        st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        | inner.map(lambda p: f"(NOT {p})")
    ),
    max_leaves=4,
)


def normalize(expression: str) -> str:
    sql = f"SELECT {expression} AS v FROM source.t"
    parsed = parse_sql(sql, ORIGIN, "duckdb", NODES)
    return normalized_sql(qualify_sql(parsed, SCHEMA, "duckdb", ORIGIN), "duckdb")


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t (x INTEGER, y INTEGER, z INTEGER)")
    connection.executemany("INSERT INTO t VALUES (?, ?, ?)", ROWS)
    return connection


def evaluate(con: duckdb.DuckDBPyConnection, expression: str) -> list[object]:
    try:
        return con.execute(f"SELECT {expression} FROM t ORDER BY x, y, z").fetchall()
    except duckdb.Error as exc:  # e.g. overflow: compare the failure itself
        return [type(exc).__name__]


def drop_one_pair(expression: str, which: int) -> str:
    """Remove the ``which``-th pair of parentheses that is not a function call's."""
    pairs, stack = [], []
    for i, ch in enumerate(expression):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            start = stack.pop()
            if start == 0 or not re.match(r"[A-Za-z_]", expression[start - 1]):
                pairs.append((start, i))
    if not pairs:
        return expression
    start, end = pairs[which % len(pairs)]
    return expression[:start] + expression[start + 1 : end] + expression[end + 1 :]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(numbers, predicates), st.integers(min_value=0, max_value=50))
def test_equal_normalized_text_means_equal_values(
    con: duckdb.DuckDBPyConnection, expression: str, which: int
) -> None:
    variant = drop_one_pair(expression, which)
    try:
        left, right = normalize(expression), normalize(variant)
    except Exception:  # the variant may not parse (e.g. "- - x"): nothing to compare
        return
    if left == right:
        assert evaluate(con, expression) == evaluate(con, variant), (expression, variant, left)


@settings(max_examples=100, deadline=None)
@given(st.one_of(numbers, predicates))
def test_whitespace_and_keyword_case_never_matter(expression: str) -> None:
    spaced = expression.replace(" ", "\n   ").replace("AND", "and").replace("NOT", "not")
    assert normalize(spaced) == normalize(expression)
