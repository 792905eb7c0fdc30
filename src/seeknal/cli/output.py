"""Rendering for the terminal: run progress, warnings, tables. The only place that prints."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click

from seeknal.errors import Diagnostic
from seeknal.wording import count_of

REASONS = {
    "new": "",
    "source_data_changed": "  [source data changed]",
    "lost": "  [was missing from the warehouse]",
    "forward_only": "  [forward-only]",
    "breaking_change": "  [breaking change: filled from start]",
    "missing": "  [missing intervals]",
    "lookback": "  [lookback]",
    "restatement": "  [restated]",
    "upstream_intervals": "  [new intervals upstream]",
}


def echo_warnings(warnings: Sequence[Diagnostic]) -> None:
    for warning in warnings:
        click.echo(warning.render(), err=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader went away (``seeknal ... | head``).

    Later writes, and the flush at exit, then succeed quietly instead of raising
    BrokenPipeError again ("Exception ignored ..." noise at exit).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


class RunPrinter:
    """Turns runtime events into lines (or JSON lines with ``--json``).

    It is called inside the run, so it must never end it: when stdout's reader goes
    away (``seeknal run --json | head -5``), it stops printing to stdout and the run
    goes on to finish, record and promote.
    """

    def __init__(self, *, quiet: bool = False, as_json: bool = False) -> None:
        self.quiet = quiet
        self.as_json = as_json
        self.idle = False
        self.stdout_gone = False

    def __call__(self, event: Any) -> None:
        self._print(event)

    def line(self, message: str) -> None:
        """Print one line of the run's own (not an event), as carefully as events."""
        self._echo(message)

    def _echo(self, message: str, *, err: bool = False) -> None:
        if self.stdout_gone and not err:
            return
        try:
            click.echo(message, err=err)
        except BrokenPipeError:
            if not err:
                self.stdout_gone = True
                silence_stdout()

    def _print(self, event: Any) -> None:
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
                        "start",
                        "end",
                        "dropped",
                    )
                    if getattr(event, k) is not None
                },
            }
            if isinstance(record.get("seconds"), float):
                record["seconds"] = round(record["seconds"], 4)
            self._echo(json.dumps(record, sort_keys=True))
            return
        rule = (event.node or "").startswith("rule.")
        # --quiet: failures, a violated warn rule, and the result (the last line).
        if self.quiet and not (
            kind in ("node_failed", "nothing_to_do", "run_finished")
            or (kind == "node_built" and rule and event.rows)
        ):
            return
        if kind == "node_built" and rule:
            if event.rows:
                noun = "row violates" if event.rows == 1 else "rows violate"
                self._echo(f"  WARN     {event.node:<40} {event.rows:,} {noun} it", err=True)
            else:
                self._echo(f"  passed   {event.node:<40} {event.seconds:.2f}s")
        elif kind == "batch_built":
            detail = event.message.split(": ", 1)[-1].removeprefix("batch ")
            self._echo(f"  batch    {event.node:<40} {detail}")
        elif kind == "node_built" and event.dropped is not None:  # incremental
            detail = f"{count_of(event.rows or 0, 'row')} written, "
            if event.dropped:
                detail += f"guard dropped {count_of(event.dropped, 'row')}, "
            reason = REASONS.get(event.reason or "new", f" [{event.reason}]")
            self._echo(f"  built    {event.node:<40} {detail}{event.seconds:.2f}s{reason}")
        elif kind == "node_built":
            detail = f"{count_of(event.rows, 'row')}, " if event.rows is not None else "view, "
            reason = REASONS.get(event.reason or "new", f" [{event.reason}]")
            self._echo(f"  built    {event.node:<40} {detail}{event.seconds:.2f}s{reason}")
        elif kind == "node_reused":
            self._echo(f"  reused   {event.node:<40} (already built)")
        elif kind == "node_failed":
            self._echo(f"  FAILED   {event.node:<40} {event.seconds or 0:.2f}s", err=True)
        elif kind == "node_skipped":
            self._echo(f"  skipped  {event.node:<40} (upstream {event.reason} failed)", err=True)
        elif kind == "nothing_to_do":
            self.idle = True
            self._echo(event.message)
        elif kind == "run_finished" and self.idle:
            return  # "nothing to do" already said it all
        elif kind in ("promoted", "run_finished", "run_started") and event.message:
            self._echo(event.message)


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, as_json: bool = False
) -> None:
    """Query results as a rich table (or JSON rows, one object per row)."""
    if as_json:
        # Two result columns may share a name (`SELECT 1 AS a, 2 AS a`); an object
        # cannot, so later ones are renamed as DuckDB renames them: a, a_1.
        keys = unique_names(columns)
        click.echo(
            json.dumps([dict(zip(keys, row, strict=True)) for row in rows], default=str, indent=2)
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
    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if tty else 10_000
    # Rendered first, printed by click: a reader gone away (`| head`) is then one
    # BrokenPipeError for the error boundary, not rich's own exit.
    rendered = io.StringIO()
    Console(file=rendered, soft_wrap=False, width=width, force_terminal=tty or None).print(table)
    click.echo(rendered.getvalue(), nl=False)
    click.echo(count_of(len(rows), "row"))


def unique_names(columns: Sequence[str]) -> list[str]:
    """Column names made unique: a repeated name gets ``_1``, ``_2``, ... (as DuckDB does).

    Example:
        >>> unique_names(["a", "a", "b", "a_1"])
        ['a', 'a_2', 'b', 'a_1']
    """
    taken = set(columns)
    seen: set[str] = set()
    names = []
    for name in columns:
        unique = name
        counter = 0
        while unique in seen or (unique != name and unique in taken):
            counter += 1
            unique = f"{name}_{counter}"
        seen.add(unique)
        names.append(unique)
    return names
