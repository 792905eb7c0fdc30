"""Rendering for the terminal: run progress, warnings, tables. The only place that prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from seeknal.errors import Diagnostic

REASONS = {
    "new": "",
    "source_data_changed": "  [source data changed]",
    "missing": "  [was missing from the warehouse]",
}


def echo_warnings(warnings: Sequence[Diagnostic]) -> None:
    for warning in warnings:
        click.echo(warning.render(), err=True)


class RunPrinter:
    """Turns runtime events into lines (or JSON lines with ``--json``)."""

    def __init__(self, *, quiet: bool = False, as_json: bool = False) -> None:
        self.quiet = quiet
        self.as_json = as_json
        self.idle = False

    def __call__(self, event: Any) -> None:
        kind = str(event.kind)
        if self.as_json:
            record = {
                "event": kind,
                **{
                    k: getattr(event, k)
                    for k in (
                        "node",
                        "snapshot",
                        "seconds",
                        "rows",
                        "reason",
                        "message",
                        "environment",
                    )
                    if getattr(event, k) is not None
                },
            }
            if isinstance(record.get("seconds"), float):
                record["seconds"] = round(record["seconds"], 4)
            click.echo(json.dumps(record, sort_keys=True))
            return
        if self.quiet and kind not in ("node_failed",):
            return
        if kind == "node_built" and (event.node or "").startswith("rule."):
            if event.rows:
                noun = "row violates" if event.rows == 1 else "rows violate"
                click.echo(f"  WARN     {event.node:<40} {event.rows:,} {noun} it", err=True)
            else:
                click.echo(f"  passed   {event.node:<40} {event.seconds:.2f}s")
        elif kind == "node_built":
            detail = f"{event.rows:,} rows, " if event.rows is not None else "view, "
            reason = REASONS.get(event.reason or "new", f" [{event.reason}]")
            click.echo(f"  built    {event.node:<40} {detail}{event.seconds:.2f}s{reason}")
        elif kind == "node_reused":
            click.echo(f"  reused   {event.node:<40} (already built)")
        elif kind == "node_failed":
            click.echo(f"  FAILED   {event.node:<40} {event.seconds or 0:.2f}s", err=True)
        elif kind == "node_skipped":
            click.echo(f"  skipped  {event.node:<40} (upstream {event.reason} failed)", err=True)
        elif kind == "nothing_to_do":
            self.idle = True
            click.echo(event.message)
        elif kind == "run_finished" and self.idle:
            return  # "nothing to do" already said it all
        elif kind in ("promoted", "run_finished", "run_started") and event.message:
            click.echo(event.message)


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, as_json: bool = False
) -> None:
    """Query results as a rich table (or JSON rows)."""
    if as_json:
        click.echo(
            json.dumps(
                [dict(zip(columns, row, strict=True)) for row in rows], default=str, indent=2
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    # Piped output has no terminal width: print rows whole rather than wrapped at 80.
    width = None if sys.stdout.isatty() else 10_000
    Console(file=sys.stdout, soft_wrap=False, width=width).print(table)
    click.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
