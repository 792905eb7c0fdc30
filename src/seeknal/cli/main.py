"""The `seeknal` command: global options, the command list, and the one error boundary.

Commands import the compiler and runtime lazily, so `seeknal --help` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from seeknal import __version__

INTERNAL_ERROR = 70


@dataclass(frozen=True, slots=True)
class Context:
    """What every command gets from the global options."""

    project: Path
    debug: bool


class SeeknalGroup(click.Group):
    """A click group that turns SeeknalErrors into a message and their exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Workflow order, not alphabetical: how a user meets them.
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        from seeknal.errors import SeeknalError

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
            ctx.exit(130)
        except Exception as exc:
            if ctx.obj is not None and ctx.obj.debug:
                raise
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
    default=".",
    show_default=True,
    help="The project directory (holding seeknal_project.yml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="seeknal")
@click.pass_context
def cli(ctx: click.Context, project: Path, debug: bool) -> None:
    """Compile YAML + SQL pipelines into plan.json and execute exactly that plan."""
    ctx.obj = Context(project=project, debug=debug)


def _register() -> None:
    from seeknal.cli import build, explore, init

    cli.add_command(init.init)
    cli.add_command(build.compile_cmd)
    cli.add_command(build.execute)
    cli.add_command(build.run)
    cli.add_command(explore.show)
    cli.add_command(explore.query)
    cli.add_command(explore.lineage)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="seeknal")


if __name__ == "__main__":  # pragma: no cover
    main()
