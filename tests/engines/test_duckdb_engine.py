"""DuckDBEngine on real database files."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seeknal.engines import EngineError, Materialization, Relation, open_engine, quote_identifier
from seeknal.engines.duckdb import DuckDBEngine

SNAP = "seeknal__source.orders__0123456789ab"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text("id,amount\n1,10\n2,20\n3,30\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def engine(project: Path) -> Iterator[DuckDBEngine]:
    engine = DuckDBEngine(project / "target" / "warehouse.duckdb", file_search_path=project)
    yield engine
    engine.close()


def test_quote_identifier_doubles_embedded_quotes() -> None:
    assert quote_identifier("orders") == '"orders"'
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_identifier('"; DROP TABLE x; --') == '"""; DROP TABLE x; --"'


def test_a_hostile_name_is_only_a_name(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["s"])
    engine.build_snapshot("s.x", "SELECT 1 AS a", Materialization.TABLE)

    engine.build_snapshot('s.y"; DROP TABLE s.x; --', "SELECT 2 AS a", Materialization.TABLE)

    assert engine.relation_exists("s.x")
    assert engine.relation_exists('s.y"; DROP TABLE s.x; --')


def test_relation_splits_at_the_first_dot() -> None:
    assert Relation.parse(SNAP) == Relation("seeknal__source", "orders__0123456789ab")
    assert Relation.parse("transform__dev.a.b") == Relation("transform__dev", "a.b")
    assert Relation.parse('s.we"ird').sql == '"s"."we""ird"'
    with pytest.raises(EngineError, match="not schema-qualified"):
        Relation.parse("orders")


def test_identifier_with_an_embedded_quote_round_trips(engine: DuckDBEngine) -> None:
    name = 'we"ird schema.or"ders'
    engine.ensure_schemas(['we"ird schema'])

    rows = engine.build_snapshot(name, "SELECT 1 AS a", Materialization.TABLE)

    assert rows == 1
    assert engine.relation_exists(name)
    assert engine.query('SELECT a FROM "we""ird schema"."or""ders"') == (["a"], [(1,)])


def test_open_creates_parent_directories(project: Path) -> None:
    engine = open_engine("duckdb", project / "a" / "b" / "w.duckdb", file_search_path=project)
    engine.close()

    assert (project / "a" / "b" / "w.duckdb").exists()


def test_unknown_engine(project: Path) -> None:
    with pytest.raises(EngineError, match="unknown engine 'oracle'"):
        open_engine("oracle", project / "w", file_search_path=project)


def test_table_snapshot_reads_project_relative_files(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])

    rows = engine.build_snapshot(
        SNAP, "SELECT * FROM read_csv('data/orders.csv', header=true)", Materialization.TABLE
    )

    assert rows == 3
    assert engine.query(f"SELECT sum(amount) FROM {SNAP}") == (["sum(amount)"], [(60,)])


def test_relative_files_resolve_in_worker_threads_too(engine: DuckDBEngine) -> None:
    # file_search_path is per session: each thread's cursor must set it.
    engine.ensure_schemas(["seeknal__source"])
    outcome: list[int | Exception | None] = []

    def build() -> None:
        try:
            outcome.append(
                engine.build_snapshot(
                    SNAP,
                    "SELECT * FROM read_csv('data/orders.csv', header=true)",
                    Materialization.TABLE,
                )
            )
        except EngineError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    thread.join()

    assert outcome == [3]


def test_build_is_idempotent(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])
    sql = "SELECT * FROM read_csv('data/orders.csv', header=true)"

    assert engine.build_snapshot(SNAP, sql, Materialization.TABLE) == 3
    assert engine.build_snapshot(SNAP, sql + ";\n", Materialization.TABLE) == 3
    assert engine.query(f"SELECT count(*) FROM {SNAP}")[1] == [(3,)]


def test_view_snapshot_has_no_row_count(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])

    assert engine.build_snapshot(SNAP, "SELECT 1 AS a", Materialization.VIEW) is None
    assert engine.query(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'orders__0123456789ab'"
    )[1] == [("VIEW",)]


def test_snapshot_can_change_between_table_and_view(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])

    engine.build_snapshot(SNAP, "SELECT 1 AS a", Materialization.TABLE)
    engine.build_snapshot(SNAP, "SELECT 2 AS a", Materialization.VIEW)
    assert engine.query(f"SELECT a FROM {SNAP}")[1] == [(2,)]
    engine.build_snapshot(SNAP, "SELECT 3 AS a", Materialization.TABLE)
    assert engine.query(f"SELECT a FROM {SNAP}")[1] == [(3,)]


def test_failed_build_keeps_the_previous_relation(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])
    engine.build_snapshot(SNAP, "SELECT 1 AS a", Materialization.VIEW)

    with pytest.raises(EngineError, match="no_such_table") as info:
        engine.build_snapshot(SNAP, "SELECT * FROM no_such_table", Materialization.TABLE)

    assert "LINE 1" not in str(info.value)
    assert info.value.sql is not None and "no_such_table" in info.value.sql
    # The DROP of the old view ran in the same transaction, so it was rolled back.
    assert engine.query(f"SELECT a FROM {SNAP}")[1] == [(1,)]


def test_promote_points_views_at_snapshots(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])
    engine.build_snapshot(SNAP, "SELECT 1 AS a", Materialization.TABLE)

    engine.promote({"source.orders": SNAP, "source__dev.orders": SNAP})

    assert engine.query("SELECT a FROM source.orders")[1] == [(1,)]
    assert engine.query("SELECT a FROM source__dev.orders")[1] == [(1,)]


def test_promote_drops_views_of_removed_nodes(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])
    engine.build_snapshot(SNAP, "SELECT 1 AS a", Materialization.TABLE)
    engine.promote({"source.orders": SNAP, "source.old": SNAP})

    engine.promote({"source.orders": SNAP}, drop=["source.old", "source.never_existed"])

    assert engine.relation_exists("source.orders")
    assert not engine.relation_exists("source.old")


def test_promote_is_all_or_nothing(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])
    engine.build_snapshot(SNAP, "SELECT 1 AS a", Materialization.TABLE)

    with pytest.raises(EngineError):
        engine.promote(
            {"source.orders": SNAP, "source.zzz": "seeknal__source.missing__0123456789ab"}
        )

    assert not engine.relation_exists("source.orders")
    assert not engine.relation_exists("source.zzz")


def test_relation_exists_ignores_case(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["seeknal__source"])
    engine.build_snapshot(
        "seeknal__source.Orders__0123456789ab", "SELECT 1 AS a", Materialization.TABLE
    )

    assert engine.relation_exists("seeknal__source.orders__0123456789ab")
    assert engine.relation_exists("SEEKNAL__SOURCE.Orders__0123456789ab")
    assert not engine.relation_exists("seeknal__source.other__0123456789ab")


def test_query_limit_and_errors(engine: DuckDBEngine) -> None:
    columns, rows = engine.query("SELECT range AS n FROM range(10)", limit=3)

    assert columns == ["n"]
    assert rows == [(0,), (1,), (2,)]
    with pytest.raises(EngineError, match="Parser Error"):
        engine.query("SELEC 1")


def test_closed_engine_refuses_new_threads(engine: DuckDBEngine) -> None:
    engine.close()
    engine.close()  # idempotent
    errors: list[Exception] = []

    def use() -> None:
        try:
            engine.query("SELECT 1")
        except EngineError as exc:
            errors.append(exc)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()

    assert len(errors) == 1 and "closed" in str(errors[0])


def test_read_only_engine_reads_but_cannot_write(project: Path) -> None:
    path = project / "w.duckdb"
    writer = DuckDBEngine(path, file_search_path=project)
    writer.ensure_schemas(["s"])
    writer.build_snapshot("s.t", "SELECT 1 AS a", Materialization.TABLE)
    writer.close()

    reader = open_engine("duckdb", path, file_search_path=project, read_only=True)
    try:
        assert reader.query("SELECT a FROM s.t") == (["a"], [(1,)])
        with pytest.raises(EngineError, match="read-only"):
            reader.build_snapshot("s.u", "SELECT 2 AS a", Materialization.TABLE)
    finally:
        reader.close()


def test_project_directory_with_a_comma_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="contains a comma"):
        DuckDBEngine(tmp_path / "w.duckdb", file_search_path=tmp_path / "a,b")


@pytest.mark.parametrize(
    ("read_only", "hint"),
    [(False, "another process has it open for writing"), (True, "another process is reading it")],
)
def test_warehouse_open_by_another_process_is_an_engine_error(
    project: Path, read_only: bool, hint: str
) -> None:
    import subprocess
    import sys

    path = project / "w.duckdb"
    DuckDBEngine(path, file_search_path=project).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}, read_only={read_only});"
            " print('open', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(EngineError, match="cannot open the DuckDB warehouse") as info:
            DuckDBEngine(path, file_search_path=project)
        assert info.value.hint and info.value.hint.startswith(hint)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)


# A query that runs for minutes unless interrupted: a 5-way cross join of 200 rows.
SLOW = (
    "SELECT SUM(a.range + b.range + c.range + d.range + e.range) AS s FROM range(200) a, "
    "range(200) b, range(200) c, range(200) d, range(200) e"
)


def _build_in_thread(engine: DuckDBEngine) -> tuple[threading.Thread, list[BaseException]]:
    """Start building the slow snapshot in a worker thread; wait until its query runs."""
    engine.ensure_schemas(["s"])
    errors: list[BaseException] = []

    def build() -> None:
        try:
            engine.build_snapshot("s.slow", SLOW, Materialization.TABLE)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    thread.join(timeout=0.5)  # long enough for the query to be running
    assert thread.is_alive(), "the slow query finished before it could be interrupted"
    return thread, errors


def test_interrupt_stops_a_running_build_and_every_later_statement(engine: DuckDBEngine) -> None:
    thread, errors = _build_in_thread(engine)
    started = time.monotonic()

    engine.interrupt()
    thread.join(timeout=10)

    assert not thread.is_alive() and time.monotonic() - started < 5
    assert len(errors) == 1 and isinstance(errors[0], EngineError)
    assert "Interrupted" in str(errors[0])
    with pytest.raises(EngineError, match="interrupted"):
        engine.build_snapshot("s.t", "SELECT 1 AS a", Materialization.TABLE)
    engine.close()  # idle cursors close normally


def test_close_while_a_build_runs_does_not_fail(engine: DuckDBEngine) -> None:
    thread, errors = _build_in_thread(engine)

    engine.close()  # DuckDB calls the busy cursor "in use": it is interrupted instead
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], EngineError)


def test_an_interrupted_build_leaves_no_relation(project: Path) -> None:
    path = project / "w.duckdb"
    engine = DuckDBEngine(path, file_search_path=project)
    thread, _ = _build_in_thread(engine)
    engine.interrupt()
    thread.join(timeout=10)
    engine.close()

    again = DuckDBEngine(path, file_search_path=project)
    try:
        assert not again.relation_exists("s.slow")
        assert again.query("SELECT 1 AS a") == (["a"], [(1,)])  # the flag was per engine
    finally:
        again.close()


def test_a_damaged_warehouse_file_is_told_apart_from_a_locked_one(project: Path) -> None:
    path = project / "w.duckdb"
    path.write_bytes(bytes(range(256)) * 40)  # garbage, not a DuckDB file

    for read_only in (False, True):
        with pytest.raises(EngineError, match="not a valid DuckDB database file") as info:
            DuckDBEngine(path, file_search_path=project, read_only=read_only)
        hint = info.value.hint or ""
        assert "damaged" in hint and "delete it and run again" in hint
        assert "another process" not in hint


def test_without_external_access_only_the_warehouse_can_be_read(project: Path) -> None:
    path = project / "w.duckdb"
    writer = DuckDBEngine(path, file_search_path=project)
    writer.ensure_schemas(["seeknal__source", "source"])
    writer.build_snapshot(
        SNAP, "SELECT * FROM read_csv('data/orders.csv', header=true)", Materialization.TABLE
    )
    writer.promote({"source.orders": SNAP})
    writer.close()

    reader = DuckDBEngine(path, file_search_path=project, read_only=True, external_access=False)
    try:
        # Sources are tables in the warehouse; nodes are views over snapshots.
        assert reader.query("SELECT SUM(amount) AS s FROM source.orders") == (["s"], [(60,)])
        for sql in (
            "SELECT * FROM read_csv('data/orders.csv')",
            f"SELECT * FROM read_csv({str(project / 'data' / 'orders.csv')!r})",
            f"COPY (SELECT 1) TO {str(project / 'out.csv')!r}",
            f"ATTACH {str(project / 'other.duckdb')!r}",
            "SET enable_external_access = true",
        ):
            with pytest.raises(EngineError):
                reader.query(sql)
        assert not (project / "out.csv").exists()
        assert not (project / "other.duckdb").exists()
    finally:
        reader.close()


def test_catalog_lists_tables_views_and_schemas_in_lower_case(engine: DuckDBEngine) -> None:
    engine.ensure_schemas(["Snaps", "env"])
    engine.build_snapshot("Snaps.Orders", "SELECT 1 AS a", Materialization.TABLE)
    engine.promote({"env.orders": "Snaps.Orders"})
    engine.query("CREATE TEMPORARY TABLE scratch AS SELECT 1 AS a")
    engine.query("ATTACH ':memory:' AS other")  # another database: not the warehouse's
    engine.query("CREATE SCHEMA other.elsewhere")
    engine.query("CREATE VIEW other.main.far AS SELECT 1 AS a")

    catalog = engine.catalog()

    assert catalog.relations == {"snaps.orders", "env.orders"}
    assert set(catalog.views) == {"env.orders"}
    assert "select * from snaps.orders" in catalog.views["env.orders"]
    assert catalog.schemas == {"snaps", "env", "main"}


@pytest.mark.parametrize(
    "call",
    [
        "engine.query('SELECT count(*) FROM range(100000000000) a')",
        "engine.build_snapshot('main.t', 'SELECT count(*) AS n FROM range(100000000000) a', "
        "Materialization.TABLE)",
    ],
    ids=["query", "transaction"],
)
def test_ctrl_c_during_a_query_in_the_main_thread_is_a_keyboard_interrupt(
    tmp_path: Path, call: str
) -> None:
    # DuckDB answers Ctrl-C in Python's main thread with RuntimeError("Query
    # interrupted"); seeknal's handling (and the CLI's exit 130) expects KeyboardInterrupt.
    code = (
        "import os, signal, threading\n"
        "from seeknal.engines.base import Materialization\n"
        "from seeknal.engines.duckdb import DuckDBEngine\n"
        f"engine = DuckDBEngine({str(tmp_path / 'w.duckdb')!r}, file_search_path='.')\n"
        "threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "try:\n"
        f"    {call}\n"
        "except BaseException as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "KeyboardInterrupt", done.stdout + done.stderr
