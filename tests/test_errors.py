"""Error excerpts: the line, a caret under the column, long lines cut around it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from seeknal.errors import EXCERPT_WIDTH, excerpt_at


def test_a_short_line_is_shown_whole_with_the_caret_under_the_column() -> None:
    assert excerpt_at("SELECT *\nFROM ordrs", 2, 6) == "   2 | FROM ordrs\n     |      ^"


@given(
    st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1),
    st.data(),
)
def test_the_caret_points_at_the_same_character_however_long_the_line(
    line: str, data: st.DataObject
) -> None:
    col = data.draw(st.integers(1, len(line)))
    shown, caret = excerpt_at(line, 1, col).split("\n")  # type: ignore[union-attr]
    source, under = shown[len("   1 | ") :], caret[len("     | ") :]
    assert under == " " * (len(under) - 1) + "^"
    assert source[len(under) - 1] == line[col - 1]
    assert len(source) <= EXCERPT_WIDTH + 6  # and the "..." each side
    if len(line) <= EXCERPT_WIDTH:
        assert source == line
