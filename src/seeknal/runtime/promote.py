"""Promotion: point an environment's views at the plan's snapshots, in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seeknal.engines.base import Engine
from seeknal.naming import view_name
from seeknal.state.base import State, StateBackend, environment_record, holds_environment


def removed_views(plan: dict[str, Any]) -> list[str]:
    """Views of the nodes this plan removes from its environment, sorted."""
    env = plan["environment"]
    return sorted(
        view_name(node_id, env)
        for node_id, node in plan["nodes"].items()
        if node["change"]["category"] == "removed"
        and view_name(node_id, env) not in plan["promotion"]
    )


def promote_environment(
    engine: Engine,
    state: StateBackend,
    plan: dict[str, Any],
    read: State | None = None,
    views: Mapping[str, str] | None = None,
) -> bool:
    """Apply the plan's promotion unless the environment already is what the plan leaves.

    The engine commits first, then state records it: a crash in between leaves the
    views ahead of state. So "already done" is decided by what the views really select
    from (one catalog query), never by state alone: the next run promotes again.

    Args:
        engine: The warehouse holding the plan's snapshots (all built).
        state: The state backend, locked by the caller.
        plan: A verified plan.
        read: The state as the caller read it under the same lock, when nothing since
            has changed an environment (a run's builds record only snapshots); read
            again when not given.
        views: The warehouse's views with their SQL (``Catalog.views``), read under
            the same lock when nothing since has changed a view; read again when not
            given.

    Returns:
        True when views were (re)pointed and the environment recorded.

    Example:
        >>> promote_environment(engine, state, plan)  # doctest: +SKIP
        True
    """
    env = plan["environment"]
    current = (read if read is not None else state.read()).environment(env)
    promotion = plan["promotion"]
    if holds_environment(plan, current) and _views_select_from(
        engine.catalog().views if views is None else views, promotion
    ):
        return False
    engine.promote(promotion, drop=removed_views(plan))
    state.set_environment(
        env,
        environment_record(plan),
        plan["plan_id"],
        base=plan.get("base_environment"),  # v1 plans have neither: never expire
        ttl_seconds=plan.get("environment_ttl_seconds"),
    )
    return True


def _views_select_from(definitions: Mapping[str, str], views: Mapping[str, str]) -> bool:
    """Whether every environment view already selects from its planned snapshot."""
    return all(
        snapshot.lower() in definitions.get(view.lower(), "") for view, snapshot in views.items()
    )
