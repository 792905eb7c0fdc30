"""The warehouse's catalog remembered between sessions (engines/duckdb_catalog.py).

A recalled catalog must always be the one a catalog query would give: every way the
file can change between two sessions is a miss, and what a session remembers is what
DuckDB said of the file it leaves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seeknal.engines import Catalog, EngineError, Materialization, duckdb_catalog
from seeknal.engines.duckdb import DuckDBEngine
from tests.conftest import opens_for_writing


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "target" / "warehouse.duckdb"


def open_engine(warehouse: Path, **kwargs: object) -> DuckDBEngine:
    return DuckDBEngine(
        warehouse, file_search_path=warehouse.parent, remember_catalog=True, **kwargs
    )  # type: ignore[arg-type]


def queried(warehouse: Path) -> Catalog:
    """The catalog as a catalog query gives it, by a session that remembers nothing."""
    engine = DuckDBEngine(warehouse, file_search_path=warehouse.parent)
    try:
        return engine.catalog()
    finally:
        engine.close()


class Recalls:
    """Counts the catalog queries of DuckDBEngine sessions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queries = 0
        original = DuckDBEngine._query_catalog

        def counted(engine: DuckDBEngine) -> Catalog:
            self.queries += 1
            return original(engine)

        monkeypatch.setattr(DuckDBEngine, "_query_catalog", counted)


@pytest.fixture
def recalls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recalls]:
    yield Recalls(monkeypatch)


def assert_asked_duckdb(warehouse: Path, recalls: Recalls, expected: Catalog) -> None:
    """The next session queries the catalog (once), and gets ``expected``."""
    recalls.queries = 0
    engine = open_engine(warehouse)
    assert engine.catalog() == expected
    engine.close()
    assert recalls.queries == 1


def built(warehouse: Path) -> Catalog:
    """A session that builds a table, a view and promotes them; the catalog it leaves."""
    engine = open_engine(warehouse)
    engine.catalog()
    engine.ensure_schemas(["seeknal__t"])
    engine.build_snapshot("seeknal__t.a__1", "SELECT 1 AS x", Materialization.TABLE)
    engine.build_snapshot("seeknal__t.b__1", "SELECT * FROM seeknal__t.a__1", Materialization.VIEW)
    engine.promote({"t.a": "seeknal__t.a__1", "t.b": "seeknal__t.b__1"})
    engine.close()
    return queried(warehouse)


def test_the_next_session_recalls_what_the_last_one_left(warehouse: Path, recalls: Recalls) -> None:
    expected = built(warehouse)
    recalls.queries = 0

    engine = open_engine(warehouse)
    assert engine.catalog() == expected
    assert recalls.queries == 0
    assert "t.b" in expected.relations and "seeknal__t.b__1" in expected.views["t.b"]
    engine.close()


def test_a_session_that_only_inserts_is_recalled_again(warehouse: Path, recalls: Recalls) -> None:
    expected = built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()
    engine.insert_batch(
        "seeknal__t.a__1", "SELECT 2 AS x", {}, "x", (2, 3)
    )  # rows only: the catalog is the same, the file is not
    engine.close()
    recalls.queries = 0

    engine = open_engine(warehouse)
    assert engine.catalog() == expected
    assert recalls.queries == 0
    assert engine.query("SELECT count(*) FROM seeknal__t.a__1")[1] == [(2,)]
    engine.close()


def test_a_change_by_another_process_is_a_miss(warehouse: Path, recalls: Recalls) -> None:
    built(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE seeknal__t.a__1 CASCADE")
        con.execute("CREATE TABLE main.other AS SELECT 1 AS y")
    recalls.queries = 0

    engine = open_engine(warehouse)
    catalog = engine.catalog()
    engine.close()
    assert recalls.queries == 1
    assert catalog == queried(warehouse)
    assert "seeknal__t.a__1" not in catalog.relations and "main.other" in catalog.relations


def test_changes_still_in_the_write_ahead_log_are_a_miss(warehouse: Path, recalls: Recalls) -> None:
    built(warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("CREATE TABLE main.logged AS SELECT 1 AS y")
    con.close()
    recalls.queries = 0

    engine = open_engine(warehouse)
    catalog = engine.catalog()
    engine.close()
    assert recalls.queries == 1
    assert "main.logged" in catalog.relations


def test_a_file_replaced_by_a_copy_is_a_miss(warehouse: Path, recalls: Recalls) -> None:
    built(warehouse)
    copy = warehouse.with_name("copy.duckdb")
    shutil.copyfile(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("CREATE TABLE main.extra AS SELECT 1 AS y")
    shutil.copyfile(copy, warehouse)  # same inode, other bytes
    recalls.queries = 0

    engine = open_engine(warehouse)
    assert "main.extra" in engine.catalog().relations
    engine.close()
    assert recalls.queries == 1


def test_sql_of_unknown_effect_leaves_nothing_remembered(warehouse: Path, recalls: Recalls) -> None:
    built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()
    recalls.queries = 0
    engine.query("SELECT * FROM seeknal__t.a__1")  # a SELECT changes nothing
    engine.catalog()
    assert recalls.queries == 0
    engine.query("CREATE TABLE seeknal__t.made_by_hand AS SELECT 1 AS z")
    assert "seeknal__t.made_by_hand" in engine.catalog().relations  # queried again
    assert recalls.queries == 1
    engine.close()
    recalls.queries = 0
    engine = open_engine(warehouse)
    assert engine.catalog() == queried(warehouse)  # remembered as queried at the end
    engine.close()
    assert recalls.queries == 1  # only queried()


def test_a_failed_change_is_read_again(warehouse: Path, recalls: Recalls) -> None:
    expected = built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()
    recalls.queries = 0
    with pytest.raises(EngineError):
        engine.build_snapshot("seeknal__t.c__1", "SELECT * FROM nowhere", Materialization.TABLE)
    assert engine.catalog() == expected
    assert recalls.queries == 1
    engine.close()


def test_a_session_that_changed_the_catalog_remembers_it_as_queried(
    warehouse: Path, recalls: Recalls
) -> None:
    built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()
    engine.build_snapshot("seeknal__t.c__1", "SELECT 3 AS x", Materialization.TABLE)
    engine.promote({"t.c": "seeknal__t.c__1"}, drop=["t.b"])
    engine.close()  # queries once more, then remembers
    expected = queried(warehouse)
    recalls.queries = 0
    engine = open_engine(warehouse)
    assert engine.catalog() == expected
    engine.close()
    assert recalls.queries == 0
    assert "t.c" in expected.relations and "t.b" not in expected.relations


def test_an_interrupted_session_remembers_nothing(warehouse: Path) -> None:
    built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()
    engine.interrupt()
    engine.close()
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None and not memory.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"format": 1}', b"\x00" * 64],
    ids=["empty", "truncated", "a list", "no fields", "binary"],
)
def test_an_unreadable_memory_is_a_miss(warehouse: Path, recalls: Recalls, content: bytes) -> None:
    expected = built(warehouse)
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None
    memory.write_bytes(content)
    assert_asked_duckdb(warehouse, recalls, expected)


def catalog_file(warehouse: Path) -> Path:
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None
    (found,) = memory.parent.glob(f"{memory.stem}-*.catalog.json")
    return found


@pytest.mark.parametrize(
    "damage",
    ["bytes changed", "another shape", "deeply nested", "a fifo", "another duckdb", "missing"],
)
def test_a_damaged_or_foreign_memory_is_a_miss(
    warehouse: Path, recalls: Recalls, damage: str
) -> None:
    expected = built(warehouse)
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None
    kept = catalog_file(warehouse)
    entry = json.loads(memory.read_text())
    if damage == "bytes changed":
        kept.write_text(kept.read_text().replace("seeknal__t.a__1", "seeknal__t.z__1"))
    elif damage == "another shape":
        content = json.dumps({"relations": "not a list", "views": {}, "schemas": []}).encode()
        kept.write_bytes(content)
        entry["catalog"] = hashlib.sha256(content).hexdigest()
        kept.rename(memory.with_name(f"{memory.stem}-{entry['catalog'][:32]}.catalog.json"))
        memory.write_text(json.dumps(entry))
    elif damage == "deeply nested":
        memory.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "a fifo":
        memory.unlink()
        os.mkfifo(memory)  # nobody writes to it: reading it must not wait
    elif damage == "another duckdb":
        entry["duckdb"] = "0.0.1"
        memory.write_text(json.dumps(entry))
    elif damage == "missing":
        kept.unlink()
    assert_asked_duckdb(warehouse, recalls, expected)


def test_an_unchanged_catalog_is_not_written_again(warehouse: Path) -> None:
    built(warehouse)
    before = catalog_file(warehouse).stat()
    engine = open_engine(warehouse)
    engine.catalog()
    engine.insert_batch("seeknal__t.a__1", "SELECT 2 AS x", {}, "x", (2, 3))
    engine.close()
    after = catalog_file(warehouse).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # A change writes the new catalog and removes the old one (one file left).
    engine = open_engine(warehouse)
    engine.catalog()
    engine.build_snapshot("seeknal__t.c__1", "SELECT 3 AS x", Materialization.TABLE)
    engine.close()
    assert "seeknal__t.c__1" in catalog_file(warehouse).read_text()


def test_a_session_closed_as_unfinished_leaves_no_memory(warehouse: Path) -> None:
    built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()
    engine.close(remember=False)
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None and not memory.exists()


def test_no_cache_remembers_nothing(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEKNAL_NO_CACHE", "1")
    built(warehouse)
    assert duckdb_catalog.memory_file(str(warehouse)) is None
    monkeypatch.delenv("SEEKNAL_NO_CACHE")
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None and not memory.exists()


def test_a_read_only_session_neither_recalls_nor_remembers(
    warehouse: Path, recalls: Recalls
) -> None:
    built(warehouse)
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None
    before = memory.read_bytes()
    recalls.queries = 0
    engine = open_engine(warehouse, read_only=True)
    engine.catalog()
    engine.close()
    assert recalls.queries == 1
    assert memory.read_bytes() == before


# Each step is a statement seeknal's engine runs, in a session that remembers; after
# each, and in the next session, the catalog given is what a catalog query says.
NAMES = st.sampled_from(["a", "b", "c"])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("table"), NAMES),
        st.tuples(st.just("view"), NAMES),
        st.tuples(st.just("empty_table"), NAMES),
        st.tuples(st.just("promote"), st.lists(NAMES, unique=True), st.lists(NAMES, unique=True)),
        st.tuples(st.just("drop"), st.lists(NAMES, unique=True)),
        st.tuples(st.just("schema"), st.sampled_from(["s1", "S2"])),
        st.tuples(st.just("insert"), NAMES),
        st.tuples(st.just("columns"), NAMES),
        st.tuples(st.just("close")),
    ),
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_the_catalog_given_is_always_the_catalog_held(
    steps: list[tuple[Any, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = tmp_path_factory.mktemp("catalog") / "warehouse.duckdb"
    engine = open_engine(warehouse)
    try:
        engine.ensure_schemas(["snap", "env"])
        for step in steps:
            kind = step[0]
            with contextlib.suppress(EngineError):  # a view over a missing table, ...
                if kind == "table":
                    engine.build_snapshot(f"snap.{step[1]}", "SELECT 1 AS x", Materialization.TABLE)
                elif kind == "view":
                    engine.build_snapshot(f"snap.{step[1]}", "SELECT 1 AS x", Materialization.VIEW)
                elif kind == "empty_table":
                    engine.create_table(f"snap.{step[1]}", [("x", "INTEGER")])
                elif kind == "promote":
                    engine.promote(
                        {f"env.{n}": f"snap.{n}" for n in step[1]},
                        drop=[f"env.{n}" for n in step[2]],
                    )
                elif kind == "drop":
                    engine.drop_relations([f"snap.{n}" for n in step[1]])
                elif kind == "schema":
                    engine.ensure_schemas([step[1]])
                elif kind == "insert":
                    engine.insert_batch(f"snap.{step[1]}", "SELECT 1 AS x", {}, "x", (0, 5))
                elif kind == "columns":
                    engine.add_columns(f"snap.{step[1]}", [("y", "INTEGER")])
                elif kind == "close":
                    engine.close()
                    engine = open_engine(warehouse)
            assert engine.catalog() == engine._query_catalog(), step
    finally:
        engine.close()


def test_a_second_sealed_engine_on_the_same_file_is_refused_clearly(warehouse: Path) -> None:
    first = DuckDBEngine(warehouse, file_search_path=warehouse.parent, external_access=False)
    try:
        with pytest.raises(EngineError, match="cannot seal the DuckDB warehouse") as caught:
            DuckDBEngine(warehouse, file_search_path=warehouse.parent, external_access=False)
        assert "once per process" in (caught.value.hint or "")
        assert first.query("SELECT 1 AS one") == (["one"], [(1,)])  # the first still works
    finally:
        first.close()


def test_closing_never_fails_whatever_remembering_raises(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built(warehouse)
    engine = open_engine(warehouse)
    engine.catalog()

    def broken(*args: object) -> None:
        raise ValueError("a bug while remembering")

    monkeypatch.setattr(duckdb_catalog, "remember", broken)
    engine.close()  # no error: the memory is a cache
    memory = duckdb_catalog.memory_file(str(warehouse))
    assert memory is not None and not memory.exists()
    with duckdb.connect(str(warehouse)) as con:  # released
        con.execute("SELECT 1")


def test_no_other_process_can_open_the_file_while_a_session_holds_it(
    warehouse: Path, recalls: Recalls
) -> None:
    # DuckDB's lock on the file is a POSIX record lock, which the kernel drops when the
    # process closes any descriptor of the file: the memory must never do that.
    built(warehouse)
    recalls.queries = 0
    engine = open_engine(warehouse)
    try:
        engine.catalog()
        assert recalls.queries == 0  # recalled: the file was identified
        assert not opens_for_writing(warehouse)
        engine.build_snapshot("seeknal__t.c__1", "SELECT 2 AS y", Materialization.TABLE)
        assert not opens_for_writing(warehouse)
    finally:
        engine.close()
    assert opens_for_writing(warehouse)
    recalls.queries = 0
    engine = open_engine(warehouse)
    try:
        assert "seeknal__t.c__1" in engine.catalog().relations  # remembered at close
        assert recalls.queries == 0
        assert not opens_for_writing(warehouse)
    finally:
        engine.close()
