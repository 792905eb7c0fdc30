"""compile_project end to end on fixture projects: plan snapshots and error snapshots."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EXAMPLE, FIXTURES, applied, copy_project

from seeknal.canonical import canonical_json, compute_plan_id
from seeknal.compiler import compile_project
from seeknal.errors import CompileFailed, SourceLocation
from seeknal.schemas import iter_errors

BROKEN = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("broken_"))


@pytest.mark.parametrize("name", ["minimal", "shop"])
def test_plan_snapshot(name: str, tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    source = EXAMPLE if name == "shop" else FIXTURES / name
    project = copy_project(source, tmp_path / name)
    plan = compile_project(project).plan
    assert iter_errors("plan", plan) == []
    assert plan["plan_id"] == compute_plan_id(plan)
    assert canonical_json(plan) == snapshot


def test_plan_is_byte_identical_whatever_the_directory_or_file_order(tmp_path: Path) -> None:
    first = copy_project(EXAMPLE, tmp_path / "a")
    # Recreate the project with files written in reverse order, elsewhere.
    second = tmp_path / "elsewhere" / "b"
    files = sorted((p for p in first.rglob("*") if p.is_file()), reverse=True)
    for path in files:
        dest = second / path.relative_to(first)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    assert canonical_json(compile_project(first).plan) == canonical_json(
        compile_project(second).plan
    )


def test_compile_writes_nothing(shop: Path) -> None:
    before = sorted(str(p) for p in shop.rglob("*"))
    compile_project(shop)
    assert sorted(str(p) for p in shop.rglob("*")) == before


@pytest.mark.parametrize("name", BROKEN)
def test_broken_project_error_text(name: str, snapshot) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CompileFailed) as info:
        compile_project(FIXTURES / name)
    text = info.value.render()
    assert text.splitlines()[0].startswith("seeknal/")
    assert ": error: " in text.splitlines()[0]
    assert "hint: " in text
    assert text == snapshot


def test_every_error_is_reported_in_one_run(shop: Path) -> None:
    stg = shop / "seeknal/transforms/stg_orders.yml"
    stg.write_text(stg.read_text().replace("ref('source.orders')", "ref('source.ordrs')"))
    (shop / "seeknal/sources/extra.yml").write_text(
        "kind: source\nname: extra\nsource: csv\ntable: data/nope.csv\n"
    )
    (shop / "seeknal/transforms/bad.yml").write_text(
        "kind: transform\nname: bad\nmaterialised: view\ntransform: SELECT 1\n"
    )
    with pytest.raises(CompileFailed) as info:
        compile_project(shop)
    messages = [d.message for d in info.value.errors]
    assert len(messages) == 3, messages
    assert any("source.ordrs" in m for m in messages)
    assert any("nope.csv" in m for m in messages)
    assert any("materialised" in m for m in messages)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda text: text + "materialised: view\n",  # a key the schema does not know
        lambda text: text.replace("kind: transform", "kind: transfrom"),
        lambda text: text.replace("name: daily_events\n", ""),
        lambda text: text.replace("kind: transform\n", ""),
        lambda text: text.replace("tags: [growth, daily]", "tags: [growth, daily"),  # YAML
    ],
    ids=["unknown key", "invalid kind", "no name", "no kind", "yaml syntax"],
)
def test_a_node_file_reported_invalid_is_not_reported_again_where_it_is_read(
    shop: Path, breakage: Any
) -> None:
    """Its nodes' refs to it are consequences; a ref to no node at all is still an error."""
    daily = shop / "seeknal/transforms/daily_events.yml"
    daily.write_text(breakage(daily.read_text()))
    (shop / "seeknal/transforms/late.yml").write_text(
        "kind: transform\nname: late\ntransform: SELECT * FROM {{ ref('transform.daly_events') }}\n"
    )
    with pytest.raises(CompileFailed) as info:
        compile_project(shop)
    located = [(d.location.path if d.location else "", d.message) for d in info.value.errors]
    assert len(located) == 2, located
    assert located[0][0] == "seeknal/transforms/daily_events.yml"
    assert located[1] == (
        "seeknal/transforms/late.yml",
        "unknown ref 'transform.daly_events'",
    )


def test_inline_sql_error_points_at_yaml_line(shop: Path) -> None:
    path = shop / "seeknal/transforms/payment_methods.yml"
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("transform: |"))
    lines[start + 2] = lines[start + 2] + " )))"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CompileFailed) as info:
        compile_project(shop)
    location = info.value.errors[0].location
    assert location is not None
    assert (location.path, location.line) == ("seeknal/transforms/payment_methods.yml", start + 3)


def test_unused_input_is_a_warning(minimal: Path) -> None:
    (minimal / "seeknal/seeds.yml").write_text("kind: seed\nname: other\npath: data/orders.csv\n")
    transform = minimal / "seeknal/transforms/customer_totals.yml"
    transform.write_text(
        transform.read_text().replace(
            "  - ref: source.orders\n", "  - ref: source.orders\n  - ref: seed.other\n"
        )
    )
    result = compile_project(minimal)
    assert [(w.message, str(w.location)) for w in result.warnings] == [
        (
            "input 'seed.other' is listed but the SQL does not read it",
            "seeknal/transforms/customer_totals.yml:5:10",
        )
    ]


def test_changed_source_file_rebuilds_dependents_under_the_same_snapshot(shop: Path) -> None:
    plan = compile_project(shop).plan
    state = applied(plan)
    again = compile_project(shop, state=state).plan
    assert again["work"] == []
    assert {n["change"]["category"] for n in again["nodes"].values()} == {"unchanged"}

    csv = shop / "data/orders.csv"
    rows = csv.read_text().splitlines()
    csv.write_text("\n".join([*rows, rows[-1].replace(rows[-1].split(",")[0], "99999", 1)]) + "\n")
    changed = compile_project(shop, state=state).plan
    reasons = {w["node"]: w["reason"] for w in changed["work"]}
    assert reasons["source.orders"] == "source_data_changed"
    assert (
        "transform.stg_orders" not in reasons
        or plan["nodes"]["transform.stg_orders"]["materialized"] == "table"
    )
    assert set(reasons.values()) == {"source_data_changed"}
    assert {n["snapshot"] for n in changed["nodes"].values()} == {
        n["snapshot"] for n in plan["nodes"].values()
    }
    # Views only name their query: never rebuilt for new data. Rules check data: they are.
    views = [i for i, n in changed["nodes"].items() if n["materialized"] == "view"]
    assert [v for v in views if v in reasons] == ["rule.valid_orders"]


def test_types_are_the_engines_own(minimal: Path) -> None:
    plan = compile_project(minimal).plan
    columns = {c["name"]: c["type"] for c in plan["nodes"]["transform.customer_totals"]["columns"]}
    # DuckDB's SUM over DECIMAL(p, s) is DECIMAL(38, s); the plan says what the table will hold.
    source = {c["name"]: c["type"] for c in plan["nodes"]["source.orders"]["columns"]}
    assert source["amount"].startswith("DECIMAL") or source["amount"] == "DOUBLE"
    import duckdb

    con = duckdb.connect()
    expected = con.execute(
        "DESCRIBE SELECT customer_id, SUM(amount) AS total_amount FROM read_csv_auto(?) GROUP BY 1",
        [str(minimal / "data/orders.csv")],
    ).fetchall()
    assert columns == {row[0]: row[1] for row in expected}


def test_engine_errors_are_compile_errors(minimal: Path) -> None:
    transform = minimal / "seeknal/transforms/customer_totals.yml"
    transform.write_text(transform.read_text().replace("SUM(amount)", "SUMM(amount)"))
    with pytest.raises(CompileFailed) as info:
        compile_project(minimal)
    diag = info.value.errors[0]
    assert "the engine rejects this query" in diag.message
    assert "summ" in diag.message.lower()
    assert (
        diag.location is not None and diag.location.path == "seeknal/transforms/customer_totals.yml"
    )
    assert diag.location.line == 6


def test_column_names_keep_the_case_the_engine_gives_them(minimal: Path) -> None:
    transform = minimal / "seeknal/transforms/customer_totals.yml"
    transform.write_text(
        transform.read_text().replace("SUM(amount) AS total_amount", 'SUM(Amount) AS "TotalAmount"')
    )
    (minimal / "seeknal/transforms/downstream.yml").write_text(
        "kind: transform\nname: downstream\ntransform: SELECT totalamount * 2 AS Doubled "
        "FROM transform.customer_totals\n"
    )
    nodes = compile_project(minimal).plan["nodes"]
    assert [c["name"] for c in nodes["transform.customer_totals"]["columns"]] == [
        "customer_id",
        "TotalAmount",
    ]
    doubled = nodes["transform.downstream"]["columns"][0]
    assert doubled["name"] == "Doubled"
    assert doubled["lineage"] == [{"node": "transform.customer_totals", "column": "TotalAmount"}]


def test_project_settings_shorthands_and_postgres_dialect(minimal: Path) -> None:
    (minimal / "seeknal_project.yml").write_text("name: minimal\ndialect: postgres\nstate: file\n")
    transform = minimal / "seeknal/transforms/customer_totals.yml"
    transform.write_text(
        transform.read_text().replace(
            "SUM(amount) AS total_amount", "SUM(amount)::numeric(12, 2) AS total_amount"
        )
    )
    plan = compile_project(minimal).plan
    assert plan["dialect"] == "postgres"
    assert plan["target"]["state"] == {"backend": "file", "path": "target/state"}
    node = plan["nodes"]["transform.customer_totals"]
    assert "::" in node["sql"]["raw"] and "::" not in node["sql"]["engine"]
    assert {c["name"]: c["type"] for c in node["columns"]}["total_amount"] == "DECIMAL(12,2)"
    source_sql = plan["nodes"]["source.orders"]["sql"]
    assert "READ_CSV" in source_sql["engine"]


def test_environment_names_are_checked_by_the_compiler_too(minimal: Path) -> None:
    from seeknal.errors import SeeknalError

    with pytest.raises(SeeknalError, match="environment"):
        compile_project(minimal, environment="my env")


@pytest.mark.parametrize(
    ("replacement", "message", "col"),
    [
        ("GROUP BY customer_idx", "unknown column 'customer_idx' (not in source.events)", 12),
        ("GROUP BY BY 1", "SQL syntax error: unexpected '1'", 15),
    ],
)
def test_an_error_below_a_time_parameter_points_at_its_own_line(
    shop: Path, replacement: str, message: str, col: int
) -> None:
    """sqlglot counts the newlines after a `$name` parameter twice; the error must still
    point at the line and column it is about."""
    daily = shop / "seeknal/transforms/daily_events.yml"
    lines = daily.read_text().splitlines()
    where = next(i for i, line in enumerate(lines) if line.strip() == "GROUP BY 1")
    assert "{{ end_ts }}" in lines[where - 1]
    lines[where] = lines[where].replace("GROUP BY 1", replacement)
    daily.write_text("\n".join(lines) + "\n")
    with pytest.raises(CompileFailed) as info:
        compile_project(shop)
    (error,) = info.value.errors
    assert error.message == message
    assert error.location == SourceLocation("seeknal/transforms/daily_events.yml", where + 1, col)
