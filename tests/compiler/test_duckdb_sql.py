"""DuckDB's own SQL compiles: exact columns from the engine, lineage where it can be traced."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeknal.compiler import compile_project

QUERIES = {
    "from_first": "FROM source.orders SELECT order_id, amount",
    "exclude": "SELECT * EXCLUDE (customer_id) FROM source.orders",
    "replace": "SELECT * REPLACE (amount * 2 AS amount) FROM source.orders",
    "group_by_all": "SELECT customer_id, SUM(amount) AS s FROM source.orders GROUP BY ALL ORDER BY ALL",
    "lambda": "SELECT order_id, list_transform([1, 2], x -> x * order_id) AS l FROM source.orders",
    "qualify": "SELECT * FROM source.orders QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY order_id) = 1",
    "struct_and_list": "SELECT {'a': order_id} AS s, [amount] AS arr FROM source.orders",
    "filter_clause": "SELECT customer_id, max(amount) FILTER (WHERE amount > 10) AS m FROM source.orders GROUP BY 1",
}


def write(project: Path, name: str, sql: str) -> None:
    (project / f"seeknal/transforms/{name}.yml").write_text(
        f"kind: transform\nname: {name}\ntransform: |\n  {sql}\n"
    )


@pytest.fixture
def project(minimal: Path) -> Path:
    for name, sql in QUERIES.items():
        write(minimal, name, sql)
    return minimal


def test_duckdb_constructs_compile_with_exact_lineage(project: Path) -> None:
    result = compile_project(project)
    assert result.warnings == []
    nodes = result.plan["nodes"]
    lineage = {
        name: {
            c["name"]: sorted(ref["column"] for ref in c["lineage"])
            for c in nodes[f"transform.{name}"]["columns"]
        }
        for name in QUERIES
    }
    assert lineage["exclude"] == {"order_id": ["order_id"], "amount": ["amount"]}
    assert lineage["replace"]["amount"] == ["amount"]
    assert lineage["lambda"] == {"order_id": ["order_id"], "l": ["order_id"]}
    assert lineage["filter_clause"]["m"] == ["amount"]
    types = {c["name"]: c["type"] for c in nodes["transform.struct_and_list"]["columns"]}
    assert types["s"].startswith("STRUCT(") and types["arr"].endswith("[]")


def test_what_the_analyzer_cannot_follow_gets_safe_approximate_lineage(minimal: Path) -> None:
    write(
        minimal,
        "pivoted",
        "SELECT * FROM (PIVOT source.orders ON customer_id IN (10, 11) USING sum(amount) GROUP BY order_id)",
    )
    write(minimal, "by_pattern", "SELECT COLUMNS('.*_id') FROM source.orders")
    result = compile_project(minimal)
    warned = sorted(w.message.split(" is approximate")[0] for w in result.warnings)
    assert warned == [
        "column lineage of transform.by_pattern",
        "column lineage of transform.pivoted",
    ]
    nodes = result.plan["nodes"]
    every_input_column = sorted(["order_id", "customer_id", "amount"])
    for node in ("transform.pivoted", "transform.by_pattern"):
        for column in nodes[node]["columns"]:
            assert sorted(ref["column"] for ref in column["lineage"]) == every_input_column
    # The columns are DuckDB's, pattern expanded.
    assert [c["name"] for c in nodes["transform.by_pattern"]["columns"]] == [
        "order_id",
        "customer_id",
    ]
    assert [c["name"] for c in nodes["transform.pivoted"]["columns"]] == ["order_id", "10", "11"]


def test_a_real_unknown_column_is_still_an_error(minimal: Path) -> None:
    from seeknal.errors import CompileFailed

    write(minimal, "typo", "SELECT amout FROM source.orders")
    with pytest.raises(CompileFailed) as info:
        compile_project(minimal)
    assert "unknown column 'amout'" in info.value.render()
    assert "did you mean 'amount'?" in info.value.render()
