"""The DuckDB warehouse's catalog, remembered between runs while the file is unchanged.

Every run reads the warehouse's catalog once (which tables and views exist, what the
views select from): it is how a run notices a warehouse deleted, replaced or changed
behind state's back. DuckDB answers that query slowly the first time in a process (it
builds its built-in system views first), several milliseconds even for an empty
database: a large share of a small daily run.

So a run that knows exactly what the catalog is when it ends remembers it, beside the
file's identity, in the user's cache directory; the next run takes it instead of asking
DuckDB, but only when nothing can have written the file since:

- DuckDB writes a committed change to the write-ahead log (``<file>.wal``) and, at a
  checkpoint, into the file, then rewrites the file's header (its checkpoint iteration
  and metadata pointers). So the file is unchanged while there is no log and both
  the header's bytes and the file's stat (size, times, inode, device) are as they were;
- the identity is taken while the run still holds the database open for writing (after
  an explicit ``CHECKPOINT``), so no other process can write in between;
- the next run compares it after opening the database, itself holding it for writing.

seeknal opens a warehouse once per process. Another connection of the same process
opened with the engine's very configuration would share its database (DuckDB's Python
client reuses an open database) and could write unseen: an embedding program must not
do that while a run is open.

What a session remembers is what DuckDB says: the catalog it read (or recalled) at its
start when none of its statements may have changed it (a daily run that only adds
rows), else the catalog queried again at its end. Any doubt is a miss, and a miss only
costs the catalog query.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from seeknal.cachedir import keyed_file, write_cache_file
from seeknal.engines.base import Catalog

# Bump when the catalog's shape or normalization changes (``DuckDBEngine._query_catalog``):
# every entry of another format is a miss. DuckDB's version is part of each entry too,
# since the views' SQL is DuckDB's own rendering.
FORMAT = 1
# DuckDB's main header and its two database headers (4 KiB each); the bytes after them
# are blocks. Hashing a little more costs nothing and does not depend on the layout.
HEADER_BYTES = 16384
_MAX_BYTES = 256 * 1024 * 1024  # a remembered catalog larger than this is not read
_CATALOG_SUFFIX = ".catalog.json"


@dataclass(frozen=True, slots=True)
class Remembered:
    """A recalled catalog and the digest it is kept under (a session that changes
    nothing hands it back to :func:`remember`, which then rewrites only the entry)."""

    catalog: Catalog
    digest: str


def memory_file(database: str) -> Path | None:
    """Where the catalog of the DuckDB file ``database`` is remembered; None when it
    cannot be (an in-memory database, caches disabled by ``SEEKNAL_NO_CACHE``, or no
    cache directory to use).

    The entry (the file's identity and the catalog's digest) is this file; the catalog
    itself lies beside it, named by its digest, and is rewritten only when it changes.
    """
    if database == ":memory:":
        return None
    return keyed_file("warehouses", os.path.realpath(database))


def recall(memory: Path, database: str, held: int) -> Remembered | None:
    """The catalog remembered for ``database`` if the file is unchanged since; else None.

    Call it only while holding the database open for writing (no one else can write);
    ``held`` is a descriptor of the file, open until DuckDB has closed it (see
    :func:`file_identity`). Anything missing, damaged or of another shape is a miss,
    never an error.
    """
    try:
        entry = json.loads(_read_bounded(memory))
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            return None
        if entry.get("duckdb") != duckdb.__version__:
            return None
        if entry.get("database") != os.path.realpath(database):
            return None
        digest = entry.get("catalog")
        if not isinstance(digest, str) or len(digest) != 64:
            return None
        identity = file_identity(database, held)
        if identity is None or entry.get("file") != identity:
            return None
        content = _read_bounded(_catalog_file(memory, digest))
        if hashlib.sha256(content).hexdigest() != digest:
            return None
        catalog = _catalog(json.loads(content))
    except (OSError, ValueError, TypeError, AttributeError, RecursionError, MemoryError):
        return None
    return None if catalog is None else Remembered(catalog, digest)


def remember(
    memory: Path, database: str, held: int, catalog: Catalog, digest: str | None = None
) -> None:
    """Keep ``catalog`` as that of ``database`` now (each file written atomically).

    ``digest``: the one :func:`recall` gave with this very catalog (the catalog file is
    then kept, not written again). Call it only while holding the database open for
    writing, once everything it wrote is checkpointed, with ``held`` as for
    :func:`recall`; when the file cannot be identified (a log is left), the memory is
    removed instead.

    Raises:
        OSError: The memory could not be written.
    """
    identity = file_identity(database, held)
    if identity is None:
        forget(memory)
        return
    kept = digest if digest is not None and _catalog_file(memory, digest).is_file() else None
    if digest is None or kept is None:
        content = json.dumps(
            {
                "relations": sorted(catalog.relations),
                "views": dict(sorted(catalog.views.items())),
                "schemas": sorted(catalog.schemas),
            },
            separators=(",", ":"),
        ).encode("utf-8")
        digest = hashlib.sha256(content).hexdigest()
        if not write_cache_file(_catalog_file(memory, digest), content):
            raise OSError(f"cannot write {_catalog_file(memory, digest)}")
    entry = {
        "format": FORMAT,
        "duckdb": duckdb.__version__,
        "database": os.path.realpath(database),
        "file": identity,
        "catalog": digest,
    }
    if not write_cache_file(memory, json.dumps(entry, separators=(",", ":"))):
        raise OSError(f"cannot write {memory}")
    if kept is not None:
        return  # the catalog is the one kept: older ones went when it was written
    name = _catalog_file(memory, digest).name
    for old in memory.parent.glob(f"{memory.stem}-*{_CATALOG_SUFFIX}"):
        if old.name != name:
            with contextlib.suppress(OSError):
                old.unlink()


def forget(memory: Path) -> None:
    """Remove the memory, if any (never an error); its catalog files go at the next
    :func:`remember`."""
    with contextlib.suppress(OSError):
        memory.unlink()


def _catalog_file(memory: Path, digest: str) -> Path:
    return memory.with_name(f"{memory.stem}-{digest[:32]}{_CATALOG_SUFFIX}")


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most ``_MAX_BYTES`` (no symlink, no FIFO).

    Raises:
        OSError: It cannot be read, or is not such a file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_BYTES:
            raise OSError(f"{path} is not a regular file of bounded size")
        return fh.read(_MAX_BYTES + 1)


def file_identity(database: str, held: int) -> dict[str, Any] | None:
    """The DuckDB file's identity: its stat and a digest of its header; None while a
    write-ahead log holds changes not yet in the file (or the file is not a plain
    file).

    The file is read through ``held``, a descriptor the caller keeps open until DuckDB
    has closed the database, never through one opened and closed here: DuckDB locks the
    file with a POSIX record lock, which belongs to the process and the file, and the
    kernel drops it when the process closes *any* descriptor of that file. Another
    process could then open the warehouse while this one writes it.
    """
    try:
        log = os.stat(database + ".wal")
    except FileNotFoundError:
        pass
    else:
        if log.st_size:
            return None
    st = os.fstat(held)
    if not stat.S_ISREG(st.st_mode):
        return None
    header = os.pread(held, HEADER_BYTES, 0)
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "device": st.st_dev,
        "header": hashlib.sha256(header).hexdigest(),
    }


def _catalog(value: Any) -> Catalog | None:
    if not isinstance(value, Mapping):
        return None
    relations, views, schemas = value.get("relations"), value.get("views"), value.get("schemas")
    if not (
        isinstance(relations, list)
        and all(isinstance(r, str) for r in relations)
        and isinstance(schemas, list)
        and all(isinstance(s, str) for s in schemas)
        and isinstance(views, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in views.items())
    ):
        return None
    return Catalog(frozenset(relations), dict(views), frozenset(schemas))
