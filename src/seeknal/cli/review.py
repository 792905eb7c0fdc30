"""`seeknal plan`, and the plan summaries people review (terminal and Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seeknal.cli.build import make_window, window_options
from seeknal.cli.main import Context
from seeknal.cli.output import echo_warnings
from seeknal.wording import count_of

if TYPE_CHECKING:  # the summary module is imported lazily, like every command's code
    from seeknal.summary import ColumnImpact, NodeSummary, PlanSummary

REASON_WORDS = {
    "new": "new",
    "source_data_changed": "rebuilt in place (data files changed)",
    "forward_only": "altered in place (forward-only)",
    "breaking_change": "filled from start (breaking change)",
    "missing": "filling missing intervals",
    "lookback": "reprocessing lookback intervals",
    "restatement": "restated",
    "upstream_intervals": "rebuilt for new intervals upstream",
}


def _detail_text(detail: Any) -> str:
    text = str(detail["kind"])
    if "column" in detail:
        text += f" {detail['column']}"
    if "previous" in detail:
        text += f" (was {detail['previous']})"
    return text


def _impact_line(impact: ColumnImpact) -> str:
    line = f"{impact.node}.{impact.column} ({impact.edit})"
    if impact.upstream:
        line += " <- " + ", ".join(impact.upstream)
    if impact.affects:
        line += "; affects " + ", ".join(impact.affects)
    return line


def _work_line(summary: PlanSummary) -> str:
    builds = sum(summary.work_materialized.values())
    kinds = ", ".join(count_of(n, m) for m, n in sorted(summary.work_materialized.items()) if n)
    line = f"{count_of(builds, 'snapshot')} to build" + (f" ({kinds})" if kinds else "")
    extra = [
        f"{count_of(n, 'snapshot')} {REASON_WORDS[r]}"
        for r, n in sorted(summary.work.items())
        if r != "new"
    ]
    return "; ".join([line, *extra])


def render_text(summary: PlanSummary, *, diffs: bool = True) -> str:
    """The plan as ``seeknal plan`` prints it."""
    lines = [f"Plan for environment '{summary.environment}'"]
    if summary.base_state is None:
        lines[0] += " (new environment, compared with prod)"
    changed = summary.changed
    if not changed:
        lines.append("No changes.")
    for category, nodes in summary.by_category.items():
        if category == "unchanged":
            continue
        lines.append("")
        lines.append(f"{category} ({len(nodes)})")
        for node in nodes:
            edits = ", ".join(_detail_text(d) for d in node.details)
            lines.append(f"  {node.node}" + (f": {edits}" if edits else ""))
            if diffs and node.sql_diff:
                lines.extend("      " + d for d in node.sql_diff.rstrip("\n").splitlines())
    unchanged = summary.counts.get("unchanged", 0)
    if unchanged and changed:
        lines.append("")
        lines.append(f"{count_of(unchanged, 'node')} unchanged")
    if summary.impact:
        lines.append("")
        lines.append("Column impact")
        lines.extend(f"  {_impact_line(i)}" for i in summary.impact)
    if summary.intervals:
        lines.append("")
        lines.append("Intervals")
        lines.extend(f"  {i.node}: {i.describe()}" for i in summary.intervals)
    lines.append("")
    lines.append("Work: " + _work_line(summary))
    return "\n".join(lines)


def render_markdown(summary: PlanSummary, plan: dict[str, Any]) -> str:
    """A Markdown summary of the plan, for a pull-request comment."""
    nodes: list[NodeSummary] = summary.changed
    out = [
        f"## seeknal plan: `{plan['project']}` → `{summary.environment}`",
        "",
        f"plan_id `{plan['plan_id'][:12]}` · "
        + (
            "new environment"
            if summary.base_state is None
            else f"base state `{summary.base_state[:12]}`"
        )
        + f" · {_work_line(summary)}",
        "",
    ]
    if not nodes:
        out.append("No changes.")
    else:
        out += ["| category | nodes |", "| --- | --- |"]
        for category, group in summary.by_category.items():
            out.append(f"| {category} | {len(group)} |")
        out.append("")
        for node in nodes:
            edits = ", ".join(f"`{_detail_text(d)}`" for d in node.details)
            out.append(f"- **{node.node}** — {node.category}" + (f": {edits}" if edits else ""))
    if summary.impact:
        out += ["", "### Column impact", ""]
        out += [f"- `{_impact_line(i)}`" for i in summary.impact]
    if summary.intervals:
        out += ["", "### Intervals", ""]
        out += [f"- `{i.node}`: {i.describe()}" for i in summary.intervals]
    diffs = [n for n in nodes if n.sql_diff]
    if diffs:
        out += ["", "### SQL changes", ""]
        for node in diffs:
            out += [
                "<details>",
                f"<summary>{node.node} ({node.category})</summary>",
                "",
                "```diff",
                node.sql_diff.rstrip("\n"),
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(out).rstrip("\n") + "\n"


def write_summary(path: Path, text: str) -> None:
    from seeknal.errors import SeeknalError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SeeknalError(
            f"cannot write the summary to {path}: {exc.strerror or exc}",
            hint="choose a path you can write",
        ) from exc


@click.command("plan", short_help="Show what changes in an environment, and what it costs.")
@click.argument("environment", required=False, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-diff", is_flag=True, help="Leave the SQL diffs out.")
@click.option(
    "--forward-only", is_flag=True, help="Keep the tables of changed nodes (see compile)."
)
@window_options
@click.option(
    "--out",
    "-o",
    default=None,
    help="Also write the plan file (relative to the project unless absolute).",
)
@click.pass_obj
def plan_cmd(
    obj: Context,
    environment: str | None,
    as_json: bool,
    no_diff: bool,
    forward_only: bool,
    start: str | None,
    end: str | None,
    restate: tuple[str, ...],
    backfill: bool,
    out: str | None,
) -> None:
    """Compile for ENVIRONMENT (default prod) and show the changes by category.

    For each changed node: its category (breaking, non_breaking, metadata, ...), the
    edits found in its SQL and the diff of its normalized SQL; then every changed column
    with the columns it comes from and the columns downstream that read it; then how
    many snapshots the plan builds. Writes nothing unless --out is given.
    """
    from seeknal.compiler import compile_project, write_plan
    from seeknal.naming import check_environment
    from seeknal.summary import summarize_plan

    env = check_environment(environment or "prod")
    window = make_window(start, end, restate, backfill)
    result = compile_project(obj.project, environment=env, forward_only=forward_only, window=window)
    echo_warnings(result.warnings)
    summary = summarize_plan(result.plan)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(render_text(summary, diffs=not no_diff))
    if out:
        from seeknal.cli.build import plan_destination

        path = plan_destination(obj.project, out)
        write_plan(result.plan, path)
        if not as_json:
            click.echo(f"wrote {path} (plan_id {result.plan['plan_id'][:12]})")


__all__ = ["plan_cmd", "render_markdown", "render_text", "write_summary"]
