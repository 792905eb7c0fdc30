"""The DuckDB engine: one database file, one cursor per worker thread."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from seeknal import process
from seeknal.engines import duckdb_catalog
from seeknal.engines.base import (
    BatchResult,
    Capabilities,
    Catalog,
    EngineError,
    Materialization,
    Relation,
    quote_identifier,
    quote_literal,
)

_TABLE_TYPES = {"BASE TABLE": Materialization.TABLE, "VIEW": Materialization.VIEW}


class OpenedDatabase:
    """A DuckDB database opened, not yet sealed or used: see :func:`open_database`.

    Owned by whoever holds it until :class:`DuckDBEngine` takes it over; :meth:`close`
    is idempotent and never fails.
    """

    __slots__ = ("_con", "database", "external_access", "read_only")

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        database: str,
        read_only: bool,
        external_access: bool,
    ) -> None:
        self._con: duckdb.DuckDBPyConnection | None = connection
        self.database = database
        self.read_only = read_only
        self.external_access = external_access

    def opens(self, database: str, read_only: bool, external_access: bool) -> bool:
        """Whether this is ``database``, opened as asked and not taken or closed yet."""
        return self._con is not None and (
            (self.database, self.read_only, self.external_access)
            == (database, read_only, external_access)
        )

    def take(self) -> duckdb.DuckDBPyConnection:
        """The connection, handed over once."""
        con, self._con = self._con, None
        if con is None:
            raise EngineError("the opened DuckDB database was already taken or closed")
        return con

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with contextlib.suppress(duckdb.Error):
                con.close()


def open_database(
    database: str,
    read_only: bool,
    external_access: bool,
    *,
    starting: Callable[[], None] | None = None,
) -> OpenedDatabase:
    """Open the DuckDB ``database`` (parent directories created unless read-only).

    Without ``external_access``, extensions are neither installed nor loaded on demand.
    DuckDB starts a database in C++ without Python's GIL for most of it (about 17 ms,
    building its catalog of built-in functions), so another thread's Python can run
    meanwhile: ``starting`` is called just before, to start such work.

    Raises:
        EngineError: DuckDB cannot open the file (another process holds it, not a
            DuckDB file, ...), with a hint.
    """
    if database != ":memory:" and not read_only:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = (
        {}
        if external_access
        else {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    if starting is not None:
        starting()
    con = None
    try:
        con = duckdb.connect(database, read_only=read_only, config=config)
        return OpenedDatabase(con, database, read_only, external_access)
    except duckdb.Error as exc:
        raise EngineError(
            f"cannot open the DuckDB warehouse {database}: {_message(exc)}",
            hint=_open_hint(exc),
        ) from exc
    except BaseException:  # Ctrl-C as DuckDB returned: the file is not left held
        if con is not None:
            con.close()
        raise


class DuckDBEngine:
    """A DuckDB database file, used by the runtime from several threads.

    DuckDB lets one connection hand out cursors (each its own session); every worker
    thread gets one, because a DuckDB connection object must not be shared between
    threads. ``file_search_path`` is set for the whole database, so every cursor
    resolves the plans' project-relative paths (``read_csv('data/orders.csv')``).

    Args:
        database_path: The database file; parent directories are created.
        file_search_path: The project directory relative file names resolve against.
        read_only: Open for reading only (``seeknal show``/``query``); DuckDB then lets
            other processes read the file at the same time.
        external_access: Let SQL read and write any file (``read_csv``, ``COPY ... TO``,
            ``ATTACH``) and load extensions. Off, the database is sealed: SQL can read
            only the warehouse and ``readable_files``, and cannot change that.
        readable_files: When sealed, the files SQL may still read (the plan's data
            files, as its SQL names them and as they resolve).
        remember_catalog: Keep the catalog between sessions while the file is unchanged
            (``duckdb_catalog.py``): :meth:`catalog` recalls the last session's instead
            of querying, and :meth:`close` remembers this one's.
        opened: The database already opened by :func:`open_database` (a run opens it
            while it compiles, ``runtime/session.py``); the engine takes it over when it
            was opened the same way, else closes it and opens its own.

    Raises:
        EngineError: The database cannot be opened or sealed.

    Example:
        >>> engine = DuckDBEngine(":memory:", file_search_path="/tmp")
        >>> engine.query("SELECT 42 AS answer")
        (['answer'], [(42,)])
        >>> engine.close()
    """

    name = "duckdb"
    capabilities = Capabilities(
        transactional_ddl=True,
        create_or_replace_table=True,
        create_or_replace_view=True,
        concurrent_builds=True,
    )

    def __init__(
        self,
        database_path: str | Path,
        *,
        file_search_path: str | Path,
        read_only: bool = False,
        external_access: bool = True,
        readable_files: Iterable[str] = (),
        remember_catalog: bool = False,
        opened: OpenedDatabase | None = None,
    ) -> None:
        self._search_path = str(file_search_path)
        if "," in self._search_path:
            # DuckDB splits file_search_path at commas; there is no escape for one.
            if opened is not None:
                opened.close()
            raise EngineError(
                f"the project directory {self._search_path!r} contains a comma",
                hint="DuckDB cannot resolve relative file names under such a path; move the project",
            )
        database = str(database_path)
        if opened is not None and not opened.opens(database, read_only, external_access):
            opened.close()
            opened = None
        self._con = (opened or open_database(database, read_only, external_access)).take()
        settings = [f"SET GLOBAL file_search_path = {quote_literal(self._search_path)}"]
        if not external_access:
            # allowed_paths can be set only once the database runs, and before access is
            # cut; the lock keeps SQL from loosening any of it afterwards.
            allowed = ", ".join(quote_literal(f) for f in sorted(set(readable_files)))
            settings += [
                f"SET allowed_paths = [{allowed}]",
                "SET enable_external_access = false",
                "SET lock_configuration = true",
            ]
        try:
            with _ctrl_c_as_keyboard_interrupt():
                self._con.execute(";\n".join(settings))  # one call: each costs a round
        except duckdb.Error as exc:
            # Another engine of this process has the database open and sealed (DuckDB
            # shares it between connections of one process): its settings are locked.
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            raise EngineError(
                f"cannot seal the DuckDB warehouse {database}: {_message(exc)}",
                hint="open the warehouse once per process; close the other engine first",
            ) from exc
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._closed = False
        self._interrupted = False
        self._database = database
        self._read_only = read_only
        self._memory = duckdb_catalog.memory_file(database) if remember_catalog else None
        # The catalog memory reads the file through this descriptor, closed only after
        # DuckDB closed the database: closing any descriptor of the file would drop
        # DuckDB's lock on it (``duckdb_catalog.file_identity``).
        self._held: int | None = None
        if self._memory is not None and not read_only:
            try:
                self._held = os.open(database, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._memory = None
        # The catalog as last read or recalled, while no statement since may have
        # changed it; ``_changes`` counts those statements (a read racing one is not kept).
        self._known: Catalog | None = None
        self._recalled: str | None = None  # the digest of a catalog recalled, still known
        self._changes = 0
        self._known_lock = threading.Lock()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._interrupted:
            # A build that had not started its query yet when the run was interrupted.
            raise EngineError("interrupted")
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            if self._closed:
                raise EngineError("the DuckDB engine was closed")
            cursor = self._con.cursor()
            self._local.cursor = cursor
            with self._cursors_lock:
                self._cursors.append(cursor)
        return cursor

    def _transaction(self, statements: Iterable[str | tuple[str, Mapping[str, Any]]]) -> list[Any]:
        """Run ``statements`` in one transaction; the first row of each, for CTAS counts.

        A statement may come with named parameters: ``(sql, {"name": value})``.
        """
        cursor = self._cursor()
        results: list[Any] = []
        current = "BEGIN TRANSACTION"
        with _ctrl_c_as_keyboard_interrupt():
            try:
                cursor.execute(current)
                for statement in statements:
                    current, params = (
                        statement if isinstance(statement, tuple) else (statement, None)
                    )
                    if self._interrupted:  # interrupted between two statements
                        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
                    cursor.execute(current, params)
                    results.append(cursor.fetchone() if cursor.description else None)
                current = "COMMIT"
                cursor.execute(current)
            except BaseException as exc:
                # The failed statement may already have ended the transaction; Ctrl-C
                # in the calling thread leaves it open.
                with contextlib.suppress(duckdb.Error):
                    cursor.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise EngineError(_message(exc), sql=current) from exc
                raise
        return results

    def _relation_type(self, relation: Relation) -> Materialization | None:
        # DuckDB resolves identifiers case-insensitively, so the catalog lookup does too.
        row = (
            self._cursor()
            .execute(
                "SELECT table_type FROM information_schema.tables"
                " WHERE lower(table_schema) = lower(?) AND lower(table_name) = lower(?)"
                " AND table_catalog = current_database()",
                [relation.schema, relation.name],
            )
            .fetchone()
        )
        return None if row is None else _TABLE_TYPES.get(row[0], Materialization.TABLE)

    def ensure_schemas(self, names: Iterable[str]) -> None:
        """Create the schemas up front, serially: concurrent CREATE SCHEMA can conflict."""
        statements = [
            f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(n)}" for n in sorted(set(names))
        ]
        if statements:
            with self._changing_catalog():
                self._transaction(statements)

    def build_snapshot(self, snapshot: str, sql: str, materialized: Materialization) -> int | None:
        """Build ``snapshot`` from ``sql`` in one transaction; re-running gives the same relation.

        Args:
            snapshot: ``schema.name`` of the snapshot; the schema must exist.
            sql: The SELECT the snapshot holds, in DuckDB's dialect.
            materialized: ``table`` (rows are computed now) or ``view``.

        Returns:
            The number of rows of a table; None for a view.

        Raises:
            EngineError: DuckDB refused a statement (the transaction was rolled back).
        """
        relation = Relation.parse(snapshot)
        body = sql.strip().rstrip(";")
        keyword = "TABLE" if materialized == Materialization.TABLE else "VIEW"
        create = f"CREATE OR REPLACE {keyword} {relation.sql} AS\n{body}"
        with self._changing_catalog():
            try:
                # No catalog lookup on the way: a snapshot's name hashes its
                # materialization, so a relation already under that name is nearly
                # always of the same kind.
                results = self._transaction([create])
            except EngineError:
                if self._interrupted:
                    raise
                existing = self._relation_type(relation)
                if existing is None or existing == materialized:
                    raise
                # CREATE OR REPLACE cannot turn a table into a view or back.
                old = "TABLE" if existing == Materialization.TABLE else "VIEW"
                results = self._transaction([f"DROP {old} {relation.sql}", create])
        if materialized == Materialization.VIEW:
            return None
        row = results[-1]
        return int(row[0]) if row else 0

    def add_columns(self, snapshot: str, columns: Sequence[tuple[str, str]]) -> None:
        """Add each ``(name, type)`` the table lacks, in one transaction.

        A forward-only change keeps the table: its existing rows get NULL in the new
        columns. Running it again changes nothing (``IF NOT EXISTS``).

        Raises:
            EngineError: DuckDB refused a statement (the transaction was rolled back).
        """
        table = Relation.parse(snapshot).sql
        with self._changing_catalog():
            self._transaction(
                [
                    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote_identifier(name)} {type_}"
                    for name, type_ in columns
                ]
            )

    def create_table(self, snapshot: str, columns: Sequence[tuple[str, str]]) -> None:
        """(Re)create ``snapshot`` as an empty table: an incremental node's first step.

        Raises:
            EngineError: DuckDB refused the statement.
        """
        body = ", ".join(f"{quote_identifier(name)} {type_}" for name, type_ in columns)
        with self._changing_catalog():
            self._transaction([f"CREATE OR REPLACE TABLE {Relation.parse(snapshot).sql} ({body})"])

    def insert_batch(
        self,
        snapshot: str,
        sql: str,
        parameters: Mapping[str, Any],
        time_column: str,
        bounds: tuple[Any, Any],
    ) -> BatchResult:
        """Replace one interval of an incremental table, in one transaction.

        The query runs once, into a temporary table of this session; its rows outside
        ``[bounds[0], bounds[1])`` (or without a time) are counted and left out, so a
        batch can never write into another interval. Delete, then insert by column
        name (a kept table may have gained columns in another order). The temporary
        table stays until this thread's next batch replaces it, or the session ends: a
        statement less per batch.

        Raises:
            EngineError: DuckDB refused a statement (the transaction was rolled back).
        """
        table = Relation.parse(snapshot).sql
        column = quote_identifier(time_column)
        staged = quote_identifier(f"seeknal_batch_{threading.get_ident()}")
        inside = f"{column} >= $seeknal_start AND {column} < $seeknal_end"
        guard = {"seeknal_start": bounds[0], "seeknal_end": bounds[1]}
        body = sql.strip().rstrip(";")
        results = self._transaction(
            [
                (f"CREATE OR REPLACE TEMPORARY TABLE {staged} AS\n{body}", dict(parameters)),
                (f"DELETE FROM {table} WHERE {inside}", guard),
                (f"INSERT INTO {table} BY NAME SELECT * FROM {staged} WHERE {inside}", guard),
            ]
        )
        returned, deleted, inserted = (int(row[0]) if row else 0 for row in results[:3])
        return BatchResult(inserted=inserted, deleted=deleted, dropped=returned - inserted)

    def drop_relations(self, names: Iterable[str]) -> None:
        """Drop the tables and views ``schema.name`` that exist, in one transaction.

        Views go first: one may select from a table dropped in the same call.
        """
        wanted = {name.lower() for name in names}
        rows = self.query(
            "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE NOT internal "
            "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE NOT internal"
        )[1]
        found = [
            (kind, Relation(schema, name))
            for schema, name, kind in rows
            if f"{schema}.{name}".lower() in wanted
        ]
        found.sort(key=lambda item: (item[0] != "VIEW", str(item[1])))
        if found:
            with self._changing_catalog():
                self._transaction([f"DROP {kind} IF EXISTS {rel.sql}" for kind, rel in found])

    def promote(self, views: Mapping[str, str], drop: Iterable[str] = ()) -> None:
        """Point every view at its snapshot and drop ``drop``, in one transaction.

        Args:
            views: Environment view name -> snapshot name, e.g.
                ``{"transform.orders": "seeknal__transform.orders__0123456789ab"}``.
            drop: Views of removed nodes; missing ones are ignored.

        Raises:
            EngineError: DuckDB refused a statement; no view changed.
        """
        targets = {Relation.parse(v): Relation.parse(s) for v, s in sorted(views.items())}
        dropped = [Relation.parse(v) for v in sorted(set(drop) - set(views))]
        schemas = sorted({r.schema for r in targets})
        statements = [f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(s)}" for s in schemas]
        statements += [f"DROP VIEW IF EXISTS {r.sql}" for r in dropped]
        statements += [
            f"CREATE OR REPLACE VIEW {view.sql} AS SELECT * FROM {snapshot.sql}"
            for view, snapshot in targets.items()
        ]
        if statements:
            with self._changing_catalog():
                self._transaction(statements)

    def query(self, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql`` and return ``(column names, rows)``, at most ``limit`` rows.

        Raises:
            EngineError: DuckDB refused the query.
        """
        cursor = self._cursor()
        changes = (
            contextlib.nullcontext()
            if self._read_only or _selects_only(cursor, sql)
            else self._changing_catalog()  # SQL of any kind: it may change the catalog
        )
        try:
            with changes, _ctrl_c_as_keyboard_interrupt():
                cursor.execute(sql)
            if cursor.description is None:
                return [], []
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
        except duckdb.Error as exc:
            raise EngineError(_message(exc), sql=sql) from exc
        return columns, rows

    def relation_exists(self, name: str) -> bool:
        """Whether the table or view ``schema.name`` exists."""
        return self._relation_type(Relation.parse(name)) is not None

    def catalog(self) -> Catalog:
        """The database's tables, views and schemas: in one catalog query, or, with
        ``remember_catalog``, as the last session left them if the file is unchanged."""
        with self._known_lock:
            if self._known is not None:
                return self._known
            changes = self._changes
        recalled = None
        if self._memory is not None and self._held is not None and changes == 0:
            recalled = duckdb_catalog.recall(self._memory, self._database, self._held)
        catalog = self._query_catalog() if recalled is None else recalled.catalog
        with self._known_lock:
            if self._changes == changes:
                self._known = catalog
                self._recalled = None if recalled is None else recalled.digest
        return catalog

    def _query_catalog(self) -> Catalog:
        """The database's tables, views and schemas, in one catalog query."""
        # Filtered on the database: DuckDB then does not list its system and temporary
        # catalogs, which costs more than the query itself.
        with _ctrl_c_as_keyboard_interrupt():
            rows = (
                self._cursor()
                .execute(
                    "SELECT 'T', schema_name, table_name, NULL FROM duckdb_tables()"
                    " WHERE database_name = current_database()"
                    " UNION ALL SELECT 'V', schema_name, view_name, sql FROM duckdb_views()"
                    " WHERE NOT internal AND database_name = current_database()"
                    " UNION ALL SELECT 'S', schema_name, NULL, NULL FROM duckdb_schemas()"
                    " WHERE database_name = current_database()"
                )
                .fetchall()
            )
        relations: set[str] = set()
        views: dict[str, str] = {}
        schemas: set[str] = set()
        for kind, schema, name, sql in rows:
            if kind == "S":
                schemas.add(schema.lower())
                continue
            relation = f"{schema}.{name}".lower()
            relations.add(relation)
            if kind == "V":
                views[relation] = (sql or "").lower().replace('"', "")
        return Catalog(frozenset(relations), views, frozenset(schemas))

    def interrupt(self) -> None:
        """Interrupt every statement running on any thread's cursor; safe from any thread.

        Each interrupted statement raises in its own thread (an :class:`EngineError` to
        the caller, its transaction rolled back), and so does every later call: the run
        is over, only :meth:`close` remains.
        """
        self._interrupted = True
        with self._cursors_lock:
            cursors = list(self._cursors)
        for cursor in cursors:
            with contextlib.suppress(duckdb.Error):
                cursor.interrupt()

    def close(self, *, remember: bool = True, leave: bool = False) -> None:
        """Close every cursor, then the connection (idempotent).

        With ``remember_catalog``, the catalog is remembered first, unless ``remember``
        is False (a run that did not finish: the memory is removed) or the session was
        interrupted.

        With ``leave`` (a run that finished), in a command-line process that ends next
        (``seeknal.process``), the database is checkpointed and left open for the
        process's end instead: the file then holds everything and no write-ahead log,
        as after a close, and the kernel releases it and its lock without DuckDB's
        teardown. A database that spilled to its temporary directory is closed, which
        removes that directory.

        Closing while a statement still runs (an interrupted run shutting down) must not
        fail: such a statement is interrupted, and a connection DuckDB still calls busy
        is left to be released when the process ends.
        """
        if self._closed:
            return
        try:
            checkpointed = self._remember_catalog(remember)
            leaving = (
                leave
                and remember
                and not self._interrupted
                and process.leaving()
                and not os.path.lexists(self._database + ".tmp")
            )
            if leaving and (self._read_only or checkpointed or self._checkpoint()):
                self._closed = True
                process.leave(self)
        finally:
            if not self._closed:
                self._release()

    def _release(self) -> None:
        self._closed = True
        with self._cursors_lock:
            cursors, self._cursors = self._cursors, []
        released = True
        for cursor in cursors:
            try:
                cursor.close()
            except duckdb.Error:
                released = False
                with contextlib.suppress(duckdb.Error):
                    cursor.interrupt()
        try:
            self._con.close()
        except duckdb.Error:
            released = False
        held, self._held = self._held, None
        if held is not None and released:
            # DuckDB's lock went with the database. A database still busy keeps
            # the file, and its lock, until the process ends: so does the
            # descriptor (closing it would drop the lock).
            os.close(held)

    def _checkpoint(self) -> bool:
        """Fold the write-ahead log into the file; whether that succeeded."""
        try:
            self._con.execute("CHECKPOINT")
        except Exception:  # the close that follows checkpoints, or reports
            return False
        return True

    def _remember_catalog(self, remember: bool) -> bool:
        """Remember the catalog for the next session (``duckdb_catalog.py``): read again
        if a statement may have changed it, checkpointed, and the file identified while
        this session still holds it (no other process can write in between). Whether
        the database was checkpointed."""
        if self._memory is None or self._held is None:
            return False
        if not remember or self._interrupted:
            duckdb_catalog.forget(self._memory)
            return False
        remembered = checkpointed = False
        try:
            catalog = self.catalog()  # the one known, or a query after changes
            with self._known_lock:
                digest = self._recalled if self._known is catalog else None
            self._con.execute("CHECKPOINT")
            checkpointed = True
            duckdb_catalog.remember(self._memory, self._database, self._held, catalog, digest)
            remembered = True
        except Exception:  # closing never fails: the memory is only a cache
            pass
        finally:
            if not remembered:  # a failure, or Ctrl-C meanwhile
                duckdb_catalog.forget(self._memory)
        return checkpointed

    @contextlib.contextmanager
    def _changing_catalog(self) -> Iterator[None]:
        """Around statements that may change the catalog, whether they succeed or fail
        (a failed commit may still have written): the catalog is read again next time."""
        try:
            yield
        finally:
            with self._known_lock:
                self._changes += 1
                self._known = None
                self._recalled = None


@contextlib.contextmanager
def _ctrl_c_as_keyboard_interrupt() -> Iterator[None]:
    """Around a query the calling thread runs: Ctrl-C is a ``KeyboardInterrupt``, as
    everywhere else in seeknal (the CLI exits 130). DuckDB reports it in Python's main
    thread as a plain ``RuntimeError("Query interrupted")``."""
    try:
        yield
    except RuntimeError as exc:
        if type(exc) is RuntimeError and str(exc) == "Query interrupted":
            raise KeyboardInterrupt from exc
        raise


def _selects_only(cursor: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether ``sql`` is SELECT statements only (which change no catalog)."""
    try:
        statements = cursor.extract_statements(sql)
    except duckdb.Error:
        return False
    return bool(statements) and all(s.type == duckdb.StatementType.SELECT for s in statements)


def _message(exc: duckdb.Error) -> str:
    # DuckDB appends a caret excerpt ("LINE 1: ...") of its own; the runtime shows the
    # SQL itself, so keep only the message and its hints (e.g. "Candidate bindings").
    kept = []
    for line in str(exc).strip().splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            kept.append(line.rstrip())
    return "\n".join(kept) or type(exc).__name__


def _open_hint(exc: duckdb.Error) -> str:
    """Why a warehouse would not open, told apart by DuckDB's message."""
    text = str(exc)
    if "not a valid DuckDB database file" in text:
        return (
            "the file is damaged; delete it and run again: seeknal rebuilds every "
            "snapshot from the plan and its data files"
        )
    if "Could not set lock" in text or "Conflicting lock" in text:
        if "read-only mode" in text:  # the holder only reads it
            return (
                "another process is reading it (a `seeknal show` or `query`, a DuckDB "
                "session); wait for it to finish, or close it, and run again"
            )
        return "another process has it open for writing; close it and run again"
    return (
        "check that it is a DuckDB database file this version of DuckDB reads, "
        "and that you may read and write it"
    )
