"""Execute a plan: check it is still applicable, build its snapshots, promote its views.

The order of side effects is what makes a run safe to repeat:

1. the state lock is taken before anything writes;
2. staleness is decided before the warehouse is used, so a refused plan leaves no
   trace (``seeknal run`` holds the lock from before it compiles, and opens an existing
   warehouse meanwhile, closed unchanged if the plan is refused: ``session.py``);
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

from seeknal import process
from seeknal.canonical import file_sha256
from seeknal.engines.base import (
    BatchResult,
    Catalog,
    Engine,
    EngineError,
    Materialization,
    Relation,
)
from seeknal.errors import (
    ExecutionError,
    NodeFailure,
    PlanError,
    SeeknalError,
    StaleError,
    StateError,
)
from seeknal.runtime.artifact import verify_plan, verify_plan_text
from seeknal.runtime.connection import (
    Connection,
    connection_of,
    declared_data_files,
    open_connection,
)
from seeknal.runtime.dependencies import expand_jobs, gate_on_rules, work_upstream
from seeknal.runtime.events import Event, EventKind, RunResult
from seeknal.runtime.incremental import Batch, Ledger, prepare
from seeknal.runtime.promote import promote_environment
from seeknal.runtime.report import (
    batch_built_event,
    built_event,
    failed_event,
    reused_event,
    skipped_event,
    started_event,
)
from seeknal.runtime.rules import check_rule
from seeknal.runtime.scheduler import Progress, run_in_dag_order
from seeknal.runtime.session import RunSession
from seeknal.runtime.staleness import stale_reasons
from seeknal.runtime.work import BuildOutcome, WorkItem, work_item, work_items
from seeknal.state import open_state
from seeknal.state.base import State, StateBackend
from seeknal.wording import count_of

EXCERPT_LINES = 8


def execute_plan(
    plan: dict[str, Any] | None,
    project_dir: Path,
    *,
    threads: int = 4,
    force: bool = False,
    on_event: Callable[[Event], None] | None = None,
    session: RunSession | None = None,
    text: str | None = None,
    where: str = "plan.json",
    environment: str | None = None,
    use_cache: bool = True,
    on_plan: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Run ``plan`` against its target warehouse and state, then promote its environment.

    Args:
        plan: The plan (verified again here: nothing unverified ever runs); None to
            parse it from ``text``, once.
        project_dir: The project the plan was compiled from; the plan's warehouse,
            state and data file paths are relative to it.
        threads: Snapshots built at the same time.
        force: Run even when the plan is stale.
        on_event: Called with every :class:`Event`, always in the calling thread.
        session: A run held since before the plan was compiled (``seeknal run``, see
            ``session.py``): its lock and the state it read are used.
        text: The JSON text ``plan`` was parsed from, if at hand (see
            :func:`~seeknal.runtime.artifact.verify_plan`); the plan itself when
            ``plan`` is None.
        where: What to call that text in messages (its file).
        environment: The environment the plan must have been compiled for (``seeknal
            apply``), checked once the plan is verified, before anything is locked.
        use_cache: Recall the warehouse's catalog from the user's cache when the file
            is unchanged since the last run, and remember it for the next
            (``engines/duckdb_catalog.py``); ``SEEKNAL_NO_CACHE=1`` turns it off too.
        on_plan: Called with the verified plan before anything is locked or run (a
            caller that has only the text then needs no parse of its own).

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
    # What a held run's helper thread worked out for this very text while the warehouse
    # opened (prepare_execution); otherwise each step runs here, in its turn.
    ready = None if session is None else session.prepared
    if ready is not None and (plan is not None or ready.text is not text):
        ready = None
    if plan is None:
        if text is None:
            raise SeeknalError("execute_plan needs the plan or its text")
        plan = verify_plan_text(text, where=where) if ready is None else ready.plan
    else:
        plan = verify_plan(plan, text=text)
    if environment is not None and plan["environment"] != environment:
        raise PlanError(
            f"{where} was compiled for environment '{plan['environment']}', not '{environment}'",
            hint=f"compile it for {environment}: seeknal compile --env {environment} --out FILE",
        )
    if on_plan is not None:
        on_plan(plan)
    emit = on_event or _ignore
    started = time.monotonic()
    project_dir = Path(project_dir).resolve()
    env = plan["environment"]
    target = plan["target"]
    # Before anything is opened, and locked unless a held run (`seeknal run`) locked an
    # existing state already: a missing profile or variable changes no state or table.
    connection = connection_of(plan, project_dir) if ready is None else ready.connection
    data_files = declared_data_files(plan, project_dir) if ready is None else ready.data_files
    if session is not None and (
        dict(session.target) != target or session.project_dir != project_dir
    ):
        raise SeeknalError(
            "the run was held for another target than the plan's",
            hint="this is a bug in seeknal; run again with --debug for the traceback",
        )
    state = (
        session.backend
        if session is not None
        else open_state(target["state"]["backend"], str(project_dir / target["state"]["path"]))
    )
    with contextlib.nullcontext() if session is not None else state.lock():
        current = session.state if session is not None else state.read()
        # A run compiled its plan under this lock, hashing every data file it reads.
        reasons = stale_reasons(plan, current, project_dir, read_in_place=session is None)
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
            connection,
            file_search_path=project_dir,
            readable_files=data_files,
            remember_catalog=use_cache,
            # The warehouse a held run opened while it compiled, if it is this one.
            opened=None if session is None else session.take_opened(),
        )
        finished = False  # else the warehouse's catalog is not remembered
        try:
            catalog = engine.catalog()  # one catalog lookup for the whole run
            lost = lost_snapshots(plan, catalog.relations, project_dir, force=force)
            built, reused, failures, skipped = _build_work(
                plan, lost, engine, catalog, state, current, threads, emit
            )
            if failures:
                _compact(state)  # the records of what did build count as well
                _finish(emit, env, started, f"{count_of(len(failures), 'node')} failed")
                raise ExecutionError(failures, skipped)
            # Builds record and create snapshots only: the environments, in state and
            # in the warehouse's views, are as read at the start, under the lock.
            promoted = promote_environment(engine, state, plan, current, catalog.views)
            finished = True
        finally:
            engine.close(remember=finished, leave=finished)
        # Still under the lock: the run's records folded into the document once many
        # have gathered (every batch of an incremental model adds one).
        unfolded = _compact(state)
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
    summary = f"built {len(built)}, reused {len(kept)}"
    if unfolded:
        summary += f" (the state journal was not folded, the next run tries again: {unfolded})"
    seconds = _finish(emit, env, started, summary)
    process.keep(plan, current)  # a command-line process ends next: nothing to free
    return RunResult(
        environment=env,
        plan_id=plan["plan_id"],
        built=tuple(sorted(built)),
        reused=tuple(sorted(reused)),
        promoted=promoted,
        seconds=seconds,
    )


@dataclass(frozen=True, slots=True)
class PreparedExecution:
    """The first steps of :func:`execute_plan` for a held run's plan text, worked out
    by :func:`prepare_execution`."""

    text: str
    plan: dict[str, Any]
    connection: Connection
    data_files: list[str]


def prepare_execution(text: str, project_dir: Path) -> PreparedExecution | None:
    """What :func:`execute_plan` does first for a held run (``session.py``) that compiled
    ``text``: the plan verified, its connection resolved, its data files declared. A
    held run does it in its helper thread while the warehouse opens. None when any of
    it fails: the execution then does it all itself and reports the error in its turn.
    Staleness is left to the execution, as late as it can be decided: a data file
    changed while the warehouse opened is still caught."""
    try:
        plan = verify_plan_text(text)
        project_dir = Path(project_dir).resolve()
        return PreparedExecution(
            text, plan, connection_of(plan, project_dir), declared_data_files(plan, project_dir)
        )
    except Exception:
        return None


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
    """Snapshots the plan reuses but the warehouse no longer has, as work (reason ``lost``).

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
        lost.append(work_item(node_id, node, LOST))
    return lost


def _build_work(
    plan: dict[str, Any],
    lost: list[WorkItem],
    engine: Engine,
    catalog: Catalog,
    state: StateBackend,
    current: State,
    threads: int,
    emit: Callable[[Event], None],
) -> tuple[list[str], list[str], list[NodeFailure], list[str]]:
    """Reuse what state already holds, build the rest; return built, reused, failures, skipped."""
    env = plan["environment"]
    present = catalog.relations
    items = [
        item.writing_over(current.snapshots.get(item.snapshot)) for item in work_items(plan) + lost
    ]
    to_build: dict[str, WorkItem] = {}
    reused: list[str] = []
    for item in items:
        if _already_built(item, current, present):
            reused.append(item.node)
            emit(reused_event(item, env))
        else:
            to_build[item.node] = item
    schemas = {Relation.parse(i.snapshot).schema for i in to_build.values()}
    engine.ensure_schemas(s for s in schemas if s.lower() not in catalog.schemas)
    ledgers = _before_any_batch(to_build, current, present, state)
    jobs, waits = expand_jobs(
        gate_on_rules(plan, work_upstream(plan, set(to_build))),
        {node: ledger.batches for node, ledger in ledgers.items()},
    )

    def build(job_id: str) -> BuildOutcome:
        job = jobs[job_id]
        item = to_build[job.node]
        if job.node in ledgers:
            return _run_batch(engine, state, item, ledgers[job.node], job.batch)
        return _build_one(engine, state, item, in_place=item.snapshot in current.snapshots)

    built: list[str] = []
    failed: list[tuple[WorkItem, EngineError]] = []
    skipped_by: dict[str, list[str]] = {}
    done: set[str] = set()  # nodes already reported failed or skipped
    totals: dict[str, list[BuildOutcome]] = {}
    ticks = run_in_dag_order(
        list(jobs),
        waits,
        build,
        succeeded=lambda outcome: outcome.error is None,
        threads=threads,
        # Ctrl-C: stop the running queries now. Snapshots and batches already committed
        # stay recorded, so the next run resumes; the interruption propagates.
        cancel=engine.interrupt,
    )
    # Closed on any way out (an exception raised by ``emit``, Ctrl-C while it prints),
    # so the scheduler cancels and joins its builds before the engine is closed.
    with contextlib.closing(ticks):
        for tick in ticks:
            job = jobs[tick.node]
            item = to_build[job.node]
            if tick.progress == Progress.STARTED:
                if job.first:
                    emit(started_event(item, env))
            elif tick.progress == Progress.SKIPPED:
                cause = jobs[tick.cause].node if tick.cause in jobs else tick.cause
                if job.node == cause or job.node in done:
                    continue  # a later batch of a failed node, or a node already reported
                done.add(job.node)
                skipped_by.setdefault(cause or "", []).append(item.node)
                emit(skipped_event(item, cause, env))
            elif tick.outcome is not None and tick.outcome.error is None:
                outcome = tick.outcome
                if outcome.batch is not None:
                    totals.setdefault(item.node, []).append(outcome)
                    emit(batch_built_event(item, outcome, env))
                if not job.last:
                    continue
                ledger = ledgers.get(item.node)
                if ledger is not None and not ledger.batches and not ledger.create:
                    reused.append(item.node)  # nothing left to do: an earlier run did it
                    emit(reused_event(item, env))
                    continue
                built.append(item.node)
                emit(built_event(item, _sum(outcome, totals.get(item.node)), env))
            elif tick.outcome is not None and tick.outcome.error is not None:
                done.add(item.node)
                failed.append((item, tick.outcome.error))
                emit(failed_event(item, tick.outcome, env))
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


def _before_any_batch(
    to_build: Mapping[str, WorkItem],
    current: State,
    present: frozenset[str],
    state: StateBackend,
) -> dict[str, Ledger]:
    """Decide every incremental node's batches; record, before anything commits, what
    this run will redo.

    Intervals a run restates are forgotten, and tables rebuilt because an incremental
    node upstream changes are invalidated, all before the first batch commits: a run
    killed at any later moment leaves them missing or stale in state, so the next run
    redoes them, whatever it is asked.
    """
    ledgers: dict[str, Ledger] = {}
    for item in to_build.values():
        previous = current.snapshots.get(item.snapshot)
        if item.binding is not None:
            prepared = prepare(
                {k: v for k, v in item.record(None).items() if k != "rows"},
                item.ranges,
                item.binding,
                item.batch_size,
                previous,
                item.snapshot.lower() in present,
                add_columns=item.add_columns,
            )
            if prepared.forget is not None:
                state.record_snapshot(item.snapshot, prepared.forget)
            ledgers[item.node] = prepared.ledger
        elif item.reason in ALWAYS_BUILT and previous is not None and item.reason != FORWARD_ONLY:
            state.record_snapshot(item.snapshot, {**item.record(None), "data_version": INVALIDATED})
    return ledgers


def _run_batch(
    engine: Engine, state: StateBackend, item: WorkItem, ledger: Ledger, batch: Batch | None
) -> BuildOutcome:
    """Runs in a worker thread: one batch of an incremental node (its table first).

    The engine commits the batch, then state records the node's intervals with it: a
    crash in between runs the batch again, which deletes what it wrote before.
    """
    started = time.monotonic()
    binding = item.binding
    assert binding is not None
    try:
        if batch is None or batch.index == 0:
            if ledger.create:
                engine.create_table(item.snapshot, item.columns)
                state.record_snapshot(item.snapshot, ledger.current())
            if ledger.add_columns:
                engine.add_columns(item.snapshot, item.columns)
        if batch is None:
            return BuildOutcome(seconds=time.monotonic() - started, rows=0)
        result = engine.insert_batch(
            item.snapshot,
            item.sql,
            binding.parameters_for(batch.interval),
            binding.time_column,
            binding.bounds(batch.interval),
        )
    except EngineError as exc:
        return BuildOutcome(seconds=time.monotonic() - started, error=exc)
    state.record_snapshot(item.snapshot, ledger.add(batch.interval, result))
    return BuildOutcome(
        seconds=time.monotonic() - started, rows=result.inserted, batch=batch, result=result
    )


def _sum(last: BuildOutcome, batches: list[BuildOutcome] | None) -> BuildOutcome:
    """An incremental node's outcome over its batches: time, rows written, rows dropped."""
    if not batches:
        return last
    dropped = sum(b.result.dropped for b in batches if b.result is not None)
    return BuildOutcome(
        seconds=sum(b.seconds for b in batches),
        rows=sum(b.rows or 0 for b in batches),
        result=BatchResult(sum(b.rows or 0 for b in batches), 0, dropped),
    )


def _already_built(item: WorkItem, current: State, present: frozenset[str]) -> bool:
    record = current.snapshots.get(item.snapshot)
    # The relation check catches a warehouse deleted or replaced behind state's back.
    return (
        # Adding a forward-only change's columns is idempotent and cheap, and a table
        # is rebuilt for new intervals upstream, or restated: always done. An incremental
        # node's batches decide for themselves what is left to do.
        item.reason not in ALWAYS_BUILT
        and item.binding is None
        and record is not None
        and record["data_version"] == item.data_version
        and record["materialized"] == item.materialized.value
        and item.snapshot.lower() in present
    )


INVALIDATED = "invalidated"
FORWARD_ONLY = "forward_only"
LOST = "lost"  # a run's own reason: the warehouse lost a snapshot the plan reuses
ALWAYS_BUILT = frozenset({FORWARD_ONLY, "upstream_intervals", "restatement"})


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


def _compact(state: StateBackend) -> str | None:
    """Fold the state journal when it has grown long (``StateBackend.compact``); what
    went wrong, if that failed. Never an error: the run's work is done and recorded,
    and the journal is only slower to read until a later run folds it."""
    try:
        state.compact()
    except StateError as exc:
        return str(exc)
    return None


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
