"""The JSON Schemas are the contract: snapshot them, check them, and keep old files loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from seeknal import schemas
from seeknal.engines.duckdb import DuckDBEngine
from seeknal.runtime import execute_plan, load_plan
from seeknal.state.file import FileStateBackend
from tests.conftest import FIXTURES, copy_project

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"


@pytest.mark.parametrize("name", schemas.SCHEMA_NAMES)
def test_schema_is_valid_and_reviewed(name: str, snapshot) -> None:  # type: ignore[no-untyped-def]
    schema = schemas.load_schema(name)
    Draft202012Validator.check_schema(schema)
    # A change to a contract shows up in review as a snapshot diff.
    assert json.dumps(schema, indent=2, sort_keys=True) == snapshot


def test_golden_plan_v1_still_loads() -> None:
    """A plan written by format version 1 must load forever (until a migration says how)."""
    plan = load_plan(GOLDEN / "plan-v1.json")
    assert plan["schema_version"] == 1
    assert "transform.customer_totals" in plan["nodes"]


def test_golden_plan_v2_still_loads() -> None:
    plan = load_plan(GOLDEN / "plan-v2.json")
    assert plan["schema_version"] == 2
    assert plan["nodes"]["transform.customer_totals"]["fingerprint"]["definition"]


@pytest.mark.parametrize("version", [1, 2])
def test_golden_plans_still_execute(version: int, tmp_path: Path) -> None:
    """An old plan runs as it was reviewed: its SQL, its snapshots, its views."""
    project = copy_project(FIXTURES / "minimal", tmp_path / "minimal")
    plan = load_plan(GOLDEN / f"plan-v{version}.json")
    result = execute_plan(plan, project, threads=1)
    assert "transform.customer_totals" in result.built
    engine = DuckDBEngine(
        project / "target/warehouse.duckdb", file_search_path=project, read_only=True
    )
    try:
        _, rows = engine.query("SELECT COUNT(*) FROM transform.customer_totals")
    finally:
        engine.close()
    assert rows[0][0] > 0


def test_golden_plan_v3_still_executes(tmp_path: Path) -> None:
    """v3 added incremental nodes: a frozen plan fills exactly the ranges it lists."""
    project = copy_project(FIXTURES / "incremental", tmp_path / "incremental")
    plan = load_plan(GOLDEN / "plan-v3.json")
    assert plan["schema_version"] == 3
    result = execute_plan(plan, project, threads=1)
    assert "transform.daily" in result.built
    engine = DuckDBEngine(
        project / "target/warehouse.duckdb", file_search_path=project, read_only=True
    )
    try:
        _, rows = engine.query("SELECT MIN(day), MAX(day), COUNT(*) FROM transform.daily")
    finally:
        engine.close()
    assert [str(v) for v in rows[0]] == ["2024-01-01", "2024-01-07", "7"]
    state = FileStateBackend(project / "target/state").read()
    record = next(r for r in state.snapshots.values() if r["node"] == "transform.daily")
    assert record["intervals"] == [["2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"]]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_golden_state_still_loads(version: int, tmp_path: Path) -> None:
    (tmp_path / "state.json").write_bytes((GOLDEN / f"state-v{version}.json").read_bytes())
    state = FileStateBackend(tmp_path).read()
    assert "prod" in state.environments
    assert state.environment_hash("prod") is not None
    assert "prod" in state.environment_info  # v1 gains it through the migration


def test_golden_state_v4_records_what_wrote_each_table(tmp_path: Path) -> None:
    # The example project run once, then again after a forward-only change to
    # transform.daily_events: its kept table is mixed.
    (tmp_path / "state.json").write_bytes((GOLDEN / "state-v4.json").read_bytes())
    state = FileStateBackend(tmp_path).read()
    daily = next(r for r in state.snapshots.values() if r["node"] == "transform.daily_events")
    assert daily["mixed"] is True
    node = state.environments["prod"]["nodes"]["transform.daily_events"]
    assert daily["definition"] == node["fingerprint"]["definition"]
    assert all("definition" in r for r in state.snapshots.values())
    assert sum(bool(r.get("mixed")) for r in state.snapshots.values()) == 1
