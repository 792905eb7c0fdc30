"""Passes 2-3 for every SQL node: render its Jinja, parse it, resolve and check its refs.

Each node's rendered text and refs are kept in the compile cache under a key of its SQL
text, whether it is incremental, the project's dialect, vars and macro files, and the
code that did the work; a hit skips Jinja and sqlglot altogether (neither is imported
when every node hits, and the parse is only redone if the node's analysis is not cached
either). Two things keep that exact:

- a template that can read something outside that key is never cached: one that names
  ``env_var`` (the environment), or a project whose macro files do, or whose ``vars``
  are not plain JSON;
- a cached ref is reused only while the node it names still exists: node ids are unique
  regardless of case, so the name as written can resolve to nothing else.

SQL without ``{`` (and without a carriage return, which Jinja would normalize) is its own
rendering: there is no tag to expand, so it is not handed to Jinja at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seeknal.compiler.cache import CompileCache, content_key
from seeknal.compiler.hints import did_you_mean
from seeknal.compiler.load import LoadedProject
from seeknal.compiler.model import SQL_KINDS, Kind, Materialized, NodeSpec
from seeknal.errors import Diagnostic

if TYPE_CHECKING:
    from seeknal.compiler.render import Renderer
    from seeknal.compiler.sql import ParsedSql

# Names through which a template reads something besides its text, vars and macros.
_VOLATILE = re.compile(r"\benv_var\b")
_FRONT = "front"
# Text longer than this goes to the sandbox, which refuses it with its own error.
_PLAIN_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class NodeSql:
    """A SQL node's rendered text and refs; ``parsed`` when it was parsed in this compile."""

    rendered: str
    refs: tuple[str, ...]
    parsed: ParsedSql | None = None


def parse_sql_nodes(
    loaded: LoadedProject,
    specs: Mapping[str, NodeSpec],
    diags: list[Diagnostic],
    cache: CompileCache,
) -> dict[str, NodeSql]:
    """Render and parse every transform and rule; problems go to ``diags``.

    When a macro file is broken, only its errors are reported: every node calling the
    macro would repeat them.
    """
    context = _cache_context(loaded) if cache.enabled else None
    renderer = _LazyRenderer(loaded)
    found: list[Diagnostic] = []
    out: dict[str, NodeSql] = {}
    reused = 0
    for spec in specs.values():
        if spec.kind not in SQL_KINDS or spec.sql is None:
            continue
        incremental = spec.materialized is Materialized.INCREMENTAL_BY_TIME
        if incremental and spec.incremental is None:
            continue  # its `incremental:` block has errors, already reported
        text = spec.sql.text
        key = None
        if context is not None and not _VOLATILE.search(text):
            key = content_key(_FRONT, context, spec.kind.value, incremental, text)
        node = _from_entry(cache.get(_FRONT, key), specs) if key is not None else None
        if node is not None:
            reused += 1
        else:
            node = _render_and_parse(spec, loaded, specs, renderer, found, incremental)
            if node is None:
                if renderer.failed is not None:
                    break
                continue
            if key is not None:
                cache.put(_FRONT, key, {"rendered": node.rendered, "refs": list(node.refs)})
        if _check_refs(spec, node, specs, found):
            out[spec.id] = node
    if renderer.failed is None and not reused:
        # No cached node vouches for the macro files: check them, as a cold compile does.
        renderer.get()
    if renderer.failed is not None:
        diags.extend(renderer.failed)
        return {}
    diags.extend(found)
    return out


def parsed_sql(
    spec: NodeSpec, node: NodeSql, dialect: str, specs: Mapping[str, NodeSpec]
) -> ParsedSql:
    """The parse of a node, parsing again when its text and refs came from the cache.

    It parsed before, to the same refs, with the same node ids around: it parses again.
    """
    from seeknal.compiler.sql import parse_sql

    if node.parsed is not None:
        return node.parsed
    assert spec.sql is not None
    return parse_sql(node.rendered, spec.sql, dialect, specs, kind=spec.kind.value)


def check_input_refs(specs: Mapping[str, NodeSpec], diags: list[Diagnostic]) -> None:
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


class _LazyRenderer:
    """The project's Jinja environment, built (and Jinja imported) on first use."""

    def __init__(self, loaded: LoadedProject) -> None:
        self.loaded = loaded
        self.renderer: Renderer | None = None
        self.failed: list[Diagnostic] | None = None

    def get(self) -> Renderer | None:
        if self.renderer is None and self.failed is None:
            from seeknal.compiler.render import RenderError, make_renderer

            config = self.loaded.config
            try:
                self.renderer = make_renderer(
                    config.vars, self.loaded.macros, config.embed_env_vars
                )
            except RenderError as exc:
                self.failed = list(exc.diagnostics)
        return self.renderer


def _render_and_parse(
    spec: NodeSpec,
    loaded: LoadedProject,
    specs: Mapping[str, NodeSpec],
    renderer: _LazyRenderer,
    diags: list[Diagnostic],
    incremental: bool,
) -> NodeSql | None:
    from seeknal.compiler.render import RenderError
    from seeknal.compiler.sql import SqlError, parse_sql

    assert spec.sql is not None
    text = spec.sql.text
    try:
        if "{" not in text and "\r" not in text and len(text) <= _PLAIN_LIMIT:
            rendered = text  # no Jinja tag: rendering would return the text unchanged
        else:
            jinja = renderer.get()
            if jinja is None:
                return None
            rendered = jinja.render(spec.sql, time_parameters=incremental)
        parsed = parse_sql(rendered, spec.sql, loaded.config.dialect, specs, kind=spec.kind.value)
    except RenderError as exc:
        diags.append(exc.diagnostic)
        return None
    except SqlError as exc:
        diags.extend(exc.diagnostics)
        return None
    return NodeSql(rendered, parsed.refs, parsed)


def _check_refs(
    spec: NodeSpec, node: NodeSql, specs: Mapping[str, NodeSpec], diags: list[Diagnostic]
) -> bool:
    """No node reads itself or a rule; `inputs:` matches what the SQL reads."""
    assert spec.sql is not None
    if spec.id in node.refs:
        diags.append(
            Diagnostic(
                f"dependency cycle: {spec.id} -> {spec.id}",
                spec.sql.find(spec.name),
                hint="a node cannot read its own output",
            )
        )
        return False
    rules_read = [ref for ref in node.refs if specs[ref].kind is Kind.RULE]
    for ref in rules_read:
        diags.append(
            Diagnostic(
                f"'{ref}' is a rule; a rule cannot be read by other nodes",
                spec.sql.find(ref if ref in spec.sql.text else ref.split(".", 1)[1]),
                hint="read the node the rule checks instead",
            )
        )
    if rules_read:
        return False
    _check_inputs(spec, node.refs, specs, diags)
    return True


def _check_inputs(
    spec: NodeSpec, refs: tuple[str, ...], specs: Mapping[str, NodeSpec], diags: list[Diagnostic]
) -> None:
    if spec.inputs is None:
        return
    assert spec.sql is not None
    if any(ref not in specs for ref in spec.inputs):
        return  # a misspelled input is reported; what the SQL reads would only repeat it
    listed = set(spec.inputs)
    for ref in refs:
        if ref not in listed:
            diags.append(
                Diagnostic(
                    f"the SQL reads '{ref}' but `inputs` does not list it",
                    spec.sql.find(ref if ref in spec.sql.text else ref.split(".", 1)[1]),
                    hint=f"add `- ref: {ref}` under inputs (at {spec.at('inputs')}), or remove `inputs` to derive it from the SQL",
                )
            )
    for index, ref in enumerate(spec.inputs):
        if ref not in refs:
            diags.append(
                Diagnostic(
                    f"input '{ref}' is listed but the SQL does not read it",
                    spec.at("inputs", index, "ref"),
                    hint="remove it from `inputs`, or use it in the SQL",
                    severity="warning",
                )
            )


def _cache_context(loaded: LoadedProject) -> str | None:
    """What every node's rendering depends on besides its own text; None: do not cache."""
    macros = loaded.macros
    if any(_VOLATILE.search(text) for text in macros.values()):
        return None
    variables = _plain_json(loaded.config.vars)
    if variables is None:
        return None
    return content_key("render-context", loaded.config.dialect, variables, sorted(macros.items()))


def _plain_json(value: Any) -> Any:
    """``value`` if JSON keeps it exactly (a YAML date would come back as a string)."""
    try:
        if json.loads(json.dumps(value)) == value:
            return value
    except (TypeError, ValueError):
        pass
    return None


def _from_entry(value: Any, specs: Mapping[str, NodeSpec]) -> NodeSql | None:
    if not isinstance(value, dict):
        return None
    rendered, refs = value.get("rendered"), value.get("refs")
    if not isinstance(rendered, str) or not isinstance(refs, list):
        return None
    if not all(isinstance(ref, str) and ref in specs for ref in refs) or refs != sorted(set(refs)):
        return None
    return NodeSql(rendered, tuple(refs))
