from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from seeknal.compiler.cache import project_cache_file
from tests.cli.conftest import invoke, run_process


def test_compile_cold_warm_and_no_cache_write_the_same_plan(shop: Path) -> None:
    plans = []
    for args in ([], [], ["--no-cache"]):
        result = invoke(shop, "compile", *args)
        assert result.exit_code == 0, result.output
        plans.append((shop / "target" / "plan.json").read_bytes())
    assert plans[0] == plans[1] == plans[2]


def test_no_cache_flag_reads_and_writes_no_cache(shop: Path, _compile_cache: Path) -> None:
    assert invoke(shop, "compile", "--no-cache").exit_code == 0
    assert invoke(shop, "run", "--no-cache", "--quiet").exit_code == 0
    assert not any(_compile_cache.iterdir())
    assert invoke(shop, "compile").exit_code == 0
    assert project_cache_file(shop).is_file()


def test_a_process_finds_the_cache_a_previous_process_left(shop: Path) -> None:
    first = run_process(shop, "compile")
    assert first.returncode == 0, first.stderr
    plan = (shop / "target" / "plan.json").read_bytes()
    assert project_cache_file(shop).is_file()
    second = run_process(shop, "compile", "--out", "target/again.json")
    assert second.returncode == 0, second.stderr
    assert (shop / "target" / "again.json").read_bytes() == plan


def test_plan_and_run_take_no_cache_too(shop: Path, _compile_cache: Path) -> None:
    assert invoke(shop, "plan", "--no-cache", "--out", "target/p.json").exit_code == 0
    assert invoke(shop, "run", "--no-cache", "--quiet").exit_code == 0
    assert not any(_compile_cache.iterdir())


def test_help_imports_no_compiler_or_engine_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from seeknal.cli.main import main\n"
        "sys.argv = ['seeknal', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('sqlglot', 'duckdb', 'jinja2', 'jsonschema', 'yaml', 'sqlalchemy')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ},
    )
    assert "Usage: seeknal" in done.stdout
    assert done.stderr.strip() == "[]"


def _imports_of(project: Path, *args: str) -> list[str]:
    """The libraries (of a known heavy few) a seeknal process imported to run ``args``."""
    # The entry point may end the process itself (os._exit, seeknal/process.py): the
    # modules are listed on the way out either way.
    code = (
        "import os, sys\n"
        "from seeknal.cli.main import main\n"
        f"sys.argv = ['seeknal', '--project', {str(project)!r}, *{list(args)!r}]\n"
        "def report():\n"
        "    heavy = ('sqlglot', 'jinja2', 'jsonschema', 'yaml', 'croniter', 'zoneinfo',\n"
        "             'sqlalchemy', 'rich')\n"
        "    print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
        "    sys.stderr.flush()\n"
        "exit_now = os._exit\n"
        "def exiting(code):\n"
        "    assert not code, code\n"
        "    report()\n"
        "    exit_now(code)\n"
        "os._exit = exiting\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "report()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(eval(done.stderr.strip().splitlines()[-1]))  # a printed list of names


def test_a_warm_incremental_run_imports_no_compiler_library(shop: Path) -> None:
    """The daily run: every file unchanged, one more day to do. It reads the project
    file and the node files from the cache, and runs @daily schedules without croniter."""
    assert run_process(shop, "run", "-q", "--end", "2024-06-10").returncode == 0
    assert _imports_of(shop, "run", "-q", "--end", "2024-06-11") == []
    # The day was done: the plan had work (no memo kept), and the next run has none.
    again = run_process(shop, "run", "--end", "2024-06-11")
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr


def test_a_source_file_a_day_longer_needs_no_sql_parser(shop: Path) -> None:
    """An event log that grew keeps its columns: the source's load SQL comes from the
    cache, and the run parses no SQL (sqlglot costs more to import than the day)."""
    events = shop / "seeknal/sources/events.yml"
    events.write_text(events.read_text() + "materialized: view\n")
    assert run_process(shop, "run", "-q", "--end", "2024-06-10").returncode == 0
    with (shop / "data/events.csv").open("a", encoding="utf-8") as fh:
        fh.write("90001,7,2024-06-11 09:30:00,purchase,42.00\n")
    assert _imports_of(shop, "run", "-q", "--end", "2024-06-11") == []


def test_a_changed_project_file_is_read_again(shop: Path) -> None:
    assert invoke(shop, "compile").exit_code == 0
    project_file = shop / "seeknal_project.yml"
    project_file.write_text(project_file.read_text() + "\nnot_a_setting: 1\n")
    result = invoke(shop, "compile")
    assert result.exit_code == 2
    assert "seeknal_project.yml" in result.output and "not_a_setting" in result.output
