"""run_in_dag_order with real threads."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_ctrl_c_while_waiting_cancels_the_running_builds_and_propagates() -> None:
    release = threading.Event()
    cancelled: list[str] = []
    finished: list[str] = []

    def build(node: str) -> bool:
        time.sleep(0.2)  # the main thread is waiting for the build by now
        # What Ctrl-C does: SIGINT to the main thread, which raises KeyboardInterrupt there.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        release.wait(timeout=30)  # a long query, until cancelled
        finished.append(node)
        return True

    def cancel() -> None:
        cancelled.append("cancel")
        release.set()

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(run_in_dag_order(["a", "b"], {"b": {"a"}}, build, bool, threads=1, cancel=cancel))

    assert time.monotonic() - started < 10
    assert cancelled == ["cancel"]
    assert finished == ["a"]  # joined before the interruption propagated; b never started


def test_closing_the_iterator_early_cancels_and_joins_the_running_builds() -> None:
    release = threading.Event()
    finished: list[str] = []

    def build(node: str) -> bool:
        release.wait(timeout=30)
        finished.append(node)
        return True

    ticks = run_in_dag_order(["a", "b"], {}, build, bool, threads=2, cancel=release.set)
    assert [next(ticks).node, next(ticks).node] == ["a", "b"]  # started
    ticks.close()  # a caller that stops iterating, e.g. because its callback raised

    assert release.is_set()
    assert finished == ["a"]  # the running build was waited for; b was never submitted


def test_an_uninterrupted_run_never_cancels() -> None:
    cancelled: list[bool] = []

    ticks = list(
        run_in_dag_order(
            NODES,
            UPSTREAM,
            lambda n: n != "b",
            bool,
            threads=2,
            cancel=lambda: cancelled.append(True),
        )
    )

    assert ticks and cancelled == []


def _reference_order(
    nodes: list[str], upstream: dict[str, set[str]], fails: set[str]
) -> list[tuple[str, str]]:
    """The scheduler's single-thread order as first written (list pop + sort): the spec."""
    rank = {node: i for i, node in enumerate(nodes)}
    waiting = {n: {u for u in upstream.get(n, ()) if u in rank and u != n} for n in nodes}
    downstream: dict[str, list[str]] = {n: [] for n in nodes}
    for node, ups in waiting.items():
        for up in ups:
            downstream[up].append(node)
    ready = [n for n in nodes if not waiting[n]]
    skipped: set[str] = set()
    out: list[tuple[str, str]] = []
    while ready:
        node = ready.pop(0)
        out += [("started", node), ("finished", node)]
        if node not in fails:
            for child in downstream[node]:
                waiting[child].discard(node)
                if not waiting[child] and child not in skipped:
                    ready.append(child)
            ready.sort(key=rank.__getitem__)
        else:
            seen: dict[str, None] = {}
            frontier = list(downstream[node])
            while frontier:
                child = frontier.pop(0)
                if child not in seen:
                    seen[child] = None
                    frontier.extend(downstream[child])
            for child in seen:
                if child not in skipped:
                    skipped.add(child)
                    out.append(("skipped", child))
            ready = [n for n in ready if n not in skipped]
    return out


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, set[str]], set[str]]:
    size = draw(st.integers(1, 14))
    names = [f"n{i}" for i in range(size)]
    upstream = {
        name: {names[j] for j in draw(st.sets(st.integers(0, i - 1), max_size=3))} if i else set()
        for i, name in enumerate(names)
    }
    order = draw(st.permutations(names))  # the work list's order, not the DAG's
    fails = draw(st.sets(st.sampled_from(names), max_size=2))
    return list(order), upstream, fails


@settings(max_examples=150, deadline=None)
@given(dags())
def test_single_thread_order_is_the_reference_order(
    dag: tuple[list[str], dict[str, set[str]], set[str]],
) -> None:
    nodes, upstream, fails = dag

    ticks = run_in_dag_order(nodes, upstream, lambda n: n not in fails, bool, threads=1)

    assert [(t.progress.value, t.node) for t in ticks] == _reference_order(nodes, upstream, fails)


def test_many_ready_nodes_are_scheduled_in_linear_time() -> None:
    # 20,000 nodes all ready at once: a sort of the ready list after every completion
    # (as the scheduler once did) takes minutes here; a heap takes about a second.
    nodes = [f"n{i:05d}" for i in range(20_000)]
    started = time.monotonic()

    ticks = list(run_in_dag_order(nodes, {}, lambda n: True, bool, threads=1))

    assert ticks_of(ticks, Progress.STARTED) == nodes
    assert time.monotonic() - started < 20
