"""In-memory values the compiler passes hand to each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from seeknal.compiler.yamlfile import YamlDocument
from seeknal.errors import SourceLocation
from seeknal.intervals import Schedule, format_time
from seeknal.naming import snapshot_name, view_name

__all__ = ["snapshot_name", "view_name"]  # re-exported for the passes


class Kind(StrEnum):
    SOURCE = "source"
    TRANSFORM = "transform"
    SEED = "seed"
    RULE = "rule"


class Severity(StrEnum):
    """What a rule's violations do to a run."""

    ERROR = "error"  # the run fails; nothing is promoted
    WARN = "warn"  # reported; the run goes on


class Materialized(StrEnum):
    TABLE = "table"
    VIEW = "view"
    # A table filled interval by interval (see seeknal.intervals and interval_work.py).
    INCREMENTAL_BY_TIME = "incremental_by_time"


class SourceFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSON = "json"
    TABLE = "table"


NODE_KINDS = frozenset(k.value for k in Kind)
# Kinds whose SQL the user writes (and that the compiler parses, qualifies and binds).
SQL_KINDS = frozenset({Kind.TRANSFORM, Kind.RULE})


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """``seeknal_project.yml``, with defaults applied. Paths are relative to ``root``.

    ``embed_env_vars`` and ``allow_external_data`` are the project's two escape hatches
    from the sandbox; a compile with ``untrusted`` set ignores both (they are written by
    whoever wrote the pull request).
    """

    root: Path
    name: str
    dialect: str = "duckdb"
    vars: dict[str, Any] = field(default_factory=dict)
    warehouse: str = "target/warehouse.duckdb"
    state_backend: str = "file"
    state_path: str = "target/state"
    file: str = "seeknal_project.yml"
    environment_ttl_seconds: int | None = 7 * 86400
    connection: str = "default"
    embed_env_vars: tuple[str, ...] = ()
    allow_external_data: tuple[str, ...] = ()
    untrusted: bool = False


@dataclass(frozen=True, slots=True)
class SqlText:
    """SQL text and where its first line sits in a project file.

    ``line_offset`` is added to a 1-based SQL line to get the file line; ``col_offset`` to
    a 1-based SQL column (inline block scalars are indented).
    """

    text: str
    file: str
    line_offset: int = 0
    col_offset: int = 0

    def locate(self, line: int | None, col: int | None = None) -> SourceLocation:
        if line is None:
            return SourceLocation(self.file, self.line_offset + 1 if self.line_offset else 1)
        return SourceLocation(
            self.file,
            line + self.line_offset,
            None if col is None else col + self.col_offset,
        )

    def find(self, needle: str) -> SourceLocation:
        """Location of the first occurrence of ``needle`` in the SQL (or its first line)."""
        idx = self.text.find(needle)
        if idx < 0:
            return self.locate(1, 1)
        return self.at_offset(idx)

    def at_offset(self, idx: int) -> SourceLocation:
        """Location of the character at offset ``idx`` of the SQL text."""
        line = self.text.count("\n", 0, idx) + 1
        col = idx - (self.text.rfind("\n", 0, idx) + 1) + 1
        return self.locate(line, col)


@dataclass(frozen=True, slots=True)
class IncrementalConfig:
    """A node's ``incremental:`` block: how its table is cut into intervals.

    ``start`` and ``end`` are seconds since the epoch (UTC); ``end`` is exclusive.
    ``batch_size`` is a number of schedule intervals (None: each range is one batch);
    ``lookback`` the number of completed intervals reprocessed before new ones.
    """

    time_column: str
    schedule: Schedule
    start: int
    end: int | None = None
    batch_size: int | None = None
    lookback: int = 0

    def definition(self) -> dict[str, Any]:
        """What decides the table's rows: part of the node's definition fingerprint.

        Batch size and lookback only decide how the work is cut, not what the table
        holds, so changing them rebuilds nothing.
        """
        return {
            "time_column": self.time_column,
            "schedule": self.schedule.expression,
            "timezone": self.schedule.timezone,
            "start": format_time(self.start),
            "end": None if self.end is None else format_time(self.end),
        }


@dataclass(frozen=True, slots=True)
class DeclaredColumn:
    name: str
    type: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node file after validation. ``doc`` keeps positions for later diagnostics."""

    kind: Kind
    name: str
    doc: YamlDocument
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    inputs: tuple[str, ...] | None = None
    columns: tuple[DeclaredColumn, ...] = ()
    materialized: Materialized = Materialized.TABLE
    source_format: SourceFormat | None = None
    table: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    data_path: str | None = None
    sql: SqlText | None = None
    severity: Severity | None = None
    forward_only: bool = False
    incremental: IncrementalConfig | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def file(self) -> str:
        return self.doc.path

    def at(self, *path: str | int, key: bool = False) -> SourceLocation:
        return self.doc.location(path, key=key)


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """An output column: name, SQL type when known, and the upstream columns it reads."""

    name: str
    type: str | None
    lineage: tuple[tuple[str, str], ...] = ()
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CompiledNode:
    """Everything the plan says about one node.

    The compiler builds it in two steps: the node's own analysis (``snapshot`` and
    ``data_version`` still empty), then categorization against the environment, which
    decides whether the node gets a new snapshot or keeps the one it has.
    """

    spec: NodeSpec
    depends_on: tuple[str, ...]
    raw_sql: str | None
    normalized_sql: str
    engine_sql: str
    columns: tuple[ColumnInfo, ...]
    definition: str
    data_fingerprint: str
    metadata_fingerprint: str
    files_version: str | None
    data_file: tuple[str, str] | None = None
    # Per input: every column the SQL mentions (lower case), and those that decide which
    # rows come out (filters, joins, grouping, DISTINCT). Over-approximations.
    reads: Mapping[str, frozenset[str]] = field(default_factory=dict)
    row_reads: Mapping[str, frozenset[str]] = field(default_factory=dict)
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    snapshot: str = ""
    data_version: str = ""
    # Incremental nodes: the time column's kind (date, timestamp, timestamptz) and the
    # time parameters its SQL reads ($start_ts, ...), which the runtime binds per batch.
    time_type: str | None = None
    parameters: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id
