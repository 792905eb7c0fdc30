"""`seeknal plan`, and the plan summaries people review (terminal and Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seeknal.cli.build import _execute, make_window, no_cache_option, window_options
from seeknal.cli.main import Context
from seeknal.cli.output import RunPrinter, echo_warnings
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
        base = summary.base_environment
        lines[0] += f" (new environment, starting from {base})" if base else " (new environment)"
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


@click.command("plan", short_help="Show what changes in an environment, then apply it.")
@click.argument("environment", required=False, default=None)
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option(
    "--out",
    "-o",
    default=None,
    help="Only save the plan to this file (relative to the project unless absolute); "
    "apply it later with `seeknal apply ENV FILE`.",
)
@click.option(
    "--base", default="prod", show_default=True, help="What a new environment starts from."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (never applies).")
@click.option("--no-diff", is_flag=True, help="Leave the SQL diffs out.")
@click.option(
    "--forward-only", is_flag=True, help="Keep the tables of changed nodes (see compile)."
)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True)
@window_options
@no_cache_option
@click.pass_obj
def plan_cmd(
    obj: Context,
    environment: str | None,
    yes: bool,
    out: str | None,
    base: str,
    as_json: bool,
    no_diff: bool,
    forward_only: bool,
    threads: int,
    start: str | None,
    end: str | None,
    restate: tuple[str, ...],
    backfill: bool,
    no_cache: bool,
) -> None:
    """Compile for ENVIRONMENT (default prod), show the changes, and ask to apply them.

    For each changed node: its category (breaking, non_breaking, metadata, ...), the
    edits found in its SQL and the diff of its normalized SQL; then every changed column
    with the columns it comes from and the columns downstream that read it; then how
    many snapshots the plan builds. `Apply? [y/N]` then builds and promotes exactly
    this plan (--yes skips the question; --out only saves it; --json only prints).
    """
    from seeknal.compiler import compile_project, write_plan
    from seeknal.naming import check_environment
    from seeknal.summary import summarize_plan

    env = check_environment(environment or "prod")
    window = make_window(start, end, restate, backfill)
    result = compile_project(
        obj.project,
        environment=env,
        forward_only=forward_only,
        base=check_environment(base),
        window=window,
        use_cache=not no_cache,
    )
    echo_warnings(result.warnings)
    plan = result.plan
    summary = summarize_plan(plan)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2, sort_keys=True))
        return
    click.echo(render_text(summary, diffs=not no_diff))
    from seeknal.cli.build import DEFAULT_PLAN, plan_destination

    if out:
        path = plan_destination(obj.project, out)
        write_plan(plan, path, text=result.text)
        click.echo(
            f"wrote {path} (plan_id {plan['plan_id'][:12]}); apply it with `seeknal apply {env} {out}`"
        )
        return
    if not summary.changed and not plan["work"] and plan["base_state"] is not None:
        click.echo("nothing to apply")
        return
    if not yes:
        try:
            answer = click.confirm("Apply?", default=False)
        except click.Abort:  # no terminal, nothing typed: the default
            answer = False
            click.echo()
        if not answer:
            click.echo("not applied")
            return
    write_plan(plan, obj.project / DEFAULT_PLAN, text=result.text)
    # The text just written, verified and parsed by the runtime as that file would be.
    _execute(
        obj,
        None,
        threads=threads,
        force=False,
        printer=RunPrinter(),
        text=result.text,
        use_cache=not no_cache,
    )


@click.command("apply", short_help="Apply a saved plan to an environment.")
@click.argument("environment")
@click.argument(
    "plan_path", metavar="[PLAN]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--force", is_flag=True, help="Apply even if the plan is stale.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True)
@click.pass_obj
def apply_cmd(
    obj: Context, environment: str, plan_path: Path | None, force: bool, threads: int
) -> None:
    """Apply PLAN (default target/plan.json) to ENVIRONMENT, exactly as it was compiled.

    The plan must have been compiled for ENVIRONMENT, and ENVIRONMENT must not have
    changed since (unless --force). Same as `seeknal execute PLAN`, with the environment
    named, so a plan for dev is never applied to prod by mistake.
    """
    from seeknal.cli.build import resolve_plan_path
    from seeknal.naming import check_environment
    from seeknal.runtime import read_plan_text

    env = check_environment(environment)
    path = resolve_plan_path(obj, plan_path)
    # The runtime parses and verifies the file's text, once, and checks its environment
    # before anything is locked.
    _execute(
        obj,
        None,
        threads=threads,
        force=force,
        printer=RunPrinter(),
        text=read_plan_text(path),
        where=str(path),
        environment=env,
    )


@click.command("diff", short_help="What changed between two plan files (for reviews).")
@click.argument("plan_a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("plan_b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-diff", is_flag=True, help="Leave the SQL diffs out.")
@click.pass_obj
def diff_cmd(obj: Context, plan_a: Path, plan_b: Path, as_json: bool, no_diff: bool) -> None:
    """Compare PLAN_A with PLAN_B: nodes added or removed, and per node what moved
    (category, snapshot, SQL, columns, work).

    A relative PLAN not found in the current directory is looked up in the project."""
    from seeknal.cli.build import resolve_plan_path
    from seeknal.runtime import load_plan
    from seeknal.summary import diff_plans

    diff = diff_plans(
        load_plan(resolve_plan_path(obj, plan_a)), load_plan(resolve_plan_path(obj, plan_b))
    )
    if as_json:
        click.echo(json.dumps(diff.to_json(), indent=2, sort_keys=True))
        return
    click.echo(render_plan_diff(diff, str(plan_a), str(plan_b), sql=not no_diff))


def render_plan_diff(diff: Any, a: str, b: str, *, sql: bool = True) -> str:
    lines = [f"--- {a} (plan {diff.plan_ids[0][:12]}, environment {diff.environments[0]})"]
    lines.append(f"+++ {b} (plan {diff.plan_ids[1][:12]}, environment {diff.environments[1]})")
    if diff.same:
        lines.append("the plans are identical")
        return "\n".join(lines)
    for node in diff.only_a:
        lines.append(f"- {node}")
    for node in diff.only_b:
        lines.append(f"+ {node}")
    for node in diff.changed:
        lines.append(f"~ {node.node}: " + "; ".join(node.changes))
        if sql and node.sql_diff:
            lines.extend("    " + d for d in node.sql_diff.rstrip("\n").splitlines())
    for line in diff.other:
        lines.append(f"~ {line}")
    return "\n".join(lines)


__all__ = ["apply_cmd", "diff_cmd", "plan_cmd", "render_markdown", "render_text", "write_summary"]
