"""What compiling one node costs, kept apart from what it is cheap to work out again.

The expensive part of a node is its *analysis*: for a source or seed, reading its data
file's header (``SourceLoad``); for a transform or rule, qualifying and tracing its SQL
and binding it in DuckDB (``SqlAnalysis``). An analysis depends only on the node's own
definition and its inputs' columns, never on the inputs' snapshot names, so the compile
cache can keep it under a key of exactly those inputs: an upstream edit that keeps its
output columns reuses every analysis downstream.

Everything else the plan says about a node (fingerprints, the snapshot it reads, the
engine SQL with those snapshots' names) is computed here from the analysis, the same way
for a fresh and a cached one, so the two give the same plan byte for byte.

This module imports neither sqlglot nor DuckDB: a compile whose analyses are all cached
never loads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seeknal.compiler.fingerprint import (
    data_fingerprint,
    definition_hash,
    files_version,
    metadata_fingerprint,
)
from seeknal.compiler.model import ColumnInfo, CompiledNode, NodeSpec
from seeknal.errors import Diagnostic

# The engine SQL of an analysis names each input by a slot, filled with the input's
# snapshot table when the node is built: `"seeknal__transform"."<slot>"`.
SLOT_PREFIX = "seeknal_slot_"


def fill_slots(
    template: Sequence[str | int], refs: Sequence[str], snapshots: Mapping[str, str]
) -> str:
    """The engine SQL: ``template`` with each slot (an index into ``refs``) replaced by the
    quoted snapshot table of that input.

    Example:
        >>> fill_slots(["SELECT * FROM ", 0], ["source.a"], {"source.a": "seeknal__source.a__1"})
        'SELECT * FROM "seeknal__source"."a__1"'
    """
    out = []
    for part in template:
        if isinstance(part, int):
            schema, table = snapshots[refs[part]].split(".", 1)
            out.append(f'"{schema}"."{table}"')
        else:
            out.append(part)
    return "".join(out)


def split_slots(sql: str, token: str, count: int) -> list[str | int]:
    """``sql`` generated with slot tables ``<SLOT_PREFIX><token>_<i>`` (``i < count``), as
    text and slot indexes.

    Example:
        >>> split_slots('SELECT * FROM "seeknal__source"."seeknal_slot_ab_0" AS a', "ab", 1)
        ['SELECT * FROM ', 0, ' AS a']
    """
    pattern = re.compile(r'"seeknal__[a-z]+"\."' + re.escape(SLOT_PREFIX + token) + r'_(\d+)"')
    out: list[str | int] = []
    at = 0
    for match in pattern.finditer(sql):
        index = int(match.group(1))
        if index >= count:
            raise ValueError(f"slot {index} of {count}")
        out.append(sql[at : match.start()])
        out.append(index)
        at = match.end()
    out.append(sql[at:])
    return [part for part in out if part != ""]


@dataclass(frozen=True, slots=True)
class SqlAnalysis:
    """A transform's or rule's analysis: all of it JSON-able, for the compile cache.

    ``columns`` are (name, type, lineage) as the engine names and types them;
    ``approximate`` is why the lineage is approximate (a warning), if it is; ``reads``
    and ``row_reads`` are, per input, the columns the SQL mentions and those that decide
    its rows; ``engine`` is the engine SQL as text and slot indexes into the refs.
    """

    normalized: str
    engine: tuple[str | int, ...]
    columns: tuple[tuple[str, str | None, tuple[tuple[str, str], ...]], ...]
    reads: Mapping[str, tuple[str, ...]]
    row_reads: Mapping[str, tuple[str, ...]]
    approximate: str | None = None
    time_type: str | None = None
    parameters: tuple[str, ...] = ()

    def to_entry(self) -> dict[str, Any]:
        return {
            "normalized": self.normalized,
            "engine": list(self.engine),
            "columns": [
                [name, type_, [list(p) for p in lineage]] for name, type_, lineage in self.columns
            ],
            "reads": {ref: list(cols) for ref, cols in self.reads.items()},
            "row_reads": {ref: list(cols) for ref, cols in self.row_reads.items()},
            "approximate": self.approximate,
            "time_type": self.time_type,
            "parameters": list(self.parameters),
        }

    @classmethod
    def from_entry(cls, value: Any, refs: Sequence[str]) -> SqlAnalysis | None:
        """The analysis a cache entry holds, or ``None`` when it is not one for ``refs``."""
        try:
            engine = tuple(value["engine"])
            if not all(
                isinstance(p, str) or (type(p) is int and 0 <= p < len(refs)) for p in engine
            ):
                return None
            analysis = cls(
                normalized=_str(value["normalized"]),
                engine=engine,
                columns=tuple(
                    (
                        _str(name),
                        None if type_ is None else _str(type_),
                        tuple((_str(ref), _str(col)) for ref, col in lineage),
                    )
                    for name, type_, lineage in value["columns"]
                ),
                reads={_str(ref): tuple(map(_str, cols)) for ref, cols in value["reads"].items()},
                row_reads={
                    _str(ref): tuple(map(_str, cols)) for ref, cols in value["row_reads"].items()
                },
                approximate=_optional_str(value["approximate"]),
                time_type=_optional_str(value["time_type"]),
                parameters=tuple(map(_str, value["parameters"])),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if set(analysis.reads) != set(refs) or set(analysis.row_reads) != set(refs):
            return None
        return analysis


@dataclass(frozen=True, slots=True)
class SourceLoad:
    """A source's or seed's analysis: its columns (name, type), load SQL and engine SQL."""

    columns: tuple[tuple[str, str], ...]
    sql: str
    engine: str

    def to_entry(self) -> dict[str, Any]:
        return {"columns": [list(c) for c in self.columns], "sql": self.sql, "engine": self.engine}

    @classmethod
    def from_entry(cls, value: Any) -> SourceLoad | None:
        try:
            return cls(
                tuple((_str(name), _str(type_)) for name, type_ in value["columns"]),
                _str(value["sql"]),
                _str(value["engine"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def approximate_warning(spec: NodeSpec, reason: str) -> Diagnostic:
    """The warning of a node whose lineage the SQL analyzer could not follow."""
    assert spec.sql is not None
    return Diagnostic(
        f"column lineage of {spec.id} is approximate: the SQL analyzer cannot follow "
        f"this query ({reason}), although DuckDB accepts it",
        spec.sql.locate(1, 1),
        hint="each column is taken to read every column of its inputs",
        severity="warning",
    )


def input_schema(upstream: Mapping[str, CompiledNode]) -> dict[str, dict[str, dict[str, str]]]:
    """The inputs' columns and types by kind and name, as sqlglot's schema mapping."""
    visible: dict[str, dict[str, dict[str, str]]] = {}
    for ref in sorted(upstream):
        kind, name = ref.split(".", 1)
        visible.setdefault(kind, {})[name] = {
            c.name: c.type or "UNKNOWN" for c in upstream[ref].columns
        }
    return visible


def sql_node(
    spec: NodeSpec,
    refs: tuple[str, ...],
    analysis: SqlAnalysis,
    upstream: Mapping[str, CompiledNode],
    dialect: str,
) -> CompiledNode:
    """Everything the plan says about a transform or rule, from its analysis (cheap).

    ``snapshot`` and ``data_version`` are left for categorization to decide.
    """
    assert spec.sql is not None
    definition: dict[str, Any] = {
        "kind": spec.kind.value,
        "materialized": spec.materialized.value,
        # The same text can transpile differently from another dialect.
        "dialect": dialect,
        "sql": analysis.normalized,
        # Normalized text folds identifier case; the engine keeps an alias's case, and a
        # consumer of the table sees it: renaming `total` to "Total" is a change.
        "columns": [name for name, _, _ in analysis.columns],
    }
    if spec.severity is not None:
        # A rule that now fails the run must be checked again, even on unchanged data.
        definition["severity"] = spec.severity.value
    if spec.incremental is not None:
        definition["incremental"] = spec.incremental.definition()
    described = {c.name.lower(): c.description for c in spec.columns if c.description}
    return CompiledNode(
        spec=spec,
        depends_on=refs,
        raw_sql=spec.sql.text,
        normalized_sql=analysis.normalized,
        engine_sql=fill_slots(analysis.engine, refs, {r: n.snapshot for r, n in upstream.items()}),
        columns=tuple(
            ColumnInfo(name, type_, lineage, described.get(name.lower()))
            for name, type_, lineage in analysis.columns
        ),
        definition=definition_hash(definition),
        data_fingerprint=data_fingerprint(definition, {r: n.snapshot for r, n in upstream.items()}),
        metadata_fingerprint=metadata_fingerprint(
            spec.description,
            spec.owner,
            spec.tags,
            {c.name: c.description for c in spec.columns if c.description},
            spec.sql.text,
        ),
        files_version=files_version(None, {r: n.files_version or "" for r, n in upstream.items()}),
        reads={ref: frozenset(cols) for ref, cols in analysis.reads.items()},
        row_reads={ref: frozenset(cols) for ref, cols in analysis.row_reads.items()},
        input_schema=input_schema(upstream),
        time_type=analysis.time_type,
        parameters=analysis.parameters,
    )
