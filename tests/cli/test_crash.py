"""SIGKILL a real `seeknal run` at several points; re-running must give the same tables."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from seeknal.errors import StateError
from seeknal.state.file import FileStateBackend
from tests.cli.conftest import SEEKNAL, run_process, tables_of, uninterrupted_tables
from tests.conftest import EXAMPLE, copy_project

HEAVY = """kind: transform
name: heavy_{i}
materialized: table
transform: |
  SELECT a.order_id, COUNT(*) AS n, SUM(b.amount + c.amount + d.amount) AS s
  FROM source.orders a, source.orders b, source.orders c, source.orders d
  WHERE b.customer_id <> {i}
  GROUP BY a.order_id
"""


def slow_shop(dest: Path) -> Path:
    project = copy_project(EXAMPLE, dest)
    for i in range(3):
        (project / f"seeknal/transforms/heavy_{i}.yml").write_text(HEAVY.format(i=i))
    return project


def recorded_snapshots(project: Path) -> int:
    """Snapshots state records (document + journal), read as the next run would."""
    try:
        return len(FileStateBackend(project / "target/state").read().snapshots)
    except StateError:
        return 0  # the document is being replaced right now; look again


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[object, ...]]]:
    return uninterrupted_tables(slow_shop(tmp_path_factory.mktemp("ref") / "shop"))


@pytest.mark.slow
# 0: while compiling or building the first node; 2, 5, 9: between builds; 12 (every
# snapshot recorded): during promotion, the journal fold or the end of the run.
@pytest.mark.parametrize("kill_after", [0, 2, 5, 9, 12])
def test_kill_then_rerun_gives_the_same_tables(
    kill_after: int, tmp_path: Path, reference: dict[str, list[tuple[object, ...]]]
) -> None:
    project = slow_shop(tmp_path / "shop")
    proc = subprocess.Popen(
        [SEEKNAL, "--project", str(project), "run", "--threads", "1", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    if kill_after == 0:
        time.sleep(0.4)  # mid-compile or mid-first-build
    else:
        while recorded_snapshots(project) < kill_after and time.monotonic() < deadline:
            time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if 0 < kill_after < 12 and killed:
        assert recorded_snapshots(project) < 12, "the run finished before it could be killed"
    rerun = run_process(project, "run", "--threads", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert tables_of(project / "target/warehouse.duckdb") == reference
    # And a third run has nothing left to do.
    assert "nothing to do" in run_process(project, "run").stdout
