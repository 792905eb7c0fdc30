"""Environments after the fact: promote, roll back, list, delete, and collect garbage.

An environment is a set of views over snapshots; its record in state says which. These
operations only ever repoint or drop views and drop snapshots nobody uses: none of them
computes a row. Each one holds the state lock for its whole length and changes the
warehouse before state (a crash in between is repaired by doing it again), like a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from seeknal.engines.base import Engine
from seeknal.errors import SeeknalError
from seeknal.intervals import format_short, subtract
from seeknal.naming import PROD, check_environment, view_name
from seeknal.runtime.incremental import recorded_intervals
from seeknal.state.base import State, StateBackend

# Schemas that hold snapshots: everything in them belongs to seeknal.
SNAPSHOT_SCHEMA_PREFIX = "seeknal__"


class EnvironmentRefused(SeeknalError):
    """An environment operation that cannot be done (exit 2, nothing changed)."""


@dataclass(frozen=True, slots=True)
class EnvironmentInfo:
    """One line of ``seeknal env list``."""

    name: str
    base: str | None
    created_at: str | None
    expires_at: str | None
    nodes: int
    changed: int  # nodes whose snapshot differs from the base's (prod's when unknown)
    expired: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "nodes": self.nodes,
            "changed": self.changed,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class Garbage:
    """What the janitor would drop."""

    environments: tuple[str, ...]  # expired
    views: tuple[str, ...]  # of those environments
    snapshots: tuple[str, ...]  # referenced by no environment (nor its last rollback)


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_environments(state: State, now: str | None = None) -> list[EnvironmentInfo]:
    """Every environment with its base, dates, size and how far it is from its base."""
    now = now or now_stamp()
    out = []
    for name in sorted(state.environments):
        info = state.environment_info.get(name, {})
        base = info.get("base")
        nodes = state.environments[name].get("nodes", {})
        reference = state.environments.get(base or PROD, {}).get("nodes", {})
        changed = (
            0
            if name == (base or PROD)
            else sum(
                1
                for node_id in set(nodes) | set(reference)
                if nodes.get(node_id, {}).get("snapshot")
                != reference.get(node_id, {}).get("snapshot")
            )
        )
        expires = info.get("expires_at")
        out.append(
            EnvironmentInfo(
                name,
                base,
                info.get("created_at"),
                expires,
                len(nodes),
                changed,
                name != PROD and expires is not None and expires <= now,
            )
        )
    return out


def promote(engine: Engine, backend: StateBackend, source: str, target: str) -> dict[str, str]:
    """Point ``target``'s views at ``source``'s snapshots, in one transaction.

    Nothing is built: every snapshot must already exist in the warehouse and be recorded
    in state, or the promotion is refused before anything changes.

    Returns:
        The views of ``target`` now (view -> snapshot).

    Raises:
        EnvironmentRefused: ``source`` does not exist, equals ``target``, or lacks snapshots.
    """
    check_environment(source)
    check_environment(target)
    if source == target:
        raise EnvironmentRefused(
            f"cannot promote '{source}' to itself", hint="name two different environments"
        )
    with backend.lock():
        state = backend.read()
        record = state.environment(source)
        if record is None:
            raise EnvironmentRefused(
                f"environment '{source}' does not exist",
                hint="see `seeknal env list`; apply a plan to it first",
            )
        _check_snapshots(engine, state, record, f"environment '{source}'")
        _check_intervals(state, record, target)
        views = _views(record, target)
        engine.promote(views, drop=_stale_views(state, target, views))
        info = state.environment_info.get(target, {})
        backend.set_environment(
            target,
            record,
            f"promote:{state.environment_hash(source)}",
            action="promote",
            source=source,
            base=info.get("base", source),
            ttl_seconds=_ttl_of(state, target, source),
        )
    return views


def rollback(engine: Engine, backend: StateBackend, env: str) -> dict[str, str]:
    """Return ``env`` to the record it had before its last change (a second rollback redoes).

    Raises:
        EnvironmentRefused: Nothing to roll back to, or its snapshots are gone.
    """
    check_environment(env)
    with backend.lock():
        state = backend.read()
        current = state.environment(env)
        entries = state.history.get(env, [])
        if current is None or len(entries) < 2 or "record" not in entries[-2]:
            raise EnvironmentRefused(
                f"environment '{env}' has no earlier state to roll back to",
                hint="rollback returns to the state before the last apply, promote or rollback",
            )
        previous = entries[-2]
        record = previous["record"]
        _check_snapshots(engine, state, record, f"the earlier state of '{env}'")
        views = _views(record, env)
        engine.promote(views, drop=_stale_views(state, env, views))
        backend.set_environment(
            env,
            record,
            previous["plan_id"],
            action="rollback",
            ttl_seconds=_ttl_of(state, env, None),
        )
    return views


def delete_environment(engine: Engine, backend: StateBackend, env: str) -> list[str]:
    """Drop ``env``'s views and forget it; its snapshots are left for the janitor.

    Raises:
        EnvironmentRefused: ``env`` is prod or does not exist.
    """
    check_environment(env)
    if env == PROD:
        raise EnvironmentRefused(
            "prod cannot be deleted", hint="delete other environments; prod never expires"
        )
    with backend.lock():
        state = backend.read()
        if state.environment(env) is None:
            raise EnvironmentRefused(
                f"environment '{env}' does not exist", hint="see `seeknal env list`"
            )
        dropped = _stale_views(state, env, {})
        engine.promote({}, drop=dropped)
        backend.delete_environment(env)
    return dropped


def find_garbage(state: State, relations: Iterable[str], now: str | None = None) -> Garbage:
    """Expired environments, their views, and snapshots no remaining environment uses.

    A snapshot is kept while an environment points at it or could roll back to it
    (the record before its last change). Relations in seeknal's snapshot schemas that
    state does not know (a build that crashed before it was recorded) are garbage too.
    """
    expired = tuple(i.name for i in list_environments(state, now) if i.expired)
    views = tuple(
        sorted(view_name(n, env) for env in expired for n in state.environments[env]["nodes"])
    )
    keep: set[str] = set()
    for env, record in state.environments.items():
        if env in expired:
            continue
        keep |= {n["snapshot"].lower() for n in record.get("nodes", {}).values()}
        entries = state.history.get(env, [])
        if len(entries) >= 2 and "record" in entries[-2]:
            keep |= {n["snapshot"].lower() for n in entries[-2]["record"].get("nodes", {}).values()}
    known = {name.lower(): name for name in state.snapshots}
    in_warehouse = {r for r in relations if r.split(".", 1)[0].startswith(SNAPSHOT_SCHEMA_PREFIX)}
    candidates = set(known) | in_warehouse
    snapshots = tuple(sorted(known.get(s, s) for s in candidates - keep))
    return Garbage(expired, views, snapshots)


def collect_garbage(
    engine: Engine,
    backend: StateBackend,
    *,
    apply: bool,
    now: str | None = None,
    on_drop: Callable[[str, str], None] | None = None,
) -> Garbage:
    """Find the garbage and, with ``apply``, drop it: views first, then snapshots.

    Expired environments are forgotten in state after their views are dropped; snapshot
    records after their tables. A crash in between leaves state naming things that are
    gone, which the next janitor (or run, which rebuilds lost snapshots) repairs.
    """
    with backend.lock():
        state = backend.read()
        garbage = find_garbage(state, engine.catalog().relations, now)
        if not apply:
            return garbage
        if garbage.views:
            engine.promote({}, drop=list(garbage.views))
        for env in garbage.environments:
            backend.delete_environment(env)
            if on_drop:
                on_drop("environment", env)
        if garbage.snapshots:
            engine.drop_relations(garbage.snapshots)
            backend.forget_snapshots(garbage.snapshots)
            for name in garbage.snapshots:
                if on_drop:
                    on_drop("snapshot", name)
    return garbage


def _views(record: Mapping[str, Any], env: str) -> dict[str, str]:
    return {view_name(node_id, env): node["snapshot"] for node_id, node in record["nodes"].items()}


def _stale_views(state: State, env: str, keep: Mapping[str, str]) -> list[str]:
    """Views ``env`` has now that are not in ``keep``."""
    current = (state.environment(env) or {}).get("nodes", {})
    return sorted(v for v in (view_name(n, env) for n in current) if v not in keep)


def _check_snapshots(engine: Engine, state: State, record: Mapping[str, Any], what: str) -> None:
    present = engine.catalog().relations
    missing = sorted(
        node["snapshot"]
        for node in record["nodes"].values()
        if node["snapshot"].lower() not in present or node["snapshot"] not in state.snapshots
    )
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise EnvironmentRefused(
            f"{what} needs snapshots the warehouse no longer has: {shown}",
            hint="execute a plan for it again (seeknal run --env ...) to rebuild them",
        )


def _check_intervals(state: State, record: Mapping[str, Any], target: str) -> None:
    """Refuse a promotion that would make ``target`` serve fewer intervals than it does.

    For every incremental node, the snapshot promoted must hold every interval that
    ``target``'s current snapshot of it holds; the gaps are listed otherwise.
    """
    current = (state.environment(target) or {}).get("nodes", {})
    gaps = []
    for node_id, node in sorted(record["nodes"].items()):
        served = recorded_intervals(
            state.snapshots.get(current.get(node_id, {}).get("snapshot", ""))
        )
        if not served:
            continue
        offered = recorded_intervals(state.snapshots.get(node["snapshot"])) or ()
        missing = subtract(served, offered)
        if missing:
            ranges = ", ".join(
                f"[{format_short(i.start)}, {format_short(i.end)})" for i in missing[:3]
            )
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            gaps.append(f"{node_id} lacks {ranges}{more}")
    if gaps:
        raise EnvironmentRefused(
            f"promoting would leave '{target}' with missing intervals: " + "; ".join(gaps),
            hint="fill them first (seeknal run --env SRC --backfill), then promote",
        )


def _ttl_of(state: State, env: str, source: str | None) -> int | None:
    """Keep ``env``'s lifetime as it was: prod never expires; others keep their TTL."""
    if env == PROD:
        return None
    info = state.environment_info.get(env) or state.environment_info.get(source or "", {})
    created, expires, updated = (
        info.get("created_at"),
        info.get("expires_at"),
        info.get("updated_at"),
    )
    if expires is None or updated is None or created is None:
        return None
    try:
        span = datetime.fromisoformat(expires) - datetime.fromisoformat(updated)
    except ValueError:
        return None
    return max(int(span.total_seconds()), 1)


__all__ = [
    "EnvironmentInfo",
    "EnvironmentRefused",
    "Garbage",
    "collect_garbage",
    "delete_environment",
    "find_garbage",
    "list_environments",
    "promote",
    "rollback",
]
