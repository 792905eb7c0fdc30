"""Shared fixtures: example projects copied to a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from seeknal.intervals import Interval, parse_time, ranges_from_json, ranges_to_json, union
from seeknal.state import State, environment_record

# CI machines have 2 cores shared by two test workers: time-based checks (how fast
# examples are generated, per-example deadlines) measure the machine, not the code.
settings.register_profile("seeknal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("seeknal")

FIXTURES = Path(__file__).parent / "fixtures" / "projects"
EXAMPLE = Path(__file__).parents[1] / "src" / "seeknal" / "examples" / "shop"


@pytest.fixture(autouse=True, scope="session")
def _session_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module- and session-scoped fixtures compile too: never into the user's real cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SEEKNAL_CACHE_DIR", str(tmp_path_factory.mktemp("seeknal-cache-session")))
    patch.delenv("SEEKNAL_NO_CACHE", raising=False)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _compile_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own empty compile cache, never the user's real one."""
    directory = tmp_path_factory.mktemp("seeknal-cache")
    monkeypatch.setenv("SEEKNAL_CACHE_DIR", str(directory))
    monkeypatch.delenv("SEEKNAL_NO_CACHE", raising=False)
    return directory


def opens_for_writing(database: Path) -> bool:
    """Whether another process can open the DuckDB file for writing (no one holds it)."""
    code = f"import duckdb; duckdb.connect({str(database)!r}).close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def copy_project(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target"))
    return dest


def applied(plan: dict[str, Any], env: str = "prod", base: State | None = None) -> State:
    """The state after ``plan`` was executed successfully (on top of ``base``)."""
    snapshots = dict(base.snapshots) if base else {}
    environments = dict(base.environments) if base else {}
    work = {w["node"]: w for w in plan["work"]}
    for node_id, n in plan["nodes"].items():
        if n["change"]["category"] != "removed":
            record = {
                "node": node_id,
                "kind": n["kind"],
                "materialized": n["materialized"],
                "data_version": n["data_version"],
            }
            if "incremental" in n:
                # An incremental snapshot has completed what it had, plus the plan's ranges.
                done = ranges_from_json(snapshots.get(n["snapshot"], {}).get("intervals", ()))
                planned = [
                    Interval(parse_time(r["start"]), parse_time(r["end"]))
                    for r in work.get(node_id, {}).get("intervals", ())
                ]
                record["intervals"] = ranges_to_json(union(done, planned))
            snapshots[n["snapshot"]] = record
    environments[env] = environment_record(plan)
    return State(snapshots=snapshots, environments=environments)


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) with ``new`` in a project file."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh copy of the example shop project."""
    return copy_project(EXAMPLE, tmp_path / "shop")


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    return copy_project(FIXTURES / "minimal", tmp_path / "minimal")
