"""The template sandbox: no internals, no files, no bombs — and everyday Jinja still works."""

from __future__ import annotations

import time

import pytest

from seeknal.compiler.model import SqlText
from seeknal.compiler.render import RenderError, make_renderer
from seeknal.compiler.sandbox import MAX_SIZE, measure

MACROS = {
    "macros/m.sql": (
        "{% macro cents(x) %}CAST({{ x }} * 100 AS BIGINT){% endmacro %}\n"
        "{% macro double(s, n) %}{% if n %}{{ double(s ~ s, n - 1) }}"
        "{% else %}{{ s|length }}{% endif %}{% endmacro %}\n"
        "{% macro forever(n) %}{{ forever(n) }}{% endmacro %}\n"
    )
}
VARS = {"columns": ["a", "b"], "limits": {"low": 1, "high": 9}, "rate": 0.5}


def render(text: str) -> str:
    renderer = make_renderer(VARS, MACROS)
    # Line 3 of the node file holds the SQL's first line (`transform: |` on line 2).
    return renderer.render(SqlText(text, "seeknal/transforms/t.yml", 2, 2))


def refused(text: str) -> tuple[str, int | None, str]:
    """The error of rendering ``text``: message, node file line, hint. Fails if it renders."""
    started = time.monotonic()
    with pytest.raises(RenderError) as info:
        render(text)
    # A bomb is stopped early, not after it has eaten the machine.
    assert time.monotonic() - started < 10, text
    diag = info.value.diagnostic
    assert diag.location is not None and diag.location.path == "seeknal/transforms/t.yml"
    assert diag.message.startswith(("template error", "template syntax error")), diag.message
    assert diag.hint
    return diag.message, diag.location.line, diag.hint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Python internals
        ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ ref.__globals__ }}", "attribute '__globals__' of 'function' object is unsafe"),
        ("{{ cents._func }}", "attribute '_func' of 'Macro' object is unsafe"),
        ("{{ var('columns').__len__() }}", "attribute '__len__' of 'list' object is unsafe"),
        ("{{ ''.format }}", "attribute 'format' of 'str' object is unsafe"),
        ("{{ '{0.__class__}'.format(1) }}", "attribute 'format' of 'str' object is unsafe"),
        ("{{ 'x'|attr('format') }}", "attribute 'format' of 'str' object is unsafe"),
        ("{{ var('columns').append('c') }}", "attribute 'append' of 'list' object is unsafe"),
        ("{{ var('limits').update({}) }}", "attribute 'update' of 'dict' object is unsafe"),
        # Globals that leak internals or are not deterministic
        ("{{ self }}", "'self' is not available"),
        ("{{ lipsum() }}", "'lipsum' is undefined"),
        ("{{ cycler(1, 2) }}", "'cycler' is undefined"),
        ("{{ joiner() }}", "'joiner' is undefined"),
        ("{{ namespace(a=1) }}", "'namespace' is undefined"),
        ("{{ config }}", "'config' is undefined"),
        ("{{ request }}", "'request' is undefined"),
        ("{{ [1, 2]|random }}", "No filter named 'random'"),
        # Files
        (
            "{% include 'macros/m.sql' %}",
            "{% include %} is not allowed: templates cannot read files",
        ),
        ("{% import 'macros/m.sql' as m %}", "{% import %} is not allowed"),
        ("{% from 'macros/m.sql' import cents %}", "{% from ... import %} is not allowed"),
        ("{% extends '/etc/passwd' %}", "{% extends %} is not allowed"),
        # Bombs
        ("{{ 'x' * 10**10 }}", f"builds a value of more than {MAX_SIZE:,} characters"),
        ("{{ [0] * 10**9 }}", "builds a value of more than"),
        ("{{ [[0] * 100000] * 100000 }}", "builds a value of more than"),
        ("{{ 10 ** (10 ** 10) }}", "computes an integer of more than 4096 bits"),
        ("{% for i in range(10**9) %}{% endfor %}", "range() of more than 100,000 numbers"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "more than 100,000 loop iterations",
        ),
        ("{{ double('x', 60) }}", "builds a value of more than"),
        ("{% set a = 'x' * 500000 %}{{ a ~ a ~ a }}", "builds a value of more than"),
        ("{{ ('x' * 1000).replace('x', 'y' * 100000) }}", "builds a value of more than"),
        ("{{ ('x' * 1000)|replace('x', 'y' * 100000) }}", "builds a value of more than"),
        ("{{ range(100)|map('string')|join('y' * 100000) }}", "builds a value of more than"),
        ("{{ ('y' * 100000).join(range(100)|map('string')) }}", "builds a value of more than"),
        ("{{ '%999999999s' % 'x' }}", "% formatting with a width or precision of 1000 or more"),
        ("{{ 'x'.ljust(10**10) }}", "attribute 'ljust' of 'str' object is unsafe"),
        ("{{ 'x'|center(10**9) }}", "No filter named 'center'"),
        ("{{ 'x'|indent(10**9) }}", "No filter named 'indent'"),
        ("{{ '%s'|format('x') }}", "No filter named 'format'"),
        ("{{ [[1] * 1000] * 1000|sum(start=[]) }}", "sum() adds numbers"),
        (
            "{% set x = range(100000)|list %}{% for i in x %}{{ x|list|length }}{% endfor %}",
            "does too much work",
        ),
        ("{% for x in [1] recursive %}{{ loop(x) }}{% endfor %}", "recursive loops are not"),
        ("{{ forever(1) }}", "maximum recursion depth exceeded (in macros/m.sql:3)"),
    ],
)
def test_hostile_templates_are_template_errors_at_their_line(text: str, message: str) -> None:
    got, line, _ = refused("SELECT 1\n" + text)
    assert message in got
    assert line == 4  # SQL line 2, in the node file


def test_too_much_output_is_an_error_of_the_whole_template() -> None:
    message, line, _ = refused(
        "SELECT 1\n{% set a = 'x' * 1000 %}{% for i in range(100000) %}{{ a }}{% endfor %}"
    )
    assert (
        message == "template error: the template builds a value of more than 1,000,000 characters"
    )
    assert line == 3  # the SQL's first line: no one line is to blame


def test_unknown_filter_hint_lists_what_the_sandbox_keeps() -> None:
    _, _, hint = refused("SELECT {{ 'x'|center(9) }}")
    assert hint.startswith("the sandbox keeps these filters: abs, attr,")
    assert "random" not in hint and "format" not in hint


def test_security_errors_say_it_is_a_sandbox() -> None:
    _, _, hint = refused("SELECT {{ ''.__class__ }}")
    assert hint.startswith("templates run in a sandbox")
    _, _, hint = refused("SELECT {{ 'x' * 10**10 }}")
    assert "at most 1,000,000 characters" in hint


@pytest.mark.parametrize(
    "text",
    [
        "{% include 'macros/a.sql' %}{% macro m() %}1{% endmacro %}",
        "{% macro m() %}{% import 'x' as y %}{% endmacro %}",
    ],
)
def test_macro_files_get_the_same_policy(text: str) -> None:
    with pytest.raises(RenderError) as info:
        make_renderer({}, {"macros/a.sql": text})
    diag = info.value.diagnostic
    assert "is not allowed: templates cannot read files (in a macro file)" in diag.message
    assert str(diag.location) == "macros/a.sql:1"


def test_everyday_jinja_still_works() -> None:
    text = (
        "SELECT {% for c in var('columns') %}{{ c|upper }}{{ ', ' if not loop.last }}"
        "{% endfor %},\n"
        "{{ cents('amount') }} AS c, {{ var('columns')|join(' || ') }} AS j,\n"
        "{{ '%.2f' % var('rate') }} AS r, {{ 'a,b'.split(',')|length }} AS n,\n"
        "{{ var('limits').items()|list|length }} AS k, {{ var('limits')['high'] * 2 }} AS h,\n"
        "{% set parts = ['x', 'y'] %}'{{ parts|join('') ~ 'z' }}' AS s, {{ 2 ** 10 }} AS p,\n"
        "{{ range(3)|sum }} AS t, {{ 'ab' * 2 }} AS d, {{ dict(a=1)['a'] }} AS o\n"
        "FROM {{ ref('source.orders') }}"
    )
    assert render(text) == (
        "SELECT A, B,\n"
        "CAST(amount * 100 AS BIGINT) AS c, a || b AS j,\n"
        "0.50 AS r, 2 AS n,\n"
        "2 AS k, 18 AS h,\n"
        "'xyz' AS s, 1024 AS p,\n"
        "3 AS t, abab AS d, 1 AS o\n"
        'FROM "source"."orders"'
    )


@pytest.mark.parametrize(
    "ref", ['source.x"; DROP TABLE y; --', "source.", "source.a.b", "nope.orders", "source.1a"]
)
def test_a_ref_must_be_a_kind_and_an_identifier(ref: str) -> None:
    message, _, _ = refused("SELECT * FROM {{ ref('" + ref.replace("'", "") + "') }}")
    assert "a ref is 'kind.name'" in message


def test_measure_counts_shared_structure_without_expanding_it() -> None:
    shared = [0] * 1000
    huge = [shared] * 1000
    started = time.monotonic()
    assert measure(huge, limit=10_000) > 10_000
    assert time.monotonic() - started < 1
    assert measure({"a": [1, "xyz"]}) < 30
