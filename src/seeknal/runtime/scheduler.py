"""Run work items in DAG order on a thread pool, reporting progress to the caller's thread.

A work item starts as soon as all its upstream work items finished; a failed item's
downstream items are skipped, and independent items keep going. The scheduler knows
nothing about SQL or state: it calls ``build`` and asks ``succeeded`` about the result.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


class Progress(enum.StrEnum):
    """What happened to one work item."""

    STARTED = "started"
    FINISHED = "finished"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Tick(Generic[R]):
    """One step of progress.

    Attributes:
        progress: Started, finished (successfully or not: see ``outcome``) or skipped.
        node: The work item's node id.
        outcome: What ``build`` returned, on ``finished``.
        cause: The failed upstream node, on ``skipped``.
    """

    progress: Progress
    node: str
    outcome: R | None = None
    cause: str | None = None


def run_in_dag_order(
    nodes: Sequence[str],
    upstream: Mapping[str, set[str]],
    build: Callable[[str], R],
    succeeded: Callable[[R], bool],
    *,
    threads: int,
) -> Iterator[Tick[R]]:
    """Build every node after its upstream nodes, ``threads`` at a time.

    Every tick is yielded in the caller's thread. At most ``threads`` items are in
    flight, so ``started`` means a worker really began it. Among items ready at the same
    moment, the order of ``nodes`` decides. An exception raised by ``build`` (rather
    than a failed outcome) is a bug: nothing new starts, the running items finish, and
    it propagates.

    Args:
        nodes: The work items to run.
        upstream: For each node, the nodes (among ``nodes``) it waits for; any others are
            ignored.
        build: Runs one node in a worker thread.
        succeeded: Whether an outcome of ``build`` lets downstream nodes run.
        threads: Worker threads (at least 1).

    Example:
        >>> ticks = run_in_dag_order(
        ...     ["a", "b"], {"b": {"a"}}, build=len, succeeded=bool, threads=2
        ... )
        >>> [(t.progress.value, t.node) for t in ticks]
        [('started', 'a'), ('finished', 'a'), ('started', 'b'), ('finished', 'b')]
    """
    rank = {node: i for i, node in enumerate(nodes)}
    waiting = {n: {u for u in upstream.get(n, ()) if u in rank and u != n} for n in nodes}
    downstream: dict[str, list[str]] = {n: [] for n in nodes}
    for node, ups in waiting.items():
        for up in ups:
            downstream[up].append(node)
    ready = [n for n in nodes if not waiting[n]]
    skipped: set[str] = set()
    running: dict[Future[R], str] = {}
    fatal: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seeknal-build")
    try:
        while ready or running:
            while ready and fatal is None and len(running) < threads:
                node = ready.pop(0)
                yield Tick(Progress.STARTED, node)
                running[pool.submit(build, node)] = node
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: rank[running[f]]):
                node = running.pop(future)
                error = future.exception()
                if error is not None:
                    fatal = fatal or error
                    continue
                outcome = future.result()
                yield Tick(Progress.FINISHED, node, outcome=outcome)
                if succeeded(outcome):
                    for child in downstream[node]:
                        waiting[child].discard(node)
                        if not waiting[child] and child not in skipped:
                            ready.append(child)
                    ready.sort(key=rank.__getitem__)
                else:
                    for child in _descendants(node, downstream):
                        if child not in skipped:
                            skipped.add(child)
                            yield Tick(Progress.SKIPPED, child, cause=node)
                    ready = [n for n in ready if n not in skipped]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if fatal is not None:
        raise fatal


def _descendants(node: str, downstream: Mapping[str, list[str]]) -> list[str]:
    """Every node below ``node``, nearest first, each once."""
    seen: dict[str, None] = {}
    frontier = list(downstream[node])
    while frontier:
        child = frontier.pop(0)
        if child not in seen:
            seen[child] = None
            frontier.extend(downstream[child])
    return list(seen)
