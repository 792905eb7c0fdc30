"""Execute a plan: check it is still applicable, build its snapshots, promote its views.

The order of side effects is what makes a run safe to repeat:

1. the state lock is taken before anything writes;
2. staleness is decided before the warehouse is even opened, so a refused plan leaves
   no trace;
3. each snapshot is committed in the engine, then recorded in state: a crash in between
   repeats that build next time, and ``CREATE OR REPLACE`` makes the repeat harmless;
4. views are promoted only when every snapshot was built, so an environment never
   points at half a plan.

Executing the same plan again after a failure (or a crash) therefore resumes it: the
snapshots state already records are reused.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seeknal.canonical import file_sha256
from seeknal.engines.base import Engine, EngineError, Materialization, Relation
from seeknal.errors import ExecutionError, NodeFailure, SeeknalError, StaleError
from seeknal.runtime.artifact import verify_plan
from seeknal.runtime.connection import connection_of, declared_data_files, open_connection
from seeknal.runtime.events import Event, EventKind, RunResult
from seeknal.runtime.promote import promote_environment
from seeknal.runtime.rules import check_rule
from seeknal.runtime.scheduler import Progress, run_in_dag_order
from seeknal.runtime.staleness import stale_reasons
from seeknal.state import open_state
from seeknal.state.base import State, StateBackend
from seeknal.wording import count_of

EXCERPT_LINES = 8


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One snapshot to build, with everything the build needs from the plan."""

    node: str
    snapshot: str
    reason: str
    kind: str
    materialized: Materialization
    sql: str
    data_version: str
    severity: str | None = None  # rules only: "error" or "warn"
    columns: tuple[tuple[str, str], ...] = ()

    def record(self, rows: int | None) -> dict[str, Any]:
        """The state record of this snapshot once built."""
        return {
            "node": self.node,
            "kind": self.kind,
            "materialized": self.materialized.value,
            "data_version": self.data_version,
            "rows": rows,
        }


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """What one build did: rows on success, the engine's refusal on failure."""

    seconds: float
    rows: int | None = None
    error: EngineError | None = None


def execute_plan(
    plan: dict[str, Any],
    project_dir: Path,
    *,
    threads: int = 4,
    force: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> RunResult:
    """Run ``plan`` against its target warehouse and state, then promote its environment.

    Args:
        plan: The plan (verified again here: nothing unverified ever runs).
        project_dir: The project the plan was compiled from; the plan's warehouse,
            state and data file paths are relative to it.
        threads: Snapshots built at the same time.
        force: Run even when the plan is stale.
        on_event: Called with every :class:`Event`, always in the calling thread.

    Returns:
        What the run built, reused and whether it promoted.

    Raises:
        PlanError: The plan is invalid or tampered with.
        StaleError: The environment or a data file changed since the plan was compiled.
        StateError: The state is unreadable, or another run holds its lock.
        ExecutionError: Some nodes failed; the others were built and recorded, nothing
            was promoted, and executing the plan again resumes the run.
        EngineError: The warehouse cannot be opened or promotion failed.
        KeyboardInterrupt: Ctrl-C. The running queries were interrupted and nothing was
            promoted; snapshots committed before are recorded, so executing the plan
            again resumes the run.

    Example:
        >>> result = execute_plan(load_plan("target/plan.json"), Path("."))  # doctest: +SKIP
        >>> result.built  # doctest: +SKIP
        ('source.orders', 'transform.daily_revenue')
    """
    if threads < 1:
        raise SeeknalError(f"threads must be at least 1, not {threads}")
    plan = verify_plan(plan)
    emit = on_event or _ignore
    started = time.monotonic()
    project_dir = Path(project_dir).resolve()
    env = plan["environment"]
    target = plan["target"]
    # Before anything is locked or opened: a missing profile or variable changes nothing.
    connection = connection_of(plan, project_dir)
    data_files = declared_data_files(plan, project_dir)
    state = open_state(target["state"]["backend"], str(project_dir / target["state"]["path"]))
    with state.lock():
        current = state.read()
        reasons = stale_reasons(plan, current, project_dir)
        if reasons and not force:
            raise StaleError(
                "plan is stale: " + "; ".join(reasons), hint="compile again, or pass --force"
            )
        emit(
            Event(
                EventKind.RUN_STARTED,
                environment=env,
                message=f"executing plan {plan['plan_id'][:12]} on environment '{env}'"
                + (f" (forced past: {'; '.join(reasons)})" if reasons else ""),
            )
        )
        engine = open_connection(
            connection, file_search_path=project_dir, readable_files=data_files
        )
        try:
            present = engine.relations()  # one catalog lookup for the whole run
            lost = lost_snapshots(plan, present, project_dir, force=force)
            built, reused, failures, skipped = _build_work(
                plan, lost, engine, present, state, current, threads, emit
            )
            if failures:
                _finish(emit, env, started, f"{count_of(len(failures), 'node')} failed")
                raise ExecutionError(failures, skipped)
            promoted = promote_environment(engine, state, plan)
        finally:
            engine.close()
    if promoted:
        emit(
            Event(
                EventKind.PROMOTED,
                environment=env,
                message=f"environment '{env}' now has {len(plan['promotion'])} view(s)",
            )
        )
    elif not built:
        emit(
            Event(
                EventKind.NOTHING_TO_DO,
                environment=env,
                message=f"nothing to do: environment '{env}' is up to date",
            )
        )
    # Every node the environment now holds that this run did not build kept its
    # snapshot: unchanged nodes as well as work an earlier run had already done.
    built_now = set(built)
    kept = [
        node_id
        for node_id, node in plan["nodes"].items()
        if node["change"]["category"] != "removed" and node_id not in built_now
    ]
    seconds = _finish(emit, env, started, f"built {len(built)}, reused {len(kept)}")
    return RunResult(
        environment=env,
        plan_id=plan["plan_id"],
        built=tuple(sorted(built)),
        reused=tuple(sorted(reused)),
        promoted=promoted,
        seconds=seconds,
    )


def work_items(plan: dict[str, Any]) -> list[WorkItem]:
    """The plan's work list, each item joined with its node."""
    return [
        _work_item(entry["node"], plan["nodes"][entry["node"]], entry["reason"])
        for entry in plan["work"]
    ]


def _work_item(node_id: str, node: dict[str, Any], reason: str) -> WorkItem:
    return WorkItem(
        node=node_id,
        snapshot=node["snapshot"],
        reason=reason,
        kind=node["kind"],
        materialized=Materialization(node["materialized"]),
        sql=node["sql"]["engine"],
        data_version=node["data_version"],
        severity=node.get("severity"),
        columns=tuple((c["name"], c["type"]) for c in node.get("columns", ()) if c.get("type")),
    )


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
        ancestors = _reachable(rule, lambda n: nodes[n].get("depends_on", ()))
        below = set()
        for checked in nodes[rule].get("depends_on", ()):
            below |= _reachable(checked, readers.__getitem__)
        for node_id in below & gated.keys():
            if node_id not in ancestors and nodes[node_id]["kind"] != "rule":
                gated[node_id].add(rule)
    return gated


def _reachable(start: str, step: Callable[[str], Any]) -> set[str]:
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


def sql_excerpt(sql: str, lines: int = EXCERPT_LINES) -> str:
    """The first ``lines`` lines of ``sql``, with a marker when there are more.

    Example:
        >>> sql_excerpt("SELECT 1\\nFROM t\\nWHERE x", lines=2)
        'SELECT 1\\nFROM t\\n...'
    """
    all_lines = sql.strip().splitlines()
    head = all_lines[:lines]
    return "\n".join(head + (["..."] if len(all_lines) > lines else []))


def lost_snapshots(
    plan: dict[str, Any], present: frozenset[str], project_dir: Path, *, force: bool = False
) -> list[WorkItem]:
    """Snapshots the plan reuses but the warehouse no longer has, as work (reason ``missing``).

    State and warehouse are a pair; when the warehouse file was deleted or replaced,
    promoting would point views at nothing. Each lost snapshot is rebuilt from the plan's
    own SQL for it — the definition the plan was reviewed with, so the same snapshot — after
    checking, like any source load, that its data file is still the one the plan saw.

    Raises:
        StaleError: a lost source's data file changed since compile (unless ``force``).
    """
    planned = {entry["node"] for entry in plan["work"]}
    lost: list[WorkItem] = []
    for node_id, node in sorted(plan["nodes"].items()):
        if node_id in planned or node["change"]["category"] == "removed":
            continue
        if node["snapshot"].lower() in present:
            continue
        data_file = node.get("data_file")
        if data_file and not force:
            path = project_dir / data_file["path"]
            if not path.is_file() or file_sha256(path) != data_file["sha256"]:
                raise StaleError(
                    f"plan is stale: {data_file['path']} changed since this plan was compiled, "
                    f"and the warehouse lost {node['snapshot']}",
                    hint="compile again, or pass --force",
                )
        lost.append(_work_item(node_id, node, "missing"))
    return lost


def _build_work(
    plan: dict[str, Any],
    lost: list[WorkItem],
    engine: Engine,
    present: frozenset[str],
    state: StateBackend,
    current: State,
    threads: int,
    emit: Callable[[Event], None],
) -> tuple[list[str], list[str], list[NodeFailure], list[str]]:
    """Reuse what state already holds, build the rest; return built, reused, failures, skipped."""
    env = plan["environment"]
    items = work_items(plan) + lost
    to_build: dict[str, WorkItem] = {}
    reused: list[str] = []
    for item in items:
        if _already_built(item, current, present):
            reused.append(item.node)
            emit(
                Event(
                    EventKind.NODE_REUSED,
                    node=item.node,
                    snapshot=item.snapshot,
                    reason="already_built",
                    environment=env,
                    message=f"{item.node}: reusing {item.snapshot}, built by an earlier run",
                )
            )
        else:
            to_build[item.node] = item
    engine.ensure_schemas(Relation.parse(i.snapshot).schema for i in to_build.values())

    def build(node_id: str) -> BuildOutcome:
        item = to_build[node_id]
        return _build_one(engine, state, item, in_place=item.snapshot in current.snapshots)

    built: list[str] = []
    failed: list[tuple[WorkItem, EngineError]] = []
    skipped_by: dict[str, list[str]] = {}
    ticks = run_in_dag_order(
        list(to_build),
        gate_on_rules(plan, work_upstream(plan, set(to_build))),
        build,
        succeeded=lambda outcome: outcome.error is None,
        threads=threads,
        # Ctrl-C: stop the running queries now. Snapshots already committed stay
        # recorded, so the next run resumes; the interruption propagates.
        cancel=engine.interrupt,
    )
    # Closed on any way out (an exception raised by ``emit``, Ctrl-C while it prints),
    # so the scheduler cancels and joins its builds before the engine is closed.
    with contextlib.closing(ticks):
        for tick in ticks:
            item = to_build[tick.node]
            if tick.progress == Progress.STARTED:
                emit(_started(item, env))
            elif tick.progress == Progress.SKIPPED:
                skipped_by.setdefault(tick.cause or "", []).append(item.node)
                emit(_skipped(item, tick.cause, env))
            elif tick.outcome is not None and tick.outcome.error is None:
                built.append(item.node)
                emit(_built(item, tick.outcome, env))
            elif tick.outcome is not None and tick.outcome.error is not None:
                failed.append((item, tick.outcome.error))
                emit(_failed(item, tick.outcome, env))
    failures = [
        NodeFailure(
            item.node,
            str(error),
            sql_excerpt(item.sql),
            skipped=tuple(sorted(skipped_by.get(item.node, ()))),
            file=plan["nodes"][item.node].get("file"),
        )
        for item, error in failed
    ]
    skipped = sorted(n for nodes in skipped_by.values() for n in nodes)
    return built, reused, failures, skipped


def _already_built(item: WorkItem, current: State, present: frozenset[str]) -> bool:
    record = current.snapshots.get(item.snapshot)
    # The relation check catches a warehouse deleted or replaced behind state's back.
    return (
        # Adding a forward-only change's columns is idempotent and cheap: always done.
        item.reason != FORWARD_ONLY
        and record is not None
        and record["data_version"] == item.data_version
        and record["materialized"] == item.materialized.value
        and item.snapshot.lower() in present
    )


INVALIDATED = "invalidated"
FORWARD_ONLY = "forward_only"


def _build_one(
    engine: Engine, state: StateBackend, item: WorkItem, *, in_place: bool = False
) -> BuildOutcome:
    """Runs in a worker thread: engine commit first, then the state record.

    Rebuilding a snapshot in place (its data files changed), state's record of it is
    invalidated first: a crash after the engine commits but before the new record is
    written must not leave state vouching for the old rows of a table holding new ones.

    For a rule, ``rows`` is the number of violating rows. A violated ``error`` rule is
    a failure and is not recorded, so the next run checks it again.
    """
    started = time.monotonic()
    if item.reason == FORWARD_ONLY:
        # The table is kept: it only gains the new columns (NULL in its existing rows).
        try:
            if item.materialized == Materialization.TABLE:
                engine.add_columns(item.snapshot, item.columns)
        except EngineError as exc:
            return BuildOutcome(seconds=time.monotonic() - started, error=exc)
        state.record_snapshot(item.snapshot, item.record(None))
        return BuildOutcome(seconds=time.monotonic() - started)
    if in_place:
        state.record_snapshot(item.snapshot, {**item.record(None), "data_version": INVALIDATED})
    try:
        rows = engine.build_snapshot(item.snapshot, item.sql, item.materialized)
        if item.kind == "rule":
            result = check_rule(engine, item.snapshot)
            rows = result.violations
            if result.violations and item.severity != "warn":
                noun = "row violates" if result.violations == 1 else "rows violate"  # verb agrees
                raise EngineError(
                    f"{result.violations} {noun} this rule:\n{result.sample}",
                    sql=item.sql,
                    hint="`seeknal query` the rule's SQL to see every violation",
                )
    except EngineError as exc:
        return BuildOutcome(seconds=time.monotonic() - started, error=exc)
    state.record_snapshot(item.snapshot, item.record(rows))
    return BuildOutcome(seconds=time.monotonic() - started, rows=rows)


def _started(item: WorkItem, env: str) -> Event:
    return Event(
        EventKind.NODE_STARTED,
        node=item.node,
        snapshot=item.snapshot,
        reason=item.reason,
        environment=env,
        message=f"{item.node}: building {item.materialized.value} {item.snapshot} ({item.reason})",
    )


def _skipped(item: WorkItem, cause: str | None, env: str) -> Event:
    return Event(
        EventKind.NODE_SKIPPED,
        node=item.node,
        snapshot=item.snapshot,
        reason=cause,
        environment=env,
        message=f"{item.node}: skipped, upstream {cause} failed",
    )


def _built(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    rows = "" if outcome.rows is None else f", {count_of(outcome.rows, 'row')}"
    if item.kind == "rule":
        rows = f", {count_of(outcome.rows, 'violating row')}" if outcome.rows else ", passed"
    return Event(
        EventKind.NODE_BUILT,
        node=item.node,
        snapshot=item.snapshot,
        seconds=outcome.seconds,
        rows=outcome.rows,
        reason=item.reason,
        environment=env,
        message=f"{item.node}: built {item.materialized.value} in {outcome.seconds:.2f}s{rows}",
    )


def _failed(item: WorkItem, outcome: BuildOutcome, env: str) -> Event:
    return Event(
        EventKind.NODE_FAILED,
        node=item.node,
        snapshot=item.snapshot,
        seconds=outcome.seconds,
        reason=item.reason,
        environment=env,
        message=f"{item.node}: failed: {outcome.error}",
    )


def _finish(emit: Callable[[Event], None], env: str, started: float, summary: str) -> float:
    seconds = time.monotonic() - started
    emit(
        Event(
            EventKind.RUN_FINISHED,
            seconds=seconds,
            environment=env,
            message=f"run finished in {seconds:.2f}s: {summary}",
        )
    )
    return seconds


def _ignore(event: Event) -> None:
    del event
