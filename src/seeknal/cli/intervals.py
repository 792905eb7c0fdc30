"""`seeknal intervals`: which intervals of each incremental node are done, and which are not."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from seeknal.cli.build import make_window
from seeknal.cli.main import Context, environment_option
from seeknal.cli.output import echo_warnings
from seeknal.errors import SeeknalError
from seeknal.intervals import (
    ALIASES,
    Interval,
    Intervals,
    Schedule,
    format_short,
    merge,
    parse_time,
    ranges_to_json,
    subtract,
)
from seeknal.wording import count_of

_ALIAS_OF = {cron: alias for alias, cron in reversed(ALIASES.items())}


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One incremental node: what its snapshot holds and what it lacks."""

    node: str
    snapshot: str
    schedule: Schedule
    completed: Intervals
    missing: Intervals
    planned: Intervals  # what the next run processes (missing ones, lookback, ...)
    new_snapshot: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "snapshot": self.snapshot,
            "schedule": self.schedule.expression,
            "timezone": self.schedule.timezone,
            "new_snapshot": self.new_snapshot,
            "completed": ranges_to_json(self.completed),
            "missing": ranges_to_json(self.missing),
            "next_run": ranges_to_json(self.planned),
        }


def interval_reports(
    plan: Mapping[str, Any], snapshots: Mapping[str, Any], cap: int
) -> list[NodeReport]:
    """Per incremental node of ``plan``: completed (from state's ``snapshots``), missing
    (expected up to ``cap`` but not completed) and what the plan's work would process.

    Example:
        >>> interval_reports({"nodes": {}, "work": []}, {}, 0)
        []
    """
    work = {w["node"]: w for w in plan["work"]}
    out = []
    for node_id in sorted(plan["nodes"]):
        node = plan["nodes"][node_id]
        entry = node.get("incremental")
        if entry is None:
            continue
        schedule = Schedule.parse(entry["schedule"], entry["timezone"])
        end = min(cap, parse_time(entry["end"])) if "end" in entry else cap
        start = parse_time(entry["start"])
        expected = schedule.inward(Interval(start, end)) if start < end else None
        record = snapshots.get(node["snapshot"]) or {}
        completed = merge(
            Interval(parse_time(a), parse_time(b)) for a, b in record.get("intervals") or ()
        )
        planned = merge(
            Interval(parse_time(r["start"]), parse_time(r["end"]))
            for r in work.get(node_id, {}).get("intervals", ())
        )
        out.append(
            NodeReport(
                node_id,
                node["snapshot"],
                schedule,
                completed,
                subtract([expected], completed) if expected else (),
                planned,
                node["snapshot"] not in snapshots,
            )
        )
    return out


def render_report(report: NodeReport) -> list[str]:
    """A few lines: the node and its schedule, then one line per merged range."""
    schedule = report.schedule
    name = _ALIAS_OF.get(schedule.expression, schedule.expression)
    zone = "" if schedule.timezone == "UTC" else f" {schedule.timezone}"
    head = f"{report.node}  {name}{zone}  {report.snapshot}"
    if report.new_snapshot:
        head += "  (new snapshot: nothing built yet)"
    lines = [head]
    tz = schedule.tz

    def line(label: str, interval: Interval, note: str = "") -> str:
        span = f"[{format_short(interval.start, tz)}, {format_short(interval.end, tz)})"
        count = count_of(schedule.count(interval), "interval")
        return f"  {label:<10} {span:<27} {count}{note}"

    for interval in report.completed:
        lines.append(line("completed", interval))
    for interval in report.missing:
        waiting = subtract([interval], report.planned)
        note = "" if not waiting else "  (waiting: its upstream is incomplete)"
        if waiting and len(waiting) == 1 and waiting[0] != interval:
            note = "  (partly waiting: its upstream is incomplete)"
        lines.append(line("missing", interval, note))
    if not report.completed and not report.missing:
        lines.append("  no complete interval yet")
    elif not report.missing:
        lines.append("  nothing missing")
    return lines


@click.command("intervals", short_help="Completed and missing intervals of incremental nodes.")
@click.argument("node", required=False)
@environment_option("The environment to look at.")
@click.option(
    "--end",
    metavar="TIME",
    help="Count intervals up to TIME instead of now (a date includes that day; see run).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the ranges as JSON.")
@click.pass_obj
def intervals_cmd(
    obj: Context, node: str | None, environment: str, end: str | None, as_json: bool
) -> None:
    """Show NODE's completed and missing intervals (every incremental node without NODE).

    Ranges are merged and half-open, [start, end), in the schedule's time zone. A
    missing interval the next run cannot process yet waits for its upstream.
    """
    from seeknal.compiler import compile_project, read_state
    from seeknal.compiler.interval_work import Window

    window = make_window(None, end, (), False)
    result = compile_project(obj.project, environment=environment, window=window)
    echo_warnings(result.warnings)
    cap = (window or Window()).cap
    reports = interval_reports(result.plan, read_state(result.config).snapshots, cap)
    if node is not None:
        reports = _only(node, reports, result.plan["nodes"])
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reports], indent=2, sort_keys=True))
        return
    if not reports:
        click.echo("no incremental nodes (materialized: incremental_by_time) in this project")
        return
    for index, report in enumerate(reports):
        if index:
            click.echo("")
        click.echo("\n".join(render_report(report)))


def _only(node: str, reports: list[NodeReport], nodes: Mapping[str, Any]) -> list[NodeReport]:
    chosen = [r for r in reports if r.node == node]
    if chosen:
        return chosen
    from seeknal.compiler.hints import did_you_mean

    incremental = [r.node for r in reports]
    if node in nodes:
        raise SeeknalError(
            f"{node} is not incremental: it has no intervals",
            hint="incremental nodes: " + (", ".join(incremental) or "none"),
        )
    raise SeeknalError(
        f"unknown node '{node}'",
        hint=did_you_mean(node, nodes)
        or "incremental nodes: " + (", ".join(incremental) or "none"),
    )
