"""Loading project files: YAML positions and schema errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeknal.compiler.load import load_project
from seeknal.compiler.yamlfile import YamlSyntaxError, parse_yaml
from seeknal.errors import ProjectError


def test_positions_of_keys_and_values() -> None:
    doc = parse_yaml("x.yml", "kind: transform\nname: a\ninputs:\n  - ref: source.o\n")
    assert doc.location(("name",)).line == 2
    assert (doc.location(("inputs", 0, "ref")).line, doc.location(("inputs", 0, "ref")).col) == (
        4,
        10,
    )
    assert doc.location(("name",), key=True).col == 1


def test_duplicate_key_is_an_error_not_a_silent_override() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml("x.yml", "kind: transform\nname: a\nname: b\n")
    diag = info.value.diagnostic
    assert diag.message == "duplicate key 'name'"
    assert (diag.location.line, diag.location.col) == (3, 1)
    assert "line 2" in (diag.hint or "")


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("kind: transfrom\nname: a\n", "invalid kind 'transfrom'", "did you mean 'transform'?"),
        (
            "kind: transform\nname: 1abc\ntransform: SELECT 1\n",
            "invalid name '1abc'",
            "letters, digits",
        ),
        ("kind: transform\nname: a\n", "a transform needs SQL", "transform: |"),
        ("kind: rule\nname: a\n", "a rule needs SQL", "rule: |"),
        (
            "kind: rule\nname: a\nseverity: fatal\nrule: SELECT 1\n",
            "invalid severity 'fatal'",
            None,
        ),
        (
            "kind: rule\nname: a\nmaterialized: table\nrule: SELECT 1\n",
            "unknown key 'materialized'",
            None,
        ),
        ("kind: source\nname: a\nsource: csv\n", "missing required key 'table'", "table:"),
        ("kind: source\nname: a\nsource: xls\ntable: a.xls\n", "invalid source 'xls'", None),
        ("kind: seed\nname: a\npath: ../outside.csv\n", "points outside the project", "inside"),
        ("- just\n- a list\n", "must be a mapping", "kind: transform"),
        (
            "kind: transform\nname: a\nmaterialized: tabel\ntransform: SELECT 1\n",
            "invalid materialized 'tabel'",
            "did you mean 'table'?",
        ),
    ],
)
def test_node_file_errors(tmp_path: Path, text: str, message: str, hint: str | None) -> None:
    write(tmp_path, "seeknal_project.yml", "name: p\n")
    write(tmp_path, "seeknal/a.yml", text)
    loaded = load_project(tmp_path)
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    assert len(errors) == 1, errors
    assert message in errors[0].message
    assert errors[0].location is not None and errors[0].location.path == "seeknal/a.yml"
    if hint:
        assert hint in (errors[0].hint or "")


def test_project_file_errors(tmp_path: Path) -> None:
    write(tmp_path, "seeknal_project.yml", "name: p\ndialect: oracle\nwarehose: x.duckdb\n")
    loaded = load_project(tmp_path)
    messages = sorted(d.message for d in loaded.diagnostics if d.severity == "error")
    assert any("unknown key 'warehose'" in m for m in messages)
    assert any("invalid dialect 'oracle'" in m for m in messages)


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path)
    assert info.value.render().startswith(f"error: {tmp_path} has no seeknal_project.yml")
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path / "nope")
    assert "does not exist" in info.value.render()
