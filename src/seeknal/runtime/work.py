"""Work items: the plan's work list joined with its nodes, as the runtime builds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from seeknal.engines.base import BatchResult, EngineError, Materialization
from seeknal.intervals import Interval, parse_time
from seeknal.runtime.incremental import INCREMENTAL, Batch, TimeBinding
from seeknal.state.base import writer_token, written_by_another


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One snapshot to build, with everything the build needs from the plan.

    An incremental node's item also has its time binding and the plan's ranges (with
    their reasons); its table is ``materialized`` TABLE.
    """

    node: str
    snapshot: str
    reason: str
    kind: str
    materialized: Materialization
    sql: str
    data_version: str
    severity: str | None = None  # rules only: "error" or "warn"
    columns: tuple[tuple[str, str], ...] = ()
    binding: TimeBinding | None = None
    ranges: tuple[tuple[Interval, str], ...] = ()
    batch_size: int | None = None
    add_columns: bool = False
    definition: str | None = None  # the node's definition hash: what writes the table
    mixed: bool = False  # the table may hold rows another definition wrote
    reads: str | None = None  # a source read in place: its data file, as its SQL names it

    def record(self, rows: int | None) -> dict[str, Any]:
        """The state record of this snapshot once built."""
        out = {
            "node": self.node,
            "kind": self.kind,
            "materialized": INCREMENTAL if self.binding else self.materialized.value,
            "data_version": self.data_version,
            "rows": rows,
        }
        if self.definition is not None:
            out["definition"] = self.definition
        if self.mixed:
            out["mixed"] = True
        if self.reads is not None:
            out["reads"] = self.reads
        return out

    def writing_over(self, previous: Mapping[str, Any] | None) -> WorkItem:
        """This item as it writes a table state records as ``previous``: mixed once a
        table holds, or held, rows another definition wrote. Sticky: a table rebuilt
        whole by its kept definition still carries a name that is not its own."""
        if previous is None or self.definition is None:
            return self
        token = writer_token(previous)
        mixed = bool(token and token[1]) or written_by_another(token, self.definition)
        return replace(self, mixed=mixed) if mixed != self.mixed else self


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """What one build (or one batch) did: rows on success, the engine's refusal on failure."""

    seconds: float
    rows: int | None = None
    error: EngineError | None = None
    batch: Batch | None = None
    result: BatchResult | None = None


def work_items(plan: dict[str, Any]) -> list[WorkItem]:
    """The plan's work list, each item joined with its node."""
    return [
        work_item(entry["node"], plan["nodes"][entry["node"]], entry["reason"], entry)
        for entry in plan["work"]
    ]


def work_item(
    node_id: str, node: dict[str, Any], reason: str, entry: Mapping[str, Any] | None = None
) -> WorkItem:
    entry = entry or {}
    incremental = node.get("incremental")
    return WorkItem(
        node=node_id,
        snapshot=node["snapshot"],
        reason=reason,
        kind=node["kind"],
        materialized=Materialization.TABLE
        if incremental
        else Materialization(node["materialized"]),
        sql=node["sql"]["engine"],
        data_version=node["data_version"],
        severity=node.get("severity"),
        columns=tuple((c["name"], c["type"]) for c in node.get("columns", ()) if c.get("type")),
        binding=TimeBinding.from_plan(incremental) if incremental else None,
        ranges=tuple(
            (Interval(parse_time(r["start"]), parse_time(r["end"])), r["reason"])
            for r in entry.get("intervals", ())
        ),
        batch_size=entry.get("batch_size", (incremental or {}).get("batch_size")),
        add_columns=bool(entry.get("add_columns")),
        definition=node.get("fingerprint", {}).get("definition"),
        reads=node["data_file"]["path"]
        if node["kind"] == "source" and node["materialized"] == "view" and "data_file" in node
        else None,
    )
