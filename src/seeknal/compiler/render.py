"""Pass 2: render a node's SQL with Jinja2, in seeknal's sandbox (``sandbox.py``).

Available in every template: ``ref('kind.name')`` (renders the quoted node name, e.g.
``"source"."orders"``), ``var('name', default)``, ``env_var('NAME', default)``, and every
macro defined in ``macros/*.sql``; in an incremental node also ``start_ts``, ``end_ts``,
``start_date`` and ``end_date`` (they render to ``$start_ts``, ...). Unknown names fail
loudly (StrictUndefined), and so does anything else a template raises: every failure is
a diagnostic with a line.

``env_var`` reads the environment only for the names the project file lists under
``embed_env_vars`` (their values are written into plan.json); any other name renders
its default, without looking at the environment, so a pull request cannot copy a CI
secret into the plan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SecurityError

from seeknal.compiler.incremental import TIME_PARAMETERS
from seeknal.compiler.model import NODE_KINDS, SqlText
from seeknal.compiler.sandbox import (
    SANDBOX_HINT,
    SIZE_HINT,
    SeeknalSandbox,
    TemplateLimitError,
    TemplateRefused,
    compile_template,
    render_budget,
)
from seeknal.errors import Diagnostic, SourceLocation
from seeknal.naming import is_identifier

_MISSING = object()
# What an incremental node's time bounds render to: parameters bound per batch, never
# literals (the one SQL text of the plan serves every batch).
TIME_VALUES = {name: f"${name}" for name in TIME_PARAMETERS}
BUILTINS = ("ref", "var", "env_var")
# Filename Jinja gives a template compiled from a string: a node's SQL.
_NODE_TEMPLATE = "<template>"


class RenderError(Exception):
    """One or more template problems; ``diagnostic`` is the first."""

    def __init__(self, diagnostic: Diagnostic, *more: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.diagnostics = [diagnostic, *more]


def quote_node(node_id: str) -> str:
    """``source.orders`` -> ``"source"."orders"`` (how a ref renders into SQL)."""
    kind, name = node_id.split(".", 1)
    return f'"{kind}"."{name}"'


@dataclass(frozen=True, slots=True)
class Renderer:
    """A Jinja environment with the project's vars and macros, shared by every node."""

    env: SeeknalSandbox
    macro_sites: Mapping[str, SourceLocation] = field(default_factory=dict)

    def render(self, sql: SqlText, *, time_parameters: bool = False) -> str:
        """Render ``sql``; raise RenderError pointing at the template's line.

        With ``time_parameters`` (an incremental node), ``{{ start_ts }}`` and its kin
        render to the named parameters the runtime binds per batch (``$start_ts``).
        """
        try:
            with render_budget():
                template = compile_template(self.env, sql.text, _NODE_TEMPLATE)
                rendered: str = template.render(TIME_VALUES if time_parameters else {})
        except TemplateRefused as exc:
            raise RenderError(Diagnostic(str(exc), sql.locate(exc.line), hint=exc.hint)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(
                Diagnostic(
                    f"template syntax error: {exc.message}",
                    sql.locate(exc.lineno),
                    hint=_syntax_hint(exc, self.env),
                )
            ) from None
        except _TemplateUsageError as exc:
            raise RenderError(
                self._diagnostic(f"template error: {exc}", exc, sql, exc.hint)
            ) from None
        except SecurityError as exc:
            raise RenderError(
                self._diagnostic(f"template error: {exc}", exc, sql, SANDBOX_HINT)
            ) from None
        except TemplateLimitError as exc:
            raise RenderError(
                self._diagnostic(f"template error: {exc}", exc, sql, SIZE_HINT)
            ) from None
        except jinja2.UndefinedError as exc:
            hint = "available: ref(), var(), env_var() and the macros in macros/"
            if any(f"'{name}' is undefined" in str(exc.message) for name in TIME_VALUES):
                hint = (
                    "start_ts, end_ts, start_date and end_date exist only in "
                    "`materialized: incremental_by_time` nodes"
                )
            raise RenderError(
                self._diagnostic(f"template error: {exc.message}", exc, sql, hint)
            ) from None
        except Exception as exc:  # anything a template raises: 1/0, 'a' + 1, bad arguments
            raise RenderError(
                self._diagnostic(f"template error: {describe_exception(exc)}", exc, sql, None)
            ) from None
        return rendered

    def _diagnostic(
        self, message: str, exc: BaseException, sql: SqlText, hint: str | None
    ) -> Diagnostic:
        """At the node's line; an error raised inside a macro also names the macro's line."""
        frames = _template_frames(exc, frozenset(s.path for s in self.macro_sites.values()))
        node_line = next((ln for f, ln in reversed(frames) if f == _NODE_TEMPLATE), None)
        in_macro = [(f, ln) for f, ln in frames if f != _NODE_TEMPLATE]
        if in_macro:
            file, line = in_macro[-1]
            message = f"{message} (in {file}:{line})"
        called = re.match(r"macro '(\w+)'", describe_exception(exc))
        if hint is None and called and called.group(1) in self.macro_sites:
            hint = f"macro '{called.group(1)}' is defined at {self.macro_sites[called.group(1)]}"
        elif hint is None and in_macro:
            hint = "the macro raised it while rendering the call on this line"
        elif hint is None:
            hint = "check the Jinja expression on this line"
        return Diagnostic(message, sql.locate(node_line), hint=hint)


def _syntax_hint(exc: jinja2.TemplateSyntaxError, env: SeeknalSandbox) -> str:
    if (exc.message or "").startswith("No filter named"):
        return "the sandbox keeps these filters: " + ", ".join(sorted(env.filters))
    return "check the {{ }} and {% %} tags on this line"


class _TemplateUsageError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def describe_exception(exc: BaseException) -> str:
    """The exception's message without Python internals (``make_renderer.<locals>.``)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return re.sub(r"\b\w+\.<locals>\.", "", str(text))


def _template_frames(exc: BaseException, macro_files: frozenset[str]) -> list[tuple[str, int]]:
    """(file, line) of every template frame in the traceback, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == _NODE_TEMPLATE or filename in macro_files:
            frames.append((filename, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def make_renderer(
    variables: Mapping[str, Any],
    macros: Mapping[str, str],
    embed_env_vars: Collection[str] = (),
) -> Renderer:
    """Build the sandboxed environment once per compile.

    ``macros`` maps a macro file (relative to the project) to its text;
    ``embed_env_vars`` are the environment variables ``env_var()`` may read.

    Raises:
        RenderError: every problem in the macro files (syntax, duplicate names, a macro
            that would replace ref, var or env_var).

    Example:
        >>> renderer = make_renderer({"n": 3}, {})
        >>> renderer.render(SqlText("SELECT {{ var('n') }}", "seeknal/x.yml"))
        'SELECT 3'
    """
    env = SeeknalSandbox()
    env.globals.update(_builtins(variables, frozenset(embed_env_vars)))
    diags: list[Diagnostic] = []
    defined: dict[str, SourceLocation] = {}
    for rel in sorted(macros):
        diags.extend(_define_macros(env, rel, macros[rel], defined))
    if diags:
        raise RenderError(*diags)
    return Renderer(env, defined)


def _builtins(variables: Mapping[str, Any], embed_env_vars: frozenset[str]) -> dict[str, Any]:
    def ref(*args: Any, **kwargs: Any) -> str:
        if len(args) != 1 or kwargs:
            strings = [a for a in args if isinstance(a, str)]
            example = ".".join(strings) if len(strings) == len(args) == 2 else "source.orders"
            raise _TemplateUsageError(
                f"ref() takes one argument, got {len(args) + len(kwargs)}",
                hint=f"seeknal refs are one 'kind.name' string, e.g. ref('{example}')",
            )
        node_id = args[0]
        kind, _, name = node_id.partition(".") if isinstance(node_id, str) else ("", "", "")
        if kind not in NODE_KINDS or not is_identifier(name):
            raise _TemplateUsageError(
                f"ref({node_id!r}): a ref is 'kind.name'",
                hint="e.g. ref('source.orders'); a name is letters, digits and _",
            )
        return quote_node(node_id)

    def var(name: str, default: Any = _MISSING) -> Any:
        if name in variables:
            return variables[name]
        if default is not _MISSING:
            return default
        raise _TemplateUsageError(
            f"undefined variable '{name}'",
            hint=f"define it under `vars:` in seeknal_project.yml, or pass a default: var('{name}', ...)",
        )

    def env_var(name: str, default: Any = _MISSING) -> Any:
        if not isinstance(name, str):
            raise _TemplateUsageError(f"env_var({name!r}): the name must be a string")
        if name not in embed_env_vars:
            # Never read: its value would land in plan.json, and a pull request chooses
            # which variable. The default is the same on every machine.
            if default is not _MISSING:
                return default
            raise _TemplateUsageError(
                f"env_var('{name}'): '{name}' is not listed under embed_env_vars in "
                "seeknal_project.yml",
                hint=f"give it a default, env_var('{name}', '...'), or list it under "
                "`embed_env_vars:` if its value may be written into plan.json "
                "(never a secret)",
            )
        value = os.environ.get(name)
        if value is not None:
            return value
        if default is not _MISSING:
            return default
        raise _TemplateUsageError(
            f"environment variable '{name}' is not set",
            hint=f"set it, or pass a default: env_var('{name}', ...)",
        )

    return {"ref": ref, "var": var, "env_var": env_var}


def _define_macros(
    env: SeeknalSandbox, rel: str, text: str, defined: dict[str, SourceLocation]
) -> list[Diagnostic]:
    """Make the macros of one file global; a name defined twice is an error, not an override."""
    try:
        # Named after its own file, so a traceback tells a frame of macros/money.sql
        # from one of the node's SQL ("<template>").
        template = compile_template(env, text, rel, name=rel)
    except TemplateRefused as exc:
        return [Diagnostic(f"{exc} (in a macro file)", SourceLocation(rel, exc.line), exc.hint)]
    except jinja2.TemplateSyntaxError as exc:
        return [
            Diagnostic(
                f"template syntax error in a macro file: {exc.message}",
                SourceLocation(rel, exc.lineno),
                hint="check the {{ }} and {% %} tags on this line; "
                "a macro is {% macro name(args) %}...{% endmacro %}",
            )
        ]
    try:
        with render_budget():
            module = template.module
    except Exception as exc:  # the file's top-level code raised
        frames = _template_frames(exc, frozenset({rel}))
        # Building a module does not rewrite the traceback: its lines are the compiled
        # Python's, which the template maps back to its own.
        line = template.get_corresponding_lineno(frames[-1][1]) if frames else None
        return [
            Diagnostic(
                f"template error in a macro file: {describe_exception(exc)}",
                SourceLocation(rel, line),
                hint="outside {% macro %} blocks, a macro file should only define macros",
            )
        ]
    diags = []
    for name, where in _macro_sites(env, rel, text):
        if name in BUILTINS:
            diags.append(
                Diagnostic(
                    f"macro '{name}' would replace the built-in {name}()",
                    where,
                    hint="rename the macro: ref(), var() and env_var() are seeknal's own",
                )
            )
        elif name in defined:
            diags.append(
                Diagnostic(
                    f"duplicate macro '{name}'",
                    where,
                    hint=f"'{name}' is already defined at {defined[name]}; rename one of them",
                )
            )
        else:
            defined[name] = where
            value = getattr(module, name, None)
            if isinstance(value, jinja2.runtime.Macro):
                env.globals[name] = value
    return diags


def _macro_sites(env: SeeknalSandbox, rel: str, text: str) -> list[tuple[str, SourceLocation]]:
    """Each macro a file defines (not macros nested in macros), with where its name is."""
    tree = env.parse(text)
    every = list(tree.find_all(nodes.Macro))
    nested = {id(inner) for outer in every for inner in outer.find_all(nodes.Macro)}
    lines = text.splitlines()
    sites = []
    for macro in every:
        if id(macro) in nested:
            continue
        line = lines[macro.lineno - 1] if macro.lineno <= len(lines) else ""
        found = re.search(rf"macro\s+({re.escape(macro.name)})\b", line)
        col = found.start(1) + 1 if found else None
        sites.append((macro.name, SourceLocation(rel, macro.lineno, col)))
    return sites
