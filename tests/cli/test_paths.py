"""Where commands read and write: project discovery, plan paths, init, file modes."""

from __future__ import annotations

import json
import os
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from seeknal.cli.main import cli
from tests.cli.conftest import invoke, run_process


def invoke_here(*args: str) -> Result:
    """Run the CLI in-process without --project, from the current directory."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_compile_out_to_a_directory_writes_plan_json_in_it(minimal: Path) -> None:
    trailing = invoke(minimal, "compile", "-o", "target/")
    assert trailing.exit_code == 0, trailing.output
    assert (minimal / "target/plan.json").is_file()
    assert "wrote " + str(minimal / "target/plan.json") in trailing.output

    (minimal / "plans").mkdir()
    existing = invoke(minimal, "compile", "--out", str(minimal / "plans"))
    assert existing.exit_code == 0, existing.output
    assert json.loads((minimal / "plans/plan.json").read_text())["project"] == "minimal"


def test_an_unwritable_plan_path_is_a_clean_error(minimal: Path) -> None:
    result = invoke(minimal, "compile", "-o", "/proc/seeknal/plan.json")
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot write the plan to /proc/seeknal/plan.json")
    assert "hint: " in result.output and "internal error" not in result.output


@pytest.mark.usefixtures("umask_022")
def test_plan_and_state_files_get_the_usual_mode(minimal: Path) -> None:
    assert run_process(minimal, "run").returncode == 0  # the subprocess inherits umask 022

    assert mode_of(minimal / "target/plan.json") == 0o644
    assert mode_of(minimal / "target/state/state.json") == 0o644
    assert invoke(minimal, "compile", "-o", "target/other.json").exit_code == 0
    assert mode_of(minimal / "target/other.json") == 0o644
    os.umask(0o077)
    assert invoke(minimal, "compile", "-o", "target/private.json").exit_code == 0
    assert mode_of(minimal / "target/private.json") == 0o600  # the umask still applies
    assert not list((minimal / "target").glob(".plan-*"))  # no temporary file left


def test_init_in_an_unwritable_place_is_a_clean_error() -> None:
    result = invoke_here("init", "/proc/seeknal-project")
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot create the project in /proc/seeknal-project")
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize(
    ("directory", "name"),
    [("2024-sales", "project_2024_sales"), ("café", "caf_"), ("my shop", "my_shop")],
)
def test_init_names_the_project_validly_and_quotes_the_path(
    directory: str, name: str, tmp_path: Path
) -> None:
    target = tmp_path / directory
    result = invoke_here("init", str(target))

    assert result.exit_code == 0, result.output
    assert f"name: {name}\n" in (target / "seeknal_project.yml").read_text()
    next_line = result.output.splitlines()[-1]
    # What the user pastes into a shell reaches the directory, whatever its name.
    assert shlex.split(next_line) == ["next:", "cd", str(target), "&&", "seeknal", "run"]
    assert invoke(target, "compile").exit_code == 0


def test_commands_find_the_project_from_a_subdirectory(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shop / "seeknal/transforms")

    compiled = invoke_here("compile")

    assert compiled.exit_code == 0, compiled.output
    assert (shop / "target/plan.json").is_file()
    assert compiled.stderr.splitlines()[0] == f"using the project in {shop.resolve()}"
    lineage = invoke_here("lineage", "transform.daily_revenue", "--upstream")
    assert "transform.stg_orders" in lineage.output


def test_at_the_project_root_nothing_extra_is_said(
    minimal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(minimal)

    compiled = invoke_here("compile")

    assert compiled.exit_code == 0
    assert compiled.stderr == ""
    assert compiled.stdout.splitlines()[-1].startswith("wrote target/plan.json ")


def test_outside_any_project_the_error_names_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke_here("compile")
    assert result.exit_code == 2
    assert f"{tmp_path} has no seeknal_project.yml" in result.output


def test_execute_without_a_plan_runs_the_projects_plan(
    minimal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = invoke(minimal, "execute")
    assert missing.exit_code == 2
    assert "target/plan.json: no such plan file" in missing.output

    assert invoke(minimal, "compile").exit_code == 0
    monkeypatch.chdir(minimal / "seeknal")
    executed = invoke_here("execute", "--json")
    assert executed.exit_code == 0, executed.output
    assert '"event": "promoted"' in executed.stdout


def test_execute_help_says_where_plan_is_looked_up() -> None:
    shown = " ".join(invoke_here("execute", "--help").output.split())
    assert "[PLAN]" in shown
    assert "PLAN defaults to the project's target/plan.json" in shown
    assert "looked up in the current directory first, then in the project" in shown


@pytest.mark.parametrize("command", [["execute"], ["apply", "prod"]])
def test_a_plan_file_that_is_not_json_is_named_with_its_position(
    minimal: Path, command: list[str]
) -> None:
    """The runtime parses the file's text once; its errors still name the file."""
    bad = minimal / "broken.json"
    bad.write_text('{\n  "plan_id": \n', encoding="utf-8")
    result = invoke(minimal, *command, str(bad))
    assert result.exit_code == 2
    assert f"{bad}:3:1: plan is not valid JSON" in result.output
    assert not (minimal / "target" / "state").exists()


def test_execute_runs_the_plan_file_it_is_given(minimal: Path) -> None:
    assert invoke(minimal, "compile", "--out", "reviewed.json").exit_code == 0
    (minimal / "target" / "plan.json").unlink(missing_ok=True)
    result = invoke(minimal, "execute", "reviewed.json", "--quiet")
    assert result.exit_code == 0, result.output
    assert "built 2" in result.output
