"""Every command that opens the warehouse resolves the project's connection the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import invoke


@pytest.fixture
def elsewhere(minimal: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project on a connection `other`, whose file an environment variable names."""
    (minimal / "seeknal_project.yml").write_text("name: minimal\nconnection: other\n")
    (minimal / "profiles.yml").write_text(
        "connections:\n  other: {engine: duckdb, path: '${SEEKNAL_TEST_DIR}/other.duckdb'}\n"
    )
    monkeypatch.setenv("SEEKNAL_TEST_DIR", "warehouses")
    return minimal


def test_run_show_and_query_use_the_projects_connection(elsewhere: Path) -> None:
    assert invoke(elsewhere, "run").exit_code == 0
    assert (elsewhere / "warehouses/other.duckdb").is_file()
    assert not (elsewhere / "target/warehouse.duckdb").exists()
    plan = json.loads((elsewhere / "target/plan.json").read_text())
    assert plan["target"]["connection"] == "other"
    assert "warehouses" not in json.dumps(plan)  # the details stay in profiles.yml

    shown = invoke(elsewhere, "show", "transform.customer_totals", "--json")
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.output)) == 3
    queried = invoke(elsewhere, "query", "SELECT COUNT(*) AS n FROM source.orders", "--json")
    assert json.loads(queried.output) == [{"n": 5}]


def test_a_connection_profiles_does_not_define_is_a_clear_error(elsewhere: Path) -> None:
    (elsewhere / "profiles.yml").unlink()
    compiled = invoke(elsewhere, "compile")  # compile never opens profiles.yml
    assert compiled.exit_code == 0, compiled.output
    for args in (("execute",), ("query", "SELECT 1")):
        result = invoke(elsewhere, *args)
        assert result.exit_code == 2
        assert result.output.startswith("error: connection 'other' is not defined in ")
        assert "hint: add it under `connections:` in profiles.yml" in result.output
    assert not (elsewhere / "target/state").exists()


def test_a_relative_out_outside_the_project_is_the_users_choice(minimal: Path) -> None:
    result = invoke(minimal, "compile", "-o", "../plans/")
    assert result.exit_code == 0, result.output
    assert (minimal.parent / "plans/plan.json").is_file()
