"""The scratch catalog's fast bind answers exactly as DuckDB's relation API does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seeknal.compiler.catalog import BindError, ScratchCatalog


@pytest.fixture
def catalog() -> Iterator[ScratchCatalog]:
    scratch = ScratchCatalog()
    scratch.declare("seeknal__source.t__000000000000", [("a", "INTEGER"), ("B", "VARCHAR")])
    yield scratch
    scratch.close()


@pytest.mark.parametrize(
    "query",
    [
        'SELECT a, "B", a + 1 AS c FROM "seeknal__source"."t__000000000000"',
        "SELECT * FROM range(3)",
        "SELECT {'x': 1} AS s, [1, 2] AS l, 1.5::DECIMAL(4, 1) AS d",
    ],
)
def test_fast_bind_matches_the_relation_api(catalog: ScratchCatalog, query: str) -> None:
    relation = catalog._con.sql(query)
    expected = [(str(n), str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
    assert catalog.describe_query(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT $1 AS a", "Values were not provided"),
        ("SELECT ? AS a", "Values were not provided"),
        ('SELECT missing FROM "seeknal__source"."t__000000000000"', "missing"),
        ("SELECT nope(1)", "nope"),
    ],
)
def test_queries_the_fast_bind_does_not_take_fail_as_before(
    catalog: ScratchCatalog, query: str, message: str
) -> None:
    with pytest.raises(BindError) as info:
        catalog.describe_query(query)
    assert message in info.value.message
