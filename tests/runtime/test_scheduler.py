"""run_in_dag_order with real threads."""

from __future__ import annotations

import threading
import time

import pytest

from seeknal.runtime.scheduler import Progress, Tick, run_in_dag_order

# a -> b -> d, a -> c -> d, e independent
UPSTREAM = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}
NODES = ["a", "b", "c", "d", "e"]


def ticks_of(ticks: list[Tick[bool]], progress: Progress) -> list[str]:
    return [t.node for t in ticks if t.progress == progress]


def test_every_node_starts_after_its_upstream_finished() -> None:
    ticks = list(run_in_dag_order(NODES, UPSTREAM, lambda n: True, bool, threads=3))

    order = [(t.progress, t.node) for t in ticks]
    for node, ups in UPSTREAM.items():
        for up in ups:
            assert order.index((Progress.FINISHED, up)) < order.index((Progress.STARTED, node))
    assert sorted(ticks_of(ticks, Progress.FINISHED)) == NODES


def test_no_more_than_threads_builds_at_once() -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def build(node: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return True

    nodes = [f"n{i}" for i in range(8)]
    list(run_in_dag_order(nodes, {}, build, bool, threads=3))

    assert peak == 3


def test_independent_nodes_run_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def build(node: str) -> bool:
        barrier.wait()  # deadlocks (then times out) unless both run at once
        return True

    ticks = list(run_in_dag_order(["x", "y"], {}, build, bool, threads=2))

    assert sorted(ticks_of(ticks, Progress.FINISHED)) == ["x", "y"]


def test_failure_skips_every_downstream_node_once() -> None:
    ticks = list(run_in_dag_order(NODES, UPSTREAM, lambda n: n != "b", bool, threads=2))

    assert ticks_of(ticks, Progress.SKIPPED) == ["d"]
    skipped = next(t for t in ticks if t.progress == Progress.SKIPPED)
    assert skipped.cause == "b"
    assert sorted(ticks_of(ticks, Progress.FINISHED)) == ["a", "b", "c", "e"]
    assert "d" not in ticks_of(ticks, Progress.STARTED)


def test_failure_at_the_root_skips_the_whole_branch() -> None:
    ticks = list(run_in_dag_order(NODES, UPSTREAM, lambda n: n != "a", bool, threads=1))

    assert ticks_of(ticks, Progress.SKIPPED) == ["b", "c", "d"]
    assert ticks_of(ticks, Progress.FINISHED) == ["a", "e"]


def test_single_thread_follows_the_given_order() -> None:
    ticks = list(run_in_dag_order(NODES, UPSTREAM, lambda n: True, bool, threads=1))

    assert ticks_of(ticks, Progress.STARTED) == ["a", "b", "c", "d", "e"]


def test_an_exception_in_build_stops_new_work_and_propagates() -> None:
    started: list[str] = []

    def build(node: str) -> bool:
        started.append(node)
        if node == "a":
            raise RuntimeError("bug")
        return True

    with pytest.raises(RuntimeError, match="bug"):
        list(run_in_dag_order(["a", "b", "c"], {"b": {"a"}}, build, bool, threads=1))

    assert started == ["a"]


def test_upstream_outside_the_work_is_ignored() -> None:
    ticks = list(run_in_dag_order(["b"], {"b": {"a"}}, lambda n: True, bool, threads=1))

    assert ticks_of(ticks, Progress.FINISHED) == ["b"]
