"""`seeknal init DIR [--example]`."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import click

from seeknal.errors import SeeknalError

SKELETON = {
    "seeknal_project.yml": "name: {name}\ndialect: duckdb\nvars: {{}}\n",
    ".gitignore": "target/\n",
    "seeknal/sources/.gitkeep": "",
    "seeknal/transforms/.gitkeep": "",
    "data/.gitkeep": "",
}


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--example", is_flag=True, help="Start from the example shop project.")
def init(directory: Path, example: bool) -> None:
    """Create a new project in DIRECTORY."""
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
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in directory.resolve().name)
        for rel, text in SKELETON.items():
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.format(name=name or "project"), encoding="utf-8")
    click.echo(f"created {directory}" + (" from the example shop" if example else ""))
    click.echo(f"next: cd {directory} && seeknal run")
