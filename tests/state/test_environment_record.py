"""``holds_environment`` is ``environment_record(plan) == record``, compared in place."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from seeknal.state.base import environment_record, holds_environment

NAMES = st.sampled_from(["a", "b", "c", "d"])
COLUMNS = st.lists(
    st.fixed_dictionaries(
        {"name": NAMES, "type": st.sampled_from(["INTEGER", "VARCHAR"])},
        optional={"description": st.just("kept out of the record")},
    ),
    max_size=3,
)
NODE = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["source", "transform"]),
        "materialized": st.sampled_from(["table", "view"]),
        "snapshot": NAMES,
        "fingerprint": NAMES,
        "data_version": NAMES,
        "columns": COLUMNS,
        "sql": st.fixed_dictionaries({"normalized": NAMES, "engine": NAMES}),
        "change": st.fixed_dictionaries(
            {"category": st.sampled_from(["unchanged", "breaking", "removed"])}
        ),
    }
)
PLANS = st.fixed_dictionaries({"nodes": st.dictionaries(NAMES, NODE, max_size=4)})


def changed(record: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``record`` with one thing changed, as a damaged or older state might hold it."""
    out = copy.deepcopy(record)
    nodes = out["nodes"]
    choice = data.draw(st.sampled_from(["drop", "add", "field", "column", "extra", "top"]))
    if choice == "top":
        out["other"] = 1
    elif choice == "add" or not nodes:
        nodes["zz"] = {}
    else:
        node = nodes[data.draw(st.sampled_from(sorted(nodes)))]
        if choice == "drop":
            del nodes[next(iter(nodes))]
        elif choice == "field":
            node[data.draw(st.sampled_from(sorted(node)))] = "other"
        elif choice == "column":
            node["columns"] = [*node["columns"], {"name": "x", "type": "INTEGER"}]
        else:
            node["extra"] = True
    return out


@settings(max_examples=300, deadline=None)
@given(plan=PLANS, data=st.data())
def test_holds_environment_is_the_record_compared(
    plan: dict[str, Any], data: st.DataObject
) -> None:
    record = environment_record(plan)
    assert holds_environment(plan, record)
    assert holds_environment(plan, copy.deepcopy(record))
    other = changed(record, data)
    assert holds_environment(plan, other) == (environment_record(plan) == other)
    other_plan = data.draw(PLANS)
    assert holds_environment(other_plan, record) == (environment_record(other_plan) == record)


def test_no_record_or_another_shape_is_not_held() -> None:
    plan: dict[str, Any] = {"nodes": {}}
    assert not holds_environment(plan, None)
    assert not holds_environment(plan, {"nodes": []})
    assert not holds_environment(plan, {})


def test_a_state_made_from_another_keeps_none_of_its_read_bytes_or_hashes() -> None:
    import dataclasses

    from seeknal.state.base import State

    read = State()
    read.remember_source(b"document", b"{}")
    read.remember_hashes({"prod": "0" * 64})
    made = dataclasses.replace(read, snapshots={"s.t": {}})
    # Other content: it must not pass for the bytes read, nor for their hashes.
    assert read.source_digest() is not None and made.source_digest() is None
    assert made.environment_hash("prod") is None
