"""compile_project: run every pass over a project and return the plan.

Pure: reads project files and state, writes nothing (``write_plan`` is separate), never
opens the warehouse. Collects every error it can before failing, so one compile shows
them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seeknal import schemas
from seeknal.canonical import hash_value, sha256_hex, without_top_level_string
from seeknal.compiler.analysis import SourceLoad, SqlAnalysis, approximate_warning, sql_node
from seeknal.compiler.cache import CompileCache, FileHashes, content_key
from seeknal.compiler.fingerprint import (
    data_fingerprint,
    data_version,
    definition_hash,
    files_version,
    metadata_fingerprint,
)
from seeknal.compiler.frontend import NodeSql, check_input_refs, parse_sql_nodes, parsed_sql
from seeknal.compiler.graph import find_cycle, order_nodes
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.load import LoadedProject, load_config_file, load_project
from seeknal.compiler.memo import (
    RememberedBody,
    keepable,
    listing,
    memo_inputs,
    memo_key,
    paths_as_written,
    plan_without_work_key,
    recall,
    recall_without_work,
    records_digest,
    remember,
    remember_without_work,
)
from seeknal.compiler.model import (
    SQL_KINDS,
    ColumnInfo,
    CompiledNode,
    Kind,
    Materialized,
    NodeSpec,
    ProjectConfig,
)
from seeknal.errors import CompileFailed, Diagnostic, SeeknalError, excerpt_of_file
from seeknal.naming import PROD, check_environment
from seeknal.state import State, open_state

if TYPE_CHECKING:
    from seeknal.compiler.catalog import ScratchCatalog
    from seeknal.compiler.categorize import NodeChange, Tables
    from seeknal.compiler.interval_work import Window, WorkNode


@dataclass(slots=True)
class CompileResult:
    """The plan, schema-valid, as its canonical text and as a dict; and any warnings.

    A plan the memo answers is known as text only (it is never serialized again);
    ``plan`` parses it on first use. ``parsed`` says whether that happened, so that a
    caller which only passes the plan on (``seeknal run`` to the runtime) can hand over
    the text alone, to be parsed once, there.
    """

    config: ProjectConfig
    # canonical_json(plan), computed once (write_plan(plan, path, text=result.text)).
    text: str
    warnings: list[Diagnostic] = field(default_factory=list)
    _plan: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def plan(self) -> dict[str, Any]:
        if self._plan is None:
            self._plan = json.loads(self.text)
        return self._plan

    @property
    def parsed(self) -> dict[str, Any] | None:
        """The plan, if it is at hand as a dict already."""
        return self._plan


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
    use_cache: bool = True,
    executes: bool = False,
    settings: tuple[ProjectConfig, list[Diagnostic]] | None = None,
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

    The compile cache (``cache.py``) keeps what compiling each node worked out, outside
    the project; ``use_cache=False`` (``--no-cache``) neither reads nor writes it. The
    plan is the same either way, byte for byte. ``executes`` says the plan runs next
    (``seeknal run``): a plan with work will change the state it was compiled against,
    so it is not kept as a plan memo, which no later compile could use. ``settings`` is
    what :func:`project_settings` returned for this project and ``untrusted``, when the
    caller has read them already.

    Raises:
        CompileFailed: with every error found.

    Example:
        >>> result = compile_project(Path("shop"))  # doctest: +SKIP
        >>> sorted(result.plan["nodes"])[:1]  # doctest: +SKIP
        ['seed.country_codes']
    """
    check_environment(environment)  # before anything is read: a name the views can carry
    cache = CompileCache.open(root, enabled=use_cache)
    hashes = FileHashes(cache)
    options = {
        "root": str(root.resolve()),
        "environment": environment,
        "base": base,
        "forward_only": forward_only,
        "window": None if window is None else dataclasses.asdict(window),
        "untrusted": untrusted,
    }
    complete = False
    found: list[str] | None = None
    try:
        if cache.enabled:
            if settings is None:
                settings = _project_settings(root, untrusted, cache)
            config, config_diags = settings
            if not any(d.severity == "error" for d in config_diags):  # else: reported below
                if state is None:
                    state = read_state(config)
                # Taken once, before loading: a file added while this compile runs
                # must not be taken as one a kept plan has read.
                found = listing(config.root)
                remembered = recall(cache, memo_key(options), config.root, state, found)
                if remembered is not None:
                    # The memo keeps only plans build_plan validated, under this code's
                    # fingerprint; its text's digest was checked on reading.
                    split = without_top_level_string(remembered.text, "plan_id", from_end=True)
                    if split is not None:
                        schemas.remember_valid("plan", split[0])
                    # Only file hashes may have been added: every other entry stays.
                    return CompileResult(config, remembered.text, remembered.warnings)
                # Only the state moved (a new day, a run elsewhere), and not the
                # environment's record: the plan is the same but for its work.
                body = recall_without_work(
                    cache,
                    plan_without_work_key(options),
                    config.root,
                    state,
                    environment,
                    base,
                    found,
                )
                reworked = (
                    None if body is None else _with_new_work(body, state, environment, window)
                )
                if body is not None and reworked is not None:
                    return CompileResult(config, reworked, body.plan.warnings)
        loaded = load_project(root, untrusted=untrusted, cache=cache, settings=settings)
        diags = loaded.diagnostics
        specs = {spec.id: spec for spec in loaded.nodes}
        result, nodes, asked, compiled_against = _compile(
            loaded, cache, hashes, environment, state, forward_only, window, base, specs, diags
        )
        complete = True
        inputs = (
            memo_inputs(
                cache,
                loaded.config.root,
                loaded.files,
                hashes,
                loaded.config.embed_env_vars,
                found,
            )
            if paths_as_written(specs.values())
            else None
        )
        if inputs is not None:
            if keepable(window, specs.values()) and not (executes and result.plan["work"]):
                remember(
                    cache,
                    memo_key(options),
                    inputs,
                    compiled_against,
                    result.text,
                    result.warnings,
                )
            remember_without_work(
                cache,
                plan_without_work_key(options),
                inputs,
                records_digest(compiled_against, environment, base, asked),
                asked,
                result.text,
                result.warnings,
                [node.to_json() for node in nodes],
            )
        return result
    finally:
        cache.save(complete=complete)


def project_settings(
    root: Path, *, untrusted: bool = False, use_cache: bool = True
) -> tuple[ProjectConfig, list[Diagnostic]]:
    """The project file's settings alone, and what is wrong with it; hand both to
    :func:`compile_project` (``settings=``), which reports the errors.

    Raises:
        ProjectError: ``root`` holds no project file.
    """
    return _project_settings(root, untrusted, CompileCache.open(root, enabled=use_cache))


def _project_settings(
    root: Path, untrusted: bool, cache: CompileCache
) -> tuple[ProjectConfig, list[Diagnostic]]:
    """The project file's settings alone, and what is wrong with it (the full compile
    reports that, from the same reading)."""
    diags: list[Diagnostic] = []
    config = load_config_file(root.resolve(), diags, untrusted=untrusted, cache=cache)
    return config, diags


def _compile(
    loaded: LoadedProject,
    cache: CompileCache,
    hashes: FileHashes,
    environment: str,
    state: State | None,
    forward_only: bool,
    window: Window | None,
    base: str,
    specs: dict[str, NodeSpec],
    diags: list[Diagnostic],
) -> tuple[CompileResult, list[WorkNode], dict[str, list[Any] | None], State]:
    """The plan, the nodes its work list is made from, what the compile asked of state
    about snapshots' tables (:class:`~seeknal.compiler.categorize.Tables`), and the
    state it compiled against (read here when not given)."""
    from seeknal.compiler.categorize import Tables, plan_work, work_nodes
    from seeknal.compiler.emit import build_plan

    config = loaded.config
    check_input_refs(specs, diags)
    sql_nodes = parse_sql_nodes(loaded, specs, diags, cache)
    edges = {
        node_id: list(sql_nodes[node_id].refs) if node_id in sql_nodes else [] for node_id in specs
    }
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
    _raise_on_errors(config.root, diags, loaded.unloaded)
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
    _seed_text_hashes(loaded, hashes)
    tables = Tables(state.snapshots)
    context = _Context(
        loaded, specs, sql_nodes, previous, environment, forward_only, hashes, cache, tables
    )
    compiled, changes = _compile_nodes(context, order, diags)
    _raise_on_errors(config.root, diags, loaded.unloaded)

    ordered = [compiled[node_id] for node_id in order]
    removed = {node_id: rec for node_id, rec in previous.items() if node_id not in compiled}
    nodes = work_nodes(ordered, changes)
    plan, text = build_plan(
        config,
        environment,
        state.environment_hash(environment),
        hash_value({rel: hashes.of(rel, path) for rel, path in sorted(loaded.files.items())}),
        [(node, changes[node.id]) for node in ordered],
        removed,
        plan_work(nodes, state, window),
        base_environment,
    )
    warnings = [d for d in diags if d.severity == "warning"]
    result = CompileResult(config, text, _with_excerpts(config.root, warnings), plan)
    return result, nodes, tables.asked, state


def _with_new_work(
    body: RememberedBody, state: State, environment: str, window: Window | None
) -> str | None:
    """The remembered plan's text with the work list and state hash of ``state``: what
    a full compile gives when only the state moved (the same function plans the work,
    from the same nodes), byte for byte. None when the window names a node the plan
    lacks (the full compile says so)."""
    from seeknal.compiler.categorize import plan_work
    from seeknal.compiler.emit import with_new_work, work_entry
    from seeknal.compiler.interval_work import WorkNode

    try:
        nodes = [WorkNode.from_json(node) for node in body.nodes]
    except (KeyError, TypeError, ValueError):  # an IntervalError is a ValueError
        return None  # damaged
    if window is not None and not set(window.restate) <= {node.id for node in nodes}:
        return None
    try:
        work = [work_entry(item) for item in plan_work(nodes, state, window)]
        return with_new_work(body.plan.text, state.environment_hash(environment), work)
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError):
        return None  # a damaged entry: the full compile decides


def _check_restate(window: Window | None, specs: Mapping[str, NodeSpec]) -> None:
    """Every node ``--restate`` names exists."""
    for node_id in window.restate if window else ():
        if node_id not in specs:
            raise SeeknalError(
                f"--restate: unknown node '{node_id}'",
                hint=did_you_mean(node_id, specs) or "name a node as kind.name, e.g. transform.x",
            )


@dataclass(frozen=True, slots=True)
class _Context:
    """What every node's compilation reads."""

    loaded: LoadedProject
    specs: Mapping[str, NodeSpec]
    sql_nodes: Mapping[str, NodeSql]
    previous: Mapping[str, Any]
    environment: str
    forward_only: bool
    hashes: FileHashes
    cache: CompileCache
    tables: Tables


def _compile_nodes(
    ctx: _Context, order: list[str], diags: list[Diagnostic]
) -> tuple[dict[str, CompiledNode], dict[str, NodeChange]]:
    """Compile, categorize and name every node, in dependency order.

    Categorizing is part of the same walk: whether a node keeps its table decides the
    table its descendants' engine SQL reads.
    """
    from seeknal.compiler.categorize import ForwardOnlyError, categorize_node

    config = ctx.loaded.config
    dialect = config.dialect
    compiled: dict[str, CompiledNode] = {}
    changes: dict[str, NodeChange] = {}
    catalog = _LazyCatalog(
        (config.root / spec.data_path).resolve() for spec in ctx.specs.values() if spec.data_path
    )
    try:
        for node_id in order:
            spec = ctx.specs[node_id]
            try:
                if spec.kind in SQL_KINDS:
                    node_sql = ctx.sql_nodes[node_id]
                    if any(ref not in compiled for ref in node_sql.refs):
                        continue  # an upstream node failed; its error is already reported
                    draft, fresh = _compile_sql(ctx, spec, node_sql, compiled, catalog, diags)
                else:
                    draft, fresh = _compile_source(ctx, spec, catalog)
                change, snapshot = categorize_node(
                    draft,
                    ctx.previous.get(node_id),
                    changes,
                    dialect=dialect,
                    environment=ctx.environment,
                    tables=ctx.tables,
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
                if fresh is not None:
                    # Declared now, so an error in declaring it is this node's; a node
                    # taken from the cache declared fine before, and is declared only
                    # when a node reading it has to be analyzed.
                    catalog.declare(node)
                    kind, key, value = fresh
                    if key is not None:
                        ctx.cache.put(kind, key, value)
            except _NodeFailed as exc:
                diags.extend(exc.diagnostics)
                continue
            except ForwardOnlyError as exc:
                diags.append(exc.diagnostic)
                continue
            except RecursionError:  # parsed, but too deep for a later pass
                if spec.sql is None:
                    raise
                from seeknal.compiler.sql_errors import too_deep  # imports sqlglot

                diags.append(too_deep(spec.sql))
                continue
            compiled[node_id] = node
            changes[node_id] = change
    finally:
        catalog.close()
    return compiled, changes


class _NodeFailed(Exception):
    """The node has errors (already worded); its dependents are skipped."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "node failed")
        self.diagnostics = diagnostics


# A node analyzed in this compile (not taken from the cache): what to put in the cache
# once it has been declared (kind, key or None when caching is off, value).
_Fresh = tuple[str, str | None, dict[str, Any]] | None


class _LazyCatalog:
    """The scratch catalog, opened (and DuckDB imported) when a node needs analyzing.

    A node analyzed in this compile is declared under its snapshot name right away; one
    taken from the cache only when a node reading it is analyzed.
    """

    def __init__(self, readable: Iterable[Path]) -> None:
        self._readable = list(readable)
        self._catalog: ScratchCatalog | None = None
        self._declared: set[str] = set()

    def open(self, inputs: Iterable[CompiledNode] = ()) -> ScratchCatalog:
        """The catalog, with the tables of ``inputs`` declared."""
        if self._catalog is None:
            from seeknal.compiler.catalog import ScratchCatalog

            self._catalog = ScratchCatalog(self._readable)
        for node in inputs:
            if node.snapshot not in self._declared:
                self.declare(node)
        return self._catalog

    def declare(self, node: CompiledNode) -> None:
        """An empty table under the node's snapshot name, for its readers to bind against."""
        from seeknal.compiler.catalog import BindError

        spec = node.spec
        try:
            self.open().declare(
                node.snapshot, [(c.name, c.type or "VARCHAR") for c in node.columns]
            )
        except BindError as exc:  # a column type the engine reports but cannot declare
            if spec.sql is None:
                raise _NodeFailed(
                    [Diagnostic(f"invalid columns: {exc.message}", spec.at("columns"))]
                ) from None
            raise _NodeFailed(
                [
                    Diagnostic(
                        f"cannot declare the output columns: {exc.message}",
                        spec.sql.locate(1, 1),
                    )
                ]
            ) from None
        self._declared.add(node.snapshot)

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()


_SQL = "sql"
_SOURCE = "source"
_SOURCE_SQL = "source_sql"


def _compile_sql(
    ctx: _Context,
    spec: NodeSpec,
    node_sql: NodeSql,
    compiled: Mapping[str, CompiledNode],
    catalog: _LazyCatalog,
    diags: list[Diagnostic],
) -> tuple[CompiledNode, _Fresh]:
    """A transform or rule, from its cached analysis when there is one."""
    dialect = ctx.loaded.config.dialect
    refs = node_sql.refs
    upstream = {ref: compiled[ref] for ref in refs}
    key = None
    if ctx.cache.enabled:
        key = content_key(
            _SQL,
            dialect,
            spec.kind.value,
            spec.materialized.value,
            node_sql.rendered,
            list(refs),
            {ref: [[c.name, c.type] for c in node.columns] for ref, node in upstream.items()},
            [[c.name, c.type] for c in spec.columns],
            None if spec.incremental is None else spec.incremental.definition(),
        )
        analysis = SqlAnalysis.from_entry(ctx.cache.get(_SQL, key), refs)
        if analysis is not None:
            if analysis.approximate is not None:
                diags.append(approximate_warning(spec, analysis.approximate))
            return sql_node(spec, refs, analysis, upstream, dialect), None

    from seeknal.compiler.sql import SqlError
    from seeknal.compiler.transform import analyze_sql_node

    try:
        parsed = parsed_sql(spec, node_sql, dialect, ctx.specs)
        analysis = analyze_sql_node(
            spec, parsed, upstream, dialect, catalog.open(upstream.values())
        )
    except SqlError as exc:
        raise _NodeFailed(exc.diagnostics) from None
    if analysis.approximate is not None:
        diags.append(approximate_warning(spec, analysis.approximate))
    return sql_node(spec, refs, analysis, upstream, dialect), (_SQL, key, analysis.to_entry())


def _compile_source(
    ctx: _Context, spec: NodeSpec, catalog: _LazyCatalog
) -> tuple[CompiledNode, _Fresh]:
    """A source or seed, from its cached analysis when there is one."""
    config = ctx.loaded.config
    file_sha = None
    if spec.data_path is not None:
        # When it cannot be read, reading the file's header below words the problem.
        with contextlib.suppress(OSError):
            file_sha = ctx.hashes.of(spec.data_path, config.root / spec.data_path)
    key = None
    load = None
    if ctx.cache.enabled and (spec.data_path is None or file_sha is not None):
        key = content_key(
            _SOURCE,
            config.dialect,
            spec.kind.value,
            spec.materialized.value,
            None if spec.source_format is None else spec.source_format.value,
            spec.table,
            spec.data_path,
            [list(option) for option in spec.options],
            [[c.name, c.type] for c in spec.columns],
            file_sha,
        )
        load = SourceLoad.from_entry(ctx.cache.get(_SOURCE, key))
    fresh: _Fresh = None
    if load is None:
        load = _load_source(spec, config, catalog, ctx.cache)
        fresh = (_SOURCE, key, load.to_entry())
    definition: dict[str, Any] = {
        "kind": spec.kind.value,
        "materialized": spec.materialized.value,
        "dialect": config.dialect,
        "sql": load.sql,
    }
    if spec.kind is Kind.SEED:
        # A seed's rows are part of the project: new content, new snapshot.
        definition["content"] = file_sha
    described = {c.name: c.description for c in spec.columns if c.description}
    node = CompiledNode(
        spec=spec,
        depends_on=(),
        raw_sql=None,
        normalized_sql=load.sql,
        engine_sql=load.engine,
        columns=tuple(
            ColumnInfo(name, type_, (), described.get(name)) for name, type_ in load.columns
        ),
        definition=definition_hash(definition),
        data_fingerprint=data_fingerprint(definition, {}),
        metadata_fingerprint=metadata_fingerprint(
            spec.description, spec.owner, spec.tags, described
        ),
        files_version=files_version(file_sha, {}),
        data_file=(spec.data_path, file_sha) if spec.data_path and file_sha else None,
    )
    return node, fresh


def _load_source(
    spec: NodeSpec, config: ProjectConfig, catalog: _LazyCatalog, cache: CompileCache
) -> SourceLoad:
    """Read the source's columns (from the file's header when undeclared) and its load SQL.

    The load SQL follows from the columns and how the file is read, not from its rows:
    a data file that changed but kept its columns (an event log a day longer) takes it
    from the cache, without sqlglot.
    """
    from seeknal.compiler.sources import SourceError, load_sql, source_columns

    try:
        columns = source_columns(spec, config.root, catalog.open())
    except SourceError as exc:
        raise _NodeFailed(exc.diagnostics) from None
    typed = []
    for column in columns:
        assert column.type is not None  # declared columns need a type; a file gives one
        typed.append((column.name, column.type))
    key = content_key(
        _SOURCE_SQL,
        config.dialect,
        spec.kind.value,
        None if spec.source_format is None else spec.source_format.value,
        spec.table,
        spec.data_path,
        [list(option) for option in spec.options],
        [list(column) for column in typed],
    )
    cached = cache.get(_SOURCE_SQL, key) if cache.enabled else None
    if (
        cached is not None
        and isinstance(cached.get("sql"), str)
        and isinstance(cached.get("engine"), str)
    ):
        return SourceLoad(tuple(typed), cached["sql"], cached["engine"])
    sql = load_sql(spec, columns, config.dialect)
    engine = sql if config.dialect == "duckdb" else load_sql(spec, columns, "duckdb")
    cache.put(_SOURCE_SQL, key, {"sql": sql, "engine": engine})
    return SourceLoad(tuple(typed), sql, engine)


def _seed_text_hashes(loaded: LoadedProject, hashes: FileHashes) -> None:
    """The hashes of the files loading read whole (node files, SQL files, macros).

    They were decoded as strict UTF-8, so they encode back to the same bytes: no need to
    read them again.
    """
    for rel, text in loaded.macros.items():
        hashes.seed(rel, sha256_hex(text))
    for spec in loaded.nodes:
        hashes.seed(spec.file, sha256_hex(spec.doc.text))
        if spec.sql is not None and spec.sql.file != spec.file:
            hashes.seed(spec.sql.file, sha256_hex(spec.sql.text))


def _with_excerpts(root: Path, diags: list[Diagnostic]) -> list[Diagnostic]:
    out = []
    for d in diags:
        if d.excerpt is None and d.location is not None and d.location.line is not None:
            d = Diagnostic(
                d.message, d.location, d.hint, d.severity, excerpt_of_file(root, d.location)
            )
        out.append(d)
    return out


def _raise_on_errors(root: Path, diags: list[Diagnostic], unloaded: set[str]) -> None:
    """Raise the errors, if any, leaving out the refs to node files reported invalid
    (``LoadedProject.unloaded``): each would repeat that file's error elsewhere."""
    if any(d.severity == "error" for d in diags):
        consequences = {f"unknown ref '{node_id}'" for node_id in unloaded}
        kept = [d for d in diags if d.message not in consequences]
        raise CompileFailed(_with_excerpts(root, _sorted(kept)))


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    def key(d: Diagnostic) -> tuple[str, int, int]:
        loc = d.location
        return (loc.path, loc.line or 0, loc.col or 0) if loc else ("", 0, 0)

    return sorted(diags, key=key)
