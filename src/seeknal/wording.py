"""How seeknal words counts in what it prints: one wording for every message."""

from __future__ import annotations


def count_of(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless it is one.

    Example:
        >>> count_of(1, "row"), count_of(3, "violating row"), count_of(1000, "node")
        ('1 row', '3 violating rows', '1,000 nodes')
    """
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
