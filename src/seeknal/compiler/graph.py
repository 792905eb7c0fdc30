"""Pass 5: the DAG — dependency order and cycle detection."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a path that returns to its start (``[a, b, c, a]``), or None.

    ``edges[n]`` are the nodes ``n`` depends on. Deterministic: nodes are visited sorted.
    Iterative, so a long chain of nodes cannot exhaust Python's recursion limit.
    """
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    for root in sorted(edges):
        if root in state:
            continue
        path = [root]
        pending = [iter(sorted(d for d in edges[root] if d in edges))]
        state[root] = 1
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                # Report the cycle in dependency-flow order: upstream first.
                return list(reversed(cycle))
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                pending.append(iter(sorted(d for d in edges[dep] if d in edges)))
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
