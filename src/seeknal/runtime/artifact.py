"""Reading and verifying the plan artifact: the runtime trusts nothing it did not check.

Checks run from the cheapest and most telling to the most thorough: the version first
(a newer plan would fail schema validation with a confusing message), then the schema,
then the integrity hash, then the references between sections that the schema cannot
express.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seeknal import schemas
from seeknal.canonical import (
    compute_plan_id,
    hashed_here,
    sha256_hex,
    without_top_level_string,
)
from seeknal.errors import PlanError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

PLAN_SCHEMA_VERSION = 3
_SHOWN_ERRORS = 3
_RECOMPILE = "compile it again with `seeknal compile`"
# Ids of the plans verified in this process: `seeknal execute` verifies the file it
# loads and execute_plan verifies what it is given; the second time, recomputing the id
# proves it is the same content, and the schema need not be walked again.
_VERIFIED: set[str] = set()


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read ``plan.json`` and verify it (see :func:`verify_plan`); see :func:`read_plan`."""
    return read_plan(path)[0]


def read_plan(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read ``plan.json`` and verify it (see :func:`verify_plan`); the plan and its text
    (hand both to ``execute_plan``, which then checks the id from the text again).

    Args:
        path: The plan file.

    Returns:
        The plan, as a dict exactly as stored.

    Raises:
        PlanError: Unreadable, not JSON, too new, schema-invalid, tampered or inconsistent.

    Example:
        >>> plan = load_plan("target/plan.json")  # doctest: +SKIP
        >>> plan["environment"]  # doctest: +SKIP
        'prod'
    """
    text = read_plan_text(path)
    return verify_plan_text(text, where=str(path)), text


def read_plan_text(path: str | Path) -> str:
    """The text of a plan file, unchecked (``execute_plan(None, ..., text=)`` parses
    and verifies it, once).

    Raises:
        PlanError: The file is missing or unreadable.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(
            f"{path}: no such plan file", hint="create one with `seeknal compile`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read {path}: {exc}", hint=_RECOMPILE) from exc


def verify_plan_text(text: str, *, where: str = "plan.json") -> dict[str, Any]:
    """Parse a plan's JSON text and verify it (see :func:`verify_plan`): the one
    parse, and the id checked by hashing the text when it is canonical.

    Args:
        text: The plan's JSON text.
        where: What to call it in messages (its file).

    Raises:
        PlanError: Not JSON, too new, schema-invalid, tampered or inconsistent.

    Example:
        >>> verify_plan_text("[]")
        Traceback (most recent call last):
        ...
        seeknal.errors.PlanError: plan.json is not a JSON object
    """
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"{where}:{exc.lineno}:{exc.colno}: plan is not valid JSON: {exc.msg}",
            hint=_RECOMPILE,
        ) from exc
    except RecursionError:
        raise PlanError(
            f"{where} is not a plan: its JSON is nested too deeply to read", hint=_RECOMPILE
        ) from None
    return _verify(plan, text)  # the plan was parsed from this very text


def verify_plan(plan: Any, *, text: str | None = None) -> dict[str, Any]:
    """Check an in-memory plan exactly as :func:`load_plan` checks a file.

    Args:
        plan: A parsed plan document.
        text: The JSON text ``plan`` was parsed from, if at hand: when it parses to
            ``plan`` and is canonical (a plan file as seeknal wrote it), the id is
            checked by hashing it instead of serializing the plan again.

    Returns:
        ``plan`` itself, now known to be a valid, untampered plan of a readable version.

    Raises:
        PlanError: Too new, schema-invalid, tampered, or referring to missing nodes.

    Example:
        >>> verify_plan({"schema_version": 4})
        Traceback (most recent call last):
        ...
        seeknal.errors.PlanError: plan.json has schema_version 4; this seeknal reads up to 3
    """
    if text is not None and not _parses_to(text, plan):
        text = None  # not the text of this plan: the plan is checked on its own
    return _verify(plan, text)


def _parses_to(text: str, plan: Any) -> bool:
    try:
        return bool(json.loads(text) == plan)
    except (ValueError, RecursionError):
        return False


def _verify(plan: Any, text: str | None) -> dict[str, Any]:
    """:func:`verify_plan`, ``text`` (if any) known to be what ``plan`` was parsed from."""
    if not isinstance(plan, dict):
        raise PlanError("plan.json is not a JSON object", hint=_RECOMPILE)
    plan_id = plan.get("plan_id")
    if plan_id in _VERIFIED and _id_holds(plan, plan_id, text):
        # The same content (its id hashes all of it) passed every check below already.
        return plan
    if (
        isinstance(plan_id, str)
        and schemas.known_valid("plan", plan_id)
        and _id_holds(plan, plan_id, text)
    ):
        # The compiler validated this very content against the plan schema in this
        # process (`seeknal run`): only the checks the schema cannot make remain.
        _check_references(plan)
        _VERIFIED.add(plan_id)
        return plan
    version = plan.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > PLAN_SCHEMA_VERSION:
        raise PlanError(
            f"plan.json has schema_version {version}; this seeknal reads up to "
            f"{PLAN_SCHEMA_VERSION}",
            hint="upgrade seeknal",
        )
    # An older plan is checked against its own (frozen) schema: it runs as it was reviewed.
    # v2 only added what the runtime may ignore (change details, the definition
    # fingerprint); v3 added incremental nodes and interval work, which an older plan
    # never has.
    schema = f"plan.v{version}" if f"plan.v{version}" in schemas.OLD_SCHEMA_NAMES else "plan"
    errors = schemas.iter_errors(schema, plan)
    if errors:
        raise PlanError(_describe_errors(errors), hint=_RECOMPILE)
    if not _id_holds(plan, plan["plan_id"], text):
        raise PlanError(
            "plan.json was modified after it was compiled (plan_id does not match its content)",
            hint=_RECOMPILE,
        )
    _check_references(plan)
    _VERIFIED.add(plan["plan_id"])
    return plan


def _id_holds(plan: dict[str, Any], plan_id: Any, text: str | None) -> bool:
    """Whether ``plan_id`` is the id of ``plan``'s content: from ``text`` (the JSON
    ``plan`` was parsed from) when its other members hash to the id, else by
    serializing ``plan`` canonically.

    A text whose other members hash to the id was written byte for byte by whoever
    computed the id over them: seeknal does so over the canonical JSON, so any change to
    a plan file it wrote fails the hash, and is then decided by serializing the plan
    (a reformatted file passes, a modified one is refused). Someone who rewrites a plan
    file and its id on purpose passes either check; the id guards against changes,
    not against forgery (see docs/guides/security.md).
    """
    if text is not None:
        if hashed_here(text, plan_id):
            return True  # this very text was hashed to this id in this process
        split = without_top_level_string(text, "plan_id", from_end=True)  # after the nodes
        if split is not None and split[0] == plan_id and sha256_hex(split[1]) == plan_id:
            return True
    return compute_plan_id(plan) == plan_id


def json_path(error: ValidationError) -> str:
    """Where a validation error is, as a JSON path: ``$.nodes['source.orders'].sql``.

    Example:
        >>> from jsonschema.exceptions import ValidationError
        >>> json_path(ValidationError("bad", path=["nodes", "source.orders", "depends_on", 0]))
        "$.nodes['source.orders'].depends_on[0]"
    """
    out = "$"
    for part in error.absolute_path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def _describe_errors(errors: list[ValidationError]) -> str:
    lines = ["plan.json does not match the plan schema:"]
    for error in errors[:_SHOWN_ERRORS]:
        deepest = _closest_branch_error(error)
        message = deepest.message
        if len(message) > 160:
            message = message[:157] + "..."
        lines.append(f"  at {json_path(deepest)}: {message}")
    if len(errors) > _SHOWN_ERRORS:
        lines.append(f"  … and {len(errors) - _SHOWN_ERRORS} more")
    return "\n".join(lines)


def _closest_branch_error(error: ValidationError) -> ValidationError:
    """For a oneOf failure, the first error of the branch the instance nearly matched.

    "... is not valid under any of the given schemas" dumps a whole node; the branch
    with the fewest errors (a node whose ``kind`` is wrong, rather than a removed node
    with ten extra fields) names the field the user should look at.
    """
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        closest = min(branches.values(), key=len)
        error = min(closest, key=lambda e: [str(p) for p in e.absolute_path])
    return error


def _check_references(plan: dict[str, Any]) -> None:
    """Cross-section references the schema cannot express; a failure is a compiler bug."""
    nodes = plan["nodes"]
    problems: list[str] = []
    for node_id, node in sorted(nodes.items()):
        problems += [
            f"node {node_id} depends on {dep}, which is not in the plan"
            for dep in node.get("depends_on", ())
            if dep not in nodes
        ]
    for item in plan["work"]:
        node = nodes.get(item["node"])
        if node is None or node["change"]["category"] == "removed":
            problems.append(f"work item {item['node']} names no node to build")
        elif node["snapshot"] != item["snapshot"]:
            problems.append(
                f"work item {item['node']} builds {item['snapshot']}, "
                f"but the node's snapshot is {node['snapshot']}"
            )
        elif ("intervals" in item) != ("incremental" in node):
            problems.append(
                f"work item {item['node']}: intervals go with incremental nodes, and only them"
            )
    for node_id, node in sorted(nodes.items()):
        if (node.get("materialized") == "incremental_by_time") != ("incremental" in node):
            problems.append(f"node {node_id}: incremental_by_time needs its `incremental` section")
    work_nodes = [item["node"] for item in plan["work"]]
    problems += [f"node {n} appears twice in the work list" for n in _duplicates(work_nodes)]
    cycle = _find_cycle(nodes)
    if cycle:
        problems.append("nodes depend on each other in a cycle: " + " -> ".join(cycle))
    if problems:
        raise PlanError(
            "plan.json is inconsistent: " + "; ".join(problems[:_SHOWN_ERRORS]),
            hint="this is a bug in the compiler that wrote it; please report it",
        )


def _duplicates(items: Iterable[str]) -> list[str]:
    return sorted(item for item, count in Counter(items).items() if count > 1)


def _find_cycle(nodes: dict[str, Any]) -> list[str] | None:
    """A dependency cycle as a list of node ids (first repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(nodes):
        if start in done:
            continue
        # Iterative DFS: a deep pipeline must not hit Python's recursion limit.
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(_deps(nodes, start)))]
        path.append(start)
        on_path.add(start)
        while stack:
            current, children = stack[-1]
            child = next(iter(children), None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(current)
                done.add(current)
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done and child in nodes:
                stack.append((child, iter(_deps(nodes, child))))
                path.append(child)
                on_path.add(child)
    return None


def _deps(nodes: dict[str, Any], node_id: str) -> list[str]:
    return sorted(nodes[node_id].get("depends_on", ()))
