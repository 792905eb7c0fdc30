"""`seeknal show`, `seeknal query`, `seeknal lineage`: look at what was built."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from seeknal.cli.main import Context
from seeknal.cli.output import print_table
from seeknal.errors import PlanError, SeeknalError


@contextmanager
def _warehouse(obj: Context) -> Iterator[Any]:
    from seeknal.compiler import load_config
    from seeknal.engines.duckdb import DuckDBEngine

    config = load_config(obj.project)
    path = config.root / config.warehouse
    if not path.exists():
        raise PlanError(
            f"no warehouse at {config.warehouse} yet",
            hint="build it first with `seeknal run`",
        )
    engine = DuckDBEngine(path, file_search_path=config.root, read_only=True)
    try:
        yield engine
    finally:
        engine.close()


def _view_of(node: str, environment: str) -> str:
    from seeknal.naming import view_name

    if "." not in node:
        raise SeeknalError(f"'{node}' is not a node id (expected kind.name, e.g. transform.orders)")
    schema, view = view_name(node, environment).split(".", 1)
    return f'"{schema}"."{view}"'


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
@click.option("--env", "environment", default="prod", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.pass_obj
def show(obj: Context, node: str, limit: int, environment: str, as_json: bool) -> None:
    """Show the first rows of NODE (e.g. transform.daily_revenue) in an environment."""
    from seeknal.engines import EngineError

    with _warehouse(obj) as engine:
        view = _view_of(node, environment)
        nodes = _nodes_in(engine, environment)
        if node not in nodes:
            # Compare names, not ids: every transform shares the "transform." prefix.
            by_name = {n.split(".", 1)[1]: n for n in sorted(nodes)}
            close = [
                by_name[m]
                for m in difflib.get_close_matches(node.partition(".")[2], list(by_name), n=1)
            ]
            if close:
                hint = f"did you mean '{close[0]}'?"
            elif nodes:
                hint = "its nodes: " + ", ".join(sorted(nodes)[:12])
            else:
                hint = f"nothing is built in '{environment}' yet: `seeknal run --env {environment}`"
            raise PlanError(f"node '{node}' is not in environment '{environment}'", hint=hint)
        try:
            columns, rows = engine.query(f"SELECT * FROM {view}", limit=limit)
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
    """Run a read-only SQL query against the warehouse (nodes are views: transform.x)."""
    from seeknal.engines import EngineError

    with _warehouse(obj) as engine:
        try:
            columns, rows = engine.query(sql, limit=limit)
        except EngineError as exc:
            raise PlanError(f"query failed: {exc}") from None
    print_table(columns, rows, as_json=as_json)


@click.command(short_help="Upstream and downstream of a node or a column.")
@click.argument("target", metavar="NODE[.COLUMN]")
@click.option("--upstream", "direction", flag_value="upstream", help="Only what TARGET reads.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what reads TARGET.")
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read lineage from a plan file instead of compiling the project.",
)
@click.pass_obj
def lineage(obj: Context, target: str, direction: str | None, plan_path: Path | None) -> None:
    """Node or column lineage, e.g. `seeknal lineage transform.daily_revenue.revenue`."""
    from seeknal.cli.graphview import lineage_lines

    if plan_path is not None:
        from seeknal.runtime import load_plan

        plan = load_plan(plan_path)
    else:
        from seeknal.compiler import compile_project

        plan = compile_project(obj.project).plan
    for line in lineage_lines(plan, target, direction):
        click.echo(line)
