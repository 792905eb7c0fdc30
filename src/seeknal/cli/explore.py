"""`seeknal show`, `seeknal query`, `seeknal lineage`: look at what was built."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from seeknal.cli.main import Context, environment_option
from seeknal.cli.output import print_table
from seeknal.errors import PlanError, SeeknalError


def require_warehouse(config: Any, connection: Any, *, state: Any = None) -> None:
    """Refuse a project that was never run: its warehouse file (and, given its
    ``state`` backend, its state) must be there already. Commands other than a run only
    read or change what a run built; opening a missing file would create it.

    Raises:
        PlanError: The warehouse or the state does not exist yet.
    """
    if connection.database != ":memory:" and not Path(connection.database).exists():
        shown = config.warehouse if connection.origin == "seeknal_project.yml" else connection.shown
        raise PlanError(f"no warehouse at {shown} yet", hint="build it first with `seeknal run`")
    if state is not None and not state.exists():
        raise PlanError(
            f"no state at {config.state_path} yet", hint="build it first with `seeknal run`"
        )


@contextmanager
def _warehouse(obj: Context) -> Iterator[Any]:
    """The project's connection, read-only and sealed off from the file system.

    Without external access, SQL can read only what the warehouse holds, and the data
    files of sources read in place: no ``read_csv('/etc/passwd')``, no ``COPY ... TO`` a
    file, no ``ATTACH``.
    """
    from seeknal.compiler import load_config
    from seeknal.compiler.compile import read_state
    from seeknal.runtime.connection import (
        files_read_in_place,
        open_connection,
        resolve_connection,
    )

    config = load_config(obj.project)
    connection = resolve_connection(config.root, config.connection, warehouse=config.warehouse)
    require_warehouse(config, connection)
    engine = open_connection(
        connection,
        file_search_path=config.root,
        read_only=True,
        readable_files=files_read_in_place(read_state(config), config.root),
    )
    try:
        yield engine
    finally:
        engine.close()


def _query(engine: Any, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``engine.query`` in a worker thread, so Ctrl-C stops a long query at once.

    Python delivers Ctrl-C to the main thread only, and only between bytecodes: a query
    running there would hold it until DuckDB finished. Here the main thread waits
    (interruptibly) and, on Ctrl-C, interrupts the query before the error propagates.
    """
    from concurrent.futures import ThreadPoolExecutor  # not on `seeknal --help`'s path

    from seeknal.runtime.scheduler import thread_stack

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seeknal-query") as pool:
        with thread_stack():  # as deep a stack as the main thread's, for deep SQL
            future = pool.submit(engine.query, sql, limit)
        try:
            return future.result()
        except KeyboardInterrupt:
            engine.interrupt()
            raise


def _last_run_failed(obj: Context, environment: str) -> bool:
    """Whether a run of ``environment`` built snapshots but never promoted them.

    A run promotes only when every node succeeded. So when state has no record of the
    environment, yet records snapshots from the work of its last plan (the
    ``target/plan.json`` that `seeknal run` writes), a run of it failed or was stopped.
    """
    import json

    from seeknal.cli.build import DEFAULT_PLAN
    from seeknal.compiler import load_config, read_state

    try:
        config = load_config(obj.project)
        plan = json.loads((config.root / DEFAULT_PLAN).read_text(encoding="utf-8"))
        state = read_state(config)
    except (OSError, ValueError, RecursionError, SeeknalError):
        return False
    if not isinstance(plan, dict) or plan.get("environment") != environment:
        return False
    if state.environment(environment) is not None:
        return False
    work = plan.get("work")
    return isinstance(work, list) and any(
        isinstance(item, dict) and item.get("snapshot") in state.snapshots for item in work
    )


def _view_of(node: str, environment: str) -> str:
    from seeknal.engines import Relation
    from seeknal.naming import view_name

    if "." not in node:
        raise SeeknalError(f"'{node}' is not a node id (expected kind.name, e.g. transform.orders)")
    return Relation.parse(view_name(node, environment)).sql


def _nodes_in(engine: Any, environment: str) -> set[str]:
    """Node ids that have a view in ``environment``."""
    from seeknal.naming import view_name

    _, rows = engine.query("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal")
    found = set()
    for schema, name in rows:
        kind = schema.split("__", 1)[0]
        node_id = f"{kind}.{name}"
        if view_name(node_id, environment) == f"{schema}.{name}":
            found.add(node_id)
    return found


@click.command(short_help="Show the first rows of a node.")
@click.argument("node")
@click.option("--limit", "-n", type=click.IntRange(0), default=10, show_default=True)
@environment_option("The environment to look in.")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.pass_obj
def show(obj: Context, node: str, limit: int, environment: str, as_json: bool) -> None:
    """Show the first rows of NODE (e.g. transform.daily_revenue) in an environment."""
    from seeknal.engines import EngineError

    with _warehouse(obj) as engine:
        view = _view_of(node, environment)
        nodes = _nodes_in(engine, environment)
        if node not in nodes:
            from seeknal.cli.graphview import closest_node

            close = closest_node(sorted(nodes), node)
            if close:
                hint = f"did you mean '{close}'?"
            elif nodes:
                hint = "its nodes: " + ", ".join(sorted(nodes)[:12])
            elif _last_run_failed(obj, environment):
                raise PlanError(
                    f"environment '{environment}' has not been promoted yet: its last run "
                    "failed, and a run promotes only when every node succeeded",
                    hint="that run's output says which node failed and why; fix it and "
                    f"`seeknal run --env {environment}` again (completed work is kept)",
                )
            else:
                hint = f"nothing is built in '{environment}' yet: `seeknal run --env {environment}`"
            raise PlanError(f"node '{node}' is not in environment '{environment}'", hint=hint)
        try:
            columns, rows = _query(engine, f"SELECT * FROM {view}", limit)
        except EngineError as exc:
            raise PlanError(
                f"cannot read {node} in environment '{environment}': {exc}",
                hint="is the node built? `seeknal run` builds and promotes every node",
            ) from None
    print_table(columns, rows, as_json=as_json)


@click.command(short_help="Run a read-only SQL query against the warehouse.")
@click.argument("sql")
@click.option("--limit", "-n", type=click.IntRange(0), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.pass_obj
def query(obj: Context, sql: str, limit: int, as_json: bool) -> None:
    """Run a read-only SQL query against the warehouse (nodes are views: transform.x).

    The query sees only the warehouse: it cannot read or write other files.
    """
    from seeknal.engines import EngineError

    if not sql.strip():
        raise SeeknalError(
            "the query is empty",
            hint='pass a SELECT, e.g. seeknal query "SELECT * FROM transform.daily_revenue"',
        )
    with _warehouse(obj) as engine:
        try:
            columns, rows = _query(engine, sql, limit)
        except EngineError as exc:
            raise PlanError(f"query failed: {exc}") from None
    print_table(columns, rows, as_json=as_json)


@click.command(short_help="Upstream and downstream of a node or a column.")
@click.argument("target", metavar="NODE[.COLUMN]")
@click.option("--upstream", is_flag=True, help="Show what TARGET reads.")
@click.option("--downstream", is_flag=True, help="Show what reads TARGET.")
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read lineage from a plan file instead of compiling the project.",
)
@click.pass_obj
def lineage(
    obj: Context, target: str, upstream: bool, downstream: bool, plan_path: Path | None
) -> None:
    """Node or column lineage, e.g. `seeknal lineage transform.daily_revenue.revenue`.

    Both directions unless one of --upstream, --downstream is given. Column lineage
    follows values: a column's upstream columns are those whose values flow into it.
    Columns a query only joins on or filters by are not its lineage.
    """
    from seeknal.cli.graphview import lineage_lines

    if plan_path is not None:
        from seeknal.runtime import load_plan

        plan = load_plan(plan_path)
    else:
        from seeknal.compiler import compile_project

        plan = compile_project(obj.project).plan
    both = upstream == downstream
    for line in lineage_lines(
        plan, target, upstream=upstream or both, downstream=downstream or both
    ):
        click.echo(line)
