"""Engine SQL with slots: filling them gives exactly the text naming the tables would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seeknal.compiler.analysis import SLOT_PREFIX, SqlAnalysis, fill_slots, split_slots

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(
    pieces=st.lists(
        st.tuples(texts, st.sampled_from(["source", "transform", "seed"]), names),
        min_size=1,
        max_size=5,
    ),
    tail=texts,
    token=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
)
def test_split_then_fill_is_naming_the_tables(
    pieces: list[tuple[str, str, str]], tail: str, token: str
) -> None:
    refs = [f"{kind}.{name}_{i}" for i, (_, kind, name) in enumerate(pieces)]
    snapshots = {
        ref: f"seeknal__{ref.split('.')[0]}.{ref.split('.')[1]}__0123456789ab" for ref in refs
    }
    with_slots = (
        "".join(
            f'{text}"seeknal__{kind}"."{SLOT_PREFIX}{token}_{i}"'
            for i, (text, kind, _) in enumerate(pieces)
        )
        + tail
    )
    named = (
        "".join(
            f'{text}"{snapshots[ref].split(".")[0]}"."{snapshots[ref].split(".")[1]}"'
            for (text, _, _), ref in zip(pieces, refs, strict=True)
        )
        + tail
    )
    template = split_slots(with_slots, token, len(refs))
    assert fill_slots(template, refs, snapshots) == named


def test_a_slot_beyond_the_inputs_is_refused() -> None:
    with pytest.raises(ValueError):
        split_slots(f'SELECT * FROM "seeknal__source"."{SLOT_PREFIX}ab_3"', "ab", 1)


def test_a_cache_entry_for_other_inputs_is_not_an_analysis() -> None:
    analysis = SqlAnalysis(
        normalized="SELECT 1",
        engine=("SELECT * FROM ", 0),
        columns=(("a", "INTEGER", (("source.x", "a"),)),),
        reads={"source.x": ("a",)},
        row_reads={"source.x": ()},
    )
    entry = analysis.to_entry()
    assert SqlAnalysis.from_entry(entry, ["source.x"]) == analysis
    assert SqlAnalysis.from_entry(entry, ["source.y"]) is None  # other refs
    assert SqlAnalysis.from_entry({**entry, "engine": ["x", 1]}, ["source.x"]) is None
    assert SqlAnalysis.from_entry({**entry, "columns": [[1, None, []]]}, ["source.x"]) is None
    assert SqlAnalysis.from_entry([], ["source.x"]) is None
