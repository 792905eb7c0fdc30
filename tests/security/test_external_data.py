"""allow_external_data: the one way to read data from outside the project, explicitly."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.cli.conftest import invoke
from tests.conftest import FIXTURES, copy_project

ORDERS = "order_id,customer_id,amount\n1,10,25.00\n2,11,40.50\n"


def project_reading(tmp_path: Path, table: str, allow: str) -> Path:
    project = copy_project(FIXTURES / "minimal", tmp_path / "project")
    (project / "seeknal_project.yml").write_text(f"name: minimal\nallow_external_data: [{allow}]\n")
    source = project / "seeknal/sources/orders.yml"
    source.write_text(source.read_text().replace("data/orders.csv", table))
    return project


def test_a_listed_directory_is_read_and_recorded_as_written(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/orders.csv").write_text(ORDERS)
    project = project_reading(tmp_path, "../shared/orders.csv", "../shared")

    result = invoke(project, "run")

    assert result.exit_code == 0, result.output
    text = (project / "target/plan.json").read_text()
    plan = json.loads(text)
    assert plan["nodes"]["source.orders"]["data_file"]["path"] == "../shared/orders.csv"
    assert str(tmp_path) not in text  # never an absolute path the user did not write
    with duckdb.connect(str(project / "target/warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM source.orders").fetchone() == (2,)


def test_an_absolute_directory_is_recorded_as_the_user_wrote_it(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/orders.csv").write_text(ORDERS)
    table = str(tmp_path / "shared/orders.csv")
    project = project_reading(tmp_path, table, str(tmp_path / "shared"))
    assert invoke(project, "compile").exit_code == 0
    plan = json.loads((project / "target/plan.json").read_text())
    assert plan["nodes"]["source.orders"]["data_file"]["path"] == table


@pytest.mark.parametrize("table", ["../other/orders.csv", "../shared/link.csv"])
def test_only_the_listed_directory(table: str, tmp_path: Path) -> None:
    for name in ("shared", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "orders.csv").write_text(ORDERS)
    # A symlink in the listed directory does not stretch it.
    (tmp_path / "shared/link.csv").symlink_to(tmp_path / "other/orders.csv")
    project = project_reading(tmp_path, table, "../shared")
    result = invoke(project, "compile")
    assert result.exit_code == 2, result.output
    assert f"path '{table}' points outside the project" in result.output
    assert not (project / "target").exists()


def test_a_listed_entry_must_be_a_directory(tmp_path: Path) -> None:
    project = project_reading(tmp_path, "data/orders.csv", "../nowhere")
    result = invoke(project, "compile")
    assert result.exit_code == 2
    assert result.output.startswith(
        "seeknal_project.yml:2:23: error: allow_external_data: '../nowhere' is not a directory"
    )
