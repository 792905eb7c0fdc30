"""The compile cache: what the last compile of a project worked out, by content hash.

A compile spends nearly all its time on work whose result depends only on a few inputs:
parsing a YAML file, rendering and parsing a node's SQL, qualifying it and binding it in
DuckDB. The cache keeps those results under a key that hashes *every* input of the
result, plus the code that computed it (``code_fingerprint``: seeknal's own source and
the versions of sqlglot, DuckDB, Jinja2 and PyYAML), so an entry can only ever be reused
for exactly the same question. A hit and a miss give the same plan, byte for byte.

Where it lives, and why not in the project: ``seeknal compile`` runs on pull requests,
and a cache inside the project tree could be committed by one, making the plan describe
SQL that is not the project's. So the cache is per user, outside the project:
``$SEEKNAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/seeknal``, else ``~/.cache/seeknal``, one
file per project (named by the hash of its absolute path). Deleting it at any time is
safe; ``SEEKNAL_NO_CACHE=1`` or ``seeknal compile --no-cache`` bypass it.

The file is read defensively: anything unreadable, truncated or of another shape is a
miss, never an error, and each entry is checked against the key it was asked for. It is
written atomically (a temporary file renamed over it), and holds only the entries the
last compile used, so it never grows beyond one project's worth.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import seeknal
from seeknal.cachedir import (
    cache_directory,
    cache_disabled_by_environment,
    usable_cache_directory,
    write_cache_file,
)

CACHE_FORMAT = 1
_FILE_NAME = "compile.json"
_MEMO_PREFIX = "memo-"
_MEMOS_KEPT = 8  # a plan memo and one without work per combination of options
_MEMO_TEXT = ".plan"  # a memo's plan text, beside it
# Libraries whose behaviour decides a cached result.
_LIBRARIES = ("sqlglot", "sqlglotc", "duckdb", "jinja2", "pyyaml")


def project_cache_file(root: Path) -> Path:
    """The cache file of the project at ``root``: one per absolute project path."""
    digest = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:32]
    return cache_directory() / "projects" / digest / _FILE_NAME


@cache
def code_fingerprint() -> str:
    """sha256 of the code that computes cached results: seeknal's files and library versions.

    seeknal's version alone would not do: during development the code changes while the
    version does not, and a stale entry would outlive the change that invalidates it.
    """
    return fingerprint_of_package(Path(seeknal.__file__).parent)


def fingerprint_of_package(package: Path) -> str:
    """The code fingerprint of the sources under ``package`` (see ``code_fingerprint``).

    Each source file counts by its stat (size, mtime, ctime, inode, device), not its
    bytes: every compile pays for this, and reading the whole package cost more than a
    warm compile of a small project. Writing a file always moves its ctime, which no
    tool sets back, so an edit cannot keep the fingerprint; a copied or reinstalled
    package gets a new one (its cache entries are then only missed, never wrong).
    """
    digest = hashlib.sha256()
    digest.update(f"format {CACHE_FORMAT}\n".encode())
    digest.update(f"seeknal {seeknal.__version__}\n".encode())
    digest.update(f"python {sys.implementation.name} {sys.version_info[:2]}\n".encode())
    for library, version in sorted(_library_versions().items()):
        digest.update(f"{library} {version}\n".encode())
    skip = len(os.path.join(str(package), ""))
    files = [(path[skip:].replace(os.sep, "/"), stat_list(path)) for path in _source_files(package)]
    digest.update(repr(sorted(files)).encode("utf-8"))
    return digest.hexdigest()


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _library_versions() -> dict[str, str]:
    """The installed version of each library in ``_LIBRARIES`` ("-" when absent).

    Read from the ``name-version.dist-info`` directories on ``sys.path``, the first one
    winning as it does for imports: ``importlib.metadata`` costs more to import than a
    no-op compile can spare.
    """
    wanted = {_normalized(name) for name in _LIBRARIES}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            dist, _, version = name[: -len(".dist-info")].partition("-")
            key = _normalized(dist)
            if key in wanted and key not in found:
                found[key] = version
    missing = wanted - found.keys()
    if missing:
        from importlib import metadata

        for key in missing:
            try:
                found[key] = metadata.version(key)
            except metadata.PackageNotFoundError:
                found[key] = "-"
    return found


def _source_files(package: Path) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(package):
        # The example project is data, not code; caches of bytecode are derived.
        dirnames[:] = [d for d in dirnames if d not in ("examples", "__pycache__")]
        for name in filenames:
            if name.endswith((".py", ".json")):
                yield os.path.join(dirpath, name)


def content_key(kind: str, *parts: Any) -> str:
    """A cache key: sha256 of the kind, the code fingerprint and ``parts`` (JSON values).

    Example:
        >>> len(content_key("render", "SELECT 1", {"vars": {}}))
        64
    """
    text = json.dumps(
        [CACHE_FORMAT, code_fingerprint(), kind, parts],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class CompileCache:
    """One compile's view of the cache: the entries read, and those to write back.

    ``path`` is ``None`` when caching is off: every lookup misses and nothing is written.
    """

    path: Path | None
    _loaded: dict[str, Any] | None = None  # the file's entries, read on first use
    _used: dict[str, Any] = field(default_factory=dict)
    _changed: bool = False

    @classmethod
    def open(cls, root: Path, *, enabled: bool = True) -> CompileCache:
        """The cache of the project at ``root`` (disabled by ``enabled=False`` or the
        environment); reading it never fails."""
        if not enabled or cache_disabled_by_environment() or usable_cache_directory() is None:
            return cls(None)
        return cls(project_cache_file(root))

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def _read(self) -> dict[str, Any]:
        """The entries of the cache file, read when first needed (a compile answered by
        the plan memo never needs them)."""
        if self._loaded is None:
            self._loaded = {} if self.path is None else _read_entries(self.path)
        return self._loaded

    def get_memo(self, key: str) -> dict[str, Any] | None:
        """The plan memo stored under ``key`` (its own file), or ``None``; its ``text``
        comes from the file beside it (the caller checks it against its digest)."""
        value = self.get_side(self._memo_name(key), key)
        if value is None or self.path is None or "text" in value:
            return value
        try:
            text = (self.path.parent / self._memo_name(key, _MEMO_TEXT)).read_bytes()
            return {**value, "text": text.decode("utf-8")}
        except (OSError, UnicodeDecodeError):
            return None

    def put_memo(self, key: str, value: dict[str, Any]) -> None:
        """Store a plan memo in a file of its own (the cache file stays small, and is not
        read at all when the memo answers); only the newest few are kept.

        A string ``text`` (the plan, megabytes in a large project) goes to a file of its
        own beside it, as it is: read back without decoding a JSON string. It is written
        first; a reader between the two writes finds a text its entry's digest refuses.
        """
        if self.path is None:
            return
        text = value.get("text")
        if isinstance(text, str):
            write_cache_file(self.path.parent / self._memo_name(key, _MEMO_TEXT), text)
            value = {k: v for k, v in value.items() if k != "text"}
        self.put_side(self._memo_name(key), key, value)
        try:
            memos = sorted(
                self.path.parent.glob(f"{_MEMO_PREFIX}*.json"),
                key=lambda p: p.stat().st_mtime_ns,
                reverse=True,
            )
            for stale in memos[_MEMOS_KEPT:]:
                stale.unlink(missing_ok=True)
            # Every plan text without its entry: pruned above, or left by a write that
            # failed (or a crash) between the two files.
            kept = {memo.stem for memo in memos[:_MEMOS_KEPT]}
            for text in self.path.parent.glob(f"{_MEMO_PREFIX}*{_MEMO_TEXT}"):
                if text.stem not in kept:
                    text.unlink(missing_ok=True)
        except OSError:
            pass

    def get_side(self, name: str, key: str) -> dict[str, Any] | None:
        """The value of side file ``name`` (beside the cache file), when it was stored
        under ``key`` by this code; ``None`` otherwise.

        A side file holds one entry that some compiles need before, or instead of, the
        cache file's many: a plan memo, the project file's document.
        """
        if self.path is None:
            return None
        try:
            document = json.loads((self.path.parent / name).read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if (
            not isinstance(document, dict)
            or document.get("format") != CACHE_FORMAT
            or document.get("code") != code_fingerprint()
            or document.get("key") != key
            or not isinstance(document.get("value"), dict)
        ):
            return None
        value: dict[str, Any] = document["value"]
        return value

    def put_side(self, name: str, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key`` as side file ``name`` (replacing what it held)."""
        if self.path is None:
            return
        document = {"format": CACHE_FORMAT, "code": code_fingerprint(), "key": key, "value": value}
        write_cache_file(
            self.path.parent / name, json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        )

    @staticmethod
    def _memo_name(key: str, suffix: str = ".json") -> str:
        return f"{_MEMO_PREFIX}{key[:40]}{suffix}"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The value stored under ``key`` for an entry of ``kind``, or ``None``."""
        entry = self._read.get(key)
        if (
            not isinstance(entry, dict)
            or entry.get("kind") != kind
            or entry.get("key") != key
            or not isinstance(entry.get("value"), dict)
        ):
            return None
        self._used[key] = entry
        value: dict[str, Any] = entry["value"]
        return value

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Remember ``value`` (JSON values only) under ``key``."""
        if self.path is None:
            return
        self._used[key] = {"kind": kind, "key": key, "value": value}
        self._changed = True

    def save(self, *, complete: bool = True) -> None:
        """Write back the entries this compile used, when anything changed.

        After a ``complete`` compile only the entries it used are kept, so the file holds
        one project's worth. A compile that stopped at an error did not look at every
        node: it keeps the entries it read as well, for the compile after the fix.

        A cache that cannot be written (read-only home, full disk) is not an error: the
        next compile is simply cold again.
        """
        if self.path is None or (self._loaded is None and not self._changed):
            return
        entries = self._used if complete else {**self._read, **self._used}
        if not self._changed and entries.keys() == self._read.keys():
            return
        document = {"format": CACHE_FORMAT, "code": code_fingerprint(), "entries": entries}
        # dumps, not dump: only a one-shot encode uses json's C encoder.
        write_cache_file(self.path, json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def _read_entries(path: Path) -> dict[str, Any]:
    """The entries of the cache file, or none when it is missing, damaged or foreign."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if (
        not isinstance(document, dict)
        or document.get("format") != CACHE_FORMAT
        or document.get("code") != code_fingerprint()
        or not isinstance(document.get("entries"), dict)
    ):
        return {}
    entries: dict[str, Any] = document["entries"]
    return entries


# A file changed within this many nanoseconds of being hashed could change again without
# its size or times moving (coarse file-system clocks): its hash is not remembered.
RACY_NS = 2_000_000_000  # a file changed this recently may change again unseen


class FileHashes:
    """sha256 of project files, each computed at most once per compile.

    Data files can be large, and a compile that hashes them every time pays for reading
    every byte. With the cache on, a file's hash is kept with its size, modification and
    change times and inode, and reused while all four are the same, as ``git status``
    does. A file changed within two seconds of being hashed is hashed again next time:
    a coarse file-system clock could hide a second change within the same tick. The
    change time cannot be set by the user, so no ordinary edit keeps all four.
    """

    def __init__(self, cache: CompileCache) -> None:
        self._cache = cache
        self._known: dict[str, str] = {}
        self._stats: dict[str, list[int]] = {}

    def of(self, rel: str, path: Path) -> str:
        """sha256 of ``path`` (project file ``rel``), read at most once per compile."""
        known = self._known.get(rel)
        if known is not None:
            return known
        digest = self._remembered(rel, path) if self._cache.enabled else None
        if digest is None:
            digest = self._hash(rel, path)
        self._known[rel] = digest
        return digest

    def trusted_stat(self, rel: str) -> list[int] | None:
        """The stat under which this compile's hash of ``rel`` holds, when it was long
        enough after the file's last change to be trusted later (``None`` otherwise, and
        for files hashed from the text loading read)."""
        return self._stats.get(rel)

    def seed(self, rel: str, digest: str) -> None:
        """The hash of a file whose bytes this compile has already read."""
        self._known.setdefault(rel, digest)

    def _remembered(self, rel: str, path: Path) -> str | None:
        stat = stat_list_of(os.stat(path))
        value = self._cache.get(_FILE, _file_key(path))
        if value is not None and value.get("stat") == stat:
            digest = value.get("sha256")
            if isinstance(digest, str) and len(digest) == 64:
                self._stats[rel] = stat
                return digest
        return None

    def _hash(self, rel: str, path: Path) -> str:
        import time

        from seeknal.canonical import file_sha256

        before = os.stat(path)
        digest = file_sha256(path)
        after = os.stat(path)
        now = time.time_ns()
        settled = now - max(after.st_mtime_ns, after.st_ctime_ns) > RACY_NS
        if self._cache.enabled and settled and stat_list_of(before) == stat_list_of(after):
            self._cache.put(_FILE, _file_key(path), {"stat": stat_list_of(after), "sha256": digest})
        return digest


_FILE = "file"


def _file_key(path: Path) -> str:
    # By the path as given (the project root is absolute): a symlink whose target
    # changes changes the stat of what it leads to.
    return content_key(_FILE, os.path.abspath(path))


def stat_list(path: str | Path) -> list[int]:
    """What must not move for a remembered hash of ``path`` to hold."""
    return stat_list_of(os.stat(path))


def stat_list_of(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]
