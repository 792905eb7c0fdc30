"""Rules: data-quality assertions checked during a run, before anything is promoted.

A rule's snapshot is a view of the rows that violate it. After its inputs are built the
runtime counts those rows: none, and the rule passes; some, and a ``warn`` rule is
reported while an ``error`` rule fails the run — so the environment keeps pointing at
its previous, checked snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

from seeknal.engines.base import Engine, Relation

SAMPLE_ROWS = 5


@dataclass(frozen=True, slots=True)
class RuleResult:
    """How many rows violate a rule, and the first few of them, formatted."""

    violations: int
    sample: str = ""


def check_rule(engine: Engine, snapshot: str) -> RuleResult:
    """Count the violating rows of a built rule snapshot (a view)."""
    relation = Relation.parse(snapshot).sql
    _, counted = engine.query(f"SELECT COUNT(*) FROM {relation}")
    violations = int(counted[0][0]) if counted else 0
    if not violations:
        return RuleResult(0)
    columns, rows = engine.query(f"SELECT * FROM {relation}", limit=SAMPLE_ROWS)
    lines = [
        ", ".join(f"{c}={_show(v)}" for c, v in zip(columns, row, strict=True)) for row in rows
    ]
    more = f"\n  … and {violations - len(rows)} more" if violations > len(rows) else ""
    return RuleResult(violations, "\n".join(f"  {line}" for line in lines) + more)


def _show(value: object) -> str:
    """A value as a person reads it: strings quoted, NULL as NULL, the rest as printed."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return repr(value)
    return str(value)
