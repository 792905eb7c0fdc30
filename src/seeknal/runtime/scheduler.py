"""Run work items in DAG order on a thread pool, reporting progress to the caller's thread.

A work item starts as soon as all its upstream work items finished; a failed item's
downstream items are skipped, and independent items keep going. The scheduler knows
nothing about SQL or state: it calls ``build`` and asks ``succeeded`` about the result.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")

# seeknal's own threads compile and run SQL that recurses as deep as it nests, as the
# main thread would. Some platforms give other threads much smaller stacks than the
# main thread's (musl: 128 KiB); this is address space reserved, not memory used.
THREAD_STACK_BYTES = 64 << 20


@contextlib.contextmanager
def thread_stack(size: int = THREAD_STACK_BYTES) -> Iterator[None]:
    """Threads started meanwhile get stacks of ``size`` bytes (the setting is the
    process's, so it is put back at once)."""
    previous = threading.stack_size(size)
    try:
        yield
    finally:
        threading.stack_size(previous)


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
    cancel: Callable[[], None] | None = None,
) -> Generator[Tick[R], None, None]:
    """Build every node after its upstream nodes, ``threads`` at a time.

    Every tick is yielded in the caller's thread. At most ``threads`` items are in
    flight, so ``started`` means a worker really began it. Among items ready at the same
    moment, the order of ``nodes`` decides. An exception raised by ``build`` (rather
    than a failed outcome) is a bug: nothing new starts, the running items finish, and
    it propagates.

    When the caller's thread is interrupted (Ctrl-C raises ``KeyboardInterrupt`` there,
    usually while waiting here) or the caller closes the iterator, nothing new starts,
    ``cancel`` is called so the running items can return early, and the iterator waits
    for them before the interruption propagates: no build outlives it.

    Args:
        nodes: The work items to run.
        upstream: For each node, the nodes (among ``nodes``) it waits for; any others are
            ignored.
        build: Runs one node in a worker thread.
        succeeded: Whether an outcome of ``build`` lets downstream nodes run.
        threads: Worker threads (at least 1).
        cancel: Called in the caller's thread when the run stops early; it should make
            running items return soon (e.g. interrupt their queries).

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
    # A heap of ranks: the earliest ready node in O(log n), never a sort per completion
    # (which made a project of thousands of nodes quadratic).
    ready = [rank[n] for n in nodes if not waiting[n]]
    heapq.heapify(ready)
    skipped: set[str] = set()
    running: dict[Future[R], str] = {}
    fatal: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seeknal-build")
    try:
        while ready or running:
            while ready and fatal is None and len(running) < threads:
                node = nodes[heapq.heappop(ready)]
                if node in skipped:
                    continue
                yield Tick(Progress.STARTED, node)
                with thread_stack():  # the pool starts its threads as work is submitted
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
                            heapq.heappush(ready, rank[child])
                else:
                    for child in _descendants(node, downstream):
                        if child not in skipped:
                            skipped.add(child)
                            yield Tick(Progress.SKIPPED, child, cause=node)
    except BaseException:
        # Ctrl-C or the caller gave up: stop the running builds instead of waiting for
        # them to finish on their own (a long query would hold the process for minutes).
        if cancel is not None:
            cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if fatal is not None:
        raise fatal


def _descendants(node: str, downstream: Mapping[str, list[str]]) -> list[str]:
    """Every node below ``node``, nearest first, each once."""
    seen: dict[str, None] = {}
    frontier = deque(downstream[node])
    while frontier:
        child = frontier.popleft()
        if child not in seen:
            seen[child] = None
            frontier.extend(downstream[child])
    return list(seen)
