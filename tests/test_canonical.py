"""canonical_json writes exactly json.dumps(sort_keys, indent=2, ensure_ascii=False) + newline."""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seeknal.canonical import (
    canonical_json,
    hash_value,
    sha256_hex,
    with_top_level_key,
    with_top_level_values_and_id,
    without_top_level_string,
)


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_same_bytes_as_json(value: Any) -> None:
    assert canonical_json(value) == reference(value)


class Color(enum.StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"a": {}, "b": []},
        {"é": 'ü\u2028\x00"\\'},
        {Color.RED: Color.RED},  # str subclasses: json's own rules
        {1: "int key", "b": 2},  # json turns the key into a string
        [float("nan"), float("inf"), -0.0, 1e300, True, False, None],
    ],
)
def test_unusual_values_follow_json(value: Any) -> None:
    try:
        expected = reference(value)
    except TypeError:
        with pytest.raises(TypeError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_unserializable_values_raise_like_json() -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": object()})
    with pytest.raises(TypeError):
        canonical_json({"a": 1, 2: "mixed keys cannot be sorted"})


def test_hash_value_is_sha256_of_canonical_text() -> None:
    expected = hashlib.sha256(reference({"a": 1}).encode()).hexdigest()
    assert hash_value({"a": 1}) == expected


@settings(max_examples=300)
@given(
    members=st.dictionaries(st.text(max_size=6), values, min_size=1, max_size=6),
    key=st.text(max_size=6),
    value=values,
)
def test_a_top_level_key_inserted_into_and_taken_out_of_canonical_text(
    members: dict[str, Any], key: str, value: Any
) -> None:
    members.pop(key, None)
    if not members:
        return
    whole = canonical_json({**members, key: value})
    assert with_top_level_key(canonical_json(members), members, key, value) == whole
    split = without_top_level_string(whole, key)
    assert without_top_level_string(whole, key, from_end=True) == split
    if isinstance(value, str):
        assert split == (value, canonical_json(members))
    else:
        assert split is None
    # Text in any other layout is not taken for canonical.
    assert without_top_level_string(json.dumps({**members, key: value}), key) is None


@given(value=st.text(max_size=8))
def test_a_key_holding_a_colon_and_a_space_is_taken_out_too(value: str) -> None:
    split = without_top_level_string(canonical_json({"a: b": value, "c": 1}), "a: b")
    assert split == (value, canonical_json({"c": 1}))


@settings(max_examples=300, deadline=None)
@given(
    members=st.dictionaries(st.text(max_size=6), values, min_size=1, max_size=6),
    changed=st.dictionaries(st.text(max_size=6), st.tuples(values, values), max_size=3),
    id_key=st.text(max_size=6),
    old_id=st.text(max_size=10),
    ends=st.sets(st.text(max_size=6), max_size=4),
)
def test_values_and_an_id_spliced_in_one_pass(
    members: dict[str, Any],
    changed: dict[str, tuple[Any, Any]],
    id_key: str,
    old_id: str,
    ends: set[str],
) -> None:
    """The same text, byte for byte, as the document serialized with the new values and
    the id of the rest; and the same as the members replaced one by one."""
    for key in (id_key, *changed):
        members.pop(key, None)
    changed.pop(id_key, None)
    before = {**members, **{k: old for k, (old, _) in changed.items()}, id_key: old_id}
    after = {**members, **{k: new for k, (_, new) in changed.items()}}
    text = canonical_json(before)
    done = with_top_level_values_and_id(
        text, {k: new for k, (_, new) in changed.items()}, id_key, from_end=ends
    )
    if max(before) == id_key:  # the id is the last member: not spliced this way
        assert done is None
        return
    assert done is not None
    expected_id = sha256_hex(canonical_json(after))
    assert done == (canonical_json({**after, id_key: expected_id}), expected_id)
    # A member missing, or text in another layout: nothing is spliced.
    if changed:
        assert (
            with_top_level_values_and_id(
                canonical_json({**members, id_key: old_id}),
                {k: new for k, (_, new) in changed.items()},
                id_key,
            )
            is None
        )
    assert with_top_level_values_and_id(json.dumps(before), {}, id_key) is None


def test_an_id_that_is_not_a_string_is_not_spliced() -> None:
    text = canonical_json({"a": 1, "id": 7, "z": 2})
    assert with_top_level_values_and_id(text, {"a": 2}, "id") is None


@pytest.mark.parametrize(
    "module", ["seeknal.canonical", "seeknal.schemas", "seeknal.runtime.artifact"]
)
def test_the_examples_in_the_docstrings_hold(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed
