"""The file state backend: one JSON document under ``target/state/``, plus a journal.

Durability comes from the write protocol, not from luck: the new document goes to a
temporary file in the same directory, is fsynced, renamed over ``state.json``
(``os.replace`` is atomic on POSIX), and the directory is fsynced so the rename itself
survives a power cut. A reader therefore sees the old document or the new one, never a
torn one.

Rewriting the whole document for every snapshot a run builds would make a run quadratic
in the size of the project, so snapshot records go to ``journal.jsonl`` instead: one
line each, appended and fsynced before the build counts as recorded. Reading replays the
journal over the document (records are plain assignments, so replaying one twice is
harmless; a torn last line, from a crash mid-append, is ignored — that build simply
runs again). Promotion folds the journal into a new document and then empties it, and
so does the end of a run once the journal holds ``JOURNAL_FOLD_LINES`` records (a run
that only adds intervals promotes nothing). A reader that finds the document replaced
while it read the journal reads both again.

Every compile and run asks for the hash of an environment's record, which takes a while
for a large environment; so each document write also leaves ``hashes.json`` beside it:
the hash of every environment record, bound to the sha256 of the document's bytes. The
run holding the lock uses those hashes only for the very bytes it read (hashing 5 MB is
much faster than serializing 1,000 nodes' records again), and writes the file for a
document that lacks it; lost, stale, damaged or planted, the file is ignored and the
hashes are computed. A read without the lock (``seeknal compile``) never uses it.

Two runs must not interleave their read-modify-writes, so a run holds an exclusive
``flock`` on ``.lock`` from start to end; threads of the same run share it and
serialize their writes on an in-process lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from stat import S_ISREG
from typing import Any

from seeknal import process, schemas
from seeknal.canonical import canonical_json
from seeknal.errors import StateError
from seeknal.state.base import ROLLBACK_DEPTH, STATE_FORMAT_VERSION, State, environment_hash
from seeknal.state.migrations import migrate_document

STATE_FILE = "state.json"
JOURNAL_FILE = "journal.jsonl"
HASHES_FILE = "hashes.json"
# Journal records after which a run folds them into the document (`compact`).
JOURNAL_FOLD_LINES = 64
_READ_ATTEMPTS = 5
# What the kept hashes are: bump it whenever `environment_hash`, or what a document of
# the current format reads as, changes; older kept hashes are then ignored.
HASHES_FORMAT = 1
_HASHES_MAX_BYTES = 16 << 20
LOCK_FILE = ".lock"
_SHOWN_ERRORS = 3


class FileStateBackend:
    """State stored as ``<path>/state.json``, locked through ``<path>/.lock``.

    Args:
        path: The state directory (created on the first write or lock).

    Example:
        >>> backend = FileStateBackend("target/state")
        >>> with backend.lock():  # doctest: +SKIP
        ...     backend.record_snapshot("seeknal__source.orders__0123456789ab", record)
    """

    __slots__ = ("_held", "_outdated", "_write_lock", "path")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._write_lock = threading.Lock()
        self._held = False  # this object holds the run lock
        # The lock holder read a document of an older format: it is written in this one
        # before the first record of this format goes to the journal.
        self._outdated = False

    @property
    def file(self) -> Path:
        """The state document."""
        return self.path / STATE_FILE

    @property
    def hashes(self) -> Path:
        """Each environment's hash, for the document's current bytes (a cache)."""
        return self.path / HASHES_FILE

    @property
    def journal(self) -> Path:
        """Snapshot records not yet folded into the document."""
        return self.path / JOURNAL_FILE

    def read(self) -> State:
        """The current state; an empty one when no state was ever written.

        Raises:
            StateError: The file is unreadable, not JSON, newer than this seeknal, or
                does not match ``schemas/state.schema.json``.
        """
        for _ in range(_READ_ATTEMPTS):
            # A write (promotion, a journal fold) replaces the document and then empties
            # the journal: read between the two, the old document without its journal
            # would lose records. The document read must still be the one in place
            # once the journal is read; else read again.
            before = _identity(self.file)
            doc, data, stored_version = self._read_stored_document()
            journal, journal_data = self._read_journal_with_bytes()
            if _identity(self.file) == before:
                break
        environments = doc["environments"]
        self._outdated = self._held and data is not None and stored_version != STATE_FORMAT_VERSION
        state = _state_of(_replayed(doc, journal))
        # What was read, byte for byte: the compile's plan memo keys on it (hashing the
        # bytes costs a fraction of serializing the state again).
        state.remember_source(b"document", data or b"", b"journal", journal_data)
        if self._held and data is not None and environments:
            # Only the run holding the lock trusts the kept hashes (nothing else writes
            # the state meanwhile), and keeps them for a document that lacks them (one
            # an older seeknal wrote, or whose hashes file was lost).
            digest = hashlib.sha256(data).hexdigest()
            known = self._kept_hashes(digest, environments)
            if known is None and stored_version == STATE_FORMAT_VERSION:
                known = {name: environment_hash(r) for name, r in environments.items()}
                self._write_hashes(digest, known)
            state.remember_hashes(known or {})
        return state

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the exclusive run lock; fail at once when another run holds it.

        ``flock`` locks belong to the open file, so the kernel releases them when the
        holder exits, even by a crash: a lock can never be left stale.

        Raises:
            StateError: Another process (or another ``lock()`` in this one) holds it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(lock_path)
                raise StateError(
                    f"another seeknal run holds the state lock ({self.path})",
                    hint=f"wait for that run{holder} to finish, then run again",
                ) from None
            # The pid is for humans reading the lock file; the lock is the flock.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._held = True
            try:
                yield
            finally:
                self._held = False
                if process.left():
                    # A database was left open for the process's end (a command-line
                    # run): the lock goes with it, so that no run starts while the
                    # warehouse is still held.
                    process.leave(fd)
                    fd = -1
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if fd >= 0:
                os.close(fd)

    def exists(self) -> bool:
        """Whether the state directory exists (``lock`` creates it)."""
        return self.path.is_dir()

    def record_snapshot(self, name: str, record: dict[str, Any]) -> None:
        """Record that snapshot ``name`` was built.

        Args:
            name: The snapshot, e.g. ``seeknal__source.orders__0123456789ab``.
            record: ``node``, ``kind``, ``materialized``, ``data_version``, ``rows``.
        """
        entry = {"snapshot": name, "record": dict(record)}
        _validate_snapshot_record(entry)
        if self._outdated:
            # Beside a document an older seeknal can read, a record of this format
            # would make that seeknal call the journal corrupt; written in this format
            # first, the document makes it say "upgrade" instead. Two threads doing it
            # at once write the same document twice.
            self._outdated = False
            self._update(lambda doc: None)
        line = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        with self._write_lock:
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.journal, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    _drop_torn_tail(fd)
                    view = memoryview(line)
                    while view:  # a short write (disk full, signal) must not tear the line
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StateError(
                    f"cannot record snapshot {name} in {self.journal}: {exc.strerror}",
                    hint="free disk space or fix permissions, then run again; "
                    "the snapshot is rebuilt",
                ) from exc

    def set_environment(
        self,
        env: str,
        record: dict[str, Any],
        plan_id: str,
        *,
        action: str = "apply",
        source: str | None = None,
        base: str | None = None,
        ttl_seconds: int | None = None,
    ) -> None:
        """Point ``env`` at ``record`` and add the change to its history.

        Timestamps go to ``history`` and ``environment_info`` only, which no hash covers.
        """
        now = datetime.now(UTC)
        stamp = _stamp(now)

        def apply(doc: dict[str, Any]) -> None:
            entries = doc.setdefault("history", {}).setdefault(env, [])
            previous = doc["environments"].get(env)
            if entries and previous is not None:
                # What rollback returns to: the record the newest entry set, until now
                # the environment's own (so not stored twice while it was current).
                entries[-1]["record"] = previous
            doc["environments"][env] = record
            entry: dict[str, Any] = {"plan_id": plan_id, "applied_at": stamp, "action": action}
            if source is not None:
                entry["source"] = source
            entries.append(entry)
            for old in entries[:-ROLLBACK_DEPTH]:
                old.pop("record", None)  # only the change before the newest is undone
            infos = doc.setdefault("environment_info", {})
            info = infos.get(env) or {"base": base, "created_at": stamp}
            info["updated_at"] = stamp
            info["expires_at"] = (
                None if ttl_seconds is None else _stamp(now + timedelta(seconds=ttl_seconds))
            )
            infos[env] = info

        self._update(apply)

    def delete_environment(self, env: str) -> None:
        """Forget ``env``: its record, history and info."""

        def apply(doc: dict[str, Any]) -> None:
            doc["environments"].pop(env, None)
            doc.get("history", {}).pop(env, None)
            doc.get("environment_info", {}).pop(env, None)

        self._update(apply)

    def compact(self) -> bool:
        """Fold the journal into the document once it holds ``JOURNAL_FOLD_LINES``
        records or more; True when it did.

        Promotion folds it too, but a run that only adds intervals (every run of an
        incremental model, once its environment is applied) promotes nothing: without
        this, each batch would add a line that every later read replays, for good (a
        year of hourly batches: 8,760 lines, about 80 ms per read). The fold is the same
        write promotion does (`_update`): atomic, and a crash before the journal is
        emptied leaves records the document already holds.
        """
        if not self._held:
            raise StateError(
                "the state journal is folded only by the run holding the state lock",
                hint="this is a bug in seeknal; run again with --debug for the traceback",
            )
        try:
            with open(self.journal, "rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StateError(f"cannot read the state journal {self.journal}: {exc}") from exc
        if lines < JOURNAL_FOLD_LINES:
            return False
        self._update(lambda doc: None)
        return True

    def forget_snapshots(self, names: Iterable[str]) -> None:
        """Drop the records of snapshots the janitor dropped."""
        gone = set(names)

        def apply(doc: dict[str, Any]) -> None:
            for name in gone:
                doc["snapshots"].pop(name, None)

        self._update(apply)

    def _update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Read (journal included), change and write the document, then empty the journal.

        A crash after the rename but before the journal is emptied leaves records that
        the document already holds; replaying them changes nothing.
        """
        with self._write_lock:
            doc, data, _ = self._read_stored_document()
            before = dict(doc["environments"])
            kept = (
                self._kept_hashes(hashlib.sha256(data).hexdigest(), before)
                if self._held and data is not None
                else None
            )
            _replayed(doc, self._read_journal())
            change(doc)
            # An environment the change left alone (the very same record) keeps its hash.
            same = {
                name: kept_hash
                for name, kept_hash in (kept or {}).items()
                if doc["environments"].get(name) is before[name]
            }
            try:
                self._write_document(doc, known_hashes=same)
                with contextlib.suppress(FileNotFoundError):
                    os.truncate(self.journal, 0)
            except OSError as exc:
                raise StateError(
                    f"cannot write the state file {self.file}: {exc.strerror}",
                    hint="free disk space or fix permissions, then run again",
                ) from exc

    def _kept_hashes(self, digest: str, environments: Any) -> dict[str, str | None] | None:
        """The environment hashes kept beside the document, when they were kept for these
        very bytes (``digest``), in this format, for these environments; else None.

        Read without following a symlink, from a regular file of a sane size: it is a
        cache, and nothing planted there can make a run read elsewhere or hang.
        """
        try:
            fd = os.open(self.hashes, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not S_ISREG(info.st_mode) or info.st_size > _HASHES_MAX_BYTES:
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                kept = json.loads(fh.read(_HASHES_MAX_BYTES + 1))
        except (OSError, ValueError, RecursionError):
            return None
        finally:
            os.close(fd)
        if (
            not isinstance(kept, dict)
            or kept.get("format") != HASHES_FORMAT
            or kept.get("state_sha256") != digest
            or not isinstance(kept.get("environments"), dict)
            or not isinstance(environments, dict)
            or kept["environments"].keys() != environments.keys()
            or not all(isinstance(h, str) for h in kept["environments"].values())
        ):
            return None
        hashes: dict[str, str | None] = kept["environments"]
        return hashes

    def _read_stored_document(self) -> tuple[dict[str, Any], bytes | None, Any]:
        """The document as stored (migrated and validated), its bytes (None when absent;
        the kept hashes are bound to their sha256), and the format version they had."""
        try:
            data = self.file.read_bytes()
            text = data.decode("utf-8")
        except FileNotFoundError:
            return State().to_document(), None, None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(
                f"cannot read the state file {self.file}: {exc}",
                hint="check the file's permissions and encoding",
            ) from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"the state file {self.file} is corrupt: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}",
                hint="restore it from a backup; deleting it makes seeknal rebuild everything",
            ) from exc
        except RecursionError:
            raise StateError(
                f"the state file {self.file} is corrupt: its JSON is nested too deeply to read",
                hint="restore it from a backup; deleting it makes seeknal rebuild everything",
            ) from None
        if not isinstance(doc, dict):
            raise StateError(
                f"the state file {self.file} is corrupt: it is not a JSON object",
                hint="restore it from a backup; deleting it makes seeknal rebuild everything",
            )
        stored_version = doc.get("format_version")
        doc = migrate_document(doc, where=f"the state file {self.file}")
        _validate(doc, where=f"the state file {self.file}")
        return doc, data, stored_version

    def _read_journal(self) -> list[dict[str, Any]]:
        return self._read_journal_with_bytes()[0]

    def _read_journal_with_bytes(self) -> tuple[list[dict[str, Any]], bytes]:
        """The journal's records, and its bytes (empty when there is none)."""
        try:
            data = self.journal.read_bytes()
        except FileNotFoundError:
            return [], b""
        except OSError as exc:
            raise StateError(f"cannot read the state journal {self.journal}: {exc}") from exc
        lines = data.split(b"\n")
        # The last element is b"" after a complete line, or a torn append: ignored.
        entries = []
        for number, raw in enumerate(lines[:-1], start=1):
            try:
                entry = json.loads(raw)
                _validate_snapshot_record(entry)
            except (ValueError, StateError, RecursionError) as exc:
                why = "nested too deeply to read" if isinstance(exc, RecursionError) else exc
                raise StateError(
                    f"the state journal {self.journal} is corrupt at line {number}: {why}",
                    hint="restore the state from a backup; deleting the journal makes seeknal "
                    "rebuild the snapshots it recorded",
                ) from None
            entries.append(entry)
        return entries, data

    def _write_document(
        self, doc: dict[str, Any], known_hashes: dict[str, str | None] | None = None
    ) -> None:
        """Write ``doc`` atomically, then keep its environments' hashes beside it
        (``known_hashes``: those already known, of records left as they were)."""
        doc["format_version"] = STATE_FORMAT_VERSION
        # Validating before writing keeps a bug from persisting a document no reader accepts.
        _validate(doc, where="the state about to be written")
        self.path.mkdir(parents=True, exist_ok=True)
        data = canonical_json(doc).encode("utf-8")
        # Not mkstemp: its file is private (0600); state gets the mode of any new file
        # (0644 less the umask), as the journal and the lock file do.
        tmp = self.path / f".state.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.file)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_directory(self.path)
        known = known_hashes or {}
        hashes = {
            name: known[name] if name in known else environment_hash(record)
            for name, record in doc["environments"].items()
        }
        self._write_hashes(hashlib.sha256(data).hexdigest(), hashes)

    def _write_hashes(self, digest: str, hashes: dict[str, str | None]) -> None:
        """Keep each environment's hash beside the document whose bytes hash to
        ``digest``: a large environment takes a while to hash, and every compile and run
        asks for it.

        Not part of the state: lost, stale or damaged, it is ignored and the hashes are
        computed from the document (a crash before it is written leaves the old one,
        bound to the old bytes).
        """
        kept = {"format": HASHES_FORMAT, "state_sha256": digest, "environments": hashes}
        tmp = self.path / f".hashes.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_text(json.dumps(kept, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.hashes)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _replayed(doc: dict[str, Any], journal: list[dict[str, Any]]) -> dict[str, Any]:
    """``doc`` with the journal's snapshot records replayed over it, in order."""
    for entry in journal:
        doc["snapshots"][entry["snapshot"]] = entry["record"]
    return doc


def _identity(path: Path) -> tuple[int, ...] | None:
    """What changes when ``path`` is replaced or rewritten (None: it does not exist)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _state_of(doc: dict[str, Any]) -> State:
    return State(
        snapshots=doc["snapshots"],
        environments=doc["environments"],
        history=doc.get("history", {}),
        environment_info=doc.get("environment_info", {}),
    )


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _validate(doc: dict[str, Any], *, where: str) -> None:
    errors = schemas.iter_errors("state", doc)
    if not errors:
        return
    lines = [f"{where} does not match the state schema:"]
    for error in errors[:_SHOWN_ERRORS]:
        location = "".join(f"[{p!r}]" for p in error.absolute_path) or "(top level)"
        lines.append(f"  at {location}: {error.message}")
    if len(errors) > _SHOWN_ERRORS:
        lines.append(f"  … and {len(errors) - _SHOWN_ERRORS} more")
    raise StateError("\n".join(lines), hint="restore the state file from a backup")


def _drop_torn_tail(fd: int) -> None:
    """Cut a torn last line (a crash mid-append) so the next entry starts on its own line.

    Readers already ignore such a line; without this, the next append would glue onto it
    and turn it into a corrupt line in the middle of the journal.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    data = os.pread(fd, size, 0)
    os.ftruncate(fd, data.rfind(b"\n") + 1)


def _validate_snapshot_record(entry: Any) -> None:
    """A journal line: ``{"snapshot": name, "record": {...}}`` as the state schema says."""
    if not isinstance(entry, dict) or set(entry) != {"snapshot", "record"}:
        raise StateError("a journal entry must be {snapshot, record}")
    errors = schemas.iter_errors(
        "state",
        {
            "format_version": STATE_FORMAT_VERSION,
            "snapshots": {str(entry["snapshot"]): entry["record"]},
            "environments": {},
        },
    )
    if errors:
        raise StateError(f"invalid snapshot record: {errors[0].message}")


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
