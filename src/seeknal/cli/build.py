"""`seeknal compile`, `seeknal execute`, `seeknal run`."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from seeknal.cli.main import Context, environment_option
from seeknal.cli.output import RunPrinter, echo_warnings
from seeknal.errors import Diagnostic, ProjectError, SourceLocation
from seeknal.wording import count_of

DEFAULT_PLAN = "target/plan.json"
PLAN_FILE = "plan.json"


def plan_destination(project: Path, out: str) -> Path:
    """Where ``compile --out OUT`` writes: relative to the project; a directory gets plan.json.

    An OUT inside the project must stay there once symlinks are followed: a pull
    request can commit ``target`` as a symlink to anywhere, and compile writes nothing
    outside the project unless the command line says so.

    Raises:
        ProjectError: OUT names a place in the project that a symlink leads out of.

    Example:
        >>> plan_destination(Path("shop"), "target/")
        PosixPath('shop/target/plan.json')
    """
    path = Path(out) if Path(out).is_absolute() else project / out
    if out.endswith(("/", os.sep)) or path.is_dir():
        path = path / PLAN_FILE
    lexical, root = _lexical(path), _lexical(project)
    if lexical.is_relative_to(root):
        step = root
        for part in lexical.relative_to(root).parts:
            step = step / part
            if step.is_symlink() and not step.resolve().is_relative_to(project.resolve()):
                raise ProjectError(
                    Diagnostic(
                        f"{out} goes through a symlink that leads outside the project",
                        SourceLocation(step.relative_to(root).as_posix()),
                        hint="compile writes only inside the project; remove the symlink, "
                        "or choose another --out",
                    )
                )
    return path


def resolve_plan_path(obj: Context, plan_path: Path | None) -> Path:
    """PLAN as given (default: the project's target/plan.json); a relative PLAN that is
    not in the current directory is looked up in the project, like `compile --out`."""
    if plan_path is None:
        return obj.project / DEFAULT_PLAN
    if (
        not plan_path.is_absolute()
        and not plan_path.exists()
        and (obj.project / plan_path).exists()
    ):
        return obj.project / plan_path
    return plan_path


def _lexical(path: Path) -> Path:
    """``path`` made absolute without following symlinks."""
    return Path(os.path.normpath(Path.cwd() / path))


def _summary(plan: dict[str, Any], out: str | None) -> str:
    from seeknal.summary import CATEGORY_ORDER

    counts = Counter(node["change"]["category"] for node in plan["nodes"].values())
    parts = [f"{counts[c]} {c}" for c in CATEGORY_ORDER if counts[c]]
    work = len(plan["work"])
    line = (
        f"compiled {len(plan['nodes'])} nodes for environment '{plan['environment']}' "
        f"({', '.join(parts) or 'no nodes'}); {count_of(work, 'snapshot')} to build"
    )
    if out:
        line += f"\nwrote {out} (plan_id {plan['plan_id'][:12]})"
    return line


def no_cache_option(fn: Any) -> Any:
    """``--no-cache``: neither read nor write the compile cache."""
    return click.option(
        "--no-cache",
        is_flag=True,
        help="Neither read nor write the compile cache, nor the warehouse catalog a run "
        "remembers (the plan is the same either way; SEEKNAL_NO_CACHE=1 does this too).",
    )(fn)


def window_options(fn: Any) -> Any:
    """``--start``, ``--end``, ``--restate``, ``--backfill``: which intervals a plan covers."""
    fn = click.option(
        "--backfill",
        is_flag=True,
        help="Fill every missing interval since each incremental node's start (what a run "
        "does by default, said explicitly; it refuses --start).",
    )(fn)
    fn = click.option(
        "--restate",
        multiple=True,
        metavar="NODE",
        help="Reprocess NODE's completed intervals between --start and --end (all of them "
        "without), and those of its incremental descendants; tables and views reading "
        "them are rebuilt. Repeatable.",
    )(fn)
    fn = click.option(
        "--end",
        metavar="TIME",
        help="Plan intervals up to TIME instead of now: a date includes that whole day "
        "(2024-02-15), a timestamp is exclusive (2024-02-15T06:00:00); UTC unless an "
        "offset is given. The same --end compiles the same plan on any day.",
    )(fn)
    fn = click.option(
        "--start",
        metavar="TIME",
        help="Process only intervals from TIME on (a date or timestamp, UTC unless an "
        "offset is given).",
    )(fn)
    return fn


def make_window(
    start: str | None, end: str | None, restate: tuple[str, ...], backfill: bool
) -> Any:
    """The compiler's Window from the options, or None when none was given.

    Raises:
        click.BadParameter: a time that cannot be read, or --start not before --end.
        click.UsageError: --backfill with --start.
    """
    from seeknal.compiler.interval_work import Window
    from seeknal.intervals import IntervalError, parse_time

    if backfill and start is not None:
        raise click.UsageError(
            "--backfill fills every gap since each node's start; it cannot take --start"
        )
    bounds: dict[str, int | None] = {"start": None, "end": None}
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        try:
            bounds[name] = parse_time(value, day_end=name == "end")
        except IntervalError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{name}") from None
    lo, hi = bounds["start"], bounds["end"]
    if lo is not None and hi is not None and lo >= hi:
        assert start is not None and end is not None
        whole_day = len(end.strip()) == 10  # a date: its whole day is included
        raise click.BadParameter(
            f"--start {_as_typed(start, lo)} is not before --end {_as_typed(end, hi, whole_day)}",
            param_hint="--start",
        )
    if lo is None and hi is None and not restate:
        return None
    return Window(start=lo, end=hi, restate=tuple(restate))


def _as_typed(text: str, moment: int, whole_day: bool = False) -> str:
    """A time as the user typed it, with the UTC time it means when that differs."""
    from seeknal.intervals import format_time

    utc = format_time(moment)
    if text.strip() == utc:
        return text
    return f"{text} ({utc}{', the end of that day' if whole_day else ''})"


def _run_options(fn: Any) -> Any:
    fn = click.option(
        "--threads",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Nodes built at the same time.",
    )(fn)
    fn = click.option("--quiet", "-q", is_flag=True, help="Print only failures and the result.")(fn)
    fn = click.option(
        "--json", "as_json", is_flag=True, help="Print events as JSON lines (for CI)."
    )(fn)
    return fn


def _execute(
    obj: Context,
    plan: dict[str, Any] | None,
    *,
    threads: int,
    force: bool,
    printer: RunPrinter,
    session: Any = None,
    text: str | None = None,
    where: str = "plan.json",
    environment: str | None = None,
    use_cache: bool = True,
    on_plan: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    from seeknal.runtime import execute_plan

    execute_plan(
        plan,
        obj.project.resolve(),
        threads=threads,
        force=force,
        on_event=printer,
        session=session,
        text=text,
        where=where,
        environment=environment,
        use_cache=use_cache,
        on_plan=on_plan,
    )


@click.command(
    "compile", short_help="Compile the project into target/plan.json (pure: no warehouse)."
)
@click.option(
    "--out",
    "-o",
    default=DEFAULT_PLAN,
    show_default=True,
    help="Where to write the plan (relative to the project unless absolute); "
    "a directory (or a path ending in /) gets plan.json.",
)
@environment_option("Target environment to plan against.")
@window_options
@click.option(
    "--untrusted",
    is_flag=True,
    help="The project comes from someone you do not trust (a pull request): ignore its "
    "embed_env_vars and allow_external_data, so env_var() reads no environment variable "
    "and no data file outside the project is read.",
)
@click.option(
    "--forward-only",
    is_flag=True,
    help="Keep the tables of changed nodes: new SQL applies from the next rebuild, new "
    "columns are added in place; a change that removes, renames or retypes a column is "
    "refused.",
)
@click.option(
    "--summary-md",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a Markdown summary of the changes (for a pull-request comment).",
)
@no_cache_option
@click.pass_obj
def compile_cmd(
    obj: Context,
    out: str,
    environment: str,
    start: str | None,
    end: str | None,
    restate: tuple[str, ...],
    backfill: bool,
    untrusted: bool,
    forward_only: bool,
    summary_md: Path | None,
    no_cache: bool,
) -> None:
    """Compile the project into a canonical plan.json (reads state, writes only the plan).

    Compiling never runs project code outside the template sandbox, never reads outside
    the project directory, and never opens the warehouse or profiles.yml. What earlier
    compiles worked out is reused from the compile cache, outside the project
    (SEEKNAL_CACHE_DIR, else ~/.cache/seeknal; see docs/guides/compile-cache.md).
    """
    from seeknal.compiler import compile_project, write_plan

    window = make_window(start, end, restate, backfill)
    path = plan_destination(obj.project, out)  # refused before anything is compiled
    result = compile_project(
        obj.project,
        environment=environment,
        untrusted=untrusted,
        forward_only=forward_only,
        window=window,
        use_cache=not no_cache,
    )
    echo_warnings(result.warnings)
    write_plan(result.parsed, path, text=result.text)
    click.echo(_summary(result.plan, str(path)))
    if summary_md is not None:
        from seeknal.cli.review import render_markdown, write_summary
        from seeknal.summary import summarize_plan

        write_summary(summary_md, render_markdown(summarize_plan(result.plan), result.plan))
        click.echo(f"wrote {summary_md}")


@click.command(short_help="Execute exactly the plan in a plan file.")
@click.argument(
    "plan_path",
    metavar="[PLAN]",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--force", is_flag=True, help="Execute even if the plan is stale.")
@_run_options
@click.pass_obj
def execute(
    obj: Context, plan_path: Path | None, force: bool, threads: int, quiet: bool, as_json: bool
) -> None:
    """Execute exactly the plan in PLAN: build its snapshots, then point the views at them.

    PLAN defaults to the project's target/plan.json. A relative PLAN is looked up in the
    current directory first, then in the project.
    """
    from seeknal.runtime import read_plan_text

    path = resolve_plan_path(obj, plan_path)
    text = read_plan_text(path)
    printer = RunPrinter(quiet=quiet, as_json=as_json)
    # The runtime parses and verifies the text, once.
    _execute(obj, None, threads=threads, force=force, printer=printer, text=text, where=str(path))


@click.command(short_help="Compile and execute in one step (nothing changed: nothing built).")
@environment_option()
@window_options
@click.option(
    "--forward-only", is_flag=True, help="Keep the tables of changed nodes (see compile)."
)
@_run_options
@no_cache_option
@click.pass_obj
def run(
    obj: Context,
    environment: str,
    start: str | None,
    end: str | None,
    restate: tuple[str, ...],
    backfill: bool,
    forward_only: bool,
    threads: int,
    quiet: bool,
    as_json: bool,
    no_cache: bool,
) -> None:
    """Compile and execute in one step (also writes target/plan.json).

    Incremental nodes process every missing interval since their start (gaps included)
    up to the last complete one, plus their lookback; --start/--end limit that window,
    and --restate reprocesses intervals already done.
    """
    from seeknal import process
    from seeknal.compiler import (
        CompileResult,
        compile_project,
        plan_target,
        project_settings,
        write_plan,
    )
    from seeknal.runtime.execute import prepare_execution
    from seeknal.runtime.session import held_run

    window = make_window(start, end, restate, backfill)
    path = plan_destination(obj.project, DEFAULT_PLAN)

    def settle() -> tuple[Any, dict[str, Any] | None]:
        settings = project_settings(obj.project, use_cache=not no_cache)
        config, problems = settings
        # A project file with errors is reported by the compile, before anything is locked.
        errors = any(d.severity == "error" for d in problems)
        return settings, None if errors else plan_target(config)

    def compiled(state: Any, settings: Any) -> CompileResult:
        result = compile_project(
            obj.project,
            environment=environment,
            forward_only=forward_only,
            window=window,
            use_cache=not no_cache,
            executes=True,
            state=state,
            settings=settings,
        )
        write_plan(result.parsed, path, text=result.text)
        return result

    # The run holds the state lock from before it compiles: the plan is compiled against
    # the state it runs on, read once, while the warehouse opens (runtime/session.py).
    held = held_run(
        obj.project,
        settle,
        compiled,
        lambda state, result: prepare_execution(result.text, obj.project),
        use_hint=not no_cache,
    )
    with held as (session, result):
        echo_warnings(result.warnings)
        printer = RunPrinter(quiet=quiet, as_json=as_json)
        # The text just written to plan.json, verified as that file would be (the id
        # from its canonical bytes), parsed once by the runtime (a plan the memo
        # answered is known only as text), which hands it back for the summary line.
        _execute(
            obj,
            None,
            threads=threads,
            force=False,
            printer=printer,
            session=session,
            text=result.text,
            use_cache=not no_cache,
            on_plan=None if quiet or as_json else lambda plan: printer.line(_summary(plan, None)),
        )
        process.keep(result, session)  # the command ends the process next
