"""Hints shared by the passes: the closest name to a mistyped one."""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, or None.

    Example:
        >>> did_you_mean("ordrs", ["orders", "payments"])
        "did you mean 'orders'?"
    """
    import difflib  # only when there is a diff or a hint to show

    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
