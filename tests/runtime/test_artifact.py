"""load_plan / verify_plan: the runtime refuses every plan it cannot trust."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from seeknal.canonical import canonical_json, compute_plan_id
from seeknal.errors import PlanError
from seeknal.runtime import load_plan, verify_plan
from seeknal.runtime.artifact import PLAN_SCHEMA_VERSION
from tests.runtime.plans import seal, standard_plan, write_project


@pytest.fixture
def plan(tmp_path: Path) -> dict[str, Any]:
    return standard_plan(write_project(tmp_path))


def write(tmp_path: Path, plan: dict[str, Any]) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(canonical_json(plan), encoding="utf-8")
    return path


def test_load_plan_returns_a_valid_plan(tmp_path: Path, plan: dict[str, Any]) -> None:
    assert load_plan(write(tmp_path, plan)) == plan


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such plan file") as info:
        load_plan(tmp_path / "nope.json")
    assert info.value.hint and "seeknal compile" in info.value.hint


def test_invalid_json_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{\n  "schema_version": 1,\n  oops\n}\n', encoding="utf-8")

    with pytest.raises(PlanError, match=r"plan\.json:3:3: plan is not valid JSON") as info:
        load_plan(path)
    assert info.value.hint == "compile it again with `seeknal compile`"


def test_json_nested_too_deeply_is_not_a_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    with pytest.raises(PlanError, match=r"plan\.json is not a plan: .* nested too deeply") as info:
        load_plan(path)
    assert info.value.hint == "compile it again with `seeknal compile`"
    # Handed beside a plan, such a text is only not that plan's: the plan is checked alone.
    with pytest.raises(PlanError, match="does not match the plan schema"):
        verify_plan({"schema_version": 1}, text=path.read_text())


def test_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("[1, 2]\n", encoding="utf-8")

    with pytest.raises(PlanError, match="not a JSON object"):
        load_plan(path)


def test_newer_schema_version_is_refused_first(tmp_path: Path, plan: dict[str, Any]) -> None:
    # A newer plan may have any shape; the version check must come before the schema.
    newer = {**plan, "schema_version": PLAN_SCHEMA_VERSION + 1, "something_new": True}
    del newer["work"]

    with pytest.raises(PlanError) as info:
        load_plan(write(tmp_path, newer))

    assert str(info.value) == (
        f"plan.json has schema_version {PLAN_SCHEMA_VERSION + 1}; "
        f"this seeknal reads up to {PLAN_SCHEMA_VERSION}"
    )
    assert info.value.hint == "upgrade seeknal"


def test_schema_invalid_plan_reports_json_paths(plan: dict[str, Any]) -> None:
    broken = copy.deepcopy(plan)
    broken["nodes"]["source.orders"]["kind"] = "sauce"
    broken["work"][0]["reason"] = "because"
    broken = {**broken, "plan_id": compute_plan_id(broken)}

    with pytest.raises(PlanError) as info:
        verify_plan(broken)

    message = str(info.value)
    assert message.splitlines() == [
        "plan.json does not match the plan schema:",
        "  at $.nodes['source.orders'].kind: 'sauce' is not one of ['source', 'transform', 'seed', 'rule']",
        "  at $.work[0].reason: 'because' is not one of ['new', 'source_data_changed', 'forward_only', 'breaking_change', 'missing', 'lookback', 'restatement', 'upstream_intervals']",
    ]


def test_many_schema_errors_are_cut_short(plan: dict[str, Any]) -> None:
    broken = copy.deepcopy(plan)
    for item in broken["work"]:
        item["reason"] = "because"

    with pytest.raises(PlanError) as info:
        verify_plan(broken)

    assert str(info.value).splitlines()[-1] == "  … and 2 more"


def test_tampered_plan_is_refused(tmp_path: Path, plan: dict[str, Any]) -> None:
    tampered = copy.deepcopy(plan)
    tampered["nodes"]["transform.order_totals"]["sql"]["engine"] = "SELECT 'pwned' AS total"

    with pytest.raises(PlanError) as info:
        load_plan(write(tmp_path, tampered))

    assert str(info.value) == (
        "plan.json was modified after it was compiled (plan_id does not match its content)"
    )
    assert info.value.hint == "compile it again with `seeknal compile`"


def test_reformatted_plan_is_still_valid(tmp_path: Path, plan: dict[str, Any]) -> None:
    # The id covers the content, not the bytes: a pretty-printer must not break it.
    import json

    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan, indent=4), encoding="utf-8")

    assert load_plan(path)["plan_id"] == plan["plan_id"]


def test_work_item_of_an_unknown_node_is_inconsistent(plan: dict[str, Any]) -> None:
    broken = copy.deepcopy(plan)
    broken["work"].append(
        {
            "node": "transform.ghost",
            "snapshot": "seeknal__transform.ghost__0123456789ab",
            "reason": "new",
        }
    )

    with pytest.raises(PlanError, match=r"work item transform\.ghost names no node to build"):
        verify_plan(seal(broken))


def test_work_item_snapshot_must_match_its_node(plan: dict[str, Any]) -> None:
    broken = copy.deepcopy(plan)
    broken["work"][0]["snapshot"] = "seeknal__source.orders__0123456789ab"

    with pytest.raises(PlanError, match="but the node's snapshot is"):
        verify_plan(seal(broken))


def test_dependency_on_a_missing_node_is_inconsistent(plan: dict[str, Any]) -> None:
    broken = copy.deepcopy(plan)
    broken["nodes"]["transform.order_totals"]["depends_on"].append("source.ghost")

    with pytest.raises(PlanError, match=r"depends on source\.ghost, which is not in the plan"):
        verify_plan(seal(broken))


def test_dependency_cycle_is_inconsistent(plan: dict[str, Any]) -> None:
    broken = copy.deepcopy(plan)
    broken["nodes"]["source.orders"]["depends_on"] = ["transform.big_customers"]

    with pytest.raises(PlanError, match="cycle") as info:
        verify_plan(seal(broken))

    assert (
        "source.orders -> transform.big_customers -> transform.order_totals -> source.orders"
        in str(info.value)
    )


def test_a_plan_verified_before_is_checked_again_when_changed(plan: dict[str, Any]) -> None:
    """Verifying the same plan twice is cheap, but a change in between is still caught."""
    assert verify_plan(plan) is plan
    assert verify_plan(copy.deepcopy(plan)) is not None
    changed = copy.deepcopy(plan)
    node = next(iter(changed["nodes"].values()))
    node["sql"]["engine"] = "SELECT 'tampered' AS x"
    with pytest.raises(PlanError, match="modified after it was compiled"):
        verify_plan(changed)
    broken = copy.deepcopy(plan)
    broken["nodes"][next(iter(broken["nodes"]))]["kind"] = "nonsense"
    broken["plan_id"] = compute_plan_id(broken)
    with pytest.raises(PlanError):
        verify_plan(broken)


def test_a_plan_the_compiler_validated_is_not_walked_again(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seeknal run` hands the runtime the plan the compiler validated in the same
    process: the id is recomputed, the schema not walked again; any change is caught."""
    from seeknal import schemas
    from seeknal.compiler import compile_project

    plan = compile_project(shop).plan
    walked: list[str] = []
    real = schemas.iter_errors

    def spy(name: str, instance: Any) -> Any:
        walked.append(name)
        return real(name, instance)

    monkeypatch.setattr(schemas, "iter_errors", spy)
    assert verify_plan(copy.deepcopy(plan)) is not None
    assert walked == []
    changed = copy.deepcopy(plan)
    changed["nodes"]["transform.daily_revenue"]["sql"]["engine"] = "SELECT 1 AS tampered"
    with pytest.raises(PlanError, match="modified after it was compiled"):
        verify_plan(changed)
    assert walked == ["plan"]


def test_a_canonical_plan_file_is_checked_by_its_bytes(
    tmp_path: Path, plan: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan file as seeknal wrote it: its id is checked by hashing the text, not by
    serializing the plan again; a tampered one is still refused, a reformatted one
    still accepted (the slow way)."""
    from seeknal.runtime import artifact

    serialized: list[str] = []
    real = artifact.compute_plan_id

    def spy(value: dict[str, Any]) -> str:
        serialized.append(value.get("project", ""))
        return real(value)

    monkeypatch.setattr(artifact, "compute_plan_id", spy)
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    path = write(tmp_path, plan)
    assert load_plan(path) == plan
    assert serialized == []
    tampered = path.read_text().replace('"SELECT', '"SELECT 1 AS tampered, ', 1)
    path.write_text(tampered)
    with pytest.raises(PlanError, match="modified after it was compiled"):
        load_plan(path)
    assert serialized  # not the canonical bytes of that id: serialized, then refused


def test_a_text_that_is_not_the_plans_own_proves_nothing(plan: dict[str, Any]) -> None:
    """verify_plan(plan, text=) trusts the text's hash only for the plan parsed from it."""
    text = canonical_json(plan)
    changed = copy.deepcopy(plan)
    next(iter(changed["nodes"].values()))["sql"]["engine"] = "SELECT 'tampered' AS x"
    with pytest.raises(PlanError, match="modified after it was compiled"):
        verify_plan(changed, text=text)
    assert verify_plan(copy.deepcopy(plan), text=text) == plan


def test_a_text_hashed_in_this_process_is_not_hashed_again(
    plan: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The very string whose id was computed here (`seeknal run` hands the runtime the
    compiler's text) is vouched for; an equal copy, or other text, is hashed."""
    from seeknal import canonical
    from seeknal.runtime import artifact, verify_plan_text

    text = canonical_json(plan)
    canonical.remember_hashed(text, plan["plan_id"])
    hashed: list[str] = []
    real = artifact.sha256_hex
    monkeypatch.setattr(artifact, "sha256_hex", lambda data: hashed.append(data) or real(data))
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    assert verify_plan_text(text) == plan
    assert hashed == []
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    copy_of = (text + " ")[:-1]
    assert copy_of == text and copy_of is not text
    assert verify_plan_text(copy_of) == plan
    assert len(hashed) == 1
    # A text vouched for under another id proves nothing about this one.
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    canonical.remember_hashed(text, "0" * 64)
    assert verify_plan_text(text) == plan
    assert len(hashed) == 2
    # The vouching is only as good as the caller of remember_hashed (the compiler, in
    # this process): a false claim is believed for that very string, and for no other.
    tampered = text.replace('"environment": "prod"', '"environment": "dev"')
    assert tampered != text
    canonical.remember_hashed(tampered, plan["plan_id"])
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    assert verify_plan_text(tampered)["environment"] == "dev"
    monkeypatch.setattr(artifact, "_VERIFIED", set())
    with pytest.raises(PlanError, match="modified after it was compiled"):
        verify_plan_text((tampered + " ")[:-1])
