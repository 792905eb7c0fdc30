"""Jinja rendering: ref, var, env_var, macros, loops, and clear errors."""

from __future__ import annotations

import pytest

from seeknal.compiler.model import SqlText
from seeknal.compiler.render import RenderError, make_renderer

MACROS = {"macros/m.sql": "{% macro cents(x) %}CAST({{ x }} * 100 AS BIGINT){% endmacro %}"}


def render(text: str, variables: dict[str, object] | None = None) -> str:
    return make_renderer(variables or {}, MACROS).render(SqlText(text, "seeknal/a.yml", 4, 2))


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
