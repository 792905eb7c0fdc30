"""`seeknal promote`, `rollback`, `env list|delete`, `janitor`: environments as views."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import click

from seeknal.cli.main import Context
from seeknal.wording import count_of


@contextlib.contextmanager
def project_warehouse(obj: Context, *, creates_views: bool = False) -> Iterator[tuple[Any, Any]]:
    """The project's connection (writable) and state backend, closed on the way out.

    ``creates_views``: the command points views at snapshots (``promote``,
    ``rollback``), which reads the files of sources read in place: each one an
    environment uses must be there.
    """
    from seeknal.cli.explore import require_warehouse
    from seeknal.compiler import load_config
    from seeknal.runtime.connection import (
        files_read_in_place,
        open_connection,
        resolve_connection,
    )
    from seeknal.state import open_state

    config = load_config(obj.project)
    backend = open_state(config.state_backend, str(config.root / config.state_path))
    connection = resolve_connection(config.root, config.connection, warehouse=config.warehouse)
    require_warehouse(config, connection, state=backend)  # creates neither
    # Sealed like every other connection: these commands read no file, but for those of
    # the sources read in place when they create views (DuckDB reads a source's file to
    # create a view over it); dropping one reads nothing.
    engine = open_connection(
        connection,
        file_search_path=config.root,
        readable_files=files_read_in_place(backend.read(), config.root) if creates_views else (),
    )
    try:
        yield engine, backend
    finally:
        engine.close()


@click.command(short_help="Point an environment's views at another's snapshots (no rebuild).")
@click.argument("source")
@click.argument("target")
@click.pass_obj
def promote(obj: Context, source: str, target: str) -> None:
    """Point TARGET's views at SOURCE's snapshots, in one transaction.

    Nothing is computed: every snapshot SOURCE uses must still exist. Typical use:
    `seeknal promote dev prod` after reviewing dev.
    """
    from seeknal.runtime.environments import promote as promote_environment

    with project_warehouse(obj, creates_views=True) as (engine, backend):
        views = promote_environment(engine, backend, source, target)
    click.echo(
        f"environment '{target}' now points at the snapshots of '{source}' "
        f"({count_of(len(views), 'view')}; nothing rebuilt)"
    )


@click.command(short_help="Undo an environment's last apply, promote or rollback.")
@click.argument("environment")
@click.pass_obj
def rollback(obj: Context, environment: str) -> None:
    """Return ENVIRONMENT to what it pointed at before its last change.

    The earlier snapshots must still exist (the janitor keeps them). Rolling back twice
    returns to where you started.
    """
    from seeknal.runtime.environments import rollback as rollback_environment

    with project_warehouse(obj, creates_views=True) as (engine, backend):
        views = rollback_environment(engine, backend, environment)
    click.echo(
        f"environment '{environment}' rolled back ({count_of(len(views), 'view')} repointed)"
    )


@click.group("env", short_help="List or delete environments.")
def env_group() -> None:
    """Environments: sets of views over snapshots (prod, dev, a pull request's, ...)."""


@env_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def env_list(obj: Context, as_json: bool) -> None:
    """Every environment: its base, when it was created and expires, and what it changes."""
    from seeknal.compiler import load_config, read_state
    from seeknal.runtime.environments import list_environments

    infos = list_environments(read_state(load_config(obj.project)))
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos], indent=2))
        return
    if not infos:
        click.echo("no environments yet: `seeknal run` creates prod")
        return
    rows = [("name", "base", "created", "expires", "nodes", "changed")]
    for i in infos:
        expires = (
            "never" if i.expires_at is None else i.expires_at + (" (expired)" if i.expired else "")
        )
        rows.append(
            (i.name, i.base or "-", i.created_at or "-", expires, str(i.nodes), str(i.changed))
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@env_group.command("delete")
@click.argument("name")
@click.pass_obj
def env_delete(obj: Context, name: str) -> None:
    """Drop NAME's views and forget it (its snapshots go with the next janitor)."""
    from seeknal.runtime.environments import delete_environment

    with project_warehouse(obj) as (engine, backend):
        dropped = delete_environment(engine, backend, name)
    click.echo(f"deleted environment '{name}' ({count_of(len(dropped), 'view')} dropped)")


@click.command(short_help="Drop expired environments and snapshots nothing uses.")
@click.option("--apply", "apply_", is_flag=True, help="Drop them (without it: only show).")
@click.pass_obj
def janitor(obj: Context, apply_: bool) -> None:
    """Show (or, with --apply, drop) expired environments and unused snapshots.

    A snapshot is kept while an environment points at it, or could roll back to it.
    """
    from seeknal.runtime.environments import collect_garbage

    with project_warehouse(obj) as (engine, backend):
        garbage = collect_garbage(engine, backend, apply=apply_)
    verb = "dropped" if apply_ else "would drop"
    if not garbage.environments and not garbage.snapshots:
        click.echo("nothing to drop")
        return
    for env in garbage.environments:
        click.echo(f"{verb} expired environment {env}")
    for snapshot in garbage.snapshots:
        click.echo(f"{verb} snapshot {snapshot}")
    summary = (
        f"{verb} {count_of(len(garbage.environments), 'environment')} and "
        f"{count_of(len(garbage.snapshots), 'snapshot')}"
    )
    if not apply_:
        summary += "; run `seeknal janitor --apply` to drop them"
    click.echo(summary)
