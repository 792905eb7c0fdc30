"""No secret reaches plan.json: a random SEEKNAL_TEST_SECRET, tried through every route.

Routes a project (or a pull request) could use to copy an environment variable into the
plan or into compile's output: ``env_var()`` with and without a default, in a node and
in a macro; ``var()``; ``${...}`` in the project file; ``profiles.yml``. Compile must
write the value nowhere and print it nowhere. The one way to embed a variable is to list
it under ``embed_env_vars`` — which ``--untrusted`` ignores — and the positive control
below proves this test would see a leak.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.cli.conftest import invoke, run_process
from tests.conftest import FIXTURES, copy_project

SECRET = "seeknal-secret-" + secrets.token_hex(16)
TRANSFORM = """\
kind: transform
name: customer_totals
transform: |
  SELECT
    customer_id,
    SUM(amount) AS total_amount,
    '{{ env_var('SEEKNAL_TEST_SECRET', 'node_default') }}' AS from_env_var,
    '{{ var('copied') }}' AS from_var,
    '{{ leak() }}' AS from_macro
  FROM {{ ref('source.orders') }}
  GROUP BY customer_id
"""


@pytest.fixture(autouse=True)
def secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEKNAL_TEST_SECRET", SECRET)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = copy_project(FIXTURES / "minimal", tmp_path / "project")
    (project / "seeknal_project.yml").write_text(
        "name: minimal\n"
        "warehouse: target/${SEEKNAL_TEST_SECRET}.duckdb\n"
        "vars:\n"
        "  copied: ${SEEKNAL_TEST_SECRET}\n"
    )
    (project / "macros").mkdir()
    (project / "macros/leak.sql").write_text(
        "{% macro leak() %}{{ env_var('SEEKNAL_TEST_SECRET', 'macro_default') }}{% endmacro %}\n"
    )
    (project / "seeknal/transforms/customer_totals.yml").write_text(TRANSFORM)
    (project / "profiles.yml").write_text(
        "connections:\n  default: {engine: duckdb, path: 'target/${SEEKNAL_TEST_SECRET}.duckdb'}\n"
    )
    return project


def written_text(project: Path) -> str:
    """Every file compile wrote (under target/), names and contents."""
    parts = []
    for path in sorted((project / "target").rglob("*")):
        parts.append(str(path))
        if path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def test_no_route_copies_the_secret_into_the_plan(project: Path) -> None:
    result = invoke(project, "compile")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    written = written_text(project)
    assert "plan.json" in written
    assert SECRET not in written
    # The defaults and the literal text are what the plan holds.
    assert "node_default" in written and "macro_default" in written
    assert "${SEEKNAL_TEST_SECRET}" in written


def test_embed_env_vars_is_ignored_when_compiling_untrusted(project: Path) -> None:
    config = project / "seeknal_project.yml"
    config.write_text(config.read_text() + "embed_env_vars: [SEEKNAL_TEST_SECRET]\n")
    result = invoke(project, "compile", "--untrusted")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output + written_text(project)


def test_positive_control_a_declared_variable_is_embedded(project: Path) -> None:
    """Listing a variable under embed_env_vars writes its value: this test sees leaks."""
    config = project / "seeknal_project.yml"
    config.write_text(config.read_text() + "embed_env_vars: [SEEKNAL_TEST_SECRET]\n")
    assert invoke(project, "compile").exit_code == 0
    assert SECRET in written_text(project)


def test_an_undeclared_variable_without_default_is_an_error_naming_it(project: Path) -> None:
    transform = project / "seeknal/transforms/customer_totals.yml"
    transform.write_text(
        TRANSFORM.replace(
            "env_var('SEEKNAL_TEST_SECRET', 'node_default')", "env_var('SEEKNAL_TEST_SECRET')"
        )
    )
    result = invoke(project, "compile")
    assert result.exit_code == 2
    assert (
        "env_var('SEEKNAL_TEST_SECRET'): 'SEEKNAL_TEST_SECRET' is not listed under embed_env_vars"
        in result.output
    )
    assert SECRET not in result.output
    assert not (project / "target").exists()


def test_profiles_are_resolved_only_when_the_plan_runs(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seeknal run` resolves profiles.yml at execute time; the plan still holds no secret."""
    (project / "profiles.yml").write_text(
        "connections:\n  default: {engine: duckdb, path: '${SEEKNAL_TEST_WAREHOUSE}'}\n"
    )
    monkeypatch.setenv("SEEKNAL_TEST_WAREHOUSE", "target/deployed.duckdb")
    done = run_process(project, "run")
    assert done.returncode == 0, done.stderr
    assert (project / "target/deployed.duckdb").is_file()
    plan = (project / "target/plan.json").read_text()
    assert SECRET not in plan and "deployed" not in plan
    assert SECRET not in done.stdout + done.stderr
