"""Pass 8: the plan artifact — a canonical, schema-valid dict and its file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seeknal import schemas
from seeknal.canonical import (
    canonical_json,
    remember_hashed,
    sha256_hex,
    with_top_level_key,
    with_top_level_values_and_id,
)
from seeknal.compiler.categorize import NodeChange, WorkItem
from seeknal.compiler.change import ChangeCategory
from seeknal.compiler.interval_work import incremental_entry
from seeknal.compiler.model import CompiledNode, ProjectConfig, view_name
from seeknal.errors import SeeknalError
from seeknal.naming import PROD

PLAN_SCHEMA_VERSION = 3


def node_entry(node: CompiledNode, change: NodeChange) -> dict[str, Any]:
    spec = node.spec
    entry: dict[str, Any] = {
        "kind": spec.kind.value,
        "materialized": spec.materialized.value,
        "depends_on": list(node.depends_on),
        "file": spec.file,
        "sql": {"raw": node.raw_sql, "normalized": node.normalized_sql, "engine": node.engine_sql},
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "lineage": [{"node": n, "column": col} for n, col in c.lineage],
                **({"description": c.description} if c.description else {}),
            }
            for c in node.columns
        ],
        "fingerprint": {
            "data": node.data_fingerprint,
            "definition": node.definition,
            "metadata": node.metadata_fingerprint,
        },
        "data_version": node.data_version,
        "snapshot": node.snapshot,
        "change": change.to_json(),
    }
    if spec.description is not None:
        entry["description"] = spec.description
    if spec.owner is not None:
        entry["owner"] = spec.owner
    if spec.tags:
        entry["tags"] = list(spec.tags)
    if spec.severity is not None:
        entry["severity"] = spec.severity.value
    if node.data_file is not None:
        entry["data_file"] = {"path": node.data_file[0], "sha256": node.data_file[1]}
    if spec.incremental is not None:
        entry["incremental"] = incremental_entry(node)
    return entry


def work_entry(item: WorkItem) -> dict[str, Any]:
    """One entry of the plan's work list."""
    entry: dict[str, Any] = {
        "node": item.node,
        "snapshot": item.snapshot,
        "reason": item.reason.value,
    }
    if item.intervals is not None:
        entry["intervals"] = [r.to_json() for r in item.intervals]
        if item.batch_size is not None:
            entry["batch_size"] = item.batch_size
    if item.add_columns:
        entry["add_columns"] = True
    return entry


def build_plan(
    config: ProjectConfig,
    environment: str,
    base_state: str | None,
    source_hash: str,
    nodes: Sequence[tuple[CompiledNode, NodeChange]],
    removed: Mapping[str, Mapping[str, Any]],
    work: Sequence[WorkItem],
    base_environment: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Assemble the plan dict, compute ``plan_id`` and validate it against the schema.

    Returns the plan and its canonical JSON (what ``write_plan`` writes), serialized once.
    """
    entries: dict[str, Any] = {node.id: node_entry(node, change) for node, change in nodes}
    for node_id, record in removed.items():
        entries[node_id] = {
            "kind": record["kind"],
            "snapshot": record["snapshot"],
            "change": {"category": ChangeCategory.REMOVED.value},
        }
    plan: dict[str, Any] = {
        "schema_version": PLAN_SCHEMA_VERSION,
        "project": config.name,
        "environment": environment,
        "base_state": base_state,
        "base_environment": base_environment,
        "environment_ttl_seconds": None if environment == PROD else config.environment_ttl_seconds,
        "source_hash": source_hash,
        "dialect": config.dialect,
        "target": plan_target(config),
        "nodes": dict(sorted(entries.items())),
        "work": [work_entry(w) for w in work],
        "promotion": {view_name(node.id, environment): node.snapshot for node, _ in nodes},
    }
    return finish_plan(plan)


def finish_plan(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Give ``plan`` (complete but for ``plan_id``) its id, check it against the schema;
    return it with its canonical JSON."""
    # The id hashes the canonical text of everything else: serialize once, for both.
    body = canonical_json(plan)
    plan_id = sha256_hex(body)
    text = with_top_level_key(body, plan, "plan_id", plan_id)
    remember_hashed(text, plan_id)
    plan["plan_id"] = plan_id
    errors = schemas.iter_errors("plan", plan)
    if errors:  # a bug in the compiler, never the user's fault
        raise AssertionError(f"compiler produced an invalid plan: {errors[0].message}")
    # plan_id hashes everything else: the runtime, handed this plan in this process,
    # recomputes it instead of walking the schema again.
    schemas.remember_valid("plan", plan_id)
    return plan, text


def with_new_work(text: str, base_state: str | None, work: list[dict[str, Any]]) -> str | None:
    """The canonical text of a plan (``text``) with another ``base_state`` and ``work``,
    and the ``plan_id`` of that content: the text :func:`finish_plan` gives for the
    changed plan, without serializing or validating the rest again.

    ``text`` must be that of a plan :func:`finish_plan` produced (the plan memo keeps
    only those, digest-checked): its other members are valid, and the new ones are
    checked here, which together is the whole schema (see ``schemas.is_valid_member``).
    None when the new members are invalid (a bug: the full compile then says so) or
    ``text`` is not of canonical layout.
    """
    if not (
        schemas.is_valid_member("plan", "base_state", base_state)
        and schemas.is_valid_member("plan", "work", work)
    ):
        return None
    # `base_state` comes before the nodes, `plan_id` and `work` after them; the plan is
    # megabytes at 1,000 nodes: spliced and hashed in one pass.
    spliced = with_top_level_values_and_id(
        text,
        {"base_state": base_state, "work": work},
        "plan_id",
        from_end=("work", "plan_id"),
    )
    if spliced is None:
        return None
    done, plan_id = spliced
    schemas.remember_valid("plan", plan_id)
    remember_hashed(done, plan_id)
    return done


def plan_target(config: ProjectConfig) -> dict[str, Any]:
    """Where the plan runs: a connection by name, never its details (profiles.yml holds
    them, read by the runtime). ``default`` is implied, so plans that use it keep the
    shape they always had."""
    target: dict[str, Any] = {
        "engine": "duckdb",
        "warehouse": config.warehouse,
        "state": {"backend": config.state_backend, "path": config.state_path},
    }
    if config.connection != "default":
        target["connection"] = config.connection
    return target


def write_plan(plan: Mapping[str, Any] | None, path: Path, *, text: str | None = None) -> None:
    """Write the canonical plan atomically (a reader never sees half a file).

    ``text``, when given, is ``canonical_json(plan)`` already computed (a compile's
    ``CompileResult.text``), written as it is; ``plan`` may then be None.

    The file gets the usual mode of a new file (0644 less the umask), like any file
    the user writes: the temporary file is created with ``os.open``, not ``mkstemp``
    (which makes it private, 0600).

    Raises:
        SeeknalError: The file or its directory cannot be written.

    Example:
        >>> write_plan(compile_project(Path("shop")).plan, Path("shop/target/plan.json"))  # doctest: +SKIP
    """
    tmp = path.parent / f".plan-{os.getpid()}-{secrets.token_hex(4)}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                if text is None:
                    assert plan is not None, "write_plan needs the plan or its text"
                    text = canonical_json(plan)
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SeeknalError(
            f"cannot write the plan to {path}: {exc.strerror or exc}",
            hint="choose a path you can write (`--out`), or fix the directory's permissions",
        ) from exc
