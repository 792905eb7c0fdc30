"""Hand-built plans for runtime tests, so the runtime is tested without the compiler.

Every plan built here is validated against ``plan.schema.json`` and carries a correct
``plan_id``: a test that wants a broken plan breaks it on purpose.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seeknal import schemas
from seeknal.canonical import compute_plan_id, file_sha256, hash_value, sha256_hex
from seeknal.runtime.artifact import PLAN_SCHEMA_VERSION
from seeknal.runtime.promote import view_name
from seeknal.state.base import environment_hash, environment_record

ORDERS_CSV = "order_id,customer,amount\n1,alice,25\n2,alice,40\n3,bob,12\n4,carol,99\n5,bob,8\n"
CUSTOMERS_CSV = "customer,city\nalice,Oslo\nbob,Lima\ncarol,Kyiv\n"

WAREHOUSE = "target/warehouse.duckdb"
STATE_DIR = "target/state"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node to put in a plan; ``sql`` may name other nodes as ``{{ node_id }}``."""

    node_id: str
    sql: str
    materialized: str = "table"
    depends_on: tuple[str, ...] = ()
    data_file: str | None = None
    change: str = "added"
    columns: tuple[str, ...] = ()
    salt: str = ""  # changes the fingerprint (and snapshot) without changing the SQL

    @property
    def kind(self) -> str:
        return self.node_id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.node_id.split(".", 1)[1]


@dataclass(slots=True)
class PlanBuilder:
    """Builds a valid plan for a project directory holding the CSV files."""

    project: Path
    environment: str = "prod"
    base_state: str | None = None
    specs: list[NodeSpec] = field(default_factory=list)
    removed: dict[str, str] = field(default_factory=dict)  # node id -> snapshot

    def add(self, spec: NodeSpec) -> PlanBuilder:
        self.specs.append(spec)
        return self

    def build(self, *, work: list[str] | None = None) -> dict[str, Any]:
        """The plan; ``work`` lists the node ids to build (default: every added node)."""
        fingerprints: dict[str, str] = {}
        snapshots: dict[str, str] = {}
        data_versions: dict[str, str] = {}
        nodes: dict[str, Any] = {}
        for spec in self.specs:  # specs are added upstream first
            upstream = {d: fingerprints[d] for d in spec.depends_on}
            fingerprints[spec.node_id] = hash_value(
                {"sql": spec.sql, "m": spec.materialized, "up": upstream, "salt": spec.salt}
            )
            snapshots[spec.node_id] = (
                f"seeknal__{spec.kind}.{spec.name}__{fingerprints[spec.node_id][:12]}"
            )
            data_sha = (
                file_sha256(self.project / spec.data_file) if spec.data_file is not None else None
            )
            data_versions[spec.node_id] = hash_value(
                {
                    "fp": fingerprints[spec.node_id],
                    "file": data_sha,
                    "up": {d: data_versions[d] for d in spec.depends_on},
                }
            )
            engine_sql = spec.sql
            for dep in spec.depends_on:
                schema, table = snapshots[dep].split(".", 1)
                engine_sql = engine_sql.replace("{{ " + dep + " }}", f'"{schema}"."{table}"')
            node: dict[str, Any] = {
                "kind": spec.kind,
                "materialized": spec.materialized,
                "depends_on": list(spec.depends_on),
                "file": f"seeknal/{spec.kind}s/{spec.name}.yml",
                "sql": {"raw": spec.sql, "normalized": spec.sql, "engine": engine_sql},
                "columns": [{"name": c, "type": None, "lineage": []} for c in spec.columns],
                "fingerprint": {
                    "data": fingerprints[spec.node_id],
                    "definition": sha256_hex(spec.sql),
                    "metadata": sha256_hex(spec.node_id),
                },
                "data_version": data_versions[spec.node_id],
                "snapshot": snapshots[spec.node_id],
                "change": {"category": spec.change},
            }
            if data_sha is not None:
                node["data_file"] = {"path": spec.data_file, "sha256": data_sha}
            nodes[spec.node_id] = node
        for node_id, snapshot in self.removed.items():
            kind = node_id.split(".", 1)[0]
            nodes[node_id] = {"kind": kind, "snapshot": snapshot, "change": {"category": "removed"}}
        work_ids = [s.node_id for s in self.specs] if work is None else work
        plan: dict[str, Any] = {
            "schema_version": PLAN_SCHEMA_VERSION,
            "plan_id": "0" * 64,
            "project": "test_project",
            "environment": self.environment,
            "base_state": self.base_state,
            "base_environment": None,
            "environment_ttl_seconds": None,
            "source_hash": sha256_hex("sources"),
            "dialect": "duckdb",
            "target": {
                "engine": "duckdb",
                "warehouse": WAREHOUSE,
                "state": {"backend": "file", "path": STATE_DIR},
            },
            "nodes": nodes,
            "work": [{"node": n, "snapshot": snapshots[n], "reason": "new"} for n in work_ids],
            "promotion": {
                view_name(s.node_id, self.environment): snapshots[s.node_id] for s in self.specs
            },
        }
        return seal(plan)


def seal(plan: dict[str, Any]) -> dict[str, Any]:
    """Validate ``plan`` against the schema and give it its correct plan_id."""
    plan = copy.deepcopy(plan)
    plan["plan_id"] = compute_plan_id(plan)
    errors = schemas.iter_errors("plan", plan)
    assert not errors, [e.message for e in errors]
    return plan


def write_project(project: Path) -> Path:
    """Write the CSV files the standard plan reads; return the project directory."""
    (project / "data").mkdir(parents=True, exist_ok=True)
    (project / "data" / "orders.csv").write_text(ORDERS_CSV, encoding="utf-8")
    (project / "data" / "customers.csv").write_text(CUSTOMERS_CSV, encoding="utf-8")
    return project


def standard_specs(*, totals_sql: str | None = None) -> list[NodeSpec]:
    """Two independent branches: orders -> totals -> big (view), customers -> cities."""
    return [
        NodeSpec(
            "source.orders",
            "SELECT * FROM read_csv('data/orders.csv', header=true)",
            data_file="data/orders.csv",
            columns=("order_id", "customer", "amount"),
        ),
        NodeSpec(
            "source.customers",
            "SELECT * FROM read_csv('data/customers.csv', header=true)",
            data_file="data/customers.csv",
            columns=("customer", "city"),
        ),
        NodeSpec(
            "transform.order_totals",
            totals_sql
            or "SELECT customer, SUM(amount) AS total\nFROM {{ source.orders }}\nGROUP BY customer",
            depends_on=("source.orders",),
            columns=("customer", "total"),
        ),
        NodeSpec(
            "transform.big_customers",
            "SELECT customer, total FROM {{ transform.order_totals }} WHERE total > 30",
            materialized="view",
            depends_on=("transform.order_totals",),
            columns=("customer", "total"),
        ),
        NodeSpec(
            "transform.customer_cities",
            "SELECT city, COUNT(*) AS customers FROM {{ source.customers }} GROUP BY city",
            depends_on=("source.customers",),
            columns=("city", "customers"),
        ),
    ]


def standard_plan(project: Path, **kwargs: Any) -> dict[str, Any]:
    """The standard plan for a fresh prod environment (see :func:`standard_specs`)."""
    builder = PlanBuilder(project)
    for spec in standard_specs(**kwargs):
        builder.add(spec)
    return builder.build()


def recompiled(applied_plan: dict[str, Any]) -> dict[str, Any]:
    """What the compiler would emit after ``applied_plan`` was applied: no work, unchanged."""
    plan = copy.deepcopy(applied_plan)
    plan["base_state"] = applied_hash(applied_plan)
    plan["work"] = []
    for node in plan["nodes"].values():
        node["change"]["category"] = "unchanged"
    return seal(plan)


def applied_hash(plan: dict[str, Any]) -> str | None:
    """The environment hash a plan leaves behind once applied."""
    return environment_hash(environment_record(plan))
