"""Compile-time checks of what a project declares: inputs, column types, data files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from seeknal.compiler import compile_project
from seeknal.errors import CompileFailed, Diagnostic

SALES = {
    "seeknal/sources/sales.yml": "kind: source\nname: sales\nsource: csv\ntable: data/sales.csv\n",
    "data/sales.csv": "id,amount,region\n1,2.50,eu\n2,4.00,us\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in {"seeknal_project.yml": "name: p\n", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def errors_of(root: Path, files: dict[str, str]) -> list[Diagnostic]:
    with pytest.raises(CompileFailed) as info:
        compile_project(write(root, files))
    return info.value.errors


def test_an_unknown_input_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        {
            **SALES,
            "seeknal/t.yml": "kind: transform\nname: t\ninputs:\n  - ref: source.sale\n"
            "transform: SELECT id FROM source.sales\n",
        },
    )
    # The SQL's ref of source.sales is not reported again: fixing the typo fixes both.
    assert [(e.message, str(e.location), e.hint) for e in errors] == [
        ("unknown ref 'source.sale'", "seeknal/t.yml:4:10", "did you mean 'source.sales'?")
    ]


def test_an_unknown_input_is_reported_even_when_the_sql_is_broken(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path,
        {
            **SALES,
            "seeknal/t.yml": "kind: transform\nname: t\ninputs:\n  - ref: transform.nope\n"
            "transform: SELECT FROM WHERE\n",
        },
    )
    assert "unknown ref 'transform.nope'" in [e.message for e in errors]


def test_a_declared_transform_column_type_is_a_contract(tmp_path: Path) -> None:
    node = (
        "kind: transform\nname: t\ncolumns:\n"
        "  uid: {type: integer, description: The user}\n"
        "  amount: double\n"
        "  region: text\n"
        "transform: SELECT id AS uid, amount, region FROM source.sales\n"
    )
    errors = errors_of(tmp_path, {**SALES, "seeknal/t.yml": node})
    assert [(e.message, str(e.location), e.hint) for e in errors] == [
        (
            "column 'uid' is declared integer but the query returns BIGINT",
            "seeknal/t.yml:4:15",
            "CAST it in the query, or change the declared type",
        )
    ]
    # `text` is VARCHAR and `double` DOUBLE in the engine's spelling: no error for them.
    (tmp_path / "seeknal/t.yml").write_text(node.replace("SELECT id AS", "SELECT id::int AS"))
    plan = compile_project(tmp_path).plan
    types = {c["name"]: c["type"] for c in plan["nodes"]["transform.t"]["columns"]}
    assert types == {"uid": "INTEGER", "amount": "DOUBLE", "region": "VARCHAR"}


def test_an_unknown_declared_transform_type_is_an_error(tmp_path: Path) -> None:
    node = "kind: transform\nname: t\ncolumns:\n  uid: intger\ntransform: SELECT id AS uid FROM source.sales\n"
    errors = errors_of(tmp_path, {**SALES, "seeknal/t.yml": node})
    assert [(e.message, str(e.location)) for e in errors] == [
        ("unknown type 'intger' for column 'uid'", "seeknal/t.yml:4:8")
    ]


def test_declared_source_columns_are_checked_against_the_file_header(tmp_path: Path) -> None:
    source = (
        "kind: source\nname: sales\nsource: csv\ntable: data/sales.csv\ncolumns:\n"
        "  id: integer\n  amont: double\n  Region: varchar\n  extra: date\n"
    )
    errors = errors_of(tmp_path, {**SALES, "seeknal/sources/sales.yml": source})
    assert [(e.message, str(e.location), e.hint) for e in errors] == [
        (
            "column 'amont' is declared but 'data/sales.csv' has no such column",
            "seeknal/sources/sales.yml:7:3",
            "did you mean 'amount'?",
        ),
        (
            "column 'extra' is declared but 'data/sales.csv' has no such column",
            "seeknal/sources/sales.yml:9:3",
            "the file's columns: id, amount, region",
        ),
    ]


@pytest.mark.parametrize(
    ("node", "where"),
    [
        ("kind: source\nname: s\nsource: csv\ntable: data/empty.csv\n", "4:8"),
        ("kind: source\nname: s\nsource: csv\ntable: data/empty.csv\ncolumns: {a: int}\n", "4:8"),
        ("kind: seed\nname: s\npath: data/empty.csv\n", "3:7"),
    ],
)
def test_an_empty_data_file_is_an_error(tmp_path: Path, node: str, where: str) -> None:
    errors = errors_of(tmp_path, {"seeknal/s.yml": node, "data/empty.csv": ""})
    assert [(e.message, str(e.location)) for e in errors] == [
        ("file is empty: 'data/empty.csv'", f"seeknal/s.yml:{where}")
    ]
    assert errors[0].hint


def test_refs_sharing_a_name_run_in_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write(
        tmp_path,
        {
            "seeknal/t.yml": "kind: source\nname: t\nsource: csv\ntable: data/t.csv\n",
            "seeknal/seed_t.yml": "kind: seed\nname: t\npath: data/seed_t.csv\n",
            "data/t.csv": "a,b\n1,10\n2,20\n",
            "data/seed_t.csv": "a,b\n1,100\n3,300\n",
            "seeknal/x.yml": "kind: transform\nname: x\ntransform: |\n"
            "  SELECT source.t.a, source.t.b, seed.t.b AS b2\n"
            "  FROM source.t JOIN seed.t ON source.t.a = seed.t.a\n",
        },
    )
    plan = compile_project(project).plan
    # Build every snapshot from the plan's own engine SQL, as the runtime does.
    monkeypatch.chdir(project)
    con = duckdb.connect()
    for node_id in ["source.t", "seed.t", "transform.x"]:
        node = plan["nodes"][node_id]
        schema, table = node["snapshot"].split(".", 1)
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.execute(f'CREATE TABLE "{schema}"."{table}" AS {node["sql"]["engine"]}')
    schema, table = plan["nodes"]["transform.x"]["snapshot"].split(".", 1)
    assert con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall() == [(1, 10, 100)]
