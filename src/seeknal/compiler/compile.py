"""compile_project: run every pass over a project and return the plan.

Pure: reads project files and state, writes nothing (``write_plan`` is separate), never
opens the warehouse. Collects every error it can before failing, so one compile shows
them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seeknal.canonical import file_sha256, hash_value
from seeknal.compiler.catalog import BindError, ScratchCatalog
from seeknal.compiler.categorize import ForwardOnlyError, NodeChange, categorize_node, plan_work
from seeknal.compiler.emit import build_plan
from seeknal.compiler.fingerprint import (
    data_fingerprint,
    data_version,
    definition_hash,
    files_version,
    metadata_fingerprint,
)
from seeknal.compiler.graph import find_cycle, order_nodes
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.interval_work import Window
from seeknal.compiler.load import LoadedProject, load_project
from seeknal.compiler.model import (
    SQL_KINDS,
    ColumnInfo,
    CompiledNode,
    Kind,
    Materialized,
    NodeSpec,
    ProjectConfig,
)
from seeknal.compiler.render import RenderError, make_renderer
from seeknal.compiler.sources import SourceError, load_sql, source_columns
from seeknal.compiler.sql import (
    ParsedSql,
    SchemaMapping,
    SqlError,
    parse_sql,
)
from seeknal.compiler.transform import compile_sql_node
from seeknal.errors import CompileFailed, Diagnostic, SeeknalError, excerpt_of_file
from seeknal.naming import PROD, check_environment
from seeknal.state import State, open_state


@dataclass(frozen=True, slots=True)
class CompileResult:
    """The plan (a canonical dict, already schema-valid) and any warnings."""

    plan: dict[str, Any]
    config: ProjectConfig
    warnings: list[Diagnostic] = field(default_factory=list)


def read_state(config: ProjectConfig) -> State:
    """The project's state, read-only."""
    return open_state(config.state_backend, str(config.root / config.state_path)).read()


def load_config(root: Path) -> ProjectConfig:
    """Only ``seeknal_project.yml`` (for commands that need the warehouse or state path)."""
    loaded = load_project(root)
    errors = [
        d
        for d in loaded.diagnostics
        if d.severity == "error" and d.location and d.location.path == "seeknal_project.yml"
    ]
    if errors:
        raise CompileFailed(_with_excerpts(loaded.config.root, errors))
    return loaded.config


def compile_project(
    root: Path,
    *,
    environment: str = "prod",
    state: State | None = None,
    forward_only: bool = False,
    window: Window | None = None,
    base: str = PROD,
    untrusted: bool = False,
) -> CompileResult:
    """Compile the project at ``root`` against ``environment``'s state.

    A new environment is compared with its ``base`` environment's record (prod by
    default): it starts from there, reusing every table the base has for an unchanged
    node. ``forward_only`` makes every changed table forward-only (``--forward-only``).
    ``window`` limits and restates incremental work (``--start``, ``--end``,
    ``--restate``); without an end, incremental nodes are planned up to the last
    interval complete now, so only a plan compiled with an end is the same every day.

    With ``untrusted`` (a pull request from someone the team does not know), the project
    file's escape hatches are ignored: ``env_var()`` reads no environment variable and
    no data file outside the project is read, whatever ``embed_env_vars`` and
    ``allow_external_data`` say.

    Raises:
        CompileFailed: with every error found.

    Example:
        >>> result = compile_project(Path("shop"))  # doctest: +SKIP
        >>> sorted(result.plan["nodes"])[:1]  # doctest: +SKIP
        ['seed.country_codes']
    """
    check_environment(environment)  # before anything is read: a name the views can carry
    loaded = load_project(root, untrusted=untrusted)
    diags = loaded.diagnostics
    config = loaded.config
    specs = {spec.id: spec for spec in loaded.nodes}

    _check_input_refs(specs, diags)
    parsed = _parse_transforms(loaded, specs, diags)
    edges = {node_id: list(parsed[node_id].refs) if node_id in parsed else [] for node_id in specs}
    cycle = find_cycle(edges)
    if cycle is not None:
        first = specs[cycle[0]]
        diags.append(
            Diagnostic(
                f"dependency cycle: {' -> '.join(cycle)}",
                first.at("transform" if "transform" in first.doc.data else "sql", key=True),
                hint="a node cannot read itself, directly or through other nodes; break the cycle",
            )
        )
    _raise_on_errors(config.root, diags)
    _check_restate(window, specs)

    order = order_nodes(edges)
    if state is None:
        state = read_state(config)
    base_environment = None
    record = state.environment(environment)
    if record is None and environment != base:
        # A new environment starts from its base: every snapshot it can reuse, it does.
        base_environment = check_environment(base)
        record = state.environment(base)
        if record is None and base != PROD:
            raise CompileFailed(
                [
                    Diagnostic(
                        f"base environment '{base}' does not exist",
                        hint="apply it first, or start from prod (the default)",
                    )
                ]
            )
    previous = (record or {}).get("nodes", {})
    # Every file is read and hashed once per compile; data files can be large.
    file_hashes: dict[str, str] = {}
    context = _Context(loaded, specs, parsed, previous, environment, forward_only, file_hashes)
    compiled, changes = _compile_nodes(context, order, diags)
    _raise_on_errors(config.root, diags)

    ordered = [compiled[node_id] for node_id in order]
    removed = {node_id: rec for node_id, rec in previous.items() if node_id not in compiled}
    plan = build_plan(
        config,
        environment,
        state.environment_hash(environment),
        _source_hash(loaded.files, file_hashes),
        [(node, changes[node.id]) for node in ordered],
        removed,
        plan_work(ordered, changes, state, window),
        base_environment,
    )
    warnings = [d for d in diags if d.severity == "warning"]
    return CompileResult(plan=plan, config=config, warnings=_with_excerpts(config.root, warnings))


def _check_restate(window: Window | None, specs: Mapping[str, NodeSpec]) -> None:
    """Every node ``--restate`` names exists."""
    for node_id in window.restate if window else ():
        if node_id not in specs:
            raise SeeknalError(
                f"--restate: unknown node '{node_id}'",
                hint=did_you_mean(node_id, specs) or "name a node as kind.name, e.g. transform.x",
            )


def _parse_transforms(
    loaded: LoadedProject, specs: Mapping[str, NodeSpec], diags: list[Diagnostic]
) -> dict[str, ParsedSql]:
    try:
        renderer = make_renderer(loaded.config.vars, loaded.macros, loaded.config.embed_env_vars)
    except RenderError as exc:
        # Nodes that call a broken macro would only repeat its error.
        diags.extend(exc.diagnostics)
        return {}
    parsed: dict[str, ParsedSql] = {}
    for spec in specs.values():
        if spec.kind not in SQL_KINDS or spec.sql is None:
            continue
        incremental = spec.materialized is Materialized.INCREMENTAL_BY_TIME
        if incremental and spec.incremental is None:
            continue  # its `incremental:` block has errors, already reported
        try:
            rendered = renderer.render(spec.sql, time_parameters=incremental)
            result = parse_sql(
                rendered, spec.sql, loaded.config.dialect, specs, kind=spec.kind.value
            )
        except RenderError as exc:
            diags.append(exc.diagnostic)
            continue
        except SqlError as exc:
            diags.extend(exc.diagnostics)
            continue
        if spec.id in result.refs:
            diags.append(
                Diagnostic(
                    f"dependency cycle: {spec.id} -> {spec.id}",
                    spec.sql.find(spec.name),
                    hint="a node cannot read its own output",
                )
            )
            continue
        rules_read = [ref for ref in result.refs if specs[ref].kind is Kind.RULE]
        for ref in rules_read:
            diags.append(
                Diagnostic(
                    f"'{ref}' is a rule; a rule cannot be read by other nodes",
                    spec.sql.find(ref if ref in spec.sql.text else ref.split(".", 1)[1]),
                    hint="read the node the rule checks instead",
                )
            )
        if rules_read:
            continue
        _check_inputs(spec, result, specs, diags)
        parsed[spec.id] = result
    return parsed


def _check_input_refs(specs: Mapping[str, NodeSpec], diags: list[Diagnostic]) -> None:
    """Every `inputs:` entry names a node of the project."""
    for spec in specs.values():
        for index, ref in enumerate(spec.inputs or ()):
            if ref in specs:
                continue
            diags.append(
                Diagnostic(
                    f"unknown ref '{ref}'",
                    spec.at("inputs", index, "ref"),
                    hint=did_you_mean(ref, specs)
                    or "no node has this id; node ids are `kind.name` from the files under seeknal/",
                )
            )


def _check_inputs(
    spec: NodeSpec, parsed: ParsedSql, specs: Mapping[str, NodeSpec], diags: list[Diagnostic]
) -> None:
    if spec.inputs is None:
        return
    assert spec.sql is not None
    if any(ref not in specs for ref in spec.inputs):
        return  # a misspelled input is reported; what the SQL reads would only repeat it
    listed = set(spec.inputs)
    for ref in parsed.refs:
        if ref not in listed:
            diags.append(
                Diagnostic(
                    f"the SQL reads '{ref}' but `inputs` does not list it",
                    spec.sql.find(ref if ref in spec.sql.text else ref.split(".", 1)[1]),
                    hint=f"add `- ref: {ref}` under inputs (at {spec.at('inputs')}), or remove `inputs` to derive it from the SQL",
                )
            )
    for index, ref in enumerate(spec.inputs):
        if ref not in parsed.refs:
            diags.append(
                Diagnostic(
                    f"input '{ref}' is listed but the SQL does not read it",
                    spec.at("inputs", index, "ref"),
                    hint="remove it from `inputs`, or use it in the SQL",
                    severity="warning",
                )
            )


@dataclass(frozen=True, slots=True)
class _Context:
    """What every node's compilation reads."""

    loaded: LoadedProject
    specs: Mapping[str, NodeSpec]
    parsed: Mapping[str, ParsedSql]
    previous: Mapping[str, Any]
    environment: str
    forward_only: bool
    file_hashes: dict[str, str]


def _compile_nodes(
    ctx: _Context, order: list[str], diags: list[Diagnostic]
) -> tuple[dict[str, CompiledNode], dict[str, NodeChange]]:
    """Compile, categorize and name every node, in dependency order.

    Categorizing is part of the same walk: whether a node keeps its table decides the
    table its descendants read, and so their engine SQL.
    """
    config = ctx.loaded.config
    dialect = config.dialect
    schema: SchemaMapping = {}
    compiled: dict[str, CompiledNode] = {}
    changes: dict[str, NodeChange] = {}
    catalog = ScratchCatalog(
        (config.root / spec.data_path).resolve() for spec in ctx.specs.values() if spec.data_path
    )
    try:
        for node_id in order:
            spec = ctx.specs[node_id]
            try:
                if spec.kind in SQL_KINDS:
                    result = ctx.parsed[node_id]
                    if any(ref not in compiled for ref in result.refs):
                        continue  # an upstream node failed; its error is already reported
                    draft = compile_sql_node(
                        spec, result, schema, compiled, dialect, catalog, diags
                    )
                else:
                    draft = _compile_source(spec, config, catalog, ctx.file_hashes)
                change, snapshot = categorize_node(
                    draft,
                    ctx.previous.get(node_id),
                    changes,
                    dialect=dialect,
                    environment=ctx.environment,
                    forward_only=ctx.forward_only,
                )
                incremental = spec.materialized is Materialized.INCREMENTAL_BY_TIME
                node = replace(
                    draft,
                    snapshot=snapshot,
                    data_version=data_version(
                        snapshot,
                        # A view reads live: only its name (hence its SQL) versions it.
                        # An incremental table is current when its intervals are: new
                        # data files upstream do not rebuild it, missing intervals do.
                        None
                        if (spec.materialized is Materialized.VIEW and spec.kind is not Kind.RULE)
                        or incremental
                        else draft.files_version,
                    ),
                    # Nor does a new data file above it change what its readers read.
                    files_version=None if incremental else draft.files_version,
                )
                _declare(node, catalog)
            except (SqlError, SourceError) as exc:
                diags.extend(exc.diagnostics)
                continue
            except ForwardOnlyError as exc:
                diags.append(exc.diagnostic)
                continue
            compiled[node_id] = node
            changes[node_id] = change
            schema.setdefault(spec.kind.value, {})[spec.name] = {
                c.name: c.type or "UNKNOWN" for c in node.columns
            }
    finally:
        catalog.close()
    return compiled, changes


def _declare(node: CompiledNode, catalog: ScratchCatalog) -> None:
    """An empty table under the node's snapshot name, for its descendants to bind against."""
    spec = node.spec
    try:
        catalog.declare(node.snapshot, [(c.name, c.type or "VARCHAR") for c in node.columns])
    except BindError as exc:  # a column type the engine reports but cannot declare
        if spec.sql is None:
            raise SourceError(
                Diagnostic(f"invalid columns: {exc.message}", spec.at("columns"))
            ) from None
        raise SqlError(
            [Diagnostic(f"cannot declare the output columns: {exc.message}", spec.sql.locate(1, 1))]
        ) from None


def _compile_source(
    spec: NodeSpec,
    config: ProjectConfig,
    catalog: ScratchCatalog,
    file_hashes: dict[str, str],
) -> CompiledNode:
    columns = source_columns(spec, config.root, catalog)
    sql = load_sql(spec, columns, config.dialect)
    file_sha = None
    if spec.data_path is not None:
        file_sha = _file_hash(spec.data_path, config.root / spec.data_path, file_hashes)
    definition: dict[str, Any] = {
        "kind": spec.kind.value,
        "materialized": spec.materialized.value,
        "dialect": config.dialect,
        "sql": sql,
    }
    if spec.kind is Kind.SEED:
        # A seed's rows are part of the project: new content, new snapshot.
        definition["content"] = file_sha
    descriptions = {c.name: c.description for c in spec.columns if c.description}
    return CompiledNode(
        spec=spec,
        depends_on=(),
        raw_sql=None,
        normalized_sql=sql,
        engine_sql=sql if config.dialect == "duckdb" else load_sql(spec, columns, "duckdb"),
        columns=tuple(ColumnInfo(c.name, c.type, (), c.description) for c in columns),
        definition=definition_hash(definition),
        data_fingerprint=data_fingerprint(definition, {}),
        metadata_fingerprint=metadata_fingerprint(
            spec.description, spec.owner, spec.tags, descriptions
        ),
        files_version=files_version(file_sha, {}),
        data_file=(spec.data_path, file_sha) if spec.data_path and file_sha else None,
    )


def _file_hash(rel: str, path: Path, cache: dict[str, str]) -> str:
    if rel not in cache:
        cache[rel] = file_sha256(path)
    return cache[rel]


def _source_hash(files: Mapping[str, Path], cache: dict[str, str]) -> str:
    return hash_value({rel: _file_hash(rel, path, cache) for rel, path in sorted(files.items())})


def _with_excerpts(root: Path, diags: list[Diagnostic]) -> list[Diagnostic]:
    out = []
    for d in diags:
        if d.excerpt is None and d.location is not None and d.location.line is not None:
            d = Diagnostic(
                d.message, d.location, d.hint, d.severity, excerpt_of_file(root, d.location)
            )
        out.append(d)
    return out


def _raise_on_errors(root: Path, diags: list[Diagnostic]) -> None:
    if any(d.severity == "error" for d in diags):
        raise CompileFailed(_with_excerpts(root, _sorted(diags)))


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    def key(d: Diagnostic) -> tuple[str, int, int]:
        loc = d.location
        return (loc.path, loc.line or 0, loc.col or 0) if loc else ("", 0, 0)

    return sorted(diags, key=key)
