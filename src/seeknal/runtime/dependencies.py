"""Which work waits for which: node dependencies through nodes without work, rules that
gate their readers, and the jobs an incremental node's batches become.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from seeknal.runtime.incremental import Batch


def work_upstream(plan: dict[str, Any], work: set[str]) -> dict[str, set[str]]:
    """For each work node, the nearest work nodes upstream of it.

    Dependencies pass through nodes without work: if ``a`` (work) feeds ``b`` (no work)
    which feeds ``c`` (work), ``c`` still waits for ``a``.

    Example:
        >>> nodes = {"a": {"depends_on": []}, "b": {"depends_on": ["a"]},
        ...          "c": {"depends_on": ["b"]}}
        >>> work_upstream({"nodes": nodes}, {"a", "c"})
        {'a': set(), 'c': {'a'}}
    """
    nodes = plan["nodes"]
    nearest: dict[str, set[str]] = {}
    # Upstream before downstream (the plan is verified acyclic), without recursion:
    # a long chain of nodes must not hit Python's recursion limit.
    for node_id in _dependency_order(nodes):
        found: set[str] = set()
        for dep in nodes[node_id].get("depends_on", ()):
            found |= {dep} if dep in work else nearest[dep]
        nearest[node_id] = found
    return {node_id: nearest[node_id] for node_id in sorted(work)}


def gate_on_rules(plan: dict[str, Any], upstream: dict[str, set[str]]) -> dict[str, set[str]]:
    """Make readers of a rule's inputs wait for the rule, so a failed rule skips them.

    As in a dbt build: bad rows a rule catches in ``source.orders`` stop the nodes that
    read ``source.orders`` from being built on them. A node the rule itself reads (an
    ancestor of the rule) cannot wait for it, and does not.

    Example:
        >>> nodes = {"s": {"kind": "source", "depends_on": []},
        ...          "r": {"kind": "rule", "depends_on": ["s"]},
        ...          "t": {"kind": "transform", "depends_on": ["s"]}}
        >>> gate_on_rules({"nodes": nodes}, {"s": set(), "r": {"s"}, "t": {"s"}})["t"]
        {'r', 's'}
    """
    nodes = plan["nodes"]
    rules = [n for n in upstream if nodes[n]["kind"] == "rule"]
    if not rules:
        return upstream
    readers: dict[str, list[str]] = {n: [] for n in nodes}
    for node_id, node in nodes.items():
        for dep in node.get("depends_on", ()):
            readers[dep].append(node_id)
    gated = {n: set(ups) for n, ups in upstream.items()}
    for rule in rules:
        ancestors = reachable(rule, lambda n: nodes[n].get("depends_on", ()))
        below = set()
        for checked in nodes[rule].get("depends_on", ()):
            below |= reachable(checked, readers.__getitem__)
        for node_id in below & gated.keys():
            if node_id not in ancestors and nodes[node_id]["kind"] != "rule":
                gated[node_id].add(rule)
    return gated


def reachable(start: str, step: Callable[[str], Any]) -> set[str]:
    """Every node reached from ``start`` by ``step`` (``start`` itself excluded)."""
    seen: set[str] = set()
    frontier = list(step(start))
    while frontier:
        current = frontier.pop()
        if current not in seen:
            seen.add(current)
            frontier.extend(step(current))
    return seen


def _dependency_order(nodes: Mapping[str, Any]) -> list[str]:
    """Node ids, every node after all of its dependencies (Kahn's algorithm)."""
    waiting = {n: set(node.get("depends_on", ())) for n, node in nodes.items()}
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    for node_id, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(node_id)
    order = sorted(n for n, deps in waiting.items() if not deps)
    for node_id in order:  # the list grows while it is walked
        for child in dependents[node_id]:
            waiting[child].discard(node_id)
            if not waiting[child]:
                order.append(child)
    return order


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduler job: a node's build, or one batch of an incremental node.

    An incremental node's batches are separate jobs so that each is reported as it
    finishes and a failure stops the later ones; they run one after another, in time
    order. The first job of a node has the node's id, the others ``node#<index>``.
    """

    node: str
    batch: Batch | None = None
    first: bool = True
    last: bool = True


def expand_jobs(
    upstream: Mapping[str, set[str]], batches: Mapping[str, list[Batch]]
) -> tuple[dict[str, Job], dict[str, set[str]]]:
    """Jobs for nodes (in the order of ``upstream``) and what each job waits for.

    A node's first job waits for the last job of each node it waits for; every later
    batch waits for the one before it.

    Example:
        >>> jobs, waits = expand_jobs({"a": set(), "b": {"a"}}, {})
        >>> sorted(jobs), waits
        (['a', 'b'], {'a': set(), 'b': {'a'}})
    """
    jobs: dict[str, Job] = {}
    last: dict[str, str] = {}
    for node in upstream:
        node_batches: list[Batch | None] = [*batches.get(node, ())] or [None]
        for index, batch in enumerate(node_batches):
            job_id = node if index == 0 else f"{node}#{index}"
            jobs[job_id] = Job(node, batch, index == 0, index == len(node_batches) - 1)
            last[node] = job_id
    waits: dict[str, set[str]] = {}
    previous: str | None = None
    for job_id, job in jobs.items():
        if job.first:
            waits[job_id] = {last[u] for u in upstream[job.node] if u in last}
        else:
            assert previous is not None
            waits[job_id] = {previous}
        previous = job_id
    return jobs, waits
