"""Jinja rendering: ref, var, env_var, macros, loops, and clear errors."""

from __future__ import annotations

import pytest

from seeknal.compiler.model import SqlText
from seeknal.compiler.render import RenderError, make_renderer

MACROS = {"macros/m.sql": "{% macro cents(x) %}CAST({{ x }} * 100 AS BIGINT){% endmacro %}"}
# The variables these tests read from the environment, as `embed_env_vars:` lists them.
EMBED = ("SEEKNAL_TEST_X", "SEEKNAL_SURELY_UNSET")


def render(text: str, variables: dict[str, object] | None = None) -> str:
    renderer = make_renderer(variables or {}, MACROS, EMBED)
    return renderer.render(SqlText(text, "seeknal/a.yml", 4, 2))


def test_ref_var_macro_and_loops() -> None:
    text = (
        "SELECT {{ cents('amount') }} AS c,\n"
        "{% for s in ['a', 'b'] %}COUNT_IF(status = '{{ s }}') AS n_{{ s }},{% endfor %}\n"
        "{{ var('limit') }} AS lim FROM {{ ref('source.orders') }}"
    )
    assert render(text, {"limit": 5}) == (
        "SELECT CAST(amount * 100 AS BIGINT) AS c,\n"
        "COUNT_IF(status = 'a') AS n_a,COUNT_IF(status = 'b') AS n_b,\n"
        '5 AS lim FROM "source"."orders"'
    )


def test_env_var_with_default_and_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert render("{{ env_var('SEEKNAL_TEST_X', 'd') }}") == "d"
    monkeypatch.setenv("SEEKNAL_TEST_X", "v")
    assert render("{{ env_var('SEEKNAL_TEST_X', 'd') }}") == "v"


def test_env_var_reads_only_the_variables_the_project_embeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEEKNAL_TEST_UNLISTED", "from-the-environment")
    unlisted = make_renderer({}, {}, EMBED)
    # With a default: the default, whatever the environment holds.
    assert unlisted.render(SqlText("{{ env_var('SEEKNAL_TEST_UNLISTED', 'd') }}", "a.yml")) == "d"
    with pytest.raises(RenderError) as info:
        unlisted.render(SqlText("SELECT 1\n{{ env_var('SEEKNAL_TEST_UNLISTED') }}", "a.yml"))
    diag = info.value.diagnostic
    assert diag.message == (
        "template error: env_var('SEEKNAL_TEST_UNLISTED'): 'SEEKNAL_TEST_UNLISTED' is not "
        "listed under embed_env_vars in seeknal_project.yml"
    )
    assert diag.location is not None and diag.location.line == 2
    assert "embed_env_vars" in (diag.hint or "") and "from-the-environment" not in diag.render()


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("SELECT 1\nFROM {{ var('missing') }}", "undefined variable 'missing'", 6),
        (
            "SELECT 1\n\n{{ env_var('SEEKNAL_SURELY_UNSET') }}",
            "'SEEKNAL_SURELY_UNSET' is not set",
            7,
        ),
        ("SELECT {{ nope }}", "'nope' is undefined", 5),
        ("SELECT 1\n{% if %}", "template syntax error", 6),
        ("SELECT * FROM {{ ref('orders') }}", "a ref is 'kind.name'", 5),
    ],
)
def test_errors_name_the_yaml_line(text: str, message: str, line: int) -> None:
    with pytest.raises(RenderError) as info:
        render(text)
    diag = info.value.diagnostic
    assert message in diag.message
    assert diag.location is not None and diag.location.line == line


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(RenderError) as info:
        render("SELECT '{{ ''.__class__.__mro__ }}'")
    assert "template error" in info.value.diagnostic.message


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("SELECT 1\nWHERE {{ 1/0 }}", "template error: division by zero", "Jinja expression"),
        ("SELECT 1\nWHERE {{ 'a' + 1 }}", "template error: can only concatenate", None),
        (
            "SELECT 1\nFROM {{ ref('source', 'sales') }}",
            "ref() takes one argument, got 2",
            "seeknal refs are one 'kind.name' string, e.g. ref('source.sales')",
        ),
        (
            "SELECT 1\nWHERE {{ cents(1, 2) }}",
            "template error: macro 'cents' takes not more than 1 argument(s)",
            "macro 'cents' is defined at macros/m.sql:1:10",
        ),
        ("SELECT 1\nWHERE {{ var('a', 'b', 'c') }}", "template error: var() takes", None),
    ],
)
def test_any_exception_while_rendering_is_a_template_error(
    text: str, message: str, hint: str | None
) -> None:
    with pytest.raises(RenderError) as info:
        render(text)
    diag = info.value.diagnostic
    assert diag.message.startswith("template error")
    assert message in diag.message
    assert "<locals>" not in diag.message
    assert diag.location is not None and (diag.location.path, diag.location.line) == (
        "seeknal/a.yml",
        6,
    )
    if hint:
        assert hint in (diag.hint or "")


def test_an_error_inside_a_macro_names_the_macro_file_and_line() -> None:
    macros = {"macros/m.sql": "{% macro boom() %}\n\n{{ 1/0 }}{% endmacro %}"}
    renderer = make_renderer({}, macros)
    with pytest.raises(RenderError) as info:
        renderer.render(SqlText("SELECT 1\n\nWHERE {{ boom() }}", "seeknal/a.yml", 4, 2))
    diag = info.value.diagnostic
    assert diag.message == "template error: division by zero (in macros/m.sql:3)"
    # The node's line that called it, not the macro's line number in the node's file.
    assert diag.location is not None and diag.location.line == 7


def macro_errors(macros: dict[str, str]) -> list[tuple[str, str, str | None]]:
    with pytest.raises(RenderError) as info:
        make_renderer({}, macros)
    return [(d.message, str(d.location), d.hint) for d in info.value.diagnostics]


def test_a_macro_name_defined_twice_is_an_error_not_an_override() -> None:
    errors = macro_errors(
        {
            "macros/a.sql": "{% macro cents(x) %}{{ x }}{% endmacro %}",
            "macros/b.sql": "-- more\n{% macro  cents(x) %}{{ x }} * 100{% endmacro %}",
        }
    )
    assert errors == [
        (
            "duplicate macro 'cents'",
            "macros/b.sql:2:11",
            "'cents' is already defined at macros/a.sql:1:10; rename one of them",
        )
    ]
    # Twice in one file too: the second silently replaced the first.
    errors = macro_errors(
        {"macros/a.sql": "{% macro m() %}1{% endmacro %}\n{% macro m() %}2{% endmacro %}"}
    )
    assert [(m, loc) for m, loc, _ in errors] == [("duplicate macro 'm'", "macros/a.sql:2:10")]


@pytest.mark.parametrize("builtin", ["ref", "var", "env_var"])
def test_a_macro_cannot_replace_a_builtin(builtin: str) -> None:
    errors = macro_errors({"macros/a.sql": f"\n{{% macro {builtin}(x) %}}{{% endmacro %}}"})
    assert errors == [
        (
            f"macro '{builtin}' would replace the built-in {builtin}()",
            "macros/a.sql:2:10",
            "rename the macro: ref(), var() and env_var() are seeknal's own",
        )
    ]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("\n\n{% macro m(x) %}{{ x }{% endmacro %}", "template syntax error in a macro file", 3),
        ("{% macro m() %}1{% endmacro %}\n{{ 1/0 }}", "template error in a macro file", 2),
    ],
)
def test_a_broken_macro_file_is_a_diagnostic_at_its_line(
    text: str, message: str, line: int
) -> None:
    errors = macro_errors({"macros/m.sql": text})
    assert len(errors) == 1
    assert message in errors[0][0]
    assert errors[0][1] == f"macros/m.sql:{line}"
    assert errors[0][2]
