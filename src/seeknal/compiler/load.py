"""Pass 1: find and validate the project files; build ProjectConfig and NodeSpecs.

Every problem becomes a Diagnostic; nothing raises until the compiler has looked at every
file, so a user sees all of them in one run.

Nothing is read from outside the project directory: a project file, a macro file or a
node file that is a symlink leading out of it is an error, and so is a `table:`,
`path:` or `sql:` that resolves outside it (``..``, an absolute path, a symlink), unless
the project file lists the directory under ``allow_external_data`` (data files only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from seeknal import schemas
from seeknal.compiler.cache import CompileCache, content_key
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.incremental import incremental_config, normalize_yaml_times
from seeknal.compiler.model import (
    NODE_KINDS,
    DeclaredColumn,
    Kind,
    Materialized,
    NodeSpec,
    ProjectConfig,
    Severity,
    SourceFormat,
    SqlText,
)
from seeknal.compiler.schema_errors import most_useful, schema_diagnostic
from seeknal.compiler.yamlfile import (
    YamlDocument,
    YamlSyntaxError,
    document_entry,
    document_from_entry,
    parse_yaml,
)
from seeknal.errors import Diagnostic, ProjectError, SourceLocation
from seeknal.naming import IDENTIFIER_HINT, is_identifier
from seeknal.paths import external_directories, inside
from seeknal.state.file import HASHES_FILE, JOURNAL_FILE, STATE_FILE

__all__ = ["LoadedProject", "did_you_mean", "load_project", "read_text", "schema_diagnostic"]

PROJECT_FILE = "seeknal_project.yml"
STATE_FILES = (STATE_FILE, JOURNAL_FILE, HASHES_FILE)  # what a run reads of the state
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
    # Resolved directories of `allow_external_data` (empty when compiling untrusted).
    external: tuple[Path, ...] = ()
    # The ids node files reported invalid may define (``_meant_ids``): a ref to one of
    # them is a consequence of that report, not an error of its own.
    unloaded: set[str] = field(default_factory=set)


def relpath(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def load_project(
    root: Path,
    *,
    untrusted: bool = False,
    cache: CompileCache | None = None,
    settings: tuple[ProjectConfig, list[Diagnostic]] | None = None,
) -> LoadedProject:
    """Read ``seeknal_project.yml``, every ``seeknal/**/*.yml`` and ``macros/*.sql``.

    When the project file itself has errors, only those are reported: every node would
    be compiled with the wrong settings, and its errors would be consequences. With
    ``untrusted``, the project file's ``allow_external_data`` and ``embed_env_vars``
    are ignored. A node file whose text validated before is taken from ``cache``.
    ``settings`` is what ``load_config_file`` returned for this project and these
    options, when the caller has read the project file already.
    """
    root = root.resolve()
    if settings is None:
        diags: list[Diagnostic] = []
        config = load_config_file(root, diags, untrusted=untrusted, cache=cache)
    else:
        config, diags = settings[0], list(settings[1])
    loaded = LoadedProject(config=config, diagnostics=diags)
    loaded.files[PROJECT_FILE] = root / PROJECT_FILE
    loaded.external = external_directories(root, config.allow_external_data)
    if any(d.severity == "error" for d in diags):
        return loaded

    for path in _inside_files(root, MACROS_DIR, (".sql",), diags):
        rel = relpath(root, path)
        text = read_text(path, rel, diags)
        if text is not None:
            loaded.macros[rel] = text
            loaded.files[rel] = path

    yml_files = _inside_files(root, NODES_DIR, (".yml", ".yaml"), diags)
    if not yml_files:
        diags.append(
            Diagnostic(
                "the project has no node files",
                SourceLocation(NODES_DIR + "/"),
                hint="add YAML files with `kind` and `name` under seeknal/",
                severity="warning",
            )
        )
    # DuckDB identifiers are case-insensitive: transform.Users and transform.users
    # would be one table, so ids are unique regardless of case.
    seen: dict[str, NodeSpec] = {}
    for path in yml_files:
        rel = relpath(root, path)
        loaded.files[rel] = path
        text = read_text(path, rel, diags)
        spec = None if text is None else _load_node(rel, text, diags, loaded, cache)
        if spec is None:
            continue
        first = seen.get(spec.id.lower())
        if first is not None:
            diags.append(_duplicate_id(spec, first))
            continue
        seen[spec.id.lower()] = spec
        loaded.nodes.append(spec)
    loaded.nodes.sort(key=lambda n: n.id)
    return loaded


def project_files(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Regular files under ``directory`` with these suffixes, sorted.

    Hidden files and directories (``.#x.yml`` editor locks, often dangling symlinks;
    ``.git``) and anything that is not a regular file (a directory named ``x.yml``) are
    not project files.
    """
    if not directory.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or not name.endswith(suffixes) or not path.is_file():
                continue
            found.append(path)
    return sorted(found)


def _inside_files(
    root: Path, name: str, suffixes: tuple[str, ...], diags: list[Diagnostic]
) -> list[Path]:
    """The project files under ``root/name``; any that leads outside the project is an error.

    A symlink is followed only as far as the project goes: git stores symlinks, so a
    pull request can add ``seeknal/x.yml -> ~/.aws/credentials``, and compile must not
    read it (nor show a line of it in an error).
    """
    directory = root / name
    if directory.exists() and inside(directory.resolve(), root) is None:
        diags.append(
            Diagnostic(
                "the directory is a symlink that leads outside the project",
                SourceLocation(name + "/"),
                hint="keep the project's files inside the project directory",
            )
        )
        return []
    found = []
    for path in project_files(directory, suffixes):
        # os.walk does not enter symlinked directories and the directory itself resolves
        # inside the project: only a file that is itself a symlink can lead out (and
        # resolving every path cost more than the rest of a warm load).
        if path.is_symlink() and inside(path.resolve(), root) is None:
            diags.append(
                Diagnostic(
                    "the file is a symlink that leads outside the project",
                    SourceLocation(relpath(root, path)),
                    hint="keep the project's files inside the project directory",
                )
            )
            continue
        found.append(path)
    return found


def read_text(path: Path, rel: str, diags: list[Diagnostic]) -> str | None:
    """The file's text, or None with a diagnostic when it is not UTF-8 (or unreadable)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        diags.append(
            Diagnostic(
                f"cannot read the file: {exc.strerror or exc}",
                SourceLocation(rel),
                hint="check the file's permissions",
            )
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        diags.append(
            Diagnostic(
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                SourceLocation(rel, line, col),
                hint="save the file as UTF-8",
            )
        )
        return None


def _duplicate_id(spec: NodeSpec, first: NodeSpec) -> Diagnostic:
    if spec.id == first.id:
        return Diagnostic(
            f"duplicate node id '{spec.id}'",
            spec.at("name"),
            hint=f"'{spec.id}' is already defined at {first.at('name')}; rename one of them",
        )
    return Diagnostic(
        f"duplicate node id '{spec.id}' (DuckDB names are case-insensitive: it is the "
        f"same as '{first.id}' at {first.at('name')})",
        spec.at("name"),
        hint="rename one of them",
    )


def load_config_file(
    root: Path, diags: list[Diagnostic], *, untrusted: bool, cache: CompileCache | None = None
) -> ProjectConfig:
    """The project file's settings; its problems go to ``diags``.

    Its document comes from ``cache`` when the same text validated before (kept in a
    side file of its own: a compile the plan memo answers reads no other cache file).
    """
    path = root / PROJECT_FILE
    if path.is_file() and inside(path.resolve(), root) is None:
        raise ProjectError(
            Diagnostic(
                "the file is a symlink that leads outside the project",
                SourceLocation(PROJECT_FILE),
                hint="keep the project's files inside the project directory",
            )
        )
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
    text = read_text(path, PROJECT_FILE, diags)
    if text is None:
        return ProjectConfig(root=root, name=root.name)
    key = doc = None
    if cache is not None and cache.enabled:
        key = content_key(_PROJECT_FILE, text)
        doc = document_from_entry(PROJECT_FILE, text, cache.get_side(_PROJECT_FILE_SIDE, key))
    if doc is None:
        try:
            doc = parse_yaml(PROJECT_FILE, text)
        except YamlSyntaxError as exc:
            diags.append(exc.diagnostic)
            return ProjectConfig(root=root, name=root.name)
        if not isinstance(doc.data, dict):
            diags.append(Diagnostic("project file must be a mapping", doc.location()))
            return ProjectConfig(root=root, name=root.name)
        errors = schemas.iter_errors("project", doc.data)
        for err in errors:
            diags.append(schema_diagnostic(doc, err, "project"))
        if errors:
            return ProjectConfig(root=root, name=str(doc.data.get("name", root.name)))
        entry = document_entry(doc)
        if key is not None and cache is not None and entry is not None:
            cache.put_side(_PROJECT_FILE_SIDE, key, entry)
    data: dict[str, Any] = doc.data
    state = data.get("state") or {}
    if isinstance(state, str):  # `state: file` is short for `state: {backend: file}`
        state = {"backend": state}
    state_path = state.get("path", "target/state")
    # Compile reads the state: it must not be a way to read outside the project.
    for rel in (state_path, *(f"{state_path}/{name}" for name in STATE_FILES)):
        if inside((root / rel).resolve(), root) is None:
            through = _symlink_out(root, rel)
            diags.append(
                Diagnostic(
                    f"the state {'directory' if rel == state_path else 'file'} '{rel}' "
                    + ("goes through a symlink that leads" if through else "points")
                    + " outside the project",
                    SourceLocation(through) if through else doc.location(("state", "path")),
                    hint="keep the file state inside the project, e.g. target/state",
                )
            )
            break
    return ProjectConfig(
        root=root,
        name=data["name"],
        dialect=data.get("dialect", "duckdb"),
        vars=dict(data.get("vars") or {}),
        warehouse=data.get("warehouse", "target/warehouse.duckdb"),
        state_backend=state.get("backend", "file"),
        state_path=state_path,
        environment_ttl_seconds=ttl_seconds(data.get("environment_ttl", "7d")),
        connection=data.get("connection", "default"),
        embed_env_vars=() if untrusted else tuple(data.get("embed_env_vars") or ()),
        allow_external_data=() if untrusted else _external_data(root, doc, data, diags),
        untrusted=untrusted,
    )


_TTL_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def ttl_seconds(text: str) -> int | None:
    """``7d`` -> 604800; ``never`` -> None (the schema has checked the form).

    Example:
        >>> ttl_seconds("12h"), ttl_seconds("never")
        (43200, None)
    """
    if text == "never":
        return None
    return int(text[:-1]) * _TTL_UNITS[text[-1]]


def _external_data(
    root: Path, doc: YamlDocument, data: dict[str, Any], diags: list[Diagnostic]
) -> tuple[str, ...]:
    """``allow_external_data`` as written; each entry must be a directory."""
    entries = tuple(data.get("allow_external_data") or ())
    for index, entry in enumerate(entries):
        if not (root / entry).is_dir():
            diags.append(
                Diagnostic(
                    f"allow_external_data: '{entry}' is not a directory",
                    doc.location(("allow_external_data", index)),
                    hint="list directories (relative to the project, or absolute) "
                    "that data files may be read from",
                )
            )
    return entries


def _symlink_out(root: Path, rel: str) -> str | None:
    """The first symlink on the way to ``rel`` (inside ``root`` as written) that leads out."""
    lexical = Path(os.path.normpath(root / rel))
    if inside(lexical, root) is None:
        return None
    step = root
    for part in lexical.relative_to(root).parts:
        step = step / part
        if step.is_symlink() and inside(step.resolve(), root) is None:
            return relpath(root, step)
    return None


def _load_node(
    rel: str,
    text: str,
    diags: list[Diagnostic],
    loaded: LoadedProject,
    cache: CompileCache | None,
) -> NodeSpec | None:
    root, files = loaded.config.root, loaded.files
    key = None
    doc = None
    if cache is not None and cache.enabled:
        key = content_key(_NODE_FILE, rel, text)
        doc = document_from_entry(rel, text, cache.get(_NODE_FILE, key))
    if doc is None:
        doc = _parse_node_file(rel, text, diags, loaded.unloaded)
        if doc is None:
            return None
        if key is not None and cache is not None:
            entry = document_entry(doc)
            if entry is not None:
                cache.put(_NODE_FILE, key, entry)
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
        spec_args["materialized"] = Materialized(data.get("materialized", "table"))
        spec_args["options"] = tuple(sorted((data.get("options") or {}).items()))
        if fmt is not SourceFormat.TABLE:
            # A missing file is reported; the node stays so its dependents do not cascade.
            data_path = _data_file(loaded, rel, data["table"], doc, ("table",), diags)
            if data_path is not None:
                spec_args["data_path"] = data_path
                files[data_path] = root / data_path
        elif not all(is_identifier(part) for part in data["table"].split(".", 2)):
            # Reported; the node stays so its dependents do not cascade.
            diags.append(
                Diagnostic(
                    f"table {data['table']!r} is not a table name",
                    doc.location(("table",)),
                    hint=f"name a table of the warehouse: `name`, `schema.name` or "
                    f"`catalog.schema.name`, each part {IDENTIFIER_HINT}",
                )
            )
        elif not columns:
            diags.append(
                Diagnostic(
                    "a `source: table` needs `columns:`",
                    doc.location(("table",)),
                    hint="declare its columns and types, e.g. columns: {id: integer}; "
                    "seeknal compiles offline and cannot look into the warehouse",
                )
            )
            loaded.unloaded.add(f"{kind.value}.{data['name']}")
            return None
    elif kind is Kind.SEED:
        data_path = _data_file(loaded, rel, data["path"], doc, ("path",), diags)
        if data_path is not None:
            spec_args["data_path"] = data_path
            files[data_path] = root / data_path
    else:
        if kind is Kind.RULE:
            # A rule is a view of the rows that violate it: cheap to build, and after a
            # promoted run `seeknal show rule.x` lists the violations it currently sees.
            spec_args["materialized"] = Materialized.VIEW
            spec_args["severity"] = Severity(data.get("severity", "error"))
        else:
            spec_args["materialized"] = Materialized(data.get("materialized", "table"))
            # None when the block has errors: they are reported, and the node is kept
            # (but not compiled) so that its dependents do not report it as unknown.
            spec_args["incremental"] = incremental_config(doc, data, diags)
            spec_args["forward_only"] = bool(
                data.get("forward_only", False)
                or (data.get("incremental") or {}).get("forward_only", False)
            )
        inline = "rule" if kind is Kind.RULE else "transform"
        if inline in data:
            mark = doc.value_mark((inline,))
            assert mark is not None  # every value of a parsed document has a mark
            spec_args["sql"] = _inline_sql(doc, data[inline], mark.line, mark.col, mark.style)
        else:
            sql_rel = _project_file(root, rel, data["sql"], doc, ("sql",), diags, beside=True)
            sql_text = None if sql_rel is None else read_text(root / sql_rel, sql_rel, diags)
            if sql_rel is not None and sql_text is not None:
                files[sql_rel] = root / sql_rel
                spec_args["sql"] = SqlText(sql_text, sql_rel)
    return NodeSpec(**spec_args)


_NODE_FILE = "node-file"
_PROJECT_FILE = "project-file"
_PROJECT_FILE_SIDE = "project-file.json"


def _parse_node_file(
    rel: str, text: str, diags: list[Diagnostic], unloaded: set[str]
) -> YamlDocument | None:
    """A node file's document, when it is YAML and valid against the node schema; the id
    of one that is not, if its `kind` and `name` can be read, goes to ``unloaded``."""
    try:
        doc = parse_yaml(rel, text)
    except YamlSyntaxError as exc:
        diags.append(exc.diagnostic)
        unloaded.update(_meant_ids(rel, None))
        return None
    if not isinstance(doc.data, dict):
        diags.append(
            Diagnostic(
                "a node file must be a mapping with `kind` and `name`",
                doc.location(),
                hint="start the file with `kind: transform` and `name: my_node`",
            )
        )
        unloaded.update(_meant_ids(rel, None))
        return None
    normalize_yaml_times(doc.data)
    errors = schemas.iter_errors("node", doc.data)
    if errors:
        # One useful error per file beats a cascade of consequences.
        diags.append(schema_diagnostic(doc, most_useful(errors), "node"))
        unloaded.update(_meant_ids(rel, doc.data))
        return None
    return doc


def _meant_ids(rel: str, data: dict[str, Any] | None) -> set[str]:
    """The ids a node file reported invalid may define: its `kind` (any kind when that
    cannot be read) with its `name` (the file's own name when that cannot be read)."""
    data = data or {}
    kind, name = data.get("kind"), data.get("name")
    kinds = [kind] if kind in NODE_KINDS else sorted(NODE_KINDS)
    if not isinstance(name, str):
        name = PurePosixPath(rel).stem
    return {f"{k}.{name}" for k in kinds}


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


def _data_file(
    loaded: LoadedProject,
    rel: str,
    value: str,
    doc: YamlDocument,
    path: tuple[str, ...],
    diags: list[Diagnostic],
) -> str | None:
    """A data file (`table:`, `path:`): in the project or an allowed external directory."""
    config = loaded.config
    return _project_file(
        config.root,
        rel,
        value,
        doc,
        path,
        diags,
        external=loaded.external,
        untrusted=config.untrusted,
    )


def _project_file(
    root: Path,
    rel: str,
    value: str,
    doc: YamlDocument,
    path: tuple[str, ...],
    diags: list[Diagnostic],
    *,
    beside: bool = False,
    external: tuple[Path, ...] = (),
    untrusted: bool = False,
) -> str | None:
    """Resolve a path named in a node file; it must exist and stay inside the project.

    Returns the path to record in the plan: relative to the project (symlinks inside
    it resolved), or, for a data file in an ``allow_external_data`` directory, as
    written (relative to the project, or absolute if the user wrote it so), never an
    absolute path the user did not write.
    """
    base = (root / rel).parent if beside else root
    written = base / value
    target = written.resolve()
    recorded = inside(target, root)
    if recorded is None and any(inside(target, d) is not None for d in external):
        recorded = Path(value).as_posix()
    if recorded is None:
        diags.append(_outside(value, written, root, doc.location(path), beside, untrusted))
        return None
    if not target.is_file():
        # Suggest paths spelled as `value` is: relative to the YAML file for `sql:`.
        candidates = (
            [_relative(p, base) for p in target.parent.glob("*") if p.is_file()]
            if target.parent.is_dir()
            else []
        )
        hint = did_you_mean(_relative(target, base), candidates)
        if hint is None:
            where = "this YAML file" if beside else "the project directory"
            hint = f"paths are relative to {where}"
        diags.append(Diagnostic(f"file not found: '{value}'", doc.location(path), hint=hint))
        return None
    return recorded


def _outside(
    value: str, written: Path, root: Path, where: SourceLocation, sql: bool, untrusted: bool
) -> Diagnostic:
    """A path that leads outside the project; never says where it leads (or if it exists)."""
    lexical = Path(os.path.normpath(written))
    how = (
        "goes through a symlink that leads outside the project"
        if inside(lexical, root) is not None
        else "points outside the project"
    )
    if sql:
        hint = "keep SQL files inside the project directory"
    else:
        hint = (
            "keep data files inside the project, or list their directory under "
            "`allow_external_data:` in seeknal_project.yml"
        )
        if untrusted:
            hint += " (which `seeknal compile --untrusted` ignores)"
    return Diagnostic(f"path '{value}' {how}", where, hint=hint)


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()
