"""Ctrl-C on a real `seeknal run`: it stops at once, cleanly, and the next run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.conftest import SEEKNAL, run_process, tree_state

# A 5-way self cross join of 200 rows: minutes of DuckDB work unless interrupted.
SLOW = """kind: transform
name: slow
transform: |
  SELECT SUM(a.n + b.n + c.n + d.n + e.n) AS s
  FROM source.nums a, source.nums b, source.nums c, source.nums d, source.nums e
"""


def slow_project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "seeknal/sources").mkdir(parents=True)
    (root / "seeknal/transforms").mkdir(parents=True)
    (root / "seeknal_project.yml").write_text("name: slow\n")
    (root / "data/nums.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(200)))
    (root / "seeknal/sources/nums.yml").write_text(
        "kind: source\nname: nums\nsource: csv\ntable: data/nums.csv\n"
    )
    (root / "seeknal/transforms/slow.yml").write_text(SLOW)
    return root


def started(project: Path, *args: str) -> subprocess.Popen[str]:
    """``seeknal --project PROJECT ARGS...`` started, its output piped."""
    return subprocess.Popen(
        [SEEKNAL, "--project", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


def interrupt(proc: subprocess.Popen[str], what: str) -> str:
    """Ctrl-C to ``proc``: it must stop within 5 s, exit 130 and say "interrupted" last,
    without a traceback; its stderr."""
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{what} within 10 s")
    assert proc.returncode == 130, stderr
    assert time.monotonic() - interrupted < 5
    assert stderr.strip().splitlines()[-1] == "interrupted", stderr
    assert "Traceback" not in stderr, stderr
    return stderr


@pytest.mark.slow
def test_ctrl_c_stops_a_long_query_at_once_and_the_next_run_resumes(tmp_path: Path) -> None:
    project = slow_project(tmp_path / "slow")
    proc = started(project, "run", "--json")
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:  # every event is flushed as it happens
        events.append(json.loads(line))
        if (events[-1]["event"], events[-1].get("node")) == ("node_started", "transform.slow"):
            break
    assert events and events[-1]["node"] == "transform.slow", events
    time.sleep(0.5)  # the query is running now

    stderr = interrupt(proc, "the first Ctrl-C did not stop the run")
    assert "internal error" not in stderr
    assert "Exception ignored" not in stderr
    assert "node_built" in {e["event"] for e in events}  # source.nums was built before

    # The same project, its transform made fast: source.nums, recorded before the
    # interruption, is reused; the run completes and promotes.
    slow = project / "seeknal/transforms/slow.yml"
    slow.write_text(SLOW.replace(", source.nums d, source.nums e", "").replace(" + d.n + e.n", ""))
    rerun = run_process(project, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert "built    transform.slow" in rerun.stdout
    assert "built    source.nums" not in rerun.stdout
    assert "built 1, reused 1" in rerun.stdout


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_ctrl_c_stops_a_long_query_at_once(tmp_path: Path) -> None:
    project = slow_project(tmp_path / "slow")
    (project / "seeknal/transforms/slow.yml").unlink()
    assert run_process(project, "run").returncode == 0
    five = ", ".join(f"source.nums {t}" for t in "abcde")
    proc = subprocess.Popen(
        [SEEKNAL, "--project", str(project), "query", f"SELECT SUM(a.n * e.n) FROM {five}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The query runs once the process has spent more CPU than starting up takes.
    deadline = time.monotonic() + 30
    while cpu_seconds(proc.pid) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None

    assert interrupt(proc, "Ctrl-C did not stop the query").strip() == "interrupted"


@pytest.mark.slow
def test_ctrl_c_while_a_run_compiles_stops_it_at_once_and_changes_nothing(tmp_path: Path) -> None:
    # A daily run compiles in a helper thread while it opens the warehouse
    # (runtime/session.py): Ctrl-C must stop that compile too, cleanly.
    project = slow_project(tmp_path / "slow")
    (project / "seeknal/transforms/slow.yml").unlink()
    assert run_process(project, "run").returncode == 0
    for i in range(400):  # enough nodes to compile for a few seconds without the cache
        (project / f"seeknal/transforms/t{i}.yml").write_text(
            f"kind: transform\nname: t{i}\ntransform: SELECT n + {i} AS x FROM source.nums\n"
        )
    before = tree_state(project / "target")
    proc = started(project, "run", "--no-cache")
    # The run compiles once it holds the state lock, which names it.
    lock = project / "target/state/.lock"
    deadline = time.monotonic() + 30
    while lock.read_text().strip() != str(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert proc.poll() is None, "the compile ended before it could be interrupted"

    stderr = interrupt(proc, "Ctrl-C did not stop the compile")
    assert "terminate called" not in stderr, stderr
    assert tree_state(project / "target") == before
    assert "built 400" in run_process(project, "run").stdout  # the lock was released


@pytest.mark.slow
def test_ctrl_c_stops_a_lone_build_and_the_next_run_resumes(tmp_path: Path) -> None:
    # A run with one thing to build (a daily run's one batch) still builds it in a
    # worker thread: in the main thread, DuckDB does not stop a long query on Ctrl-C
    # (tried: the run went on past 10 s).
    project = slow_project(tmp_path / "slow")
    slow = project / "seeknal/transforms/slow.yml"
    fast = SLOW.replace(", source.nums d, source.nums e", "").replace(" + d.n + e.n", "")
    slow.write_text(fast)
    assert run_process(project, "run").returncode == 0
    slow.write_text(SLOW)  # only transform.slow changed: one build
    before = tree_state(project / "target/state")
    proc = started(project, "run", "--json")
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "node_started":
            break
    assert events[-1].get("node") == "transform.slow", events
    time.sleep(0.5)  # the query is running now

    stderr = interrupt(proc, "Ctrl-C did not stop the lone build")
    assert "internal error" not in stderr
    assert tree_state(project / "target/state") == before  # nothing recorded
    slow.write_text(fast.replace("a.n + b.n", "b.n + a.n"))
    rerun = run_process(project, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert "built 1, reused 1" in rerun.stdout
