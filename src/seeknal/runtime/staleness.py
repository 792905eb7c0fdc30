"""Is a plan still applicable? Decided before the run has any side effect.

A plan records the hash of its environment's state when it was compiled
(``base_state``) and the sha256 of every data file its sources load. If either moved,
the plan describes a world that no longer exists, and applying it could silently undo
somebody else's deploy or load data nobody reviewed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seeknal.canonical import file_sha256
from seeknal.runtime.dependencies import reachable
from seeknal.state.base import (
    State,
    environment_hash,
    environment_record,
    writer_token,
    written_by_another,
)


def stale_reasons(
    plan: dict[str, Any], state: State, project_dir: Path, *, read_in_place: bool = True
) -> list[str]:
    """Why ``plan`` is stale against ``state`` and the project's files; empty when fresh.

    Re-executing a plan that was already applied is not stale: the environment then
    holds exactly what the plan leaves behind, so the run resumes or does nothing.

    Args:
        plan: A verified plan.
        state: The current state.
        project_dir: The directory data file paths are relative to.
        read_in_place: Also check the files of sources read in place that the work
            reads (their views read the file as it is when the work runs). ``seeknal
            run`` checks them as it compiles, under the same lock, moments before.

    Returns:
        One sentence per reason: the environment first, then tables another
        environment's plan took over (the plan would write them with other SQL), then
        data files, in work order (then those of sources read in place upstream).

    Example:
        >>> stale_reasons(plan, state, Path("."))  # doctest: +SKIP
        ["environment 'prod' changed since this plan was compiled"]
    """
    env = plan["environment"]
    reasons: list[str] = []
    current = state.environment_hash(env)
    if current != plan["base_state"] and current != environment_hash(environment_record(plan)):
        reasons.append(
            f"environment '{env}' changed since this plan was compiled" + _since(plan, state)
        )
    own = (state.environment(env) or {}).get("nodes", {})
    for item in plan["work"]:
        if _written_by_another(plan["nodes"][item["node"]], item, state, own.get(item["node"])):
            reasons.append(
                f"{item['snapshot']} ({item['node']}) was written with other SQL "
                "(another environment's plan kept it through a change) since this plan "
                "was compiled"
            )
    checked: set[str] = set()
    nodes = plan["nodes"]
    read = [item["node"] for item in plan["work"]]
    if read_in_place:
        read += [n for n in _upstream(plan, read) if nodes[n].get("materialized") == "view"]
    for node_id in read:
        data_file = nodes[node_id].get("data_file")
        if data_file is None or data_file["path"] in checked:
            continue
        checked.add(data_file["path"])
        path = project_dir / data_file["path"]
        try:
            digest = file_sha256(path)
        except FileNotFoundError:
            reasons.append(f"{data_file['path']} no longer exists (node {node_id})")
            continue
        except OSError as exc:
            reasons.append(f"{data_file['path']} cannot be read: {exc.strerror}")
            continue
        if digest != data_file["sha256"]:
            reasons.append(f"{data_file['path']} changed since this plan was compiled")
    return reasons


def _upstream(plan: dict[str, Any], nodes: list[str]) -> list[str]:
    """Every node ``nodes`` read, directly or not, in sorted order."""

    def inputs(node: str) -> Any:
        return plan["nodes"][node].get("depends_on", ())

    return sorted(set().union(*(reachable(node, inputs) for node in nodes)))


def _written_by_another(
    node: dict[str, Any], item: dict[str, Any], state: State, own: dict[str, Any] | None
) -> bool:
    """Whether the plan would write a table that another definition wrote last, other
    than the one this environment's record has for the node there: a plan that keeps
    its environment's table through a change (forward-only, or non-breaking in prod)
    writes over its own previous definition, which is meant; any other such write
    would mix another environment's rows into the table (it was taken over after this
    plan was compiled, which then found it holding only this definition's rows)."""
    writer = writer_token(state.snapshots.get(item["snapshot"]))
    if writer is None or not written_by_another(writer, node["fingerprint"]["definition"]):
        return False
    return not (
        own is not None
        and own.get("snapshot") == item["snapshot"]
        and own.get("fingerprint", {}).get("definition") == writer[0]
    )


# Categories whose node keeps the snapshot the environment had when the plan was compiled.
_KEPT = frozenset({"unchanged", "metadata", "indirect_non_breaking"})


def _since(plan: dict[str, Any], state: State) -> str:
    """What moved: the last change to the environment, and the nodes it touched."""
    env = plan["environment"]
    entries = state.history.get(env, [])
    parts = []
    if entries:
        last = entries[-1]
        what = last.get("action", "apply")
        source = f" from {last['source']}" if last.get("source") else ""
        parts.append(f"{what}{source} of {last['plan_id'][:12]} at {last['applied_at']}")
    elif state.environment(env) is None:
        parts.append("it was deleted")
    current = (state.environment(env) or {}).get("nodes", {})
    nodes = plan["nodes"]
    moved = sorted(
        node_id
        for node_id in set(current)
        | {n for n, node in nodes.items() if node["change"]["category"] in _KEPT}
        if node_id not in nodes
        or nodes[node_id]["change"]["category"] == "added"
        or (
            nodes[node_id]["change"]["category"] in _KEPT
            and current.get(node_id, {}).get("snapshot") != nodes[node_id]["snapshot"]
        )
    )
    if moved:
        shown = ", ".join(moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
        parts.append(f"now different: {shown}")
    return f" ({'; '.join(parts)})" if parts else ""
