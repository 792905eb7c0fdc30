"""Hostile projects: what a pull request could try, each refused with a clear error.

Every ``hostile_*`` fixture is ``minimal/`` with one attack (see the fixtures' README).
Compiling it must exit 2 with a ``file:line: error:`` message (snapshotted), print nothing
it should not have read, and write nothing: not a file, not ``target/``. Attacks that need
a symlink create it here, at run time: a committed symlink would point into the machine
that checked the repository out.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.cli.conftest import invoke, tree_state
from tests.conftest import FIXTURES, copy_project

HOSTILE = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("hostile_"))
# The first line of every error: `path:line[:col]: error: message`.
FIRST_LINE = re.compile(r"^[\w./-]+(:\d+){0,2}: error: \S")
MARKER = "OUTSIDE-MARKER"
# Options a fixture is compiled with (the rest: none).
OPTIONS = {"hostile_external_data": ("--untrusted",)}


def listing(directory: Path) -> list[str]:
    """Every entry under ``directory`` (directories and symlinks too), not following links."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        found += [
            os.path.relpath(os.path.join(dirpath, n), directory) for n in dirnames + filenames
        ]
    return sorted(found)


def compile_refused(project: Path, *options: str, outside: Path | None = None) -> Result:
    """Compile ``project``; assert it failed cleanly and changed nothing anywhere."""
    before = (listing(project), tree_state(project))
    outside_before = tree_state(outside) if outside else {}
    result = invoke(project, "compile", *options)
    assert result.exit_code == 2, result.output
    assert FIRST_LINE.match(result.output), result.output
    assert "hint: " in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert (listing(project), tree_state(project)) == before
    if outside is not None:
        assert tree_state(outside) == outside_before
    # Nothing read from outside the project (or from /etc) shows up in the output.
    assert MARKER not in result.output and "root:" not in result.output
    return result


def test_every_hostile_fixture_is_listed_in_the_readme() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    assert len(HOSTILE) >= 20
    for name in HOSTILE:
        assert f"`{name}/`" in readme, name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_project_is_refused(name: str, tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    project = copy_project(FIXTURES / name, tmp_path / name)
    result = compile_refused(project, *OPTIONS.get(name, ()))
    assert not (project / "target").exists()
    assert result.output == snapshot


def test_the_hostile_external_data_fixture_is_honoured_when_trusted(tmp_path: Path) -> None:
    """Without --untrusted the project file's allow_external_data is the user's own choice."""
    project = copy_project(FIXTURES / "hostile_external_data", tmp_path / "p")
    result = invoke(project, "compile")
    assert "points outside the project" not in result.output


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "macros").mkdir(parents=True)
    (outside / "secret.yml").write_text(
        f"kind: source\nname: evil\nsource: csv\ntable: data/orders.csv\n# {MARKER}\n"
    )
    (outside / "secret.csv").write_text(f"{MARKER},b\n1,2\n")
    (outside / "secret.sql").write_text(f"SELECT '{MARKER}' AS m")
    (outside / "macros" / "evil.sql").write_text(f"{{% macro evil() %}}{MARKER}{{% endmacro %}}")
    (outside / "seeknal_project.yml").write_text(f"name: minimal\n# {MARKER}\n")
    return outside


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def _sql_file(project: Path, outside: Path) -> None:
    transform = project / "seeknal/transforms/customer_totals.yml"
    transform.write_text("kind: transform\nname: customer_totals\nsql: customer_totals.sql\n")
    (project / "seeknal/transforms/customer_totals.sql").symlink_to(outside / "secret.sql")


def _data_dir(project: Path, outside: Path) -> None:
    _replace(project / "seeknal/sources/orders.yml", "data/orders.csv", "data/secret.csv")
    for path in (project / "data").iterdir():
        path.unlink()
    (project / "data").rmdir()
    (project / "data").symlink_to(outside)


def _data_file(project: Path, outside: Path) -> None:
    (project / "data/orders.csv").unlink()
    (project / "data/orders.csv").symlink_to(outside / "secret.csv")


def _nodes_dir(project: Path, outside: Path) -> None:
    shutil.rmtree(project / "seeknal")
    (project / "seeknal").symlink_to(outside)  # it holds secret.yml, a valid node file


def _state_dir(project: Path, outside: Path) -> None:
    (project / "target").mkdir()
    (project / "target/state").symlink_to(outside)


def _state_file(project: Path, outside: Path) -> None:
    (project / "target/state").mkdir(parents=True)
    (outside / "state.json").write_text(f'{{"format_version": 1, "x": "{MARKER}"}}')
    (project / "target/state/state.json").symlink_to(outside / "state.json")


def _state_hashes(project: Path, outside: Path) -> None:
    (project / "target/state").mkdir(parents=True)
    (outside / "hashes.json").write_text(f'{{"format": 1, "x": "{MARKER}"}}')
    (project / "target/state/hashes.json").symlink_to(outside / "hashes.json")


def _plan_dir(project: Path, outside: Path) -> None:
    (project / "target").symlink_to(outside)


SYMLINKS: dict[str, Callable[[Path, Path], None]] = {
    "node_file": lambda p, o: (p / "seeknal/sources/evil.yml").symlink_to(o / "secret.yml"),
    "nodes_dir": _nodes_dir,
    "macro_file": lambda p, o: (
        (p / "macros").mkdir() or (p / "macros/evil.sql").symlink_to(o / "macros/evil.sql")
    ),
    "macros_dir": lambda p, o: (p / "macros").symlink_to(o / "macros"),
    "sql_file": _sql_file,
    "data_dir": _data_dir,
    "data_file": _data_file,
    "project_file": lambda p, o: (
        (p / "seeknal_project.yml").unlink()
        or (p / "seeknal_project.yml").symlink_to(o / "seeknal_project.yml")
    ),
    "state_dir": _state_dir,
    "state_file": _state_file,
    "state_hashes": _state_hashes,
    "plan_dir": _plan_dir,
}


@pytest.mark.parametrize("case", sorted(SYMLINKS))
def test_a_symlink_out_of_the_project_is_refused(case: str, tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    outside = _outside(tmp_path)
    project = copy_project(FIXTURES / "minimal", tmp_path / "project")
    SYMLINKS[case](project, outside)
    result = compile_refused(project, outside=outside)
    assert not (outside / "plan.json").exists()
    assert result.output == snapshot


def test_a_symlink_inside_the_project_is_fine(tmp_path: Path) -> None:
    project = copy_project(FIXTURES / "minimal", tmp_path / "project")
    (project / "shared").mkdir()
    (project / "data/orders.csv").rename(project / "shared/orders.csv")
    (project / "data/orders.csv").symlink_to(project / "shared/orders.csv")
    result = invoke(project, "compile")
    assert result.exit_code == 0, result.output
    plan = (project / "target/plan.json").read_text()
    assert '"path": "shared/orders.csv"' in plan  # relative, resolved inside the project
    assert str(tmp_path) not in plan
