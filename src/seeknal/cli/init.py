"""`seeknal init DIR [--example]`."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from seeknal.errors import SeeknalError

SKELETON = {
    "seeknal_project.yml": """\
# The project: every seeknal/**/*.yml is a node (kind + name; its id is kind.name).
name: {name}
dialect: duckdb
# warehouse: target/warehouse.duckdb   # the default
vars: {{}}
""",
    ".gitignore": "target/\n",
    "data/events.csv": """\
event_id,user_id,kind,happened_at
1,10,signup,2024-01-01 09:00:00
2,10,purchase,2024-01-02 10:30:00
3,11,signup,2024-01-02 11:00:00
4,12,signup,2024-01-03 08:15:00
5,11,purchase,2024-01-04 16:45:00
""",
    "seeknal/sources/events.yml": """\
kind: source
name: events
description: One row per event (a CSV in data/; columns are read from the file).
source: csv
table: data/events.csv
""",
    "seeknal/transforms/events_per_day.yml": """\
kind: transform
name: events_per_day
description: Events per day and kind.
transform: |
  SELECT CAST(happened_at AS DATE) AS day, kind, COUNT(*) AS events
  FROM {{{{ ref('source.events') }}}}
  GROUP BY ALL
""",
}


def project_name(directory: Path) -> str:
    """A valid project name from a directory's name: ``2024-sales`` -> ``project_2024_sales``.

    A name is a letter or ``_``, then ASCII letters, digits or ``_``
    (``schemas/project.schema.json``).

    Example:
        >>> project_name(Path("2024-sales")), project_name(Path("café"))
        ('project_2024_sales', 'caf_')
    """
    name = "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in directory.name)
    if not name:
        return "project"
    return f"project_{name}" if name[0].isdigit() else name


@click.command(short_help="Create a project (--example: the example shop).")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--example", is_flag=True, help="Start from the example shop project.")
def init(directory: Path, example: bool) -> None:
    """Create a new project in DIRECTORY."""
    import shutil  # imported here, not on `seeknal --help`'s path
    from importlib import resources

    try:
        if directory.exists() and any(directory.iterdir()):
            raise SeeknalError(f"{directory} exists and is not empty; choose a new directory")
        if example:
            source = resources.files("seeknal").joinpath("examples/shop")
            with resources.as_file(source) as path:
                shutil.copytree(
                    path,
                    directory,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("target", "__pycache__"),
                )
        else:
            name = project_name(directory.resolve())
            for rel, text in SKELETON.items():
                path = directory / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text.format(name=name), encoding="utf-8")
    except (OSError, shutil.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        failed = getattr(exc, "filename", None)
        where = f" ({failed})" if failed and Path(failed) != directory else ""
        raise SeeknalError(
            f"cannot create the project in {directory}{where}: {reason}",
            hint="choose a directory you can write to",
        ) from exc
    click.echo(f"created {directory}" + (" from the example shop" if example else ""))
    click.echo(f"next: cd {shlex.quote(str(directory))} && seeknal run")
