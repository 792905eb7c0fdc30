"""The `seeknal` command: global options, the command list, and the one error boundary.

Commands import the compiler and runtime lazily, so `seeknal --help` stays fast.
"""

from __future__ import annotations

import errno
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from seeknal import __version__

INTERNAL_ERROR = 70
# Errors of the machine rather than of seeknal: no space, no quota, a read-only file
# system, an I/O error.
_DEVICE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C
PROJECT_FILE = "seeknal_project.yml"


def find_project(start: Path) -> Path | None:
    """The nearest directory holding ``seeknal_project.yml``: ``start`` or a parent (as git).

    Example:
        >>> find_project(Path("shop/seeknal/transforms"))  # doctest: +SKIP
        PosixPath('/home/me/shop')
    """
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    return None


@dataclass(slots=True)
class Context:
    """What every command gets from the global options.

    ``project`` is looked up on first use, so commands that need no project (``init``,
    ``--help``) never look for one.
    """

    debug: bool
    project_option: Path | None = None
    found: Path | None = None

    @property
    def project(self) -> Path:
        """``--project``, else the nearest project at or above the current directory.

        The current directory stays ``.`` (so paths print as before); outside any
        project it is ``.`` too, and the error names it.
        """
        if self.project_option is not None:
            return self.project_option
        if self.found is None:
            above = find_project(Path.cwd())
            if above is None or above == Path.cwd().resolve():
                self.found = Path(".")
            else:
                self.found = above
                # Run from a subdirectory, a command works on the project above: say so.
                click.echo(f"using the project in {above}", err=True)
        return self.found


# Each command: the module under seeknal.cli that defines it, and its attribute there.
# Workflow order, not alphabetical: how a user meets them. A command's module is imported
# only when that command runs (or help lists them all), so `seeknal run` does not pay
# for `plan`'s or `show`'s imports.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "init"),
    "compile": ("build", "compile_cmd"),
    "plan": ("review", "plan_cmd"),
    "apply": ("review", "apply_cmd"),
    "execute": ("build", "execute"),
    "run": ("build", "run"),
    "intervals": ("intervals", "intervals_cmd"),
    "promote": ("environments", "promote"),
    "rollback": ("environments", "rollback"),
    "env": ("environments", "env_group"),
    "janitor": ("environments", "janitor"),
    "diff": ("review", "diff_cmd"),
    "show": ("explore", "show"),
    "query": ("explore", "query"),
    "lineage": ("explore", "lineage"),
}


class SeeknalGroup(click.Group):
    """A click group that turns SeeknalErrors into a message and their exit code, and
    loads each command's module when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module = importlib.import_module(f"seeknal.cli.{where[0]}")
        command: click.Command = getattr(module, where[1])
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from seeknal.errors import USER_ERROR, SeeknalError

        try:
            return super().invoke(ctx)
        except SeeknalError as exc:
            click.echo(exc.render(), err=True)
            if ctx.obj is not None and ctx.obj.debug:
                raise
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except BrokenPipeError:
            from seeknal.cli.output import silence_stdout

            # Whoever read stdout stopped reading (`| head`): nothing left to tell them.
            silence_stdout()
            ctx.exit(0)
        except Exception as exc:
            if ctx.obj is not None and ctx.obj.debug:
                raise
            if isinstance(exc, OSError) and exc.errno in _DEVICE_ERRORS:
                # A full disk, a read-only file system: the machine's, not seeknal's.
                where = f" ({exc.filename})" if exc.filename else " (writing the output)"
                click.echo(
                    f"error: {exc.strerror or exc}{where}\n"
                    "hint: make room, or make it writable, then run again: what was "
                    "committed and recorded is kept, and the next run resumes",
                    err=True,
                )
                ctx.exit(USER_ERROR)
            click.echo(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "hint: this is a bug in seeknal; run again with --debug for the traceback",
                err=True,
            )
            ctx.exit(INTERNAL_ERROR)


@click.group(cls=SeeknalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "-p",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project directory (holding seeknal_project.yml). "
    "[default: the current directory or the nearest parent holding one]",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="seeknal")
@click.pass_context
def cli(ctx: click.Context, project: Path | None, debug: bool) -> None:
    """Compile YAML + SQL pipelines into plan.json and execute exactly that plan."""
    ctx.obj = Context(debug=debug, project_option=project)


def environment_option(help: str = "Target environment.") -> Any:
    """``--env``: an environment name, checked before the command runs."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        from seeknal.naming import check_environment

        return check_environment(value)

    return click.option(
        "--env",
        "environment",
        default="prod",
        show_default=True,
        callback=check,
        help=help,
    )


def main() -> None:
    """Console-script entry point.

    The process ends with its command: a run leaves its checkpointed warehouse, and the
    lock it ran under, for the kernel to release instead of tearing them down
    (``seeknal/process.py``).
    """
    from seeknal import process

    process.arm()
    try:
        cli(prog_name="seeknal")
    except SystemExit as exc:
        if process.left():
            process.end(exc.code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
