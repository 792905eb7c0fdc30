"""The Python examples of the API pages under docs/api, run as doctests.

Every ```python fence of a page is a doctest (``>>>`` lines and the output they show);
the fences of one page share their names, in order, so a page reads as one session.
"""

from __future__ import annotations

import doctest
import re
import sys
from pathlib import Path

import pytest

API_DIR = Path(__file__).resolve().parents[2] / "docs" / "api"
PAGES = sorted(p.name for p in API_DIR.glob("*.md"))
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_fences(markdown: str) -> list[tuple[int, str]]:
    """(line, code) of every ```python fence.

    >>> python_fences("text\\n```python\\n>>> 1\\n1\\n```\\n")
    [(2, '>>> 1\\n1\\n')]
    """
    return [(markdown.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(markdown)]


def test_fences_are_found() -> None:
    assert doctest.testmod(sys.modules[__name__]).failed == 0
    assert "change-detection.md" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_api_page_examples(page: str) -> None:
    text = (API_DIR / page).read_text(encoding="utf-8")
    fences = python_fences(text)
    assert fences, f"{page} has no python examples"
    names: dict[str, object] = {}
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for line, code in fences:
        test = parser.get_doctest(code, names, f"{page}:{line}", page, line)
        assert test.examples, f"{page}:{line}: a python fence without >>> examples"
        result = runner.run(test, clear_globs=False)
        names.update(test.globs)  # a DocTest runs in a copy of the names it is given
        assert result.failed == 0, f"{page}:{line}: {result.failed} example(s) failed (see above)"
