"""Connections: which warehouse a plan runs on, resolved only when it runs.

A plan names its connection (``target.connection``; ``default`` when absent) and never
holds its details, so a reviewed, committed ``plan.json`` carries no password, host or
token. When the plan executes, the runtime looks the name up in ``profiles.yml`` (in the
project directory, or the file ``$SEEKNAL_PROFILES`` names, so deploy secrets can live
outside the checkout), substituting ``${ENV_VAR}`` and ``${ENV_VAR:default}`` from the
environment of that run. Without a ``profiles.yml`` entry, ``default`` is the DuckDB
file the plan's ``target.warehouse`` names (``warehouse:`` in ``seeknal_project.yml``).

``profiles.yml``::

    connections:
      default:
        engine: duckdb
        path: ${SEEKNAL_WAREHOUSE:target/warehouse.duckdb}

Every command that opens the warehouse (``execute``, ``run``, ``show``, ``query``)
resolves it here. Messages name variables, never their values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seeknal import schemas
from seeknal.engines import Engine, EngineError
from seeknal.errors import PlanError, SeeknalError
from seeknal.paths import external_directories, inside
from seeknal.state import State

PROFILES_FILE = "profiles.yml"
PROFILES_ENV = "SEEKNAL_PROFILES"
DEFAULT_CONNECTION = "default"
DEFAULT_WAREHOUSE = "target/warehouse.duckdb"
ENGINES = ("duckdb",)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class ProfileError(SeeknalError):
    """``profiles.yml`` is missing a connection, malformed, or needs an unset variable."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A resolved connection.

    Attributes:
        name: Its name in profiles.yml (or ``default``).
        engine: ``duckdb``.
        database: The DuckDB file (absolute), or ``:memory:``.
        shown: The database as written, ``${...}`` unexpanded: what messages print, so a
            value that came from the environment is never echoed.
        origin: Where it was defined, for messages.
    """

    name: str
    engine: str
    database: str
    shown: str
    origin: str


def profiles_path(project_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``$SEEKNAL_PROFILES`` when set, else ``profiles.yml`` in the project.

    Example:
        >>> profiles_path(Path("shop"), {})
        PosixPath('shop/profiles.yml')
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get(PROFILES_ENV)
    return Path(chosen) if chosen else project_dir / PROFILES_FILE


def resolve_connection(
    project_dir: Path,
    name: str = DEFAULT_CONNECTION,
    *,
    warehouse: str = DEFAULT_WAREHOUSE,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """The connection ``name``, from profiles.yml or, for ``default``, the built-in one.

    Args:
        project_dir: The project; relative database paths are relative to it.
        name: The connection's name.
        warehouse: The built-in ``default`` connection's DuckDB file (the plan's
            ``target.warehouse``).
        environ: The environment ``${...}`` reads (``os.environ`` by default).

    Raises:
        ProfileError: profiles.yml is unreadable or invalid, does not define ``name``
            (other than ``default``), names an engine seeknal does not have, or uses an
            unset variable without a default.

    Example:
        >>> resolve_connection(Path("/srv/shop"), environ={}).database
        '/srv/shop/target/warehouse.duckdb'
    """
    environ = os.environ if environ is None else environ
    path = profiles_path(project_dir, environ)
    profiles = _read_profiles(path) if path.is_file() else {}
    entry = profiles.get(name)
    if entry is None:
        if name != DEFAULT_CONNECTION:
            where = str(path) if path.is_file() else f"{path} (which does not exist)"
            raise ProfileError(
                f"connection '{name}' is not defined in {where}",
                hint=f"add it under `connections:` in {PROFILES_FILE}, e.g. "
                f"{name}: {{engine: duckdb, path: target/warehouse.duckdb}}",
            )
        return _duckdb(name, warehouse, warehouse, project_dir, "seeknal_project.yml")
    engine = entry["engine"]
    origin = f"{path.name} connection '{name}'"
    if engine not in ENGINES:
        raise ProfileError(
            f"{origin} uses engine '{engine}'; this seeknal supports: {', '.join(ENGINES)}",
            hint="PostgreSQL connections come in a later version; use engine: duckdb",
        )
    written = entry["path"]
    return _duckdb(name, _expand(written, origin, environ), written, project_dir, origin)


def connection_of(
    plan: Mapping[str, Any], project_dir: Path, environ: Mapping[str, str] | None = None
) -> Connection:
    """The connection a verified plan runs on; it must be of the plan's engine.

    Raises:
        ProfileError: as :func:`resolve_connection`, or the connection's engine is not
            the one the plan was compiled for.

    Example:
        >>> connection_of(load_plan("target/plan.json"), Path(".")).name  # doctest: +SKIP
        'default'
    """
    target = plan["target"]
    connection = resolve_connection(
        project_dir,
        target.get("connection", DEFAULT_CONNECTION),
        warehouse=target["warehouse"],
        environ=environ,
    )
    if connection.engine != target["engine"]:
        raise ProfileError(
            f"{connection.origin} is a {connection.engine} connection, but the plan was "
            f"compiled for {target['engine']}",
            hint="point the plan's connection at a warehouse of its engine",
        )
    return connection


def open_connection(
    connection: Connection,
    *,
    file_search_path: Path,
    read_only: bool = False,
    readable_files: Iterable[str] = (),
    remember_catalog: bool = False,
    opened: Any = None,
) -> Engine:
    """Open the warehouse, sealed: SQL can read only ``readable_files`` (and the warehouse).

    Args:
        connection: A resolved connection.
        file_search_path: The directory relative file names resolve against.
        read_only: Open for reading only (``show``, ``query``).
        readable_files: The data files the plan declares, as its SQL names them.
        remember_catalog: Remember the warehouse's catalog in the user's cache for the
            next run, and recall the last one's (``engines/duckdb_catalog.py``).
        opened: The warehouse as :func:`open_ahead` opened it, taken over if it is this
            connection's (closed otherwise).

    Raises:
        EngineError: The warehouse cannot be opened.

    Example:
        >>> engine = open_connection(resolve_connection(Path(".")), file_search_path=Path("."))  # doctest: +SKIP
        >>> engine.query("SELECT 1 AS one")  # doctest: +SKIP
        (['one'], [(1,)])
    """
    from seeknal.engines.duckdb import DuckDBEngine

    allowed: set[str] = set()
    for name in readable_files:
        # DuckDB checks the name as the SQL writes it and as it resolves it.
        allowed |= {name, os.path.join(file_search_path, name)}
        allowed.add(str((file_search_path / name).resolve()))
    try:
        return DuckDBEngine(
            connection.database,
            file_search_path=file_search_path,
            read_only=read_only,
            external_access=False,
            readable_files=sorted(allowed),
            remember_catalog=remember_catalog and not read_only,
            opened=opened,
        )
    except EngineError as exc:
        if connection.shown == connection.database:
            raise
        # The resolved path may carry a value from the environment: show it as written.
        message = str(exc).replace(connection.database, connection.shown)
        raise EngineError(message, hint=exc.hint) from None


def open_ahead(
    target: Mapping[str, Any], project_dir: Path, starting: Callable[[], None] | None = None
) -> Any | None:
    """The warehouse a plan of ``target`` runs on, opened now if that can be done
    quietly, for :func:`open_connection` to take over (``runtime/session.py``).

    Only an existing DuckDB file without a write-ahead log is opened, as a run opens
    it: a first run creates its warehouse itself, once its plan compiled, and a log
    left by a crash would be replayed into the file and removed when the database is
    closed, which must not happen for a plan that is then refused. ``starting`` is
    called just before DuckDB starts the database, when one is opened.

    Anything else, and every error (a profile that does not resolve, a file another
    process holds), is None: the run's own open reports it, in its turn.
    """
    try:
        connection = resolve_connection(
            project_dir, target.get("connection", DEFAULT_CONNECTION), warehouse=target["warehouse"]
        )
        if (
            connection.engine != target["engine"]
            or not os.path.isfile(connection.database)
            or os.path.lexists(connection.database + ".wal")
        ):
            return None
        from seeknal.engines.duckdb import open_database

        return open_database(
            connection.database, read_only=False, external_access=False, starting=starting
        )
    except Exception:  # whatever it is, the run's own open reports it
        return None


def files_read_in_place(state: State, project_dir: Path) -> list[str]:
    """The data files the warehouse's sources read in place (``materialized: view``), as
    state recorded them when it built their views: what commands other than a run may
    let SQL read (creating or querying a view over such a source reads its file).

    Only a regular file in the project or a directory ``allow_external_data`` lists is
    granted, and only when no file of the same name in the working directory would be
    read instead (as for a run, :func:`declared_data_files`).

    Raises:
        PlanError: The file of a source an environment uses is missing, not a regular
            file, or elsewhere (no SQL could read it, or should; any other such file is
            left out), or a file of the working directory would be read instead.
    """
    granted: set[str] = set()
    root = project_dir.resolve()
    used = {
        node.get("snapshot")
        for record in state.environments.values()
        for node in record.get("nodes", {}).values()
    }
    external = _LazyExternal(root)
    for snapshot, record in state.snapshots.items():
        name = record.get("reads")
        if not isinstance(name, str):
            continue
        why = _unreadable(name, root, external)
        if why is not None:
            if snapshot in used:
                raise PlanError(
                    f"{name}, read in place by {record.get('node', 'a source')}, {why}",
                    hint="restore the file, or run `seeknal run` to build the project as it is now",
                )
            continue
        granted.add(name)
    _refuse_shadowed(sorted(granted), project_dir)
    return sorted(granted)


def _unreadable(name: str, root: Path, external: _LazyExternal) -> str | None:
    """Why the data file ``name`` must not be read in place, or None."""
    try:
        real = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return "no longer exists"
    if not external.allows(real):
        return "leads outside the project and the directories allow_external_data lists"
    if not real.is_file():
        return "is not a regular file"
    return None


class _LazyExternal:
    """Where the project's data files may be: the project, and the project file's
    ``allow_external_data`` directories, read when first needed (only a data file
    outside the project needs them)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._directories: tuple[Path, ...] | None = None

    def allows(self, real: Path) -> bool:
        """Whether the resolved data file ``real`` may be read."""
        if inside(real, self._root) is not None:
            return True
        if self._directories is None:
            self._directories = external_directories(self._root, _allow_external_data(self._root))
        return any(inside(real, d) is not None for d in self._directories)


def declared_data_files(plan: Mapping[str, Any], project_dir: Path) -> list[str]:
    """The data files the plan's nodes load: the only files its SQL may read.

    Each must lie in the project or in a directory the project file's
    ``allow_external_data`` lists, as the compiler declares them: a file elsewhere
    comes from a plan edited by hand.

    DuckDB looks a relative name up in the working directory before the project, so a
    ``data/orders.csv`` in the current directory would be loaded instead of the
    project's (and not the file whose hash the plan checked): refused.

    Raises:
        PlanError: a data file of the plan is outside the project and its allowed
            directories, or shadowed by one in the working directory.

    Example:
        >>> declared_data_files(load_plan("target/plan.json"), Path("."))  # doctest: +SKIP
        ['data/customers.csv', 'data/orders.csv', 'data/payments.csv', 'seeds/country_codes.csv']
    """
    names = sorted(
        {node["data_file"]["path"] for node in plan["nodes"].values() if "data_file" in node}
    )
    _refuse_outside(names, project_dir)
    _refuse_shadowed(names, project_dir)
    return names


def _refuse_outside(names: list[str], project_dir: Path) -> None:
    """Refuse a data file outside the project and every directory the project file's
    ``allow_external_data`` lists: the compiler never declares one, so the plan was
    edited by hand, and would load any file the user may read."""
    root = project_dir.resolve()
    external = _LazyExternal(root)
    for name in names:
        if not external.allows((root / name).resolve()):
            raise PlanError(
                f"the plan declares the data file {name}, outside the project and every "
                "directory its allow_external_data lists",
                hint="compile the plan again from the project; a plan edited by hand is "
                "run like code, so review it as code",
            )


def _allow_external_data(root: Path) -> list[str]:
    """``allow_external_data`` as the project file writes it: a list of directories (none
    when the file cannot be read or the value is not a list of strings, as the
    compiler would refuse it)."""
    import yaml

    try:
        data = yaml.safe_load((root / "seeknal_project.yml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return []
    entries = data.get("allow_external_data") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        return []
    return entries


def _refuse_shadowed(names: list[str], project_dir: Path) -> None:
    """Refuse data file names a file of the working directory would stand in for."""
    try:
        here = Path.cwd()
    except OSError:  # the working directory was deleted: nothing in it can shadow
        return
    for name in names:
        local = here / name
        if Path(name).is_absolute() or here == project_dir or not local.exists():
            continue
        if not _same_file(local, project_dir / name):
            raise PlanError(
                f"{name} in the current directory ({here}) would be loaded instead of the "
                "project's",
                hint=f"run seeknal from the project directory: cd {project_dir}",
            )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _duckdb(name: str, path: str, shown: str, project_dir: Path, origin: str) -> Connection:
    database = path if path == ":memory:" else str(project_dir / path)
    shown = shown if shown == ":memory:" or "${" in shown else str(project_dir / shown)
    return Connection(name, "duckdb", database, shown, origin)


def _read_profiles(path: Path) -> dict[str, dict[str, Any]]:
    import yaml  # only when a profiles file exists

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ProfileError(f"{where}: invalid YAML", hint="check indentation and quoting") from None
    errors = schemas.iter_errors("profiles", data)
    if errors:
        at = ".".join(str(p) for p in errors[0].absolute_path) or "the top level"
        raise ProfileError(
            f"{path} is not a valid profiles file: at {at}: {errors[0].message}",
            hint="connections: {NAME: {engine: duckdb, path: FILE}}",
        )
    connections: dict[str, dict[str, Any]] = data["connections"]
    return connections


def _expand(text: str, origin: str, environ: Mapping[str, str]) -> str:
    """``${NAME}`` and ``${NAME:default}`` from ``environ``; an unset NAME needs a default."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if default is not None and "${" in default:
            raise ProfileError(
                f"{origin} has '{match.group(0)}}}': a default cannot hold another "
                "variable reference",
                hint="give the default as plain text: ${NAME:target/warehouse.duckdb}",
            )
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ProfileError(
            f"{origin} needs the environment variable {name}, which is not set",
            hint=f"set {name}, or give it a default: ${{{name}:...}}",
        )

    expanded = _VARIABLE.sub(value, text)
    left = _VARIABLE.sub("", text)
    if "${" in left:  # a reference not closed, or not a variable's name: never a path
        raise ProfileError(
            f"{origin} has '{left[left.index('${') :]}', which is not a variable reference",
            hint="write ${NAME} or ${NAME:default}, NAME of letters, digits and underscores",
        )
    return expanded
