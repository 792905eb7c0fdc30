"""Pass 5: the DAG — dependency order and cycle detection."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a path that returns to its start (``[a, b, c, a]``), or None.

    ``edges[n]`` are the nodes ``n`` depends on. Deterministic: nodes are visited sorted.
    """
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if dep not in edges:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            # Report the cycle in dependency-flow order: upstream first.
            return list(reversed(cycle))
    return None


def order_nodes(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Topological order (dependencies first), ties broken by node id.

    Raises:
        ValueError: if the graph has a cycle (callers check ``find_cycle`` first).
    """
    indegree = {n: 0 for n in edges}
    children: dict[str, list[str]] = {n: [] for n in edges}
    for node, deps in edges.items():
        for dep in set(deps):
            if dep in edges:
                indegree[node] += 1
                children[dep].append(node)
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        out.append(node)
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    if len(out) != len(edges):
        raise ValueError("graph has a cycle")
    return out
