"""Pass 7: compare the project with the target environment's state.

For now the categories are ``added``, ``removed``, ``unchanged`` and ``modified``; the
work list holds every snapshot that is not built yet (``new``) and every table whose
upstream data files changed since it was built (``source_data_changed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seeknal.compiler.model import CompiledNode, Kind, Materialized
from seeknal.state import State


class ChangeCategory(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    UNCHANGED = "unchanged"
    MODIFIED = "modified"


class WorkReason(StrEnum):
    NEW = "new"
    SOURCE_DATA_CHANGED = "source_data_changed"


@dataclass(frozen=True, slots=True)
class WorkItem:
    node: str
    snapshot: str
    reason: WorkReason


def categorize_change(node: CompiledNode, previous: dict[str, Any] | None) -> ChangeCategory:
    """How ``node`` differs from the environment's record of it (None: not there)."""
    if previous is None:
        return ChangeCategory.ADDED
    if previous.get("snapshot") == node.snapshot and previous.get("fingerprint") == {
        "data": node.data_fingerprint,
        "metadata": node.metadata_fingerprint,
    }:
        return ChangeCategory.UNCHANGED
    return ChangeCategory.MODIFIED


def plan_work(ordered: Sequence[CompiledNode], state: State) -> list[WorkItem]:
    """Snapshots to build, in dependency order."""
    work = []
    for node in ordered:
        built = state.snapshots.get(node.snapshot)
        if built is None:
            work.append(WorkItem(node.id, node.snapshot, WorkReason.NEW))
        elif (
            # Tables hold rows and rules check them: both follow their data. A view only
            # names its query, so it is never rebuilt for new data.
            (node.spec.materialized is Materialized.TABLE or node.spec.kind is Kind.RULE)
            and built.get("data_version") != node.data_version
        ):
            work.append(WorkItem(node.id, node.snapshot, WorkReason.SOURCE_DATA_CHANGED))
    return work
