"""The compiled predicate agrees with jsonschema on every document it is shown.

Documents are real (the shop's plan, its state after a run, every node file and project
file under the fixtures), then mutated at random: a key removed, added or replaced by
another JSON value, anywhere in the tree. Whatever the mutation, the fast answer must be
jsonschema's answer.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seeknal import schemas
from seeknal.schemas.predicate import compile_predicate
from tests.conftest import EXAMPLE, FIXTURES, copy_project

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [
            "",
            "x",
            "table",
            "view",
            "removed",
            "added",
            "source.orders",
            "transform.x",
            "seeknal__source.orders__0123456789ab",
            "0" * 64,
            "csv",
            "new",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "kind", "name", "change", "category"]), children)
    ),
    max_leaves=6,
)


# Hypothesis settings for tests drawing from the `documents` fixture (built once).
_WITH_DOCUMENTS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _documents() -> list[tuple[str, Any]]:
    docs: list[tuple[str, Any]] = []
    for path in sorted([*FIXTURES.rglob("*.yml"), *EXAMPLE.rglob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        name = "project" if path.name == "seeknal_project.yml" else "node"
        docs.append((name, data))
    return docs


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Any]]:
    from click.testing import CliRunner

    from seeknal.cli.main import cli

    shop = copy_project(EXAMPLE, tmp_path_factory.mktemp("predicate") / "shop")
    result = CliRunner().invoke(cli, ["--project", str(shop), "run", "--quiet"])
    assert result.exit_code == 0, result.output
    plan = json.loads((shop / "target" / "plan.json").read_text(encoding="utf-8"))
    state = json.loads((shop / "target" / "state" / "state.json").read_text(encoding="utf-8"))
    return [("plan", plan), ("state", state), *_documents()]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        if not path:
            return data.draw(json_values)
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[last] = data.draw(json_values)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "kind", "type", "lineage", "sql"]))] = (
                data.draw(json_values)
            )
        else:
            parent.append(data.draw(json_values))
    return doc


@pytest.mark.parametrize("name", schemas.SCHEMA_NAMES + schemas.OLD_SCHEMA_NAMES)
def test_every_schema_compiles(name: str) -> None:
    # Otherwise validation silently falls back to jsonschema and gets slow again.
    assert compile_predicate(schemas.load_schema(name)) is not None


def test_real_documents_are_valid(documents: list[tuple[str, Any]]) -> None:
    for name, doc in documents:
        expected = schemas.validator(name).is_valid(doc)
        assert schemas.is_valid(name, doc) == expected, (name, doc)


@settings(_WITH_DOCUMENTS, max_examples=300)
@given(data=st.data())
def test_mutated_documents_agree_with_jsonschema(
    documents: list[tuple[str, Any]], data: st.DataObject
) -> None:
    name, doc = data.draw(st.sampled_from(documents))
    mutated = _mutate(doc, data)
    assert schemas.is_valid(name, mutated) == schemas.validator(name).is_valid(mutated)


@settings(_WITH_DOCUMENTS, max_examples=200)
@given(data=st.data())
def test_a_member_is_valid_exactly_when_the_plan_with_it_is(
    documents: list[tuple[str, Any]], data: st.DataObject
) -> None:
    """What lets a kept plan take a new work list without its whole schema walked."""
    plan = next(doc for name, doc in documents if name == "plan")
    key = data.draw(st.sampled_from(["work", "base_state"]))
    mutated = _mutate({"member": plan[key]}, data)
    value = mutated.get("member") if isinstance(mutated, dict) else mutated
    whole = schemas.validator("plan").is_valid({**plan, key: value})
    assert schemas.is_valid_member("plan", key, value) == whole


def test_members_of_a_schema_relating_them_are_not_checked_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schemas._member_schema.cache_clear()
    schemas._member_predicate.cache_clear()
    related = {"type": "object", "properties": {"a": {}}, "dependentRequired": {"a": ["b"]}}
    monkeypatch.setattr(schemas, "load_schema", lambda name: related)
    try:
        with pytest.raises(ValueError, match="independently"):
            schemas.is_valid_member("plan", "a", 1)
    finally:
        schemas._member_schema.cache_clear()
        schemas._member_predicate.cache_clear()


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "integer"}, [1, 1.0, -3], [True, 1.5, "1", None]),
        ({"type": ["string", "null"]}, ["", None], [0, [], {}]),
        ({"const": 1}, [1, 1.0], [True, "1"]),
        ({"enum": [False, "a"]}, [False, "a"], [0, "b", None]),
        ({"uniqueItems": True}, [[1, True], ["a", "b"], [[1], [True]]], [[1, 1.0], [{"a": 1}] * 2]),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, [1.5], [1]),
        ({"minLength": 2, "pattern": "^a"}, ["ab", 3], ["a", "ba"]),
        ({"minItems": 1, "maxItems": 2}, [[1], [1, 2], "x"], [[], [1, 2, 3]]),
        ({"minimum": 1, "maximum": 3}, [1, 3, 2.5, "0"], [0, 3.5]),
        ({"exclusiveMinimum": 1, "exclusiveMaximum": 3}, [2, 1.5, True], [1, 3]),
        (
            {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": {"type": "null"}},
            [[], ["a"], ["a", 1], ["a", 1, None, None], {}],
            [[1], ["a", "b"], ["a", 1, 2]],
        ),
        (
            {"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}},
            [{"a": 1, "b": 2}, {"c": 1}, 5],
            [{"a": 1}, {}],
        ),
        (
            {
                "$defs": {"tree": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
                "$ref": "#/$defs/tree",
            },
            [[], [[[]]]],
            [[1], [[], [2]]],
        ),
    ],
)
def test_keywords_match_jsonschema(schema: dict[str, Any], good: list[Any], bad: list[Any]) -> None:
    from jsonschema import Draft202012Validator

    check = compile_predicate(schema)
    assert check is not None
    reference = Draft202012Validator(schema)
    for value in good:
        assert reference.is_valid(value), value
        assert check(value), value
    for value in bad:
        assert not reference.is_valid(value), value
        assert not check(value), value


def test_unknown_keywords_fall_back_to_jsonschema() -> None:
    assert compile_predicate({"type": "number", "multipleOf": 3}) is None
    assert compile_predicate({"minimum": "3"}) is None
    assert compile_predicate({"$ref": "https://example.com/other.json"}) is None


def test_invalid_documents_still_get_jsonschema_errors() -> None:
    errors = schemas.iter_errors("project", {"name": 3})
    assert errors and "is not of type 'string'" in errors[0].message


def test_validating_does_not_import_jsonschema(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from seeknal import schemas; "
        "assert schemas.is_valid('project', {'name': 'x'}); "
        "assert schemas.iter_errors('node', {'kind': 'seed', 'name': 'x', 'path': 'a.csv'}) == []; "
        "print('jsonschema' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "False"
