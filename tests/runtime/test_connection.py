"""Connections: resolved by name at execute time, from profiles.yml and the environment."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import duckdb
import pytest

from seeknal.engines import EngineError
from seeknal.runtime import execute_plan
from seeknal.runtime.connection import (
    ProfileError,
    connection_of,
    open_connection,
    resolve_connection,
)
from tests.runtime.plans import WAREHOUSE, seal, standard_plan, write_project

SECRET = "s3cr3t-value-that-must-not-print"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


def profiles(project: Path, text: str) -> None:
    (project / "profiles.yml").write_text(text, encoding="utf-8")


def with_connection(plan: dict[str, Any], name: str) -> dict[str, Any]:
    plan = copy.deepcopy(plan)
    plan["target"]["connection"] = name
    return seal(plan)


def test_without_profiles_default_is_the_plans_warehouse(project: Path) -> None:
    connection = resolve_connection(project, warehouse="target/w.duckdb", environ={})
    assert (connection.name, connection.engine) == ("default", "duckdb")
    assert connection.database == str(project / "target/w.duckdb")


def test_a_profile_resolves_variables_at_execute_time(project: Path) -> None:
    profiles(
        project,
        "connections:\n"
        "  default: {engine: duckdb, path: '${WH_DIR}/main.duckdb'}\n"
        "  scratch: {engine: duckdb, path: '${WH_FILE:target/scratch.duckdb}'}\n",
    )
    env = {"WH_DIR": "deploy"}
    assert resolve_connection(project, environ=env).database == str(project / "deploy/main.duckdb")
    scratch = resolve_connection(project, "scratch", environ=env)
    assert scratch.database == str(project / "target/scratch.duckdb")
    assert resolve_connection(
        project, "scratch", environ={"WH_FILE": "/abs/x.duckdb"}
    ).database == ("/abs/x.duckdb")


def test_profiles_can_live_outside_the_checkout(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "secrets" / "profiles.yml"
    elsewhere.parent.mkdir()
    elsewhere.write_text("connections:\n  prod: {engine: duckdb, path: prod.duckdb}\n")
    connection = resolve_connection(project, "prod", environ={"SEEKNAL_PROFILES": str(elsewhere)})
    assert connection.database == str(project / "prod.duckdb")


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("connections: {}\n", "prod", "connection 'prod' is not defined in"),
        (
            "connections:\n  default: {engine: postgres, url: 'postgresql://u:${PW}@h/db'}\n",
            "default",
            "profiles.yml connection 'default' uses engine 'postgres'; this seeknal supports: "
            "duckdb",
        ),
        (
            "connections:\n  default: {engine: duckdb, path: '${SEEKNAL_TEST_UNSET_VAR}'}\n",
            "default",
            "profiles.yml connection 'default' needs the environment variable "
            "SEEKNAL_TEST_UNSET_VAR, which is not set",
        ),
        (
            "connections:\n  default: {engine: duckdb, path: '${WH:target/a.duckdb'}\n",
            "default",
            "profiles.yml connection 'default' has '${WH:target/a.duckdb', which is not a "
            "variable reference",
        ),
        (
            "connections:\n  default: {engine: duckdb, path: '${A:${B}}/a.duckdb'}\n",
            "default",
            "has '${A:${B}}': a default cannot hold another variable reference",
        ),
        (
            "connections:\n  default: {engine: duckdb, path: '${1WH}/a.duckdb'}\n",
            "default",
            "has '${1WH}/a.duckdb', which is not a variable reference",
        ),
        ("connections:\n  default: {engine: duckdb}\n", "default", "'path' is a required"),
        ("connections:\n  default: {engine: duckdb, path: x, pw: y}\n", "default", "pw"),
        ("connections: [\n", "default", "invalid YAML"),
        ("nope: 1\n", "default", "not a valid profiles file"),
    ],
)
def test_profile_errors_are_clear(project: Path, text: str, name: str, message: str) -> None:
    profiles(project, text)
    with pytest.raises(ProfileError) as info:
        resolve_connection(project, name, environ={"PW": SECRET})
    assert message in str(info.value)
    assert info.value.exit_code == 2
    assert SECRET not in info.value.render()


def test_a_plan_names_its_connection_and_runs_on_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles(project, "connections:\n  other: {engine: duckdb, path: '${OTHER_WH}'}\n")
    plan = with_connection(standard_plan(project), "other")
    env = {"OTHER_WH": "elsewhere/w.duckdb"}
    assert connection_of(plan, project, env).database == str(project / "elsewhere/w.duckdb")

    monkeypatch.setenv("OTHER_WH", "elsewhere/w.duckdb")
    execute_plan(plan, project)
    assert not (project / WAREHOUSE).exists()
    with duckdb.connect(str(project / "elsewhere/w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM source.orders").fetchone() == (5,)


def test_an_unknown_connection_fails_before_anything_is_written(project: Path) -> None:
    plan = with_connection(standard_plan(project), "missing")
    with pytest.raises(ProfileError):
        execute_plan(plan, project)
    assert not (project / "target").exists()


def test_an_error_opening_the_warehouse_shows_the_path_as_written(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / SECRET).write_text("not a database")
    monkeypatch.setenv("SEEKNAL_TEST_WH", SECRET)
    profiles(project, "connections:\n  default: {engine: duckdb, path: '${SEEKNAL_TEST_WH}'}\n")
    connection = resolve_connection(project)
    with pytest.raises(EngineError) as info:
        open_connection(connection, file_search_path=project)
    assert "${SEEKNAL_TEST_WH}" in str(info.value)
    assert SECRET not in info.value.render()


def test_the_sealed_warehouse_reads_only_the_declared_files(project: Path) -> None:
    (project / "secret.csv").write_text("a\n1\n")
    engine = open_connection(
        resolve_connection(project, environ={}),
        file_search_path=project,
        readable_files=["data/orders.csv"],
    )
    try:
        assert engine.query("SELECT COUNT(*) FROM read_csv('data/orders.csv')")[1] == [(5,)]
        for sql in (
            "SELECT * FROM read_csv('secret.csv')",
            f"SELECT * FROM read_csv('{project / 'secret.csv'}')",
            "SELECT * FROM read_csv('data/customers.csv')",
            "SELECT * FROM read_csv('/etc/passwd')",
            f"COPY (SELECT 1) TO '{project / 'out.csv'}'",
            "SET enable_external_access = true",
            "SET allowed_paths = ['/etc/passwd']",
            "INSTALL httpfs",
        ):
            with pytest.raises(EngineError):
                engine.query(sql)
    finally:
        engine.close()
    assert not (project / "out.csv").exists()
