"""execute_plan on real DuckDB files and real file state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from seeknal.errors import ExecutionError, PlanError, SeeknalError, StaleError, StateError
from seeknal.runtime import Event, EventKind, execute_plan
from seeknal.runtime.session import held_compile
from seeknal.state.base import environment_record
from seeknal.state.file import FileStateBackend
from tests.runtime.plans import (
    STATE_DIR,
    WAREHOUSE,
    NodeSpec,
    PlanBuilder,
    applied_hash,
    recompiled,
    seal,
    standard_plan,
    standard_specs,
    write_project,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


def run(plan: dict[str, Any], project: Path, **kwargs: Any) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    result = execute_plan(plan, project, on_event=events.append, **kwargs)
    return result, events


def kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


def nodes_of(events: list[Event], kind: EventKind) -> list[str]:
    return sorted(e.node for e in events if e.kind == kind and e.node)


def query(project: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / WAREHOUSE), read_only=True) as con:
        return con.execute(sql).fetchall()


def state_of(project: Path) -> FileStateBackend:
    return FileStateBackend(project / STATE_DIR)


def test_execute_builds_snapshots_and_prod_views(project: Path) -> None:
    plan = standard_plan(project)

    result, events = run(plan, project)

    assert result.built == tuple(sorted(plan["nodes"]))
    assert result.promoted
    assert kinds(events)[0] == EventKind.RUN_STARTED
    assert kinds(events)[-2:] == [EventKind.PROMOTED, EventKind.RUN_FINISHED]
    assert query(project, "SELECT customer, total FROM transform.order_totals ORDER BY 1") == [
        ("alice", 65),
        ("bob", 20),
        ("carol", 99),
    ]
    assert query(project, "SELECT customer FROM transform.big_customers ORDER BY 1") == [
        ("alice",),
        ("carol",),
    ]
    assert query(project, "SELECT count(*) FROM source.orders") == [(5,)]
    types = dict(
        query(
            project,
            "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables",
        )
    )
    assert types[plan["nodes"]["transform.big_customers"]["snapshot"]] == "VIEW"
    assert types[plan["nodes"]["transform.order_totals"]["snapshot"]] == "BASE TABLE"
    assert types["transform.order_totals"] == "VIEW"
    built = {e.node: e for e in events if e.kind == EventKind.NODE_BUILT}
    assert built["source.orders"].rows == 5
    assert built["transform.big_customers"].rows is None


def test_execute_records_snapshots_and_environment(project: Path) -> None:
    plan = standard_plan(project)

    run(plan, project)

    state = state_of(project).read()
    totals = plan["nodes"]["transform.order_totals"]
    assert state.snapshots[totals["snapshot"]] == {
        "node": "transform.order_totals",
        "kind": "transform",
        "materialized": "table",
        "data_version": totals["data_version"],
        "rows": 3,
        "definition": totals["fingerprint"]["definition"],
    }
    assert state.environment_hash("prod") == applied_hash(plan)
    assert [h["plan_id"] for h in state.history["prod"]] == [plan["plan_id"]]


def test_dependencies_finish_before_dependents_start(project: Path) -> None:
    plan = standard_plan(project)

    _, events = run(plan, project, threads=4)

    order = [
        (e.kind, e.node) for e in events if e.kind in (EventKind.NODE_STARTED, EventKind.NODE_BUILT)
    ]
    for node_id, node in plan["nodes"].items():
        started = order.index((EventKind.NODE_STARTED, node_id))
        for dep in node["depends_on"]:
            assert order.index((EventKind.NODE_BUILT, dep)) < started


def test_same_plan_again_after_success_does_nothing(project: Path) -> None:
    plan = standard_plan(project)
    run(plan, project)
    state_before = (project / STATE_DIR / "state.json").read_bytes()

    result, events = run(plan, project)

    assert result.built == ()
    assert not result.promoted
    assert result.nothing_to_do
    assert nodes_of(events, EventKind.NODE_REUSED) == sorted(plan["nodes"])
    assert EventKind.NOTHING_TO_DO in kinds(events)
    assert EventKind.NODE_STARTED not in kinds(events)
    assert (project / STATE_DIR / "state.json").read_bytes() == state_before


def test_recompiled_unchanged_plan_is_nothing_to_do(project: Path) -> None:
    plan = standard_plan(project)
    run(plan, project)

    result, events = run(recompiled(plan), project)

    assert kinds(events) == [
        EventKind.RUN_STARTED,
        EventKind.NOTHING_TO_DO,
        EventKind.RUN_FINISHED,
    ]
    assert result.built == () and result.reused == ()


def test_missing_views_are_promoted_again(project: Path) -> None:
    plan = standard_plan(project)
    run(plan, project)
    with duckdb.connect(str(project / WAREHOUSE)) as con:
        con.execute("DROP VIEW transform.order_totals")

    result, _ = run(recompiled(plan), project)

    assert result.promoted
    assert query(project, "SELECT count(*) FROM transform.order_totals") == [(3,)]


def test_snapshot_missing_from_the_warehouse_is_rebuilt(project: Path) -> None:
    plan = standard_plan(project)
    run(plan, project)
    snapshot = plan["nodes"]["source.customers"]["snapshot"]
    with duckdb.connect(str(project / WAREHOUSE)) as con:
        con.execute(f"DROP TABLE {snapshot}")

    result, _ = run(plan, project)

    assert result.built == ("source.customers",)
    assert query(project, "SELECT count(*) FROM source.customers") == [(3,)]


def test_dev_environment_views_live_in_their_own_schemas(project: Path) -> None:
    builder = PlanBuilder(project, environment="dev")
    for spec in standard_specs():
        builder.add(spec)

    run(builder.build(), project)

    assert query(project, "SELECT count(*) FROM transform__dev.order_totals") == [(3,)]
    assert query(
        project, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'transform'"
    ) == [(0,)]


def test_removed_node_view_is_dropped(project: Path) -> None:
    first = standard_plan(project)
    run(first, project)
    builder = PlanBuilder(project, base_state=applied_hash(first))
    for spec in standard_specs():
        if spec.node_id != "transform.big_customers":
            builder.add(spec)
    builder.removed["transform.big_customers"] = first["nodes"]["transform.big_customers"][
        "snapshot"
    ]
    second = builder.build(work=[])

    result, _ = run(second, project)

    assert result.promoted
    views = query(
        project,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'transform'",
    )
    assert sorted(views) == [("customer_cities",), ("order_totals",)]
    assert "transform.big_customers" not in state_of(project).read().environments["prod"]["nodes"]


def test_tampered_plan_is_refused(project: Path) -> None:
    plan = standard_plan(project)
    plan["nodes"]["transform.order_totals"]["sql"]["engine"] = "SELECT 1 AS total"

    with pytest.raises(PlanError, match="modified after it was compiled"):
        run(plan, project)

    assert not (project / "target").exists()


def test_stale_plan_is_refused_before_any_side_effect(project: Path) -> None:
    state = state_of(project)
    other = standard_plan(project, totals_sql="SELECT 1 AS total")
    state.set_environment("prod", environment_record(other), other["plan_id"])
    state_before = (project / STATE_DIR / "state.json").read_bytes()
    plan = standard_plan(project)  # compiled against an empty prod: base_state None

    with pytest.raises(StaleError) as info:
        run(plan, project)

    message = str(info.value)
    assert message.startswith(
        "plan is stale: environment 'prod' changed since this plan was compiled (apply of "
        + other["plan_id"][:12]
    )
    # The plan adds every node; prod has them all now, from somebody else's plan.
    assert message.endswith(
        "now different: source.customers, source.orders, transform.big_customers, "
        "transform.customer_cities, transform.order_totals)"
    )
    assert info.value.hint == "compile again, or pass --force"
    assert not (project / WAREHOUSE).exists()
    assert (project / STATE_DIR / "state.json").read_bytes() == state_before


def test_stale_plan_runs_with_force(project: Path) -> None:
    state = state_of(project)
    other = standard_plan(project, totals_sql="SELECT 1 AS total")
    state.set_environment("prod", environment_record(other), other["plan_id"])
    plan = standard_plan(project)

    result, events = run(plan, project, force=True)

    assert result.promoted
    assert "forced past" in events[0].message
    assert state_of(project).read().environment_hash("prod") == applied_hash(plan)


def test_changed_data_file_makes_the_plan_stale(project: Path) -> None:
    plan = standard_plan(project)
    with (project / "data" / "orders.csv").open("a", encoding="utf-8") as fh:
        fh.write("6,dave,1\n")

    with pytest.raises(StaleError, match=r"data/orders\.csv changed since this plan was compiled"):
        run(plan, project)

    assert not (project / WAREHOUSE).exists()
    result, _ = run(plan, project, force=True)
    assert query(project, "SELECT count(*) FROM source.orders") == [(6,)]
    assert result.promoted


def test_missing_data_file_makes_the_plan_stale(project: Path) -> None:
    plan = standard_plan(project)
    (project / "data" / "customers.csv").unlink()

    with pytest.raises(StaleError, match=r"data/customers\.csv no longer exists"):
        run(plan, project)


def failing_plan(project: Path) -> dict[str, Any]:
    return standard_plan(
        project,
        totals_sql=(
            "SELECT customer,\n  SUM(amount) AS total\nFROM {{ source.orders }}\n"
            "JOIN lookup.discounts USING (customer)\nGROUP BY customer"
        ),
    )


def test_failing_node_skips_downstream_and_keeps_going(project: Path) -> None:
    plan = failing_plan(project)
    events: list[Event] = []

    with pytest.raises(ExecutionError) as info:
        execute_plan(plan, project, on_event=events.append)

    error = info.value
    assert [f.node for f in error.failures] == ["transform.order_totals"]
    failure = error.failures[0]
    assert "discounts" in failure.message
    assert failure.sql_excerpt.startswith("SELECT customer,\n  SUM(amount) AS total")
    assert "JOIN lookup.discounts" in failure.sql_excerpt
    assert failure.skipped == ("transform.big_customers",)
    assert error.skipped == ["transform.big_customers"]
    assert "transform.order_totals" in error.render()
    assert nodes_of(events, EventKind.NODE_BUILT) == [
        "source.customers",
        "source.orders",
        "transform.customer_cities",
    ]
    assert nodes_of(events, EventKind.NODE_SKIPPED) == ["transform.big_customers"]
    assert kinds(events)[-1] == EventKind.RUN_FINISHED
    assert EventKind.PROMOTED not in kinds(events)
    state = state_of(project).read()
    assert sorted(r["node"] for r in state.snapshots.values()) == [
        "source.customers",
        "source.orders",
        "transform.customer_cities",
    ]
    assert state.environments == {}
    views = query(
        project,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('source', 'transform')",
    )
    assert views == [(0,)]


def test_executing_the_failed_plan_again_resumes_it(project: Path) -> None:
    plan = failing_plan(project)
    with pytest.raises(ExecutionError):
        execute_plan(plan, project)
    # The cause is outside the plan (a table the warehouse lacked), so the same plan
    # can succeed once it is fixed.
    with duckdb.connect(str(project / WAREHOUSE)) as con:
        con.execute("CREATE SCHEMA lookup")
        con.execute("CREATE TABLE lookup.discounts AS SELECT 'alice' AS customer")

    result, events = run(plan, project)

    assert result.reused == ("source.customers", "source.orders", "transform.customer_cities")
    assert result.built == ("transform.big_customers", "transform.order_totals")
    assert nodes_of(events, EventKind.NODE_REUSED) == list(result.reused)
    assert result.promoted
    assert query(project, "SELECT customer, total FROM transform.big_customers") == [("alice", 65)]


def test_lock_held_by_another_run_refuses_to_execute(project: Path) -> None:
    plan = standard_plan(project)

    with state_of(project).lock(), pytest.raises(StateError, match="holds the state lock"):
        run(plan, project)

    assert not (project / WAREHOUSE).exists()
    run(plan, project)  # the lock is released


def test_a_held_run_executes_under_its_own_lock_and_state(project: Path) -> None:
    plan = standard_plan(project)
    with held_compile(plan["target"], project, lambda state: None) as (session, _):
        assert session is None  # no state yet: nothing is locked (or created) ahead
    (project / STATE_DIR).mkdir(parents=True)
    with held_compile(plan["target"], project, lambda state: None) as (session, _):
        assert session is not None
        result = execute_plan(plan, project, session=session)
        with pytest.raises(StateError, match="holds the state lock"), state_of(project).lock():
            pass  # still held until the session ends
    assert result.promoted
    with state_of(project).lock():
        pass


def test_a_run_held_for_another_target_is_refused(project: Path) -> None:
    plan = standard_plan(project)
    other = {**plan["target"], "warehouse": "target/other.duckdb"}
    (project / STATE_DIR).mkdir(parents=True)
    with (
        held_compile(other, project, lambda state: None) as (session, _),
        pytest.raises(SeeknalError, match="another target"),
    ):
        execute_plan(plan, project, session=session)
    assert not (project / WAREHOUSE).exists()


def test_lock_is_released_after_a_failed_run(project: Path) -> None:
    with pytest.raises(ExecutionError):
        execute_plan(failing_plan(project), project)

    with state_of(project).lock():
        pass


def test_threads_must_be_positive(project: Path) -> None:
    with pytest.raises(Exception, match="threads must be at least 1"):
        execute_plan(standard_plan(project), project, threads=0)


def test_single_thread_builds_in_plan_order(project: Path) -> None:
    plan = standard_plan(project)

    _, events = run(plan, project, threads=1)

    started = [e.node for e in events if e.kind == EventKind.NODE_STARTED]
    built = [e.node for e in events if e.kind == EventKind.NODE_BUILT]
    assert started == built
    assert started.index("source.orders") < started.index("transform.order_totals")


def test_dependencies_pass_through_nodes_without_work(project: Path) -> None:
    # orders (work) -> totals (no work, already built) -> big (work): big waits for orders.
    plan = standard_plan(project)
    run(plan, project)
    changed = json.loads(json.dumps(plan))
    changed["base_state"] = applied_hash(plan)
    changed["work"] = [
        w for w in plan["work"] if w["node"] in ("source.orders", "transform.big_customers")
    ]
    changed = seal(changed)
    big = plan["nodes"]["transform.big_customers"]["snapshot"]
    state = state_of(project)
    doc = json.loads((project / STATE_DIR / "state.json").read_text())
    for name in (plan["nodes"]["source.orders"]["snapshot"], big):
        del doc["snapshots"][name]
    (project / STATE_DIR / "state.json").write_text(json.dumps(doc))

    result, events = run(changed, project, threads=4)

    assert result.built == ("source.orders", "transform.big_customers")
    order = [(e.kind, e.node) for e in events]
    assert order.index((EventKind.NODE_BUILT, "source.orders")) < order.index(
        (EventKind.NODE_STARTED, "transform.big_customers")
    )
    assert state.read().snapshots[big]["node"] == "transform.big_customers"


def test_crash_between_commit_and_record_repeats_the_build(project: Path) -> None:
    plan = standard_plan(project)
    run(plan, project)
    # What a crash right after the engine's commit leaves: the table, but no record.
    snapshot = plan["nodes"]["transform.order_totals"]["snapshot"]
    doc = json.loads((project / STATE_DIR / "state.json").read_text())
    del doc["snapshots"][snapshot]
    (project / STATE_DIR / "state.json").write_text(json.dumps(doc))

    result, _ = run(plan, project)

    assert result.built == ("transform.order_totals",)
    assert state_of(project).read().snapshots[snapshot]["rows"] == 3
    assert query(project, "SELECT count(*) FROM transform.order_totals") == [(3,)]


def test_wide_dag_builds_concurrently(project: Path) -> None:
    builder = PlanBuilder(project)
    builder.add(standard_specs()[0])
    names = [f"transform.share_{i:02d}" for i in range(24)]
    for i, node_id in enumerate(names):
        builder.add(
            NodeSpec(
                node_id,
                f"SELECT customer, amount * {i} AS weighted FROM {{{{ source.orders }}}}",
                materialized="view" if i % 3 == 0 else "table",
                depends_on=("source.orders",),
            )
        )

    result, _ = run(builder.build(), project, threads=8)

    assert result.built == tuple(sorted(["source.orders", *names]))
    assert query(project, "SELECT sum(weighted) FROM transform.share_23") == [(184 * 23,)]
