"""Pass 1: find and validate the project files; build ProjectConfig and NodeSpecs.

Every problem becomes a Diagnostic; nothing raises until the compiler has looked at every
file, so a user sees all of them in one run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError

from seeknal import schemas
from seeknal.compiler.model import (
    DeclaredColumn,
    Kind,
    Materialized,
    NodeSpec,
    ProjectConfig,
    Severity,
    SourceFormat,
    SqlText,
)
from seeknal.compiler.yamlfile import YamlDocument, YamlSyntaxError, parse_yaml
from seeknal.errors import Diagnostic, ProjectError, SourceLocation

PROJECT_FILE = "seeknal_project.yml"
NODES_DIR = "seeknal"
MACROS_DIR = "macros"


@dataclass(slots=True)
class LoadedProject:
    """The output of loading: config, node specs, macro files, every input file read."""

    config: ProjectConfig
    nodes: list[NodeSpec] = field(default_factory=list)
    macros: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, or None."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def relpath(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def load_project(root: Path) -> LoadedProject:
    """Read ``seeknal_project.yml``, every ``seeknal/**/*.yml`` and ``macros/*.sql``."""
    root = root.resolve()
    diags: list[Diagnostic] = []
    config = _load_config(root, diags)
    loaded = LoadedProject(config=config, diagnostics=diags)
    loaded.files[PROJECT_FILE] = root / PROJECT_FILE

    macro_dir = root / MACROS_DIR
    if macro_dir.is_dir():
        for path in sorted(macro_dir.rglob("*.sql")):
            rel = relpath(root, path)
            loaded.macros[rel] = path.read_text(encoding="utf-8")
            loaded.files[rel] = path

    node_dir = root / NODES_DIR
    yml_files = sorted(
        [*node_dir.rglob("*.yml"), *node_dir.rglob("*.yaml")] if node_dir.is_dir() else []
    )
    if not yml_files:
        diags.append(
            Diagnostic(
                "the project has no node files",
                SourceLocation(NODES_DIR + "/"),
                hint="add YAML files with `kind` and `name` under seeknal/",
                severity="warning",
            )
        )
    seen: dict[str, NodeSpec] = {}
    for path in yml_files:
        rel = relpath(root, path)
        loaded.files[rel] = path
        spec = _load_node(root, rel, path.read_text(encoding="utf-8"), diags, loaded.files)
        if spec is None:
            continue
        if spec.id in seen:
            first = seen[spec.id]
            diags.append(
                Diagnostic(
                    f"duplicate node id '{spec.id}'",
                    spec.at("name"),
                    hint=f"'{spec.id}' is already defined at {first.at('name')}; rename one of them",
                )
            )
            continue
        seen[spec.id] = spec
        loaded.nodes.append(spec)
    loaded.nodes.sort(key=lambda n: n.id)
    return loaded


def _load_config(root: Path, diags: list[Diagnostic]) -> ProjectConfig:
    path = root / PROJECT_FILE
    if not path.is_file():
        # Nothing else can be checked without a project: stop here.
        what = "does not exist" if not root.exists() else f"has no {PROJECT_FILE}"
        raise ProjectError(
            Diagnostic(
                f"{root} {what}: not a seeknal project",
                hint="run seeknal inside a project, pass --project DIR (before the command), "
                "or create one with `seeknal init DIR`",
            )
        )
    try:
        doc = parse_yaml(PROJECT_FILE, path.read_text(encoding="utf-8"))
    except YamlSyntaxError as exc:
        diags.append(exc.diagnostic)
        return ProjectConfig(root=root, name=root.name)
    data = doc.data if isinstance(doc.data, dict) else {}
    if not isinstance(doc.data, dict):
        diags.append(Diagnostic("project file must be a mapping", doc.location()))
        return ProjectConfig(root=root, name=root.name)
    errors = schemas.iter_errors("project", data)
    for err in errors:
        diags.append(schema_diagnostic(doc, err, "project"))
    if errors:
        return ProjectConfig(root=root, name=str(data.get("name", root.name)))
    state = data.get("state") or {}
    if isinstance(state, str):  # `state: file` is short for `state: {backend: file}`
        state = {"backend": state}
    return ProjectConfig(
        root=root,
        name=data["name"],
        dialect=data.get("dialect", "duckdb"),
        vars=dict(data.get("vars") or {}),
        warehouse=data.get("warehouse", "target/warehouse.duckdb"),
        state_backend=state.get("backend", "file"),
        state_path=state.get("path", "target/state"),
    )


def _allowed_keys(schema_name: str, kind: str | None) -> list[str]:
    schema = schemas.load_schema(schema_name)
    if schema_name == "project":
        return list(schema["properties"])
    for branch in schema["allOf"]:
        if branch["if"]["properties"]["kind"]["const"] == kind:
            return list(branch["then"]["properties"])
    return list(schema["properties"])


def schema_diagnostic(doc: YamlDocument, err: ValidationError, schema_name: str) -> Diagnostic:
    """Turn a JSON Schema error into a ``path:line:col`` diagnostic a person can act on."""
    path = tuple(err.absolute_path)
    data = doc.data if isinstance(doc.data, dict) else {}
    kind = data.get("kind") if isinstance(data.get("kind"), str) else None
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = _allowed_keys(schema_name, kind) if not path else list(err.schema["properties"])
        extras = sorted(set(err.instance) - set(allowed))
        key = extras[0] if extras else "?"
        hint = did_you_mean(key, allowed) or "allowed keys: " + ", ".join(sorted(allowed))
        what = f"a {kind} node" if kind and not path else "this mapping"
        return Diagnostic(
            f"unknown key '{key}' in {what}", doc.location((*path, key), key=True), hint=hint
        )
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        required_hint: str | None = {
            "name": "every node needs `name:`; its id is `kind.name`",
            "kind": "every node needs `kind:` (source, transform, seed or rule)",
            "table": "a source needs `table:` (a file path relative to the project, or a table name)",
            "source": "a source needs `source:` (csv, parquet, json or table)",
            "path": "a seed needs `path:` to a CSV file in the project",
        }.get(missing)
        return Diagnostic(
            f"missing required key '{missing}'", doc.location(path), hint=required_hint
        )
    if err.validator == "oneOf" and path == () and kind in ("transform", "rule"):
        both = kind in data and "sql" in data
        msg = f"a {kind} has both `{kind}:` and `sql:`" if both else f"a {kind} needs SQL"
        return Diagnostic(
            msg,
            doc.location(),
            hint=f"write the SQL inline under `{kind}: |`, or name a .sql file with `sql:`",
        )
    if err.validator == "enum":
        choices = ", ".join(str(v) for v in err.validator_value)
        field_name = path[-1] if path else "value"
        return Diagnostic(
            f"invalid {field_name} {err.instance!r}: expected one of {choices}",
            doc.location(path),
            hint=did_you_mean(str(err.instance), [str(v) for v in err.validator_value]),
        )
    if err.validator == "pattern":
        field_name = path[-1] if path else "value"
        if field_name == "ref" or (len(path) >= 2 and path[-2] == "inputs"):
            hint = "a ref is `kind.name`, e.g. source.orders"
        else:
            hint = "use letters, digits and underscores, starting with a letter or underscore"
        return Diagnostic(f"invalid {field_name} {err.instance!r}", doc.location(path), hint=hint)
    return Diagnostic(err.message, doc.location(path))


def _load_node(
    root: Path, rel: str, text: str, diags: list[Diagnostic], files: dict[str, Path]
) -> NodeSpec | None:
    try:
        doc = parse_yaml(rel, text)
    except YamlSyntaxError as exc:
        diags.append(exc.diagnostic)
        return None
    if not isinstance(doc.data, dict):
        diags.append(
            Diagnostic(
                "a node file must be a mapping with `kind` and `name`",
                doc.location(),
                hint="start the file with `kind: transform` and `name: my_node`",
            )
        )
        return None
    errors = schemas.iter_errors("node", doc.data)
    if errors:
        # One useful error per file beats a cascade of consequences.
        diags.append(schema_diagnostic(doc, _most_useful(errors), "node"))
        return None
    data: dict[str, Any] = doc.data
    kind = Kind(data["kind"])
    columns = tuple(_declared_columns(data.get("columns") or {}))
    spec_args: dict[str, Any] = dict(
        kind=kind,
        name=data["name"],
        doc=doc,
        description=data.get("description"),
        owner=data.get("owner"),
        tags=tuple(data.get("tags") or ()),
        inputs=tuple(i["ref"] for i in data["inputs"]) if "inputs" in data else None,
        columns=columns,
    )
    if kind is Kind.SOURCE:
        fmt = SourceFormat(data["source"])
        spec_args.update(source_format=fmt, table=data["table"])
        spec_args["options"] = tuple(sorted((data.get("options") or {}).items()))
        if fmt is not SourceFormat.TABLE:
            # A missing file is reported; the node stays so its dependents do not cascade.
            data_path = _project_file(root, rel, data["table"], doc, ("table",), diags)
            if data_path is not None:
                spec_args["data_path"] = data_path
                files[data_path] = root / data_path
        elif not columns:
            diags.append(
                Diagnostic(
                    "a `source: table` needs `columns:`",
                    doc.location(("table",)),
                    hint="declare its columns and types, e.g. columns: {id: integer}; "
                    "seeknal compiles offline and cannot look into the warehouse",
                )
            )
            return None
    elif kind is Kind.SEED:
        data_path = _project_file(root, rel, data["path"], doc, ("path",), diags)
        if data_path is not None:
            spec_args["data_path"] = data_path
            files[data_path] = root / data_path
    else:
        if kind is Kind.RULE:
            # A rule is a view of the rows that violate it: cheap to build, and after a
            # run `seeknal show rule.x` lists the current violations.
            spec_args["materialized"] = Materialized.VIEW
            spec_args["severity"] = Severity(data.get("severity", "error"))
        else:
            spec_args["materialized"] = Materialized(data.get("materialized", "table"))
        inline = "rule" if kind is Kind.RULE else "transform"
        if inline in data:
            mark = doc.values[(inline,)]
            spec_args["sql"] = _inline_sql(doc, data[inline], mark.line, mark.col, mark.style)
        else:
            sql_rel = _project_file(root, rel, data["sql"], doc, ("sql",), diags, beside=True)
            if sql_rel is not None:
                files[sql_rel] = root / sql_rel
                spec_args["sql"] = SqlText((root / sql_rel).read_text(encoding="utf-8"), sql_rel)
    return NodeSpec(**spec_args)


def _most_useful(errors: list[ValidationError]) -> ValidationError:
    # Prefer errors on concrete keys (deepest path, 'additionalProperties' before 'if/then').
    def rank(e: ValidationError) -> tuple[int, int]:
        order = {"required": 0, "additionalProperties": 1, "enum": 2, "pattern": 3, "type": 4}
        return (order.get(str(e.validator), 9), -len(e.absolute_path))

    return min(errors, key=rank)


def _declared_columns(columns: dict[str, Any]) -> list[DeclaredColumn]:
    out = []
    for name, value in columns.items():
        if isinstance(value, str):
            out.append(DeclaredColumn(name, value))
        else:
            out.append(DeclaredColumn(name, value.get("type"), value.get("description")))
    return out


def _inline_sql(doc: YamlDocument, text: str, line: int, col: int, style: str | None) -> SqlText:
    if style in ("|", ">"):
        # Block scalar: content starts on the next line, indented.
        first = doc.text.splitlines()[line] if line < len(doc.text.splitlines()) else ""
        indent = len(first) - len(first.lstrip(" "))
        return SqlText(text, doc.path, line_offset=line, col_offset=indent)
    quote = 1 if style in ("'", '"') else 0
    return SqlText(text, doc.path, line_offset=line - 1, col_offset=col - 1 + quote)


def _project_file(
    root: Path,
    rel: str,
    value: str,
    doc: YamlDocument,
    path: tuple[str, ...],
    diags: list[Diagnostic],
    *,
    beside: bool = False,
) -> str | None:
    """Resolve a path named in a node file; it must exist and stay inside the project."""
    base = (root / rel).parent if beside else root
    target = (base / value).resolve()
    try:
        inside = target.relative_to(root).as_posix()
    except ValueError:
        diags.append(
            Diagnostic(
                f"path '{value}' points outside the project",
                doc.location(path),
                hint="keep data and SQL files inside the project directory",
            )
        )
        return None
    if not target.is_file():
        candidates = (
            [relpath(root, p) for p in target.parent.glob("*") if p.is_file()]
            if target.parent.is_dir()
            else []
        )
        hint = did_you_mean(inside, candidates)
        if hint is None:
            where = "this YAML file" if beside else "the project directory"
            hint = f"paths are relative to {where}"
        diags.append(Diagnostic(f"file not found: '{value}'", doc.location(path), hint=hint))
        return None
    return inside
