"""The plan memo: a compile whose every input is unchanged returns the plan it gave last.

The compile cache (``cache.py``) makes each pass cheap for an unchanged node; this goes
one step further for the commonest compile of all, the one where nothing changed (a
no-op ``seeknal compile``, ``plan`` or ``run``). It keeps the last plan text of each
combination of options, with everything the compile read to make it:

- the project files it read (project file, macros, node and SQL files, data files), by
  resolved path and sha256 (``FileHashes``: by size and times while they do not move),
  and the listing of ``seeknal/`` and ``macros/`` (a new or deleted file is a change);
- the state it compiled against (a digest of the bytes it was read from);
- the value of every environment variable ``embed_env_vars`` lets ``env_var()`` read;
- the options (environment, base, window, forward-only, untrusted) and, through the
  cache's code fingerprint, seeknal's code and its libraries' versions.

A plan that depends on the clock (an incremental node planned up to the last complete
interval *now*, without ``--end``) is never kept. Any doubt is a miss: the compile then
runs every pass, as it would without the memo.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISLNK
from typing import TYPE_CHECKING, Any

from seeknal.canonical import file_sha256, sha256_hex
from seeknal.compiler.cache import (
    RACY_NS,
    CompileCache,
    FileHashes,
    content_key,
    stat_list_of,
)
from seeknal.compiler.load import MACROS_DIR, NODES_DIR
from seeknal.compiler.model import Kind, Materialized, NodeSpec
from seeknal.errors import Diagnostic, SourceLocation
from seeknal.state import State
from seeknal.state.base import writer_token

if TYPE_CHECKING:
    from seeknal.compiler.interval_work import Window

_MEMO = "plan-memo"
_BODY = "plan-memo-without-work"


@dataclass(frozen=True, slots=True)
class Remembered:
    """A plan the memo gave back: its text and the warnings its compile printed."""

    text: str
    warnings: list[Diagnostic]


def keepable(window: Window | None, specs: Collection[NodeSpec]) -> bool:
    """Whether a plan compiled from ``specs`` may be kept: it does not read the clock
    (another plan tomorrow), and its files are where its node files say."""
    return not _reads_the_clock(window, specs) and paths_as_written(specs)


# Longer than any schedule's interval (@yearly): an end this far back is before the
# last complete interval, whatever the schedule.
_SETTLED_SECONDS = 367 * 24 * 3600


def _reads_the_clock(window: Window | None, specs: Iterable[NodeSpec]) -> bool:
    """Whether the plan depends on the time of compiling: some incremental node is
    planned up to the last interval complete *now* (no --end, and no end of its own
    well in the past)."""
    if window is not None and window.end is not None:
        return False
    now = time.time()
    return any(
        spec.materialized is Materialized.INCREMENTAL_BY_TIME
        and (
            spec.incremental is None
            or spec.incremental.end is None
            or spec.incremental.end > now - _SETTLED_SECONDS
        )
        for spec in specs
    )


def paths_as_written(specs: Iterable[NodeSpec]) -> bool:
    """Whether every data and SQL file is where its node file says, no symlink resolved
    on the way: only then does an unchanged node file mean the same file is read (the
    memo checks the files it recorded are still reached without a symlink)."""
    for spec in specs:
        data = spec.doc.data
        if spec.data_path is not None:
            written = data.get("path" if spec.kind is Kind.SEED else "table")
            if not isinstance(written, str) or os.path.normpath(written) != spec.data_path:
                return False
        if spec.sql is not None and spec.sql.file != spec.file:
            written = data.get("sql")
            beside = os.path.dirname(spec.file)
            if (
                not isinstance(written, str)
                or os.path.normpath(os.path.join(beside, written)) != spec.sql.file
            ):
                return False
    return True


def memo_key(options: Mapping[str, Any]) -> str:
    """The memo's key for one combination of compile options (JSON values)."""
    return content_key(_MEMO, dict(options))


def state_digest(state: State) -> str:
    """A digest of the whole state (any change in it is a change of input): of the
    bytes it was read from when the backend kept them (a state rewritten to equal
    content then only misses), else of its document serialized (about 15 ms at 1,000
    nodes)."""
    source = state.source_digest()
    if source is not None:
        return "bytes:" + source
    return sha256_hex(json.dumps(state.to_document(), sort_keys=True, separators=(",", ":")))


def listing(root: Path) -> list[str] | None:
    """The node and macro files, as ``load.project_files`` finds them, or ``None`` when
    a symlink is on the way (the full compile then checks where it leads)."""
    found: list[str] = []
    for name, suffixes in ((NODES_DIR, (".yml", ".yaml")), (MACROS_DIR, (".sql",))):
        directory = root / name
        if directory.is_symlink():
            return None
        if not directory.is_dir():
            continue
        try:
            if not _list(str(directory), name, suffixes, found):
                return None
        except OSError:
            return None  # an unreadable directory: the full compile says what is wrong
    return sorted(found)


def _list(path: str, rel: str, suffixes: tuple[str, ...], found: list[str]) -> bool:
    """Add the files under ``path`` (``rel`` from the project) ending in ``suffixes``
    to ``found``, hidden files and directories left out; False at the first symlink.

    One ``scandir`` per directory, and the entries' own types: no file is stat'ed. A
    stack, not recursion: however deep the tree, it is walked.
    """
    pending = [(path, rel)]
    while pending:
        directory, at = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_symlink():
                    return False
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    pending.append((entry.path, f"{at}/{entry.name}"))
                elif entry.name.endswith(suffixes) and entry.is_file():
                    found.append(f"{at}/{entry.name}")
    return True


class _Plain:
    """Whether a project file is reached without following any symlink (checked once per
    directory): only then does its path say where it is."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.dirs: dict[str, bool] = {"": True}

    def __call__(self, rel: str) -> bool:
        return self.parents(rel) and not os.path.islink(os.path.join(self.root, rel))

    def parents(self, rel: str) -> bool:
        """Whether ``rel`` is inside the project and its directories are no symlinks
        (the file itself is the caller's to check)."""
        if rel.startswith("/") or ".." in rel.split("/"):
            return False  # outside the project (allow_external_data): not kept
        return self._dir(os.path.dirname(rel))

    def _dir(self, rel: str) -> bool:
        known = self.dirs.get(rel)
        if known is None:
            known = self._dir(os.path.dirname(rel)) and not os.path.islink(
                os.path.join(self.root, rel)
            )
            self.dirs[rel] = known
        return known


def recall(
    cache: CompileCache, key: str, root: Path, state: State, found: list[str] | None
) -> Remembered | None:
    """The plan kept under ``key``, when every input it was made from is unchanged;
    ``found`` is the project's :func:`listing` now."""
    entry = cache.get_memo(key)
    if entry is None:
        return None
    try:
        if entry["state"] != state_digest(state):
            return None
        return _remembered(cache, key, entry, root, found)
    except (KeyError, TypeError, ValueError, AttributeError, OSError):
        return None


def _remembered(
    cache: CompileCache, key: str, entry: Mapping[str, Any], root: Path, found: list[str] | None
) -> Remembered | None:
    """The entry's plan when its files, listing and environment variables are unchanged
    (the state is the caller's to compare). Raises KeyError and the like on a damaged
    entry.

    A file whose stat was not trusted when the entry was written (changed within two
    seconds of being hashed, or hashed from the text a compile read) is hashed again;
    once it has settled, the entry is written again with its stat, so the next recall
    only compares stats (as a compile's ``FileHashes`` does).
    """
    if entry["env"] != {name: os.environ.get(name) for name in entry["env"]}:
        return None
    if found is None or entry["listing"] != found:
        return None
    plain = _Plain(root)
    settled: dict[str, list[Any]] = {}
    for rel, (stat, digest) in entry["files"].items():
        path = os.path.join(root, rel)
        if not plain.parents(rel):
            return None
        now_stat = os.lstat(path)  # one call: not a symlink, and not moved
        if S_ISLNK(now_stat.st_mode):
            return None
        if stat is not None and stat == stat_list_of(now_stat):
            continue  # unchanged since it was hashed, long enough ago to trust
        if file_sha256(path) != digest:
            return None
        after = os.stat(path)
        now = time.time_ns()
        if stat_list_of(now_stat) == stat_list_of(after) and (
            now - max(after.st_mtime_ns, after.st_ctime_ns) > RACY_NS
        ):
            settled[rel] = [stat_list_of(after), digest]
    warnings = [_diagnostic(d) for d in entry["warnings"]]
    text = entry["text"]
    if not isinstance(text, str) or sha256_hex(text) != entry.get("text_sha256"):
        return None  # damaged
    if settled:
        cache.put_memo(key, {**entry, "files": {**entry["files"], **settled}})
    return Remembered(text, warnings)


def plan_without_work_key(options: Mapping[str, Any]) -> str:
    """The key of the plan kept without its work: every option but the window, which
    only the work depends on."""
    return content_key(_BODY, {k: v for k, v in options.items() if k != "window"})


def records_digest(
    state: State, environment: str, base: str, writers: Mapping[str, Any] | None = None
) -> str:
    """A digest of what a plan, its work aside, reads of the state: the environment's
    record, or for a new environment its base's (see ``compile._compile``), through
    their hashes, which the plan's ``base_state`` and the runtime's staleness check
    need anyway (``State`` computes each once); and ``writers``, what state said wrote
    each table the compile asked about (``categorize.Tables.asked``), which decides
    whether a changed node may take a snapshot name already used."""
    own = state.environment_hash(environment)
    based = state.environment_hash(base) if own is None and environment != base else None
    return sha256_hex(json.dumps([own, based, sorted((writers or {}).items())]))


def writers_now(state: State, names: Any) -> dict[str, Any]:
    """What ``state`` says wrote each of the tables ``names`` (a remembered plan's
    ``asked``), to compare with what the compile was told."""
    return {name: writer_token(state.snapshots.get(name)) for name in names}


@dataclass(frozen=True, slots=True)
class RememberedBody:
    """A plan kept without regard to its work: its text (with the work it had), the
    warnings of its compile, and its nodes as the work list reads them."""

    plan: Remembered
    nodes: list[dict[str, Any]]


def recall_without_work(
    cache: CompileCache,
    key: str,
    root: Path,
    state: State,
    environment: str,
    base: str,
    found: list[str] | None,
) -> RememberedBody | None:
    """The plan kept under ``key`` (:func:`plan_without_work_key`) when every input it
    was made from but the state is unchanged, and the state still holds the same
    environment record: only its work (and the state's hash) can differ."""
    entry = cache.get_memo(key)
    if entry is None:
        return None
    try:
        writers = writers_now(state, entry["asked"])
        if entry["records"] != records_digest(state, environment, base, writers):
            return None
        remembered = _remembered(cache, key, entry, root, found)
        nodes = entry["nodes"]
        if remembered is None or entry.get("nodes_sha256") != _nodes_digest(nodes):
            return None  # changed, or damaged
    except (KeyError, TypeError, ValueError, AttributeError, OSError):
        return None
    return RememberedBody(remembered, nodes)


def remember(
    cache: CompileCache,
    key: str,
    inputs: Mapping[str, Any],
    state: State,
    text: str,
    warnings: list[Diagnostic],
) -> None:
    """Keep ``text`` under ``key`` with what it was made from (:func:`memo_inputs`) and
    the state it was compiled against."""
    cache.put_memo(key, {"state": state_digest(state), **inputs, **_text(text, warnings)})


def remember_without_work(
    cache: CompileCache,
    key: str,
    inputs: Mapping[str, Any],
    records: str,
    asked: Mapping[str, Any],
    text: str,
    warnings: list[Diagnostic],
    nodes: list[dict[str, Any]],
) -> None:
    """Keep ``text`` under ``key`` (:func:`plan_without_work_key`) for any state whose
    records digest (:func:`records_digest`, over the tables ``asked`` about) is
    ``records``, with the nodes its work list is recomputed from."""
    entry = {
        "records": records,
        "asked": sorted(asked),
        **inputs,
        **_text(text, warnings),
        "nodes": nodes,
    }
    cache.put_memo(key, {**entry, "nodes_sha256": _nodes_digest(nodes)})


def _nodes_digest(nodes: Any) -> str:
    return sha256_hex(json.dumps(nodes, sort_keys=True, separators=(",", ":")))


def memo_inputs(
    cache: CompileCache,
    root: Path,
    files: Mapping[str, Path],
    hashes: FileHashes,
    env_vars: tuple[str, ...],
    found: list[str] | None,
) -> dict[str, Any] | None:
    """What a plan was made from, as both memos record it; None when it cannot be kept
    (a file reached through a symlink or outside the project). ``found`` is the
    :func:`listing` taken before the project was loaded: a file added during the compile
    then makes the next compile miss, rather than be answered without it."""
    plain = _Plain(root)
    if not cache.enabled or found is None or not all(plain(rel) for rel in files):
        return None
    try:
        recorded = {}
        for rel, path in sorted(files.items()):
            digest = hashes.of(rel, path)
            recorded[rel] = [hashes.trusted_stat(rel), digest]
    except OSError:
        return None
    return {
        "env": {name: os.environ.get(name) for name in sorted(env_vars)},
        "listing": found,
        "files": recorded,
    }


def _text(text: str, warnings: list[Diagnostic]) -> dict[str, Any]:
    return {
        "warnings": [_diagnostic_entry(d) for d in warnings],
        "text": text,
        "text_sha256": sha256_hex(text),
    }


def _diagnostic_entry(d: Diagnostic) -> dict[str, Any]:
    loc = d.location
    return {
        "message": d.message,
        "location": None if loc is None else [loc.path, loc.line, loc.col],
        "hint": d.hint,
        "severity": d.severity,
        "excerpt": d.excerpt,
    }


def _diagnostic(value: Any) -> Diagnostic:
    loc = value["location"]
    location = None if loc is None else SourceLocation(loc[0], loc[1], loc[2])
    for field in ("message", "severity"):
        if not isinstance(value[field], str):
            raise TypeError(field)
    return Diagnostic(
        value["message"], location, value["hint"], value["severity"], value["excerpt"]
    )
