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
            raise SeeknalError(f"node '{node}' has no column '{column}'", hint=hint)
        return node, column
    suggestion = closest_node(sorted(nodes), target)
    kind = target.partition(".")[0]
    of_kind = sorted(n for n in nodes if n.partition(".")[0] == kind)
    if suggestion:
        hint = f"did you mean '{suggestion}'?"
    elif of_kind:
        hint = f"its {kind} nodes: " + ", ".join(of_kind[:12])
    else:
        hint = "a target is a node id (kind.name) or node.column, e.g. " + min(nodes, default="")
    raise SeeknalError(f"unknown node '{target}'", hint=hint)


def closest_node(nodes: list[str], target: str) -> str | None:
    """The node (or node.column) ``target`` most likely meant, comparing names within a kind.

    Whole ids would all look alike (every transform starts with ``transform.``), so
    ``transform.nope`` would "match" any transform. As in `seeknal show`, the name part
    is compared with the names of the same kind (of every kind when the kind is wrong).

    Example:
        >>> closest_node(["source.orders", "transform.daily_revenue"], "transform.daily_revenu.x")
        'transform.daily_revenue.x'
        >>> closest_node(["source.orders", "transform.daily_revenue"], "transform.nope") is None
        True
    """
    kind, _, rest = target.partition(".")
    same_kind = [n for n in nodes if n.partition(".")[0] == kind]
    by_name = {n.partition(".")[2]: n for n in (same_kind or nodes)}
    name, _, column = rest.rpartition(".")
    # NODE.COLUMN first (the name before the last dot), then the whole rest as NODE.
    for guess, suffix in ((name, f".{column}"), (rest, "")):
        if not guess:
            continue
        close = difflib.get_close_matches(guess, list(by_name), n=1)
        if close:
            return by_name[close[0]] + suffix
    return None


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


def _tree(key: Key, children: Any, prefix: str, seen: set[Key]) -> Iterator[str]:
    """Box-drawn tree below ``key``: ``├─`` for a sibling with more after it, ``└─`` last.

    A node reached twice is shown again but not expanded again.
    """
    below = list(children(key))
    for i, child in enumerate(below):
        last = i == len(below) - 1
        yield prefix + ("└─ " if last else "├─ ") + _label(child)
        if child not in seen:
            seen.add(child)
            yield from _tree(child, children, prefix + ("   " if last else "│  "), seen)


def lineage_lines(
    plan: dict[str, Any], target: str, *, upstream: bool = True, downstream: bool = True
) -> Iterator[str]:
    """Lines of the upstream and/or downstream tree of a node or column.

    Example:
        >>> list(lineage_lines(plan, "transform.daily_revenue", downstream=False))  # doctest: +SKIP
        ['transform.daily_revenue', 'upstream:', '  └─ transform.stg_orders', '     └─ source.orders']
    """
    key = _split(plan, target)
    yield _label(key)
    if upstream:
        yield "upstream:"
        lines = list(_tree(key, lambda k: _upstream(plan, k), "  ", set()))
        yield from lines or ["  (none)"]
    if downstream:
        index = _downstream_index(plan)
        yield "downstream:"
        lines = list(_tree(key, lambda k: index.get(k, []), "  ", set()))
        yield from lines or ["  (none)"]
