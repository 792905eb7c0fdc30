from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from seeknal.cli.main import cli

SEEKNAL = str(Path(sys.executable).parent / "seeknal")


def invoke(project: Path, *args: str) -> Result:
    """Run the CLI in-process, the way a user types it (global --project first)."""
    return CliRunner().invoke(cli, ["--project", str(project), *args], catch_exceptions=False)


def run_process(project: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run the real console script in a subprocess."""
    return subprocess.run(
        [SEEKNAL, "--project", str(project), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        **kwargs,  # type: ignore[arg-type]
    )


def tables_of(warehouse: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every environment view in the warehouse with all its rows, sorted (read as seeknal
    reads them: relative file names from the project directory)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        # Sources read in place name their files relative to the project, as seeknal
        # runs them (the warehouse is target/warehouse.duckdb).
        project = warehouse.resolve().parent.parent
        con.execute("SET file_search_path = ?", [str(project)])
        views = con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE NOT internal AND schema_name NOT LIKE 'seeknal__%' ORDER BY 1, 2"
        ).fetchall()
        return {
            f"{s}.{v}": con.execute(f'SELECT * FROM "{s}"."{v}" ORDER BY ALL').fetchall()
            for s, v in views
        }
    finally:
        con.close()


def uninterrupted_tables(project: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table after one uninterrupted single-threaded ``seeknal run``: what a crash
    test compares a killed and re-run project with."""
    result = run_process(project, "run", "--threads", "1")
    assert result.returncode == 0, result.stderr
    return tables_of(project / "target/warehouse.duckdb")


def tree_state(path: Path) -> dict[str, bytes]:
    """Bytes of every file under ``path`` (to prove a command changed nothing)."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"  # the lock file holds the last holder's pid
    }


@pytest.fixture
def seeknal_bin() -> str:
    return SEEKNAL
