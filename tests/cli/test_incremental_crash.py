"""SIGKILL a real `seeknal run` while it fills or restates an incremental table.

Whatever the moment, the next run leaves every table as an uninterrupted run would —
and as plain DuckDB computes it in one go.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from seeknal.errors import StateError
from seeknal.intervals import ranges_from_json, seconds_in
from seeknal.state.file import FileStateBackend
from tests.cli.conftest import SEEKNAL, run_process, tables_of, uninterrupted_tables
from tests.conftest import EXAMPLE, copy_project, edit
from tests.runtime.incremental import same_as_recompute

DAILY_YML = "seeknal/transforms/daily_events.yml"
# Every node of the example, compared row by row with a full recompute in plain DuckDB.
NODES = sorted(
    f"{spec['kind']}.{spec['name']}"
    for spec in (yaml.safe_load(p.read_text()) for p in (EXAMPLE / "seeknal").rglob("*.yml"))
)


def slow_shop(dest: Path) -> Path:
    """The example shop, its incremental node cut into weekly batches that take a while."""
    project = copy_project(EXAMPLE, dest)
    edit(project / DAILY_YML, "batch_size: 31", "batch_size: 7")
    # Burns a few dozen milliseconds per batch without changing a row.
    edit(
        project / DAILY_YML,
        "WHERE event_at >= {{ start_ts }}",
        "WHERE (SELECT COUNT(*) FROM range(4000000)) > 0 AND event_at >= {{ start_ts }}",
    )
    return project


def days_done(project: Path) -> float:
    """Days of daily_events that state records as completed (-1 while unreadable).

    Reads the journal's last record of the node directly: validating the whole state on
    every poll would be slower than a batch.
    """
    state = project / "target/state"
    try:
        lines = (state / "journal.jsonl").read_bytes().splitlines()
    except FileNotFoundError:
        lines = []
    for line in reversed(lines):
        if b'"transform.daily_events"' not in line:
            continue
        try:
            record = json.loads(line)["record"]
        except ValueError:
            continue  # a line being written
        return seconds_in(ranges_from_json(record.get("intervals") or ())) / 86_400
    try:
        snapshots = FileStateBackend(state).read().snapshots
    except StateError:
        return -1  # the document is being replaced right now; look again
    for record in snapshots.values():
        if record["node"] == "transform.daily_events":
            return seconds_in(ranges_from_json(record.get("intervals") or ())) / 86_400
    return 0


def kill_when(project: Path, args: list[str], reached: Any, *, delay: float = 0.0) -> bool:
    """Start ``seeknal run``; SIGKILL it once ``reached(days_done)``. True if it was killed."""
    proc = subprocess.Popen(
        [SEEKNAL, "--project", str(project), "run", "--threads", "1", "--quiet", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    if delay:
        time.sleep(delay)
    else:
        while not reached(days_done(project)) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[object, ...]]]:
    return uninterrupted_tables(slow_shop(tmp_path_factory.mktemp("ref") / "shop"))


@pytest.mark.slow
# 0: while compiling or loading sources; 7, 140: after some batches; 364: before the last batch
# committing; 366: every batch recorded (the table over it, promotion, the journal fold).
@pytest.mark.parametrize("kill_at", [0, 7, 140, 364, 366])
def test_kill_while_filling_then_rerun(
    kill_at: int, tmp_path: Path, reference: dict[str, list[tuple[object, ...]]]
) -> None:
    project = slow_shop(tmp_path / "shop")
    killed = kill_when(project, [], lambda done: done >= kill_at, delay=0.4 if not kill_at else 0)
    if killed and 0 < kill_at < 366:
        assert days_done(project) < 366, "the run finished before it could be killed"
    rerun = run_process(project, "run", "--threads", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert tables_of(project / "target/warehouse.duckdb") == reference
    same_as_recompute(project, None, NODES, tmp_path)
    assert "nothing to do" in run_process(project, "run").stdout


def double_march(project: Path) -> None:
    """Late corrections: every March purchase was worth twice as much."""
    csv = project / "data/events.csv"
    lines = csv.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        if fields[2].startswith("2024-03"):
            fields[4] = f"{float(fields[4]) * 2:.2f}"
        out.append(",".join(fields))
    csv.write_text("\n".join(out) + "\n")


@pytest.mark.slow
# After state forgot March (335 days left) and before or after some restated batches.
@pytest.mark.parametrize("kill_at", [335, 342, 356])
def test_kill_while_restating_then_a_plain_run_finishes_it(kill_at: int, tmp_path: Path) -> None:
    project = slow_shop(tmp_path / "shop")
    assert run_process(project, "run", "-q").returncode == 0
    double_march(project)
    restate = [
        "--restate",
        "transform.daily_events",
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-31",
    ]
    forgot = [False]

    def reached(done: float) -> bool:
        forgot[0] = forgot[0] or 0 <= done <= 335
        return forgot[0] and done >= kill_at

    killed = kill_when(project, restate, reached)
    if killed:
        assert days_done(project) < 366, "March is not complete in state after the kill"
    # Not a restatement: a plain run finds the March days missing and fills them.
    rerun = run_process(project, "run", "--threads", "2")
    assert rerun.returncode == 0, rerun.stderr
    same_as_recompute(project, None, NODES, tmp_path)
    clean = slow_shop(tmp_path / "clean")
    double_march(clean)
    assert run_process(clean, "run", "-q").returncode == 0
    assert tables_of(project / "target/warehouse.duckdb") == tables_of(
        clean / "target/warehouse.duckdb"
    )


@pytest.mark.slow
def test_kill_while_filling_from_a_source_read_in_place(
    tmp_path: Path, reference: dict[str, list[tuple[object, ...]]]
) -> None:
    """The same with the events read in place (``materialized: view``): a run up to
    2024-12-30 killed after some batches, then a plain run, leave every table as one
    uninterrupted run that loads the events would."""
    project = slow_shop(tmp_path / "shop")
    source = project / "seeknal/sources/events.yml"
    source.write_text(source.read_text() + "materialized: view\n")
    killed = kill_when(project, ["--end", "2024-12-30"], lambda done: done >= 140)
    assert killed, "the run finished before it could be killed"
    assert days_done(project) < 365
    rerun = run_process(project, "run", "--threads", "2")
    assert rerun.returncode == 0, rerun.stderr
    # Loaded whole or read in place, every view holds the same rows.
    assert tables_of(project / "target/warehouse.duckdb") == reference
    assert "nothing to do" in run_process(project, "run").stdout
