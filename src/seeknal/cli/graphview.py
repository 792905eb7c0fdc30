"""Node and column lineage walks over a plan, rendered as indented trees."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from seeknal.errors import SeeknalError

Key = tuple[str, str | None]  # (node id, column or None)


def _split(plan: dict[str, Any], target: str) -> Key:
    nodes = plan["nodes"]
    if target in nodes:
        return target, None
    node, _, column = target.rpartition(".")
    if node in nodes:
        names = [c["name"] for c in nodes[node].get("columns", [])]
        # Identifiers are case-insensitive: `amount` finds the column "Amount".
        column = next((n for n in names if n.lower() == column.lower()), column)
        if column not in names:
            close = difflib.get_close_matches(column, names, n=1)
            hint = f"did you mean '{node}.{close[0]}'?" if close else "columns: " + ", ".join(names)
            raise SeeknalError(f"node '{node}' has no column '{column}' ({hint})")
        return node, column
    close = difflib.get_close_matches(target, sorted(nodes), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise SeeknalError(f"unknown node '{target}'{hint}")


def _upstream(plan: dict[str, Any], key: Key) -> list[Key]:
    node = plan["nodes"][key[0]]
    if key[1] is None:
        return [(dep, None) for dep in node.get("depends_on", [])]
    for column in node.get("columns", []):
        if column["name"] == key[1]:
            return sorted({(ref["node"], ref["column"]) for ref in column["lineage"]})
    return []


def _downstream_index(plan: dict[str, Any]) -> dict[Key, list[Key]]:
    index: dict[Key, set[Key]] = {}
    for node_id, node in plan["nodes"].items():
        for dep in node.get("depends_on", []):
            index.setdefault((dep, None), set()).add((node_id, None))
        for column in node.get("columns", []):
            for ref in column["lineage"]:
                index.setdefault((ref["node"], ref["column"]), set()).add((node_id, column["name"]))
    return {k: sorted(v, key=lambda x: (x[0], x[1] or "")) for k, v in index.items()}


def _label(key: Key) -> str:
    return key[0] if key[1] is None else f"{key[0]}.{key[1]}"


def _tree(key: Key, children: Any, depth: int, seen: set[Key]) -> Iterator[str]:
    for child in children(key):
        yield "  " * depth + ("└─ " if depth else "") + _label(child)
        if child not in seen:
            seen.add(child)
            yield from _tree(child, children, depth + 1, seen)


def lineage_lines(plan: dict[str, Any], target: str, direction: str | None) -> Iterator[str]:
    """Lines of the upstream and/or downstream tree of a node or column."""
    key = _split(plan, target)
    yield _label(key)
    if direction in (None, "upstream"):
        yield "upstream:"
        lines = list(_tree(key, lambda k: _upstream(plan, k), 1, set()))
        yield from lines or ["  (none)"]
    if direction in (None, "downstream"):
        index = _downstream_index(plan)
        yield "downstream:"
        lines = list(_tree(key, lambda k: index.get(k, []), 1, set()))
        yield from lines or ["  (none)"]
