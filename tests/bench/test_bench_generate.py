"""The benchmark's project generator writes valid, deterministic, runnable projects."""

from __future__ import annotations

import re
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.bench.load import load_bench_module

generate = load_bench_module("generate")
direct = load_bench_module("direct")

REF = re.compile(r"\b((?:source|transform|seed)\.[A-Za-z_]\w*)\b")


def node_files(project: Path) -> dict[str, dict]:
    nodes = {}
    for path in sorted((project / "seeknal").rglob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        node_id = f"{spec['kind']}.{spec['name']}"
        assert node_id not in nodes, f"duplicate {node_id}"
        nodes[node_id] = spec | {"_file": path}
    return nodes


def transform_sql(spec: dict) -> str:
    if "sql" in spec:
        return (spec["_file"].parent / spec["sql"]).read_text(encoding="utf-8")
    return spec["transform"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate.generate_project(tmp_path_factory.mktemp("bench") / "p", 40, rows=400)


def test_files_parse_and_refs_resolve(project: Path) -> None:
    config = yaml.safe_load((project / "seeknal_project.yml").read_text(encoding="utf-8"))
    assert config["name"] == "bench_40"
    nodes = node_files(project)
    transforms = {k: v for k, v in nodes.items() if v["kind"] == "transform"}
    assert len(transforms) == 40
    assert {k for k, v in nodes.items() if v["kind"] == "source"} == {
        "source.customers",
        "source.orders",
        "source.products",
    }
    graph = {}
    for node_id, spec in transforms.items():
        sql = transform_sql(spec)
        code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        used = set(REF.findall(code))
        declared = {i["ref"] for i in spec["inputs"]}
        assert used, node_id
        assert used <= nodes.keys(), (node_id, used - nodes.keys())
        assert used == declared, node_id
        assert 10 <= len(sql.strip().splitlines()) <= 40, node_id
        graph[node_id] = used
    order = list(TopologicalSorter(graph).static_order())  # raises on a cycle
    assert len(order) == len(nodes)


def test_variety_of_sql(project: Path) -> None:
    specs = node_files(project).values()
    texts = [transform_sql(s) for s in specs if s["kind"] == "transform"]
    joined = "\n".join(texts)
    for needle in ("WITH ", " JOIN ", "GROUP BY", "OVER (", "{{ ref(", "var(", "safe_ratio("):
        assert needle in joined, needle
    assert any(re.search(r"(?<![{\w])ref\('", t) and "{{ ref(" not in t for t in texts)
    assert any("sql" in s for s in specs), "some SQL lives in .sql files"
    assert any(s.get("materialized") == "view" for s in specs)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = generate.generate_project(tmp_path / "a", 12, rows=100)
    b = generate.generate_project(tmp_path / "b", 12, rows=100)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_generated_sql_runs_in_duckdb(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "direct.duckdb"
    result = direct.build_project(project, db)
    assert result["nodes"] == 43
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'transform' ORDER BY table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    assert len(columns) == 40
    assert all(tuple(c) == generate.OUTPUT_COLUMNS for c in columns.values())


def test_a_tiny_bench_runs_and_writes_results(tmp_path: Path) -> None:
    """bench/run.py end to end on a project of 8 transforms, so it cannot rot unnoticed."""
    import json
    import subprocess
    import sys

    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(generate.__file__).replace("generate.py", "run.py"),
            "--sizes",
            "8",
            "--repeat",
            "1",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compile, no-op (8 transforms)" in done.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    names = {(r["name"], r.get("size")) for r in document["results"]}
    assert ("compile, cold", 8) in names
    assert ("plain DuckDB, same SQL (sequential)", 8) in names
    assert all(r["times"] and not r.get("error") for r in document["results"])
    cold = next(r for r in document["results"] if r["name"] == "compile, cold")
    assert cold["peak_mb"] > 10
    assert {t["target"] for t in document["targets"]} >= {"seeknal --help"}
