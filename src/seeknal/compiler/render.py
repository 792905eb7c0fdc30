"""Pass 2: render a node's SQL with Jinja2 (sandboxed).

Available in every template: ``ref('kind.name')`` (renders the quoted node name, e.g.
``"source"."orders"``), ``var('name', default)``, ``env_var('NAME', default)``, and every
macro defined in ``macros/*.sql``. Unknown names fail loudly (StrictUndefined).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from seeknal.compiler.model import NODE_KINDS, SqlText
from seeknal.errors import Diagnostic

_MISSING = object()


class RenderError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def quote_node(node_id: str) -> str:
    """``source.orders`` -> ``"source"."orders"`` (how a ref renders into SQL)."""
    kind, name = node_id.split(".", 1)
    return f'"{kind}"."{name}"'


@dataclass(frozen=True, slots=True)
class Renderer:
    """A Jinja environment with the project's vars and macros, shared by every node."""

    env: SandboxedEnvironment

    def render(self, sql: SqlText) -> str:
        """Render ``sql``; raise RenderError pointing at the template's line."""
        try:
            template = self.env.from_string(sql.text)
            rendered: str = template.render()
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(
                Diagnostic(f"template syntax error: {exc.message}", sql.locate(exc.lineno))
            ) from None
        except jinja2.UndefinedError as exc:
            raise RenderError(
                Diagnostic(
                    f"template error: {exc.message}",
                    sql.locate(_template_line(exc)),
                    hint="available: ref(), var(), env_var() and the macros in macros/",
                )
            ) from None
        except jinja2.TemplateError as exc:
            raise RenderError(
                Diagnostic(f"template error: {exc.message}", sql.locate(_template_line(exc)))
            ) from None
        except _TemplateUsageError as exc:
            raise RenderError(
                Diagnostic(str(exc), sql.locate(_template_line(exc)), hint=exc.hint)
            ) from None
        return rendered


class _TemplateUsageError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def make_renderer(variables: Mapping[str, Any], macros: Mapping[str, str]) -> Renderer:
    """Build the sandboxed environment once per compile."""
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        loader=jinja2.DictLoader(dict(macros)),
    )

    def ref(node_id: str) -> str:
        if not isinstance(node_id, str) or node_id.split(".", 1)[0] not in NODE_KINDS:
            raise _TemplateUsageError(
                f"ref({node_id!r}): a ref is 'kind.name'", hint="e.g. ref('source.orders')"
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
        value = os.environ.get(name)
        if value is not None:
            return value
        if default is not _MISSING:
            return default
        raise _TemplateUsageError(
            f"environment variable '{name}' is not set",
            hint=f"set it, or pass a default: env_var('{name}', ...)",
        )

    env.globals.update(ref=ref, var=var, env_var=env_var)
    for name in sorted(macros):
        module = env.get_template(name).module
        for attr in dir(module):
            value = getattr(module, attr)
            if isinstance(value, jinja2.runtime.Macro):
                env.globals[attr] = value
    return Renderer(env)
