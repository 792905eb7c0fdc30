"""Environment names: checked before anything runs, with a hint; never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from seeknal.errors import SeeknalError
from seeknal.naming import check_environment
from tests.cli.conftest import invoke, run_process, tree_state


@pytest.mark.parametrize("name", ["prod", "dev", "staging_2", "a"])
def test_lower_case_identifiers_are_environment_names(name: str) -> None:
    assert check_environment(name) == name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("my env", "my_env"), ("", None), ("../x", "x"), ("Dev", "dev"), ("2024", "env_2024")],
)
def test_other_names_are_refused_with_a_hint(name: str, suggestion: str | None) -> None:
    with pytest.raises(SeeknalError) as info:
        check_environment(name)
    assert info.value.exit_code == 2
    assert f"invalid environment name {name!r}" in str(info.value)
    hint = info.value.hint or ""
    assert "lower-case identifier" in hint
    if suggestion:
        assert f"did you mean '{suggestion}'?" in hint
    else:
        assert "did you mean" not in hint


@pytest.mark.parametrize("command", [["compile"], ["run"], ["show", "transform.customer_totals"]])
@pytest.mark.parametrize("name", ["my env", "", "../x", "Dev"])
def test_every_command_with_env_refuses_a_bad_name(
    command: list[str], name: str, minimal: Path
) -> None:
    before = tree_state(minimal)

    result = invoke(minimal, *command, "--env", name)

    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: invalid environment name {name!r}")
    assert "hint: an environment name is a lower-case identifier" in result.output
    assert "internal error" not in result.output
    assert tree_state(minimal) == before


def test_dev_is_not_dev_in_another_case(minimal: Path) -> None:
    # `Dev` would share the schemas of `dev` (the warehouse folds case): refused.
    assert run_process(minimal, "run", "--env", "dev").returncode == 0
    clash = run_process(minimal, "run", "--env", "Dev")
    assert clash.returncode == 2
    assert "did you mean 'dev'?" in clash.stderr
    assert "Traceback" not in clash.stderr
