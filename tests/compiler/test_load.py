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


def load_errors(tmp_path: Path, files: dict[str, str | bytes]) -> list[tuple[str, str, str]]:
    """(message, location, hint) of every error loading a project made of ``files``."""
    files = {"seeknal_project.yml": "name: p\n", **files}
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    loaded = load_project(tmp_path)
    return [
        (d.message, str(d.location), d.hint or "")
        for d in loaded.diagnostics
        if d.severity == "error"
    ]


def test_node_ids_that_differ_only_by_case_are_duplicates(tmp_path: Path) -> None:
    errors = load_errors(
        tmp_path,
        {
            "seeknal/a.yml": "kind: transform\nname: users_t\ntransform: SELECT 1 AS x\n",
            "seeknal/b.yml": "kind: transform\nname: Users_T\ntransform: SELECT 1 AS x\n",
        },
    )
    assert errors == [
        (
            "duplicate node id 'transform.Users_T' (DuckDB names are case-insensitive: "
            "it is the same as 'transform.users_t' at seeknal/a.yml:2:7)",
            "seeknal/b.yml:2:7",
            "rename one of them",
        )
    ]


def test_hidden_and_non_regular_files_are_not_node_files(tmp_path: Path) -> None:
    node = "kind: transform\nname: a\ntransform: SELECT 1 AS x\n"
    (tmp_path / "seeknal").mkdir()
    # An editor lock file: a dangling symlink named like a YAML file.
    (tmp_path / "seeknal/.#a.yml").symlink_to("user@host.1234:1700000000")
    (tmp_path / "seeknal/dir.yml").mkdir()  # a directory with a YAML name
    (tmp_path / "macros/.old.sql").parent.mkdir()
    (tmp_path / "macros/.old.sql").write_text("{% macro broken( %}")
    errors = load_errors(
        tmp_path,
        {
            "seeknal/a.yml": node,
            "seeknal/.hidden/b.yml": "kind: [",  # would be a YAML error
            "seeknal/.c.yml": node,  # would be a duplicate id
        },
    )
    assert errors == []
    loaded = load_project(tmp_path)
    assert [n.id for n in loaded.nodes] == ["transform.a"]
    assert loaded.macros == {}


def test_symlinks_inside_the_project_are_followed_and_directories_are_not(
    tmp_path: Path,
) -> None:
    """Only a file that is itself a symlink is resolved: one to a file inside the project
    is loaded; a symlinked directory under seeknal/ is not walked (as os.walk does not),
    wherever it leads; nothing outside is ever read."""
    (tmp_path / "seeknal_project.yml").write_text("name: links\n")
    (tmp_path / "shared/more").mkdir(parents=True)
    (tmp_path / "shared/a.yml").write_text("kind: transform\nname: a\ntransform: SELECT 1 AS x\n")
    (tmp_path / "shared/more/b.yml").write_text(
        "kind: transform\nname: b\ntransform: SELECT 2 AS x\n"
    )
    (tmp_path / "seeknal").mkdir()
    (tmp_path / "seeknal/a.yml").symlink_to(tmp_path / "shared/a.yml")
    (tmp_path / "seeknal/more").symlink_to(tmp_path / "shared/more")
    loaded = load_project(tmp_path)
    assert [n.id for n in loaded.nodes] == ["transform.a"]
    assert not [d for d in loaded.diagnostics if d.severity == "error"]


@pytest.mark.parametrize(
    ("rel", "files"),
    [
        (
            "seeknal/a.yml",
            {"seeknal/a.yml": b"kind: transform\nname: a\ntransform: SELECT '\xe9'\n"},
        ),
        (
            "seeknal/a.sql",
            {
                "seeknal/a.yml": "kind: transform\nname: a\nsql: a.sql\n",
                "seeknal/a.sql": b"SELECT\n  '\xff' AS x",
            },
        ),
        ("macros/m.sql", {"macros/m.sql": b"{% macro m() %}\xe9{% endmacro %}"}),
    ],
)
def test_a_file_that_is_not_utf8_is_a_diagnostic(
    tmp_path: Path, rel: str, files: dict[str, str | bytes]
) -> None:
    errors = load_errors(tmp_path, files)
    assert len(errors) == 1
    message, location, hint = errors[0]
    assert message.startswith("not UTF-8 text")
    assert location.startswith(rel + ":")
    assert hint == "save the file as UTF-8"


def test_the_position_of_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    errors = load_errors(
        tmp_path, {"seeknal/a.yml": b"kind: transform\nname: a\ntransform: SELECT '\xe9'\n"}
    )
    assert errors[0][:2] == ("not UTF-8 text: byte 0xe9 cannot be decoded", "seeknal/a.yml:3:20")


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("kind: transform\nname: !!int y\n", "invalid YAML value 'y' for the tag !!int", "2:7"),
        ("kind: transform\nname: !!float y\n", "invalid YAML value 'y' for the tag !!float", "2:7"),
        ("kind: transform\nname: !!python/name:os.system x\n", "unsupported YAML tag", "2:7"),
        ("kind: transform\nname: &a [*a]\n", "an alias refers to a value that contains it", "2:7"),
        ("kind: transform\nname: a\x07\n", "the character #x0007 is not allowed", "2:8"),
        ("kind: transform\n? [a, b]\n: x\n", "a key must be a plain value", "2:3"),
    ],
)
def test_yaml_values_pyyaml_cannot_build_are_diagnostics(
    tmp_path: Path, text: str, message: str, where: str
) -> None:
    errors = load_errors(tmp_path, {"seeknal/a.yml": text})
    assert len(errors) == 1
    assert message in errors[0][0]
    assert errors[0][1] == f"seeknal/a.yml:{where}"
    assert errors[0][2]


@pytest.mark.parametrize(
    ("project", "message", "hint"),
    [
        (
            "name: p\nvar:\n  x: 1\n",
            "unknown key 'var' in seeknal_project.yml",
            "did you mean 'vars'?",
        ),
        (
            "name: p\ndialect: snowflake\n",
            "invalid dialect 'snowflake': expected one of duckdb, postgres",
            "allowed values: duckdb, postgres",
        ),
        (
            "name: p\nstate: {backend: sqlite}\n",
            "invalid state backend 'sqlite': expected file",
            "allowed values: file",
        ),
        ("name: p\nstate: sqlite\n", "invalid state 'sqlite': expected file", "file"),
        ("name: p\nstate: [file]\n", "`state` must be 'file' or a mapping, found a list", "file"),
        ("name: p\nvars: [a, b]\n", "`vars` must be a mapping, found a list", "mapping"),
    ],
)
def test_project_file_errors_are_reported_alone(
    tmp_path: Path, project: str, message: str, hint: str
) -> None:
    errors = load_errors(
        tmp_path,
        {
            "seeknal_project.yml": project,
            # Compiled with the wrong settings, this node would only add consequences.
            "seeknal/a.yml": "kind: transform\nname: a\ntransform: SELECT {{ var('x') }}\n",
            "seeknal/b.yml": "kind: transfrom\n",
        },
    )
    assert [m for m, _, _ in errors] == [message]
    assert hint in errors[0][2]
    assert errors[0][1].startswith("seeknal_project.yml:")


NODE_ERRORS = [
    (
        "kind: source\nname: users\nsource: csv\ntable: u.csv\ncolumns:\n"
        "  - name: uid\n    type: integer\n  - name: email\n    description: Login\n",
        "`columns` is a mapping of column name to a type or {type, description}",
        "6:3",
        "e.g. `columns: {uid: integer, email: {description: Login}}`",
    ),
    (
        "kind: transform\nname: t\ninputs: [source.users]\ntransform: SELECT 1\n",
        "input 1 is a mapping `ref: kind.name`, found the string 'source.users'",
        "3:10",
        "write `- ref: source.users`",
    ),
    (
        "kind: transform\nname: t\ninputs: source.users\ntransform: SELECT 1\n",
        "`inputs` is a list of `- ref: kind.name`",
        "3:9",
        "write `inputs: [{ref: source.users}]`",
    ),
    (
        "kind: transform\nname: t\ntags: finance\ntransform: SELECT 1\n",
        "tags is a list, e.g. [finance]",
        "3:7",
        "write `tags: [finance]`",
    ),
    (
        "kind: transform\nname: t\ncolumns:\n  uid:\n    descripton: User id\ntransform: SELECT 1\n",
        "unknown key 'descripton' in column 'uid'",
        "5:5",
        "did you mean 'description'?",
    ),
    (
        "kind: transform\nname: t\ncolumns:\n  uid: 3\ntransform: SELECT 1\n",
        "column 'uid' is a SQL type or a mapping {type, description}, found the number 3",
        "4:8",
        "e.g. `uid: integer` or `uid: {type: integer, description: ...}`",
    ),
    (
        "kind: source\nname: s\nsource: csv\ntable: s.csv\noptions:\n  delim: ';'\n  'x); DROP': 1\n",
        "invalid option name 'x); DROP'",
        "7:3",
        "use letters, digits and underscores",
    ),
    (
        "kind: source\nname: s\nsource: csv\ntable: s.csv\ninputs:\n  - ref: source.x\n",
        "a source reads no node: `inputs` is only for transforms and rules",
        "5:1",
        "remove `inputs`",
    ),
    (
        "kind: seed\nname: s\npath: s.csv\ninputs:\n  - ref: source.x\n",
        "a seed reads no node: `inputs` is only for transforms and rules",
        "4:1",
        "remove `inputs`",
    ),
    (
        "kind: transform\nname: t\ntags: [a, b, a]\ntransform: SELECT 1\n",
        "`tags` lists 'a' twice",
        "3:14",
        "remove the repeated item",
    ),
    (
        "kind: transform\nname: t\ndescription: {a: 1}\ntransform: SELECT 1\n",
        "`description` must be a string, found a mapping",
        "3:14",
        "quote it",
    ),
]


@pytest.mark.parametrize(("text", "message", "where", "hint"), NODE_ERRORS)
def test_schema_errors_say_what_to_write(
    tmp_path: Path, text: str, message: str, where: str, hint: str
) -> None:
    errors = load_errors(tmp_path, {"seeknal/a.yml": text, "s.csv": "a\n1\n", "u.csv": "a\n"})
    assert len(errors) == 1, errors
    assert errors[0][0] == message
    assert errors[0][1] == f"seeknal/a.yml:{where}"
    assert hint in errors[0][2]
    # No Python reprs of the user's values.
    assert (
        "{'" not in errors[0][0]
        and "[{" not in errors[0][0]
        and "is not of type" not in errors[0][0]
    )


def test_a_missing_sql_file_suggests_a_path_relative_to_the_yaml_file(tmp_path: Path) -> None:
    errors = load_errors(
        tmp_path,
        {
            "seeknal/transforms/a.yml": "kind: transform\nname: a\nsql: ../sql/a.sq\n",
            "seeknal/sql/a.sql": "SELECT 1 AS x",
            "seeknal/transforms/b.yml": "kind: transform\nname: b\nsql: b.sq\n",
            "seeknal/transforms/b.sql": "SELECT 1 AS x",
        },
    )
    assert [(m, h) for m, _, h in errors] == [
        ("file not found: '../sql/a.sq'", "did you mean '../sql/a.sql'?"),
        ("file not found: 'b.sq'", "did you mean 'b.sql'?"),
    ]
