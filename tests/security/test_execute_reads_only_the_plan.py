"""Execute runs the plan and reads nothing else of the project but its declared data.

plan_id proves a plan was not changed by accident; anyone can compute it, so it is no
signature. What stops a hand-edited plan from reading files is the engine itself: the
runtime opens the warehouse sealed, readable files limited to the data files the plan
declares, settings locked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb

from seeknal.canonical import canonical_json, compute_plan_id
from tests.cli.conftest import invoke, run_process
from tests.conftest import EXAMPLE, FIXTURES, copy_project


def compiled(project: Path) -> dict[str, Any]:
    result = invoke(project, "compile")
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads((project / "target/plan.json").read_text())
    return plan


def resealed(plan: dict[str, Any], path: Path) -> Path:
    """Write ``plan`` with a recomputed plan_id, as someone editing it by hand would."""
    plan["plan_id"] = compute_plan_id(plan)
    path.write_text(canonical_json(plan), encoding="utf-8")
    return path


def test_execute_needs_neither_the_node_files_nor_the_macros(tmp_path: Path) -> None:
    project = copy_project(EXAMPLE, tmp_path / "shop")
    compiled(project)
    plan = shutil.copy(project / "target/plan.json", tmp_path / "plan.json")
    for gone in ("seeknal", "macros"):
        shutil.rmtree(project / gone)
    (project / "seeknal_project.yml").unlink()

    result = invoke(project, "execute", str(plan))

    assert result.exit_code == 0, result.output
    with duckdb.connect(str(project / "target/warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT COUNT(*) FROM transform.customer_lifetime_value").fetchone()
    assert rows is not None and rows[0] > 0


def test_a_hand_edited_plan_cannot_read_an_undeclared_file(tmp_path: Path) -> None:
    project = copy_project(FIXTURES / "minimal", tmp_path / "minimal")
    (project / "notes.txt").write_text("PRIVATE-MARKER\n")
    plan = compiled(project)
    node = plan["nodes"]["source.orders"]
    for sql in (
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('notes.txt')",
        f"SELECT * FROM read_csv('{project / 'notes.txt'}')",
    ):
        node["sql"]["engine"] = sql
        path = resealed(plan, tmp_path / "edited.json")
        result = invoke(project, "execute", str(path))
        assert result.exit_code == 1, result.output
        assert "node source.orders failed" in result.output
        assert "file system operations are disabled" in result.output
        assert "PRIVATE-MARKER" not in result.output and "root:" not in result.output


def test_a_data_file_in_the_working_directory_cannot_stand_in(tmp_path: Path) -> None:
    """DuckDB looks a relative name up in the working directory first: refused."""
    project = copy_project(FIXTURES / "minimal", tmp_path / "minimal")
    compiled(project)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data/orders.csv").write_text("order_id,customer_id,amount\n9,9,9.0\n")

    done = run_process(project, "execute", cwd=elsewhere)

    assert done.returncode == 2, done.stderr
    assert "data/orders.csv in the current directory" in done.stderr
    assert not (project / "target/warehouse.duckdb").exists()
    # From the project directory, or any directory without such a file, it runs.
    assert run_process(project, "execute", cwd=tmp_path).returncode == 0


def test_a_hand_edited_plan_cannot_declare_a_file_outside_the_project(tmp_path: Path) -> None:
    """The compiler declares only the project's data files (and those under
    allow_external_data): one elsewhere was written by hand, and is refused before the
    warehouse is opened."""
    project = copy_project(FIXTURES / "minimal", tmp_path / "minimal")
    secret = tmp_path / "secret.csv"
    secret.write_text("order_id,customer_id,amount\n1,1,1.0\n")
    plan = compiled(project)
    node = plan["nodes"]["source.orders"]
    for name in (str(secret), "../secret.csv"):
        node["data_file"]["path"] = name
        node["sql"]["engine"] = f"SELECT * FROM read_csv('{name}')"
        path = resealed(plan, tmp_path / "edited.json")
        result = invoke(project, "execute", "--force", str(path))
        assert result.exit_code == 2, result.output
        assert f"the plan declares the data file {name}, outside the project" in " ".join(
            result.output.split()
        )
        assert not (project / "target/warehouse.duckdb").exists()
    # A string where the project file needs a list of directories allows nothing (read
    # a character at a time, "/" would allow every file).
    config = project / "seeknal_project.yml"
    original = config.read_text()
    config.write_text(original + f"allow_external_data: '{tmp_path}'\n")
    result = invoke(project, "execute", "--force", str(path))
    assert result.exit_code == 2, result.output
    # Listed under allow_external_data in the project file, it is the project's choice.
    config.write_text(original + f"allow_external_data: ['{tmp_path}']\n")
    result = invoke(project, "execute", "--force", str(path))
    assert result.exit_code == 0, result.output
