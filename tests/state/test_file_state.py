"""FileStateBackend on real files, real flocks and real threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from seeknal.canonical import canonical_json
from seeknal.errors import StateError
from seeknal.state import STATE_FORMAT_VERSION, State, open_state
from seeknal.state.file import FileStateBackend
from seeknal.state.migrations import DOCUMENT_MIGRATIONS, migrate_document

SNAPSHOT = "seeknal__source.orders__0123456789ab"
RECORD = {
    "node": "source.orders",
    "kind": "source",
    "materialized": "table",
    "data_version": "a" * 64,
    "rows": 5,
}
ENV_RECORD: dict[str, Any] = {
    "nodes": {
        "source.orders": {
            "kind": "source",
            "materialized": "table",
            "snapshot": SNAPSHOT,
            "fingerprint": {"data": "b" * 64, "metadata": "c" * 64},
            "data_version": "a" * 64,
            "columns": [{"name": "order_id", "type": "BIGINT"}],
            "sql": "SELECT * FROM read_csv('data/orders.csv')",
        }
    }
}


@pytest.fixture
def backend(tmp_path: Path) -> FileStateBackend:
    return FileStateBackend(tmp_path / "state")


def write_doc(backend: FileStateBackend, doc: Any) -> None:
    backend.path.mkdir(parents=True, exist_ok=True)
    backend.file.write_text(json.dumps(doc), encoding="utf-8")


def test_absent_state_reads_empty_without_creating_anything(backend: FileStateBackend) -> None:
    assert backend.read() == State()
    assert not backend.path.exists()


def test_open_state_file_backend(tmp_path: Path) -> None:
    assert isinstance(open_state("file", str(tmp_path)), FileStateBackend)
    with pytest.raises(StateError, match="unknown state backend"):
        open_state("s3", str(tmp_path))


def test_record_snapshot_round_trips_as_canonical_json(backend: FileStateBackend) -> None:
    backend.record_snapshot(SNAPSHOT, RECORD)
    assert backend.read().snapshots == {SNAPSHOT: RECORD}  # from the journal

    backend.set_environment("prod", ENV_RECORD, "1" * 64)  # folds the journal in
    assert backend.read().snapshots == {SNAPSHOT: RECORD}
    assert backend.journal.read_bytes() == b""
    text = backend.file.read_text(encoding="utf-8")
    assert text == canonical_json(json.loads(text))
    assert json.loads(text)["format_version"] == STATE_FORMAT_VERSION


def test_set_environment_records_history_outside_the_hash(backend: FileStateBackend) -> None:
    backend.set_environment("prod", ENV_RECORD, "1" * 64)
    first_hash = backend.read().environment_hash("prod")
    backend.set_environment("prod", ENV_RECORD, "2" * 64)

    state = backend.read()
    assert state.environment("prod") == ENV_RECORD
    assert state.environment_hash("prod") == first_hash
    assert [h["plan_id"] for h in state.history["prod"]] == ["1" * 64, "2" * 64]
    assert state.history["prod"][0]["applied_at"].endswith("Z")


def test_writes_leave_no_temporary_files(backend: FileStateBackend) -> None:
    for i in range(3):
        backend.record_snapshot(f"seeknal__source.orders__{i:012d}", RECORD)
    backend.set_environment("prod", ENV_RECORD, "1" * 64)

    assert sorted(p.name for p in backend.path.iterdir()) == [
        "hashes.json",
        "journal.jsonl",
        "state.json",
    ]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_state_file_gets_the_mode_of_any_new_file(
    backend: FileStateBackend, umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        backend.record_snapshot(SNAPSHOT, RECORD)
        backend.set_environment("prod", ENV_RECORD, "1" * 64)
    finally:
        os.umask(old)

    # 0644 less the umask, like the journal: not mkstemp's private 0600.
    assert backend.file.stat().st_mode & 0o777 == mode
    assert backend.journal.stat().st_mode & 0o777 == mode


def test_a_failed_write_keeps_the_previous_document(
    backend: FileStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.record_snapshot(SNAPSHOT, RECORD)
    backend.set_environment("prod", ENV_RECORD, "1" * 64)
    before = backend.file.read_bytes()
    backend.record_snapshot("seeknal__source.other__0123456789ab", RECORD)

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    # Fault injection: the rename is where a crash would tear a non-atomic write.
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StateError, match="No space left"):
        backend.set_environment("dev", ENV_RECORD, "2" * 64)
    monkeypatch.undo()

    assert backend.file.read_bytes() == before
    assert sorted(p.name for p in backend.path.iterdir()) == [
        "hashes.json",
        "journal.jsonl",
        "state.json",
    ]
    # The journal was not emptied: the record written before the failure is still there.
    assert "seeknal__source.other__0123456789ab" in backend.read().snapshots
    assert backend.read().environment("dev") is None


def test_a_torn_journal_line_is_ignored(backend: FileStateBackend) -> None:
    backend.record_snapshot(SNAPSHOT, RECORD)
    with backend.journal.open("ab") as fh:
        fh.write(b'{"snapshot": "seeknal__source.torn__0123456789ab", "rec')  # crash mid-append
    assert set(backend.read().snapshots) == {SNAPSHOT}


def test_an_append_after_a_torn_line_repairs_the_journal(backend: FileStateBackend) -> None:
    backend.record_snapshot(SNAPSHOT, RECORD)
    with backend.journal.open("ab") as fh:
        fh.write(b'{"snapshot": "seeknal__source.torn__0123456789ab", "rec')  # crash mid-append
    backend.record_snapshot("seeknal__source.next__0123456789ab", RECORD)
    assert set(backend.read().snapshots) == {SNAPSHOT, "seeknal__source.next__0123456789ab"}


def test_a_corrupt_journal_line_is_an_error(backend: FileStateBackend) -> None:
    backend.journal.parent.mkdir(parents=True, exist_ok=True)
    backend.journal.write_bytes(b"not json\n")
    with pytest.raises(StateError, match=r"journal .* is corrupt at line 1"):
        backend.read()


def test_concurrent_records_from_threads_are_all_kept(backend: FileStateBackend) -> None:
    names = [f"seeknal__transform.t{i}__{i:012d}" for i in range(24)]
    threads = [
        threading.Thread(target=backend.record_snapshot, args=(name, RECORD)) for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(backend.read().snapshots) == sorted(names)


def test_newer_format_version_is_refused(backend: FileStateBackend) -> None:
    newer = STATE_FORMAT_VERSION + 1
    write_doc(backend, {"format_version": newer, "snapshots": {}, "environments": {}, "stuff": 1})

    with pytest.raises(
        StateError, match=f"has format_version {newer}; this seeknal reads up to {newer - 1}"
    ) as info:
        backend.read()
    assert info.value.hint and "upgrade seeknal" in info.value.hint


def test_corrupt_file_is_a_clear_error(backend: FileStateBackend) -> None:
    backend.path.mkdir(parents=True)
    backend.file.write_text('{"format_version": 1, "snapsh', encoding="utf-8")

    with pytest.raises(StateError, match=r"state\.json is corrupt: .* at line 1 column") as info:
        backend.read()
    assert info.value.hint and "backup" in info.value.hint


DEEP = "[" * 100_000 + "]" * 100_000  # deeper than any JSON reader recurses


def test_json_nested_too_deeply_is_corrupt_not_a_crash(backend: FileStateBackend) -> None:
    backend.path.mkdir(parents=True)
    backend.file.write_text(DEEP, encoding="utf-8")
    with pytest.raises(StateError, match=r"state\.json is corrupt: .* nested too deeply"):
        backend.read()
    backend.file.unlink()
    backend.journal.write_text(DEEP + "\n", encoding="utf-8")
    with pytest.raises(StateError, match=r"journal .* corrupt at line 1: nested too deeply"):
        backend.read()


def test_not_an_object_is_corrupt(backend: FileStateBackend) -> None:
    write_doc(backend, [1, 2, 3])

    with pytest.raises(StateError, match="not a JSON object"):
        backend.read()


def test_schema_invalid_state_is_refused(backend: FileStateBackend) -> None:
    write_doc(
        backend,
        {"format_version": 1, "snapshots": {SNAPSHOT: {"node": "x"}}, "environments": {}},
    )

    with pytest.raises(StateError, match="does not match the state schema") as info:
        backend.read()
    assert f"['snapshots']['{SNAPSHOT}']" in str(info.value)


def test_invalid_record_is_never_written(backend: FileStateBackend) -> None:
    backend.record_snapshot(SNAPSHOT, RECORD)
    before = backend.journal.read_bytes()

    with pytest.raises(StateError, match="invalid snapshot record"):
        backend.record_snapshot("seeknal__source.x__0123456789ab", {"node": "source.x"})

    assert backend.journal.read_bytes() == before


def test_old_format_without_a_migration_is_refused(backend: FileStateBackend) -> None:
    write_doc(backend, {"format_version": 0, "snapshots": {}, "environments": {}})

    with pytest.raises(StateError, match="format_version 0, and this seeknal has no migration"):
        backend.read()


def test_migrations_are_applied_on_read(
    backend: FileStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def from_0(doc: dict[str, Any]) -> dict[str, Any]:
        # An imaginary v0 that called snapshots "built".
        return {"format_version": 1, "snapshots": doc["built"], "environments": doc["envs"]}

    monkeypatch.setitem(DOCUMENT_MIGRATIONS, 0, from_0)
    write_doc(backend, {"format_version": 0, "built": {SNAPSHOT: RECORD}, "envs": {}})

    assert backend.read().snapshots == {SNAPSHOT: RECORD}


def test_a_migration_must_reach_the_next_version() -> None:
    with pytest.raises(StateError, match="produced format_version 0, not 1"):
        migrate_document(
            {"format_version": 0},
            where="state.json",
            migrations={0: lambda doc: doc},
        )


def test_lock_refuses_a_second_holder_in_the_same_process(backend: FileStateBackend) -> None:
    with backend.lock():
        with pytest.raises(StateError) as info, FileStateBackend(backend.path).lock():
            pass
        assert str(info.value) == f"another seeknal run holds the state lock ({backend.path})"
        assert info.value.hint and f"pid {os.getpid()}" in info.value.hint
    with backend.lock():
        pass


def test_lock_refuses_while_another_process_holds_it(backend: FileStateBackend) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from seeknal.state.file import FileStateBackend\n"
            f"with FileStateBackend({str(backend.path)!r}).lock():\n"
            "    print('locked', flush=True)\n"
            "    sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(StateError, match="another seeknal run holds the state lock"),
            backend.lock(),
        ):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    with backend.lock():
        pass


def test_apply_history_keeps_rollback_records_and_expiry(backend: FileStateBackend) -> None:
    record = {"nodes": {}}
    for n in range(12):
        backend.set_environment("dev", record, f"plan{n}", base="prod", ttl_seconds=3600)
    state = backend.read()
    entries = state.history["dev"]
    assert len(entries) == 12
    # Only what rollback can return to keeps its record (the newest's is the
    # environment's own): the state does not grow with every apply by a copy of it.
    assert ["record" in e for e in entries] == [False] * 10 + [True, False]
    assert entries[-2]["record"] == record
    info = state.environment_info["dev"]
    assert info["base"] == "prod"
    assert info["created_at"] <= info["updated_at"] < info["expires_at"]
    backend.set_environment("prod", record, "p", ttl_seconds=None)
    assert backend.read().environment_info["prod"]["expires_at"] is None


def test_delete_environment_and_forget_snapshots(backend: FileStateBackend) -> None:
    backend.record_snapshot(SNAPSHOT, RECORD)
    backend.set_environment("dev", {"nodes": {}}, "p1")
    backend.delete_environment("dev")
    backend.forget_snapshots([SNAPSHOT])
    state = backend.read()
    assert state.environments == {} and state.history == {} and state.environment_info == {}
    assert state.snapshots == {}


def test_environment_hashes_kept_beside_the_document_are_used_for_its_bytes_only(
    backend: FileStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.state import base
    from seeknal.state import file as file_module

    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    backend.set_environment("dev", {"nodes": {}}, "p" * 64)
    expected = {name: base.environment_hash(r) for name, r in backend.read().environments.items()}
    hashed: list[Any] = []
    real = base.environment_hash
    monkeypatch.setattr(base, "environment_hash", lambda r: hashed.append(r) or real(r))
    monkeypatch.setattr(file_module, "environment_hash", base.environment_hash)

    def locked_hashes() -> dict[str, str | None]:
        with backend.lock():
            state = backend.read()
        return {n: state.environment_hash(n) for n in expected}

    assert locked_hashes() == expected
    assert not hashed  # known from hashes.json, bound to these bytes
    # Without the lock (a compile) the file is not used: computed, and the same.
    state = backend.read()
    assert {n: state.environment_hash(n) for n in expected} == expected
    assert len(hashed) == 2
    hashed.clear()
    # The same content in other bytes (reformatted by hand): computed, and the same.
    document = json.loads(backend.file.read_text(encoding="utf-8"))
    backend.file.write_text(json.dumps(document), encoding="utf-8")
    assert locked_hashes() == expected
    assert len(hashed) == 2
    # A changed record with another document's hashes beside it: computed, never taken.
    document["environments"]["dev"] = ENV_RECORD
    backend.file.write_text(canonical_json(document), encoding="utf-8")
    backend.hashes.write_text(
        json.dumps(
            {
                "format": 1,
                "state_sha256": "0" * 64,
                "environments": {"prod": "1" * 64, "dev": "1" * 64},
            }
        ),
        encoding="utf-8",
    )
    assert locked_hashes() == {"prod": expected["prod"], "dev": expected["prod"]}
    for damage in ("", "[]", '{"state_sha256": 1}', '{"format": 2}'):
        backend.hashes.write_text(damage, encoding="utf-8")
        with backend.lock():
            assert backend.read().environment_hash("prod") == expected["prod"]


def test_a_journal_record_leaves_the_kept_hashes_valid(backend: FileStateBackend) -> None:
    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    before = backend.hashes.read_bytes()
    backend.record_snapshot(SNAPSHOT, RECORD)  # the journal: the document is unchanged
    assert backend.hashes.read_bytes() == before
    with backend.lock():
        state = backend.read()
    assert state.environment_hash("prod") == State(
        environments={"prod": ENV_RECORD}
    ).environment_hash("prod")


def test_a_locked_read_keeps_the_hashes_a_document_lacks(backend: FileStateBackend) -> None:
    """A state written by an older seeknal gets its hashes file from the first run."""
    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    expected = backend.read().environment_hash("prod")
    backend.hashes.unlink()
    assert backend.read().environment_hash("prod") == expected
    assert not backend.hashes.exists()  # a compile reads without the lock: no write
    with backend.lock():
        assert backend.read().environment_hash("prod") == expected
    assert json.loads(backend.hashes.read_text(encoding="utf-8"))["environments"] == {
        "prod": expected
    }


@pytest.mark.parametrize("version", sorted(DOCUMENT_MIGRATIONS))
def test_an_older_document_gets_no_hashes_until_it_is_written_again(
    backend: FileStateBackend, version: int
) -> None:
    """Hashes of migrated records are never bound to the old bytes: a later fix to a
    migration must not meet hashes the old code kept."""
    old = {"format_version": version, "snapshots": {}, "environments": {}}
    backend.path.mkdir(parents=True, exist_ok=True)
    backend.file.write_text(json.dumps(old), encoding="utf-8")
    with backend.lock():
        backend.read()
    assert not backend.hashes.exists()


def test_hashes_are_reused_for_environments_a_write_left_alone(
    backend: FileStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.state import base
    from seeknal.state import file as file_module

    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    hashed: list[Any] = []
    real = base.environment_hash
    monkeypatch.setattr(base, "environment_hash", lambda r: hashed.append(r) or real(r))
    monkeypatch.setattr(file_module, "environment_hash", base.environment_hash)
    with backend.lock():
        backend.set_environment("dev", {"nodes": {}}, "p" * 64)
    assert hashed == [{"nodes": {}}]  # prod's record was left alone: its hash kept
    with backend.lock():
        state = backend.read()
        assert state.environment_hash("prod") == real(ENV_RECORD)
        assert state.environment_hash("dev") == real({"nodes": {}})
    assert len(hashed) == 1


def test_a_planted_hashes_file_is_never_followed_nor_trusted_without_the_lock(
    backend: FileStateBackend, tmp_path: Path
) -> None:
    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    expected = backend.read().environment_hash("prod")
    digest = __import__("hashlib").sha256(backend.file.read_bytes()).hexdigest()
    forged = {"format": 1, "state_sha256": digest, "environments": {"prod": "f" * 64}}
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(forged), encoding="utf-8")
    backend.hashes.unlink()
    backend.hashes.symlink_to(outside)
    with backend.lock():
        assert backend.read().environment_hash("prod") == expected  # not followed
    backend.hashes.unlink()
    os.mkfifo(backend.hashes)  # reading a FIFO would hang the run
    with backend.lock():
        assert backend.read().environment_hash("prod") == expected
    backend.hashes.unlink()
    backend.hashes.write_text(json.dumps(forged), encoding="utf-8")
    assert backend.read().environment_hash("prod") == expected  # a compile: not used
    # A document the schema refuses is refused, whatever is kept beside it.
    document = json.loads(backend.file.read_text(encoding="utf-8"))
    document["environments"]["prod"]["nodes"]["source.orders"] = 7
    backend.file.write_text(canonical_json(document), encoding="utf-8")
    forged["state_sha256"] = __import__("hashlib").sha256(backend.file.read_bytes()).hexdigest()
    backend.hashes.write_text(json.dumps(forged), encoding="utf-8")
    with backend.lock(), pytest.raises(StateError, match="does not match the state schema"):
        backend.read()


def test_a_long_journal_is_folded_into_the_document(backend: FileStateBackend) -> None:
    from seeknal.state.file import JOURNAL_FOLD_LINES

    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    for n in range(JOURNAL_FOLD_LINES - 1):
        backend.record_snapshot(SNAPSHOT, {**RECORD, "rows": n})
    document = backend.file.read_bytes()
    with backend.lock():
        assert backend.compact() is False  # short yet: left as it is
    assert backend.file.read_bytes() == document
    backend.record_snapshot(SNAPSHOT, {**RECORD, "rows": 1000})
    before = backend.read()
    with backend.lock():
        assert backend.compact() is True
    assert backend.journal.read_bytes() == b""
    after = backend.read()
    assert after == before and after.snapshots[SNAPSHOT]["rows"] == 1000
    assert after.environment_hash("prod") == before.environment_hash("prod")
    with backend.lock():
        assert backend.compact() is False


def test_compacting_without_a_journal_does_nothing(backend: FileStateBackend) -> None:
    with pytest.raises(StateError, match="only by the run holding the state lock"):
        backend.compact()
    backend.path.mkdir(parents=True)
    with backend.lock():
        assert backend.compact() is False
    assert not backend.file.exists()


def test_a_fold_interrupted_after_the_document_was_written_loses_nothing(
    backend: FileStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a kill between the rename and the journal's truncation: the next read replays
    records the document already holds, which changes nothing."""
    from seeknal.state.file import JOURNAL_FOLD_LINES

    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    for n in range(JOURNAL_FOLD_LINES):
        backend.record_snapshot(SNAPSHOT, {**RECORD, "rows": n})
    before = backend.read()

    def killed(path: Any, length: int) -> None:
        raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(os, "truncate", killed)
    with backend.lock(), pytest.raises(KeyboardInterrupt):
        backend.compact()
    monkeypatch.undo()
    assert backend.journal.read_bytes()  # not emptied
    assert backend.read() == before
    with backend.lock():
        assert backend.compact() is True
    assert backend.read() == before


def test_a_reader_racing_a_fold_reads_again(
    backend: FileStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compile reads without the lock: should a fold replace the document and empty the
    journal between its two reads, it must not see the old document alone."""
    from seeknal.state import file as file_module
    from seeknal.state.file import JOURNAL_FOLD_LINES

    backend.set_environment("prod", ENV_RECORD, "p" * 64)
    for n in range(JOURNAL_FOLD_LINES):
        backend.record_snapshot(SNAPSHOT, {**RECORD, "rows": n})
    expected = backend.read()
    writer = FileStateBackend(backend.path)
    real = FileStateBackend._read_journal_with_bytes
    raced: list[bool] = []

    def fold_meanwhile(self: FileStateBackend) -> tuple[list[dict[str, Any]], bytes]:
        if self is backend and not raced:
            raced.append(True)
            with writer.lock():
                assert writer.compact() is True
        return real(self)

    monkeypatch.setattr(FileStateBackend, "_read_journal_with_bytes", fold_meanwhile)
    assert backend.read() == expected
    assert raced and file_module._READ_ATTEMPTS > 1


def test_an_older_document_is_written_in_this_format_before_the_first_record(
    backend: FileStateBackend,
) -> None:
    """A record of this format beside an older document would make the older seeknal
    that wrote it call the journal corrupt; with the document rewritten first, it says
    "upgrade"."""
    old = {"format_version": STATE_FORMAT_VERSION - 1, "snapshots": {}, "environments": {}}
    write_doc(backend, old)
    with backend.lock():
        backend.read()
        assert json.loads(backend.file.read_text())["format_version"] == STATE_FORMAT_VERSION - 1
        backend.record_snapshot(SNAPSHOT, {**RECORD, "definition": "d" * 64})
        assert json.loads(backend.file.read_text())["format_version"] == STATE_FORMAT_VERSION
        backend.record_snapshot(SNAPSHOT, RECORD)  # once: the journal is not folded again
        assert backend.journal.read_text().count("\n") == 2
    assert backend.read().snapshots[SNAPSHOT] == RECORD
