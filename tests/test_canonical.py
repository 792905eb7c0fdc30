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
    with_top_level_key,
    with_top_level_value,
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


@settings(max_examples=300)
@given(
    members=st.dictionaries(st.text(max_size=6), values, min_size=1, max_size=6),
    key=st.text(max_size=6),
    old=values,
    new=values,
)
def test_a_top_level_value_replaced_in_canonical_text(
    members: dict[str, Any], key: str, old: Any, new: Any
) -> None:
    members.pop(key, None)
    text = canonical_json({**members, key: old})
    assert with_top_level_value(text, key, new) == canonical_json({**members, key: new})
    assert with_top_level_value(text, key, new, from_end=True) == canonical_json(
        {**members, key: new}
    )
    # No such member, or text in another layout: nothing is replaced.
    assert with_top_level_value(canonical_json(members), key, new) is None
    assert with_top_level_value(json.dumps({**members, key: old}), key, new) is None


@pytest.mark.parametrize(
    "module", ["seeknal.canonical", "seeknal.schemas", "seeknal.runtime.artifact"]
)
def test_the_examples_in_the_docstrings_hold(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed
