"""The command-line process ends with its command (``seeknal/process.py``): a finished
run checkpoints its warehouse and leaves it, with the state lock, for the kernel to
release, skipping DuckDB's and the interpreter's teardown. What is on disk must be what
a run that closes everything leaves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.cli.conftest import SEEKNAL, invoke, run_process, tables_of


def _wal(project: Path) -> Path:
    return project / "target/warehouse.duckdb.wal"


def test_a_run_process_leaves_what_a_closing_run_leaves(shop: Path, tmp_path: Path) -> None:
    closing = tmp_path / "closing"
    shutil.copytree(shop, closing)
    done = run_process(shop, "run", "--end", "2024-06-10")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().splitlines()[-1].startswith("run finished in ")
    # In-process (a test runner): nothing is left, everything is closed as usual.
    assert invoke(closing, "run", "--end", "2024-06-10").exit_code == 0
    assert not _wal(shop).exists()
    assert tables_of(shop / "target/warehouse.duckdb") == tables_of(
        closing / "target/warehouse.duckdb"
    )
    # The warehouse and the state lock went with the process: both open at once.
    duckdb.connect(str(shop / "target/warehouse.duckdb")).close()
    again = run_process(shop, "run", "--end", "2024-06-11")
    assert again.returncode == 0, again.stderr
    assert "built    transform.daily_events" in again.stdout
    assert not _wal(shop).exists()


def test_a_run_without_the_catalog_memory_is_checkpointed_too(shop: Path) -> None:
    done = run_process(shop, "run", "--no-cache", "--end", "2024-06-10")
    assert done.returncode == 0, done.stderr
    assert not _wal(shop).exists()
    tables = tables_of(shop / "target/warehouse.duckdb")
    assert tables["transform.daily_events"]


def test_a_failed_run_process_keeps_its_exit_code(shop: Path) -> None:
    assert run_process(shop, "run", "--end", "2024-06-10").returncode == 0
    (shop / "seeknal/transforms/broken.yml").write_text(
        "kind: transform\nname: broken\n"
        "transform: SELECT CAST(status AS INTEGER) AS n FROM ref('transform.stg_orders')\n"
    )
    failed = run_process(shop, "run", "--end", "2024-06-10")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "transform.broken" in failed.stderr
    assert not _wal(shop).exists()
    (shop / "seeknal/transforms/broken.yml").unlink()
    assert run_process(shop, "run", "--end", "2024-06-10").returncode == 0


def test_query_output_reaches_a_pipe_whole(shop: Path) -> None:
    assert run_process(shop, "run", "--end", "2024-06-10").returncode == 0
    sql = "SELECT range AS n, repeat('x', 100) AS pad FROM range(50000)"
    done = run_process(shop, "query", "--json", "--limit", "50000", sql)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)  # about 6 MB through the pipe, none of it lost
    assert [row["n"] for row in rows] == list(range(50000))


def test_the_end_reads_an_exit_code_as_sys_exit_does() -> None:
    cases = {"None": (0, ""), "0": (0, ""), "3": (3, ""), "'bad thing'": (1, "bad thing\n")}
    for code, (expected, stderr) in cases.items():
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from seeknal import process\nprint('out')\nprocess.end({code})",
            ],
            capture_output=True,
            text=True,
        )
        assert (done.returncode, done.stdout, done.stderr) == (expected, "out\n", stderr), code


def test_output_a_reader_has_not_taken_yet_holds_no_warehouse(shop: Path) -> None:
    """``query`` prints after it closed the warehouse (only a run, whose last lines are
    short, leaves its warehouse to the process's end): a reader that waits does not keep
    a run from starting."""
    assert run_process(shop, "run", "--end", "2024-06-10").returncode == 0
    sql = "SELECT range AS n, repeat('x', 100) AS pad FROM range(50000)"
    argv = [SEEKNAL, "--project", str(shop), "query", "--json", "--limit", "50000", sql]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as reader:
        assert reader.stdout is not None
        first = reader.stdout.read(1)  # the query ran and is printing; the pipe is full
        time.sleep(0.5)
        done = run_process(shop, "run", "--end", "2024-06-11")
        rest = reader.stdout.read()
    assert done.returncode == 0, done.stderr
    assert len(json.loads(first + rest)) == 50000


def test_a_run_with_its_standard_streams_closed_exits_0(shop: Path) -> None:
    for closed in (">&-", "2>&-", ">&- 2>&-"):
        done = subprocess.run(
            f"{SEEKNAL} --project {shop} run -q --end 2024-06-10 {closed}", shell=True
        )
        assert done.returncode == 0, closed


def test_objects_are_kept_for_the_end_only_in_an_armed_process() -> None:
    code = (
        "import gc, sys, weakref\n"
        "from seeknal import process\n"
        "class Plan: pass\n"
        "def kept():\n"
        "    plan = Plan()\n"
        "    process.keep(plan)\n"
        "    return weakref.ref(plan)\n"
        "before = kept(); gc.collect()\n"
        "process.arm()\n"
        "after = kept(); gc.collect()\n"
        "print(before() is None, after() is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["True", "True"], done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_device_is_the_machines_error_not_seeknals(shop: Path) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [SEEKNAL, "--project", str(shop), "run", "--end", "2024-06-10"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: No space left on device (writing the output)")
    assert "internal error" not in done.stderr
    again = run_process(shop, "run", "--end", "2024-06-10")
    assert again.returncode == 0, again.stderr
