"""A held run opens the warehouse while it compiles (runtime/session.py), on real files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from seeknal.canonical import canonical_json
from seeknal.engines import EngineError
from seeknal.engines.duckdb import DuckDBEngine, open_database
from seeknal.errors import PlanError, StaleError, StateError
from seeknal.runtime import execute_plan
from seeknal.runtime.connection import connection_of, open_ahead
from seeknal.runtime.execute import prepare_execution
from seeknal.runtime.session import held_compile, held_run, recall_target, remember_target
from seeknal.state import open_state
from seeknal.state.base import State
from tests.conftest import opens_for_writing
from tests.runtime.plans import STATE_DIR, WAREHOUSE, standard_plan, write_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


@pytest.fixture
def ran(project: Path) -> dict[str, Any]:
    """The standard plan, executed once: the state and the warehouse exist."""
    plan = standard_plan(project)
    execute_plan(plan, project)
    return plan


def fingerprint(path: Path) -> tuple[str, int, int]:
    """The file's bytes (hashed), size and mtime: what 'left as it was' means."""
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns


def compile_fails(plan: dict[str, Any], project: Path) -> None:
    """A held run whose compile raises: the error comes through, nothing else runs."""

    def prepare(state: State | None) -> None:
        raise ValueError("the project has errors")

    with (
        pytest.raises(ValueError, match="the project has errors"),
        held_compile(plan["target"], project, prepare),
    ):
        pass  # pragma: no cover - the compile fails before the body


@pytest.fixture
def holder(project: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the warehouse open for writing until the test ends."""
    code = textwrap.dedent(
        f"""
        import duckdb, sys
        con = duckdb.connect({str(project / WAREHOUSE)!r})
        print("open", flush=True)
        sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    yield proc
    proc.communicate("\n", timeout=30)


def test_the_compile_runs_while_the_warehouse_opens_and_the_run_takes_it_over(
    project: Path, ran: dict[str, Any]
) -> None:
    seen: list[State | None] = []

    def prepare(state: State | None) -> str:
        seen.append(state)
        return "compiled"

    with held_compile(ran["target"], project, prepare) as (session, value):
        assert value == "compiled"
        assert session is not None and seen == [session.state]
        assert session.state.environment("prod") is not None  # read under the lock
        assert session.opened is not None
        assert session.opened.opens(str(project / WAREHOUSE), False, False)
        result = execute_plan(ran, project, session=session)
        assert session.opened is None  # taken over by the run
    assert not result.built  # nothing to do, on the warehouse opened ahead
    assert opens_for_writing(project / WAREHOUSE)  # closed with the run


def test_a_failed_compile_closes_the_warehouse_it_opened_leaving_it_as_it_was(
    project: Path, ran: dict[str, Any]
) -> None:
    before = fingerprint(project / WAREHOUSE)
    compile_fails(ran, project)
    assert opens_for_writing(project / WAREHOUSE)
    assert fingerprint(project / WAREHOUSE) == before
    with held_compile(ran["target"], project, lambda state: None):  # the lock was released
        pass


def test_a_refused_plan_closes_the_warehouse_opened_ahead_leaving_it_as_it_was(
    project: Path, ran: dict[str, Any]
) -> None:
    (project / "data/orders.csv").write_text("order_id,customer,amount\n9,dave,1\n")
    before = fingerprint(project / WAREHOUSE)
    with held_compile(ran["target"], project, lambda state: None) as (session, _):
        assert session is not None and session.opened is not None
        opened = session.opened
        with pytest.raises(StaleError, match="changed"):
            execute_plan(ran, project, session=session)
    assert not opened.opens(str(project / WAREHOUSE), False, False)  # closed by the session
    assert opens_for_writing(project / WAREHOUSE)
    assert fingerprint(project / WAREHOUSE) == before


def test_nothing_is_opened_ahead_for_a_first_run(project: Path) -> None:
    plan = standard_plan(project)
    with held_compile(plan["target"], project, lambda state: state) as (session, value):
        assert session is None and value is None  # no state: nothing locked or read
    (project / STATE_DIR).mkdir(parents=True)
    with held_compile(plan["target"], project, lambda state: None) as (session, _):
        assert session is not None and session.opened is None  # no warehouse yet
    assert not (project / WAREHOUSE).exists()  # and none was created


def test_a_warehouse_another_process_holds_is_not_opened_ahead_and_the_run_says_why(
    project: Path, ran: dict[str, Any], holder: subprocess.Popen[str]
) -> None:
    assert open_ahead(ran["target"], project) is None
    with held_compile(ran["target"], project, lambda state: None) as (session, _):
        assert session is not None and session.opened is None
        with pytest.raises(EngineError, match="cannot open the DuckDB warehouse"):
            execute_plan(ran, project, session=session)


def test_a_profile_that_does_not_resolve_is_not_opened_ahead(
    project: Path, ran: dict[str, Any]
) -> None:
    (project / "profiles.yml").write_text("connections: [not, a, mapping]\n")
    assert open_ahead(ran["target"], project) is None
    (project / "profiles.yml").write_text(
        "connections:\n  default:\n    engine: duckdb\n    path: ${SEEKNAL_TEST_UNSET_VARIABLE}\n"
    )
    assert open_ahead(ran["target"], project) is None


def test_the_engine_takes_over_only_the_database_it_was_asked_for(tmp_path: Path) -> None:
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    opened = open_database(str(first), read_only=False, external_access=False)
    engine = DuckDBEngine(second, file_search_path=tmp_path, external_access=False, opened=opened)
    try:
        assert engine.query("SELECT current_database()")[1] == [("second",)]
        assert not opened.opens(str(first), False, False)  # closed, not leaked
        assert opens_for_writing(first)
    finally:
        engine.close()

    # Opened otherwise (external access on) than the engine asks: not taken over either.
    opened = open_database(str(first), read_only=False, external_access=True)
    engine = DuckDBEngine(first, file_search_path=tmp_path, external_access=False, opened=opened)
    try:
        assert not opened.opens(str(first), False, True)
        with pytest.raises(EngineError):
            engine.query("SELECT * FROM read_csv('/etc/hostname')")  # sealed as asked
    finally:
        engine.close()

    opened = open_database(str(first), read_only=False, external_access=False)
    engine = DuckDBEngine(first, file_search_path=tmp_path, external_access=False, opened=opened)
    engine.close()
    with pytest.raises(EngineError, match="already taken"):
        opened.take()


def test_the_switch_interval_is_restored_after_the_overlap(
    project: Path, ran: dict[str, Any]
) -> None:
    before = sys.getswitchinterval()
    with held_compile(ran["target"], project, lambda state: None) as (session, _):
        assert session is not None
    assert sys.getswitchinterval() == before
    with (
        pytest.raises(RuntimeError),
        held_compile(ran["target"], project, lambda state: (_ for _ in ()).throw(RuntimeError())),
    ):
        pass  # pragma: no cover
    assert sys.getswitchinterval() == before


def test_the_database_opened_ahead_is_the_one_the_plan_runs_on(
    project: Path, ran: dict[str, Any]
) -> None:
    opened = open_ahead(ran["target"], project)
    assert opened is not None
    try:
        assert opened.database == connection_of(ran, project).database
    finally:
        opened.close()


def test_a_warehouse_with_a_write_ahead_log_is_not_opened_ahead(
    project: Path, ran: dict[str, Any]
) -> None:
    # A crash can leave committed changes in the log. Opening the database would replay
    # them into the file, and closing it remove the log: not for a plan then refused.
    with duckdb.connect(str(project / WAREHOUSE)) as con:
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        con.execute("SET checkpoint_threshold = '1TB'")
        con.execute("CREATE TABLE left_by_a_crash AS SELECT 42 AS x")
    log = project / (WAREHOUSE + ".wal")
    assert log.stat().st_size > 0
    before = fingerprint(project / WAREHOUSE), fingerprint(log)

    assert open_ahead(ran["target"], project) is None
    compile_fails(ran, project)
    assert (fingerprint(project / WAREHOUSE), fingerprint(log)) == before


def test_ctrl_c_as_the_compile_ends_does_not_hang_the_run() -> None:
    # Forwarded to the helper, Ctrl-C may land while it sets its "done" event (Python
    # code too): the run must still stop, not wait for an event never set.
    code = textwrap.dedent(
        """
        import threading, time
        from seeknal.runtime import session

        class SlowEvent(threading.Event):
            def set(self):
                time.sleep(0.3)  # the helper is inside set() when Ctrl-C comes
                super().set()

        threading.Event = SlowEvent

        def open_(start):
            start()
            time.sleep(0.1)
            raise KeyboardInterrupt

        try:
            session._overlapped(lambda: ("state", "value"), open_)
        except KeyboardInterrupt:
            print("stopped")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "stopped", done.stderr


def _settled(target: dict[str, Any]) -> Any:
    """A ``settle`` giving ``target`` (the settings themselves are this test's string)."""
    return lambda: ("settings", target)


def test_a_run_that_left_its_target_locks_and_opens_before_reading_the_settings(
    project: Path, ran: dict[str, Any]
) -> None:
    order: list[str] = []

    def settle() -> tuple[str, dict[str, Any]]:
        # Already held: the lock was taken on the target the last run left.
        with (
            pytest.raises(StateError, match="another seeknal run holds the state lock"),
            open_state("file", str(project / STATE_DIR)).lock(),
        ):
            pass  # pragma: no cover
        order.append("settings")
        return "settings", ran["target"]

    def prepare(state: State | None, settings: str) -> str:
        order.append(f"compile with {settings}")
        return "compiled"

    remember_target(project.resolve(), ran["target"])
    with held_run(project, settle, prepare, lambda state, value: f"ready {value}") as (
        session,
        value,
    ):
        assert (value, order) == ("compiled", ["settings", "compile with settings"])
        assert session is not None and session.opened is not None
        assert session.prepared == "ready compiled"
        assert session.opened.opens(str(project / WAREHOUSE), False, False)
        assert not opens_for_writing(project / WAREHOUSE)
        result = execute_plan(ran, project, session=session)
    assert not result.built
    assert opens_for_writing(project / WAREHOUSE)


def test_a_run_leaves_its_target_for_the_next(project: Path, ran: dict[str, Any]) -> None:
    assert recall_target(project.resolve()) is None
    with held_run(project, _settled(ran["target"]), lambda state, settings: None):
        pass
    assert recall_target(project.resolve()) == ran["target"]
    assert recall_target(project.resolve() / "elsewhere") is None
    with held_run(project, _settled(ran["target"]), lambda s, x: None, use_hint=False):
        pass


def test_a_target_that_moved_closes_what_was_opened_for_the_old_one(
    project: Path, ran: dict[str, Any], tmp_path: Path
) -> None:
    """The project file now names another warehouse and state: the old ones are left
    as they were, unlocked, and the run holds the new target."""
    remember_target(project.resolve(), ran["target"])
    moved = {**ran["target"], "warehouse": "target/other.duckdb"}
    moved["state"] = {**ran["target"]["state"], "path": "target/other-state"}
    other = open_state("file", str(project / "target/other-state"))
    with other.lock():
        pass  # the new state exists
    before = fingerprint(project / WAREHOUSE)
    with held_run(project, _settled(moved), lambda state, settings: "compiled") as (session, _):
        assert session is not None and session.target == moved
        assert session.opened is None  # the new warehouse does not exist yet
        assert opens_for_writing(project / WAREHOUSE)
        with open_state("file", str(project / STATE_DIR)).lock():
            pass  # the old state is not locked
        with (
            pytest.raises(StateError, match="another seeknal run holds the state lock"),
            other.lock(),
        ):
            pass  # pragma: no cover
    assert fingerprint(project / WAREHOUSE) == before
    assert recall_target(project.resolve()) == moved


def test_a_project_file_with_errors_locks_nothing_even_with_a_target_left(
    project: Path, ran: dict[str, Any]
) -> None:
    remember_target(project.resolve(), ran["target"])
    before = fingerprint(project / WAREHOUSE)
    with held_run(project, lambda: ("broken", None), lambda state, settings: state) as (
        session,
        value,
    ):
        assert (session, value) == (None, None)  # compiled without a state, unlocked
        with open_state("file", str(project / STATE_DIR)).lock():
            pass
        assert opens_for_writing(project / WAREHOUSE)
    assert fingerprint(project / WAREHOUSE) == before


def test_a_state_another_run_holds_is_reported_with_a_target_left(
    project: Path, ran: dict[str, Any]
) -> None:
    remember_target(project.resolve(), ran["target"])
    with (
        open_state("file", str(project / STATE_DIR)).lock(),
        pytest.raises(StateError, match="another seeknal run holds the state lock"),
        held_run(project, _settled(ran["target"]), lambda state, settings: None),
    ):
        pass  # pragma: no cover
    assert opens_for_writing(project / WAREHOUSE)


def test_a_failed_compile_with_a_target_left_releases_everything(
    project: Path, ran: dict[str, Any]
) -> None:
    remember_target(project.resolve(), ran["target"])
    before = fingerprint(project / WAREHOUSE)

    def prepare(state: State | None, settings: str) -> None:
        raise ValueError("the project has errors")

    with (
        pytest.raises(ValueError, match="the project has errors"),
        held_run(project, _settled(ran["target"]), prepare),
    ):
        pass  # pragma: no cover
    assert opens_for_writing(project / WAREHOUSE)
    assert fingerprint(project / WAREHOUSE) == before
    with open_state("file", str(project / STATE_DIR)).lock():
        pass


def test_a_damaged_target_left_behind_is_ignored(project: Path, ran: dict[str, Any]) -> None:
    remember_target(project.resolve(), ran["target"])
    (left,) = (Path(os.environ["SEEKNAL_CACHE_DIR"]) / "runs").iterdir()
    for damaged in ("{", "[]", '{"project": 1}', json.dumps({"project": str(project.resolve())})):
        left.write_text(damaged)
        assert recall_target(project.resolve()) is None
        with held_run(project, _settled(ran["target"]), lambda s, x: "ok") as (session, value):
            assert session is not None and value == "ok"
    assert recall_target(project.resolve()) == ran["target"]


def test_the_execution_uses_what_the_helper_prepared_only_for_its_own_text(
    project: Path, ran: dict[str, Any]
) -> None:
    text = canonical_json(ran)

    def held() -> Any:
        return held_compile(
            ran["target"],
            project,
            lambda state: text,
            lambda state, value: prepare_execution(value, project),
        )

    with held() as (session, value):
        assert session is not None and session.prepared is not None
        assert session.prepared.plan == ran
        assert session.prepared.connection == connection_of(ran, project)
        # What the helper prepared for this very text is what the execution runs.
        session.prepared = dataclasses.replace(
            session.prepared, plan={**session.prepared.plan, "environment": "elsewhere"}
        )
        assert execute_plan(None, project, text=value, session=session).environment == "elsewhere"
    with held() as (session, value):
        assert session is not None and session.prepared is not None
        session.prepared = dataclasses.replace(
            session.prepared, plan={**session.prepared.plan, "environment": "elsewhere"}
        )
        # Another text (an equal copy) is verified by the execution itself.
        copy = "".join(value)
        assert execute_plan(None, project, text=copy, session=session).environment == "prod"


def test_staleness_is_decided_by_the_execution_after_the_warehouse_opened(
    project: Path, ran: dict[str, Any]
) -> None:
    text = canonical_json(ran)
    with held_compile(
        ran["target"], project, lambda state: text, lambda s, v: prepare_execution(v, project)
    ) as (session, value):
        assert session is not None and session.prepared is not None
        (project / "data/orders.csv").write_text("order_id,customer,amount\n9,dave,1\n")
        with pytest.raises(StaleError, match="changed"):
            execute_plan(None, project, text=value, session=session)


def test_an_execution_the_helper_could_not_prepare_reports_in_its_turn(
    project: Path, ran: dict[str, Any]
) -> None:
    with held_compile(
        ran["target"],
        project,
        lambda state: "{",
        lambda state, value: prepare_execution(value, project),
    ) as (session, value):
        assert session is not None and session.prepared is None
        with pytest.raises(PlanError, match="plan is not valid JSON"):
            execute_plan(None, project, text=value, session=session)


@pytest.mark.parametrize(
    "state",
    [
        {"backend": "s3", "path": "target/state"},
        {"backend": "file", "path": "../elsewhere"},
        {"backend": "file", "path": "/tmp"},
        {"backend": "file", "path": 7},
    ],
)
def test_a_target_left_that_the_project_file_could_not_name_is_ignored(
    project: Path, ran: dict[str, Any], state: dict[str, Any]
) -> None:
    remember_target(project.resolve(), {**ran["target"], "state": state})
    assert recall_target(project.resolve()) is None
    before = sorted(p.name for p in project.parent.iterdir())
    with held_run(project, _settled(ran["target"]), lambda s, x: "ok") as (session, _):
        assert session is not None and session.target == ran["target"]
    assert sorted(p.name for p in project.parent.iterdir()) == before
    assert recall_target(project.resolve()) == ran["target"]  # repaired


def test_a_state_directory_now_a_symlink_out_of_the_project_is_not_locked(
    project: Path, ran: dict[str, Any], tmp_path: Path
) -> None:
    remember_target(project.resolve(), ran["target"])
    outside = tmp_path / "outside"
    (project / STATE_DIR).rename(outside)
    (project / STATE_DIR).symlink_to(outside)
    (outside / ".lock").unlink(missing_ok=True)
    assert recall_target(project.resolve()) is None
    with held_run(project, lambda: ("broken", None), lambda s, x: "reported"):
        pass
    assert not (outside / ".lock").exists()


def test_a_lock_that_cannot_be_taken_early_is_left_to_the_run_to_report(
    project: Path, ran: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.state.file import FileStateBackend

    remember_target(project.resolve(), ran["target"])
    real = FileStateBackend.lock
    calls: list[str] = []

    def lock(self: FileStateBackend) -> Any:
        calls.append(str(self.path))
        if len(calls) == 1:
            raise PermissionError("read-only state directory")
        return real(self)

    monkeypatch.setattr(FileStateBackend, "lock", lock)
    with held_run(project, _settled(ran["target"]), lambda s, x: "ok") as (session, value):
        assert session is not None and value == "ok"
    assert len(calls) == 2  # the early try, then the run's own lock
