"""Incremental nodes at compile time: their configuration, and the interval work list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import FIXTURES, applied, copy_project, edit

from seeknal.canonical import canonical_json
from seeknal.compiler import compile_project
from seeknal.compiler.interval_work import Window
from seeknal.errors import CompileFailed, SeeknalError
from seeknal.intervals import parse_time
from seeknal.state import State

DAILY = "transform.daily"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(FIXTURES / "incremental", tmp_path / "incremental")


def window(end: str, start: str | None = None, restate: tuple[str, ...] = ()) -> Window:
    return Window(
        start=None if start is None else parse_time(start),
        end=parse_time(end, day_end=True),
        restate=restate,
    )


def compiled(project: Path, state: State | None = None, **kwargs: Any) -> dict[str, Any]:
    return compile_project(project, state=state or State(), **kwargs).plan


def done(plan: dict[str, Any], base: State | None = None, **intervals: list[list[str]]) -> State:
    """The state after ``plan`` ran, its incremental nodes holding ``intervals`` by name."""
    state = applied(plan, base=base)
    for node_id, node in plan["nodes"].items():
        if "incremental" in node:
            name = node_id.split(".", 1)[1]
            ranges = intervals.get(name, [])
            state.snapshots[node["snapshot"]] = {
                **state.snapshots[node["snapshot"]],
                "intervals": [[f"{a}T00:00:00Z", f"{b}T00:00:00Z"] for a, b in ranges],
            }
    return state


def work_of(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["node"]: w for w in plan["work"]}


def ranges(item: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["start"][:10], r["end"][:10], r["reason"]) for r in item["intervals"]]


# --- configuration ------------------------------------------------------------------------


def errors_of(project: Path, **kwargs: Any) -> str:
    with pytest.raises(CompileFailed) as info:
        compile_project(project, state=State(), **kwargs)
    return info.value.render()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("materialized: incremental_by_time\n", "materialized: table\n", "`incremental:` applies"),
        ('schedule: "@daily"', 'schedule: "every day"', "'every day' is not a cron expression"),
        ("start: 2024-01-01", "start: yesterday", "'yesterday' is not a date or timestamp"),
        ("start: 2024-01-01", "start: 2024-01-01\n  end: 2023-12-01", "is not after start"),
        ("lookback: 1", "lookback: 1\n  timezone: Mars/Base", "unknown time zone 'Mars/Base'"),
        ("time_column: day", "time_column: dya", "time column 'dya' is not a column"),
        ("lookback: 1", "lookback: -1", "lookback"),
        ('schedule: "@daily"', 'schedule: "0 0 31 2 *"', "'0 0 31 2 *' never fires"),
        ("start: 2024-01-01", "start: 9999-12-31", "'9999-12-31' is outside the times"),
        ("start: 2024-01-01", "start: 0001-01-01", "'0001-01-01' is outside the times"),
    ],
)
def test_configuration_errors_point_at_the_yaml(
    project: Path, old: str, new: str, message: str
) -> None:
    edit(project / "seeknal/transforms/daily.yml", old, new)
    text = errors_of(project)
    assert message in text
    assert "seeknal/transforms/daily.yml:" in text


def test_incremental_node_needs_its_block(project: Path) -> None:
    path = project / "seeknal/transforms/daily.yml"
    text = path.read_text()
    path.write_text(text[: text.index("incremental:")] + text[text.index("transform:") :])
    assert "needs an `incremental:` block" in errors_of(project)


def test_time_column_must_be_a_date_or_timestamp(project: Path) -> None:
    edit(project / "seeknal/transforms/daily.yml", "time_column: day", "time_column: events")
    assert "time column 'events' is BIGINT, not a DATE or TIMESTAMP" in errors_of(project)


def test_a_date_column_needs_midnight_intervals(project: Path) -> None:
    edit(project / "seeknal/transforms/daily.yml", '"@daily"', '"0 6 * * *"')
    text = errors_of(project)
    assert "is a DATE, but '0 6 * * *' intervals begin at 06:00" in text


def test_time_parameters_only_in_incremental_nodes(project: Path) -> None:
    edit(
        project / "seeknal/transforms/summary.yml",
        "FROM transform.daily",
        "FROM transform.daily WHERE day >= {{ start_date }}",
    )
    text = errors_of(project)
    assert "'start_date' is undefined" in text
    assert "exist only in `materialized: incremental_by_time` nodes" in text


def test_unknown_query_parameters_are_refused(project: Path) -> None:
    edit(project / "seeknal/transforms/daily.yml", "{{ end_ts }}", "$end_time")
    assert "unknown query parameter $end_time" in errors_of(project)


@pytest.mark.parametrize(
    ("written", "where"),
    [
        ("'{{ start_ts }}'", "daily.yml:13:22"),
        ("TIMESTAMP '{{start_ts}}'", "daily.yml:13:32"),
        ("CAST('{{ start_date }}' AS DATE)", "daily.yml:13:27"),
    ],
)
def test_a_time_parameter_inside_quotes_is_an_error_where_it_is_written(
    project: Path, written: str, where: str
) -> None:
    # Quoted, the parameter is text: the query would only fail when it runs.
    edit(project / "seeknal/transforms/daily.yml", "{{ start_ts }}", written)
    text = errors_of(project)
    name = "start_date" if "start_date" in written else "start_ts"
    assert f"{{{{ {name} }}}} is inside quotes" in text
    assert where in text
    assert "without quotes" in text


def test_text_that_only_looks_like_a_time_parameter_is_text(project: Path) -> None:
    edit(
        project / "seeknal/transforms/daily.yml",
        "COUNT(*) AS events",
        "COUNT(*) AS events, 'US$start_date_fee' AS label",
    )
    assert compiled(project, window=window("2024-01-09"))["nodes"][DAILY]


def test_a_start_off_the_schedule_is_a_warning(project: Path) -> None:
    edit(project / "seeknal/transforms/weekly.yml", "start: 2024-01-01", "start: 2024-01-02")
    result = compile_project(project, state=State(), window=window("2024-01-14"))
    assert any("first interval starts at 2024-01-08" in w.message for w in result.warnings)
    assert ranges(work_of(result.plan)["transform.weekly"]) == [("2024-01-08", "2024-01-15", "new")]


def test_unknown_restate_node(project: Path) -> None:
    with pytest.raises(SeeknalError, match=r"--restate: unknown node 'transform\.dialy'") as info:
        compile_project(
            project, state=State(), window=window("2024-01-05", restate=("transform.dialy",))
        )
    assert "did you mean 'transform.daily'" in (info.value.hint or "")


# --- the plan -----------------------------------------------------------------------------


def test_bounds_are_parameters_never_literals(project: Path) -> None:
    plan = compiled(project, window=window("2024-01-14"))
    node = plan["nodes"][DAILY]
    assert "$start_ts" in node["sql"]["engine"] and "$end_ts" in node["sql"]["engine"]
    assert "$start_ts" in node["sql"]["normalized"]
    assert "2024" not in node["sql"]["engine"] + node["sql"]["normalized"]
    assert node["incremental"] == {
        "batch_size": 3,
        "lookback": 1,
        "parameters": ["end_ts", "start_ts"],
        "schedule": "0 0 * * *",
        "start": "2024-01-01T00:00:00Z",
        "time_column": "day",
        "time_type": "date",
        "timezone": "UTC",
    }
    assert plan["nodes"]["transform.hourly"]["incremental"]["time_type"] == "timestamp"
    assert plan["nodes"]["transform.weekly"]["incremental"]["parameters"] == [
        "end_date",
        "start_date",
    ]


def test_a_new_node_fills_everything_up_to_the_end(project: Path) -> None:
    plan = compiled(project, window=window("2024-01-10"))
    work = work_of(plan)
    assert work[DAILY]["reason"] == "new"
    assert work[DAILY]["batch_size"] == 3
    assert ranges(work[DAILY]) == [("2024-01-01", "2024-01-11", "new")]
    # Weeks (from Mondays) are processed whole: the second one is not complete yet.
    assert ranges(work["transform.weekly"]) == [("2024-01-01", "2024-01-08", "new")]


def test_compile_with_an_end_is_reproducible(project: Path) -> None:
    a = compile_project(project, state=State(), window=Window(end=parse_time("2024-01-10"), now=1))
    b = compile_project(project, state=State(), window=Window(end=parse_time("2024-01-10"), now=2))
    assert canonical_json(a.plan) == canonical_json(b.plan)


def test_a_date_end_includes_the_whole_day(project: Path) -> None:
    with_date = compiled(project, window=Window(end=parse_time("2024-01-05", day_end=True)))
    with_stamp = compiled(project, window=Window(end=parse_time("2024-01-05T00:00:00")))
    assert ranges(work_of(with_date)[DAILY])[-1][1] == "2024-01-06"
    assert ranges(work_of(with_stamp)[DAILY])[-1][1] == "2024-01-05"


def test_next_day_processes_only_the_new_day_and_the_lookback(project: Path) -> None:
    first = compiled(project, window=window("2024-01-09"))
    state = done(first, daily=[["2024-01-01", "2024-01-10"]])
    plan = compiled(project, state, window=window("2024-01-10"))
    assert ranges(work_of(plan)[DAILY]) == [
        ("2024-01-09", "2024-01-10", "lookback"),
        ("2024-01-10", "2024-01-11", "missing"),
    ]
    assert work_of(plan)[DAILY]["reason"] == "missing"
    # A table that reads it is rebuilt in the same run.
    assert work_of(plan)["transform.summary"]["reason"] == "upstream_intervals"
    # Nothing missing: nothing to do, not even the lookback.
    state = done(plan, base=state, daily=[["2024-01-01", "2024-01-11"]])
    again = compiled(project, state, window=window("2024-01-10"))
    assert DAILY not in work_of(again) and "transform.summary" not in work_of(again)


def test_every_gap_is_found(project: Path) -> None:
    first = compiled(project, window=window("2024-01-12"))
    state = done(first, daily=[["2024-01-01", "2024-01-04"], ["2024-01-06", "2024-01-09"]])
    plan = compiled(project, state, window=window("2024-01-12"))
    assert ranges(work_of(plan)[DAILY]) == [
        ("2024-01-03", "2024-01-04", "lookback"),
        ("2024-01-04", "2024-01-06", "missing"),
        ("2024-01-08", "2024-01-09", "lookback"),
        ("2024-01-09", "2024-01-13", "missing"),
    ]


def test_start_limits_the_window(project: Path) -> None:
    first = compiled(project, window=window("2024-01-12"))
    state = done(first, daily=[["2024-01-06", "2024-01-09"]])
    plan = compiled(project, state, window=window("2024-01-12", start="2024-01-08"))
    assert ranges(work_of(plan)[DAILY]) == [
        ("2024-01-08", "2024-01-09", "lookback"),
        ("2024-01-09", "2024-01-13", "missing"),
    ]


def test_restatement_reaches_incremental_descendants_and_tables(project: Path) -> None:
    first = compiled(project, window=window("2024-01-14"))
    state = done(
        first,
        daily=[["2024-01-01", "2024-01-15"]],
        hourly=[["2024-01-01", "2024-01-15"]],
        weekly=[["2024-01-01", "2024-01-15"]],
    )
    plan = compiled(
        project,
        state,
        window=window("2024-01-09", start="2024-01-08", restate=(DAILY,)),
    )
    work = work_of(plan)
    assert ranges(work[DAILY]) == [("2024-01-08", "2024-01-10", "restatement")]
    assert work[DAILY]["reason"] == "restatement"
    # The week holding those days is restated whole, though it ends after the window.
    assert ranges(work["transform.weekly"]) == [("2024-01-08", "2024-01-15", "restatement")]
    assert work["transform.summary"]["reason"] == "restatement"
    assert "transform.hourly" not in work  # not downstream of daily
    assert "source.events" not in work


def test_the_same_restatement_after_a_killed_run_refills_all_it_forgot(project: Path) -> None:
    # The restatement forgot the week holding its start, then was killed: the same
    # command again must fill that whole week, not only from --start on.
    first = compiled(project, window=window("2024-01-21"))
    state = done(
        first,
        daily=[["2024-01-01", "2024-01-22"]],
        hourly=[["2024-01-01", "2024-01-22"]],
        weekly=[["2024-01-01", "2024-01-22"]],
    )
    restate = window("2024-01-21", start="2024-01-10", restate=(DAILY,))
    assert ranges(work_of(compiled(project, state, window=restate))["transform.weekly"]) == [
        ("2024-01-08", "2024-01-22", "restatement")
    ]
    killed = done(
        first,
        daily=[["2024-01-01", "2024-01-10"]],  # forgotten from the 10th, nothing refilled
        hourly=[["2024-01-01", "2024-01-22"]],
        weekly=[["2024-01-01", "2024-01-08"]],
    )
    work = work_of(compiled(project, killed, window=restate))
    assert ranges(work[DAILY]) == [("2024-01-10", "2024-01-22", "missing")]
    assert ranges(work["transform.weekly"]) == [("2024-01-08", "2024-01-22", "missing")]


def test_a_restatement_window_outside_a_nodes_range_restates_nothing_there(
    project: Path,
) -> None:
    first = compiled(project, window=window("2024-01-14"))
    state = done(first, daily=[["2024-01-01", "2024-01-15"]], weekly=[["2024-01-01", "2024-01-15"]])
    # Restating a window that ends before the node starts (its end reached, or its
    # start not yet) restates nothing and is no error.
    plan = compiled(project, state, window=window("2023-12-30", restate=(DAILY,)))
    assert not [w for w in plan["work"] if "intervals" in w]


def test_restating_a_source_restates_what_reads_it(project: Path) -> None:
    first = compiled(project, window=window("2024-01-14"))
    state = done(
        first,
        daily=[["2024-01-01", "2024-01-15"]],
        hourly=[["2024-01-01", "2024-01-15"]],
        weekly=[["2024-01-01", "2024-01-15"]],
    )
    plan = compiled(
        project,
        state,
        window=window("2024-01-02", start="2024-01-02", restate=("source.events",)),
    )
    work = work_of(plan)
    assert work["source.events"]["reason"] == "restatement"
    assert ranges(work[DAILY]) == [("2024-01-02", "2024-01-03", "restatement")]
    assert ranges(work["transform.hourly"]) == [("2024-01-02", "2024-01-03", "restatement")]


def test_a_downstream_node_waits_for_its_upstream_intervals(project: Path) -> None:
    # A gap upstream that this very run fills does not hold anything up.
    first = compiled(project, window=window("2024-01-14"))
    state = done(first, daily=[["2024-01-01", "2024-01-03"], ["2024-01-04", "2024-01-15"]])
    plan = compiled(project, state, window=window("2024-01-14"))
    assert ("2024-01-03", "2024-01-04", "missing") in ranges(work_of(plan)[DAILY])
    assert ranges(work_of(plan)["transform.weekly"]) == [("2024-01-01", "2024-01-15", "missing")]
    # daily stops before the end of the second week: that week can never be complete.
    edit(project / "seeknal/transforms/daily.yml", "lookback: 1", "lookback: 1\n  end: 2024-01-10")
    plan = compiled(project, window=window("2024-01-20"))
    assert ranges(work_of(plan)[DAILY]) == [("2024-01-01", "2024-01-10", "new")]
    assert ranges(work_of(plan)["transform.weekly"]) == [("2024-01-01", "2024-01-08", "new")]
    # And with daily ending before the first week ends, the weekly table is only created.
    edit(project / "seeknal/transforms/daily.yml", "end: 2024-01-10", "end: 2024-01-05")
    plan = compiled(project, window=window("2024-01-20"))
    assert ranges(work_of(plan)["transform.weekly"]) == []


def test_a_breaking_change_fills_a_new_table_from_start(project: Path) -> None:
    first = compiled(project, window=window("2024-01-09"))
    state = done(first, daily=[["2024-01-01", "2024-01-10"]])
    edit(project / "seeknal/transforms/daily.yml", "SUM(amount) AS amount", "MAX(amount) AS amount")
    plan = compiled(project, state, window=window("2024-01-10"))
    assert plan["nodes"][DAILY]["change"]["category"] == "breaking"
    assert plan["nodes"][DAILY]["snapshot"] != first["nodes"][DAILY]["snapshot"]
    assert work_of(plan)[DAILY]["reason"] == "breaking_change"
    assert ranges(work_of(plan)[DAILY]) == [("2024-01-01", "2024-01-11", "breaking_change")]


def test_a_schedule_change_is_breaking(project: Path) -> None:
    first = compiled(project, window=window("2024-01-09"))
    state = done(first, hourly=[["2024-01-01", "2024-01-10"]])
    edit(project / "seeknal/transforms/hourly.yml", '"@hourly"', '"*/30 * * * *"')
    plan = compiled(project, state, window=window("2024-01-09"))
    change = plan["nodes"]["transform.hourly"]["change"]
    assert change["category"] == "breaking"
    assert change["details"] == [{"kind": "materialization_changed"}]


def test_batch_size_and_lookback_change_nothing_built(project: Path) -> None:
    first = compiled(project, window=window("2024-01-09"))
    state = done(first, daily=[["2024-01-01", "2024-01-10"]])
    edit(project / "seeknal/transforms/daily.yml", "batch_size: 3", "batch_size: 7")
    plan = compiled(project, state, window=window("2024-01-09"))
    assert plan["nodes"][DAILY]["snapshot"] == first["nodes"][DAILY]["snapshot"]
    assert DAILY not in work_of(plan)


def test_a_non_breaking_change_keeps_the_table_in_prod(project: Path) -> None:
    first = compiled(project, window=window("2024-01-09"))
    state = done(first, daily=[["2024-01-01", "2024-01-10"]])
    edit(
        project / "seeknal/transforms/daily.yml",
        "SUM(amount) AS amount",
        "SUM(amount) AS amount, MAX(amount) AS biggest",
    )
    plan = compiled(project, state, window=window("2024-01-10"))
    assert plan["nodes"][DAILY]["change"]["category"] == "non_breaking"
    assert plan["nodes"][DAILY]["snapshot"] == first["nodes"][DAILY]["snapshot"]
    item = work_of(plan)[DAILY]
    assert item["add_columns"] is True
    assert ranges(item) == [
        ("2024-01-09", "2024-01-10", "lookback"),
        ("2024-01-10", "2024-01-11", "missing"),
    ]
    # In another environment the change is a preview in a new table.
    dev = compile_project(project, state=state, environment="dev", window=window("2024-01-10"))
    assert dev.plan["nodes"][DAILY]["snapshot"] != first["nodes"][DAILY]["snapshot"]


def test_a_forward_only_change_keeps_the_table(project: Path) -> None:
    first = compiled(project, window=window("2024-01-09"))
    state = done(first, daily=[["2024-01-01", "2024-01-10"]])
    edit(
        project / "seeknal/transforms/daily.yml",
        "SUM(amount) AS amount",
        "SUM(amount) FILTER (WHERE amount > 1) AS amount, MAX(amount) AS biggest",
    )
    plan = compiled(project, state, window=window("2024-01-10"), forward_only=True)
    assert plan["nodes"][DAILY]["change"]["category"] == "forward_only"
    item = work_of(plan)[DAILY]
    assert item["reason"] == "forward_only" and item["add_columns"] is True
    assert ranges(item)[-1] == ("2024-01-10", "2024-01-11", "missing")


@pytest.mark.parametrize(
    ("new_sql", "options"),
    [
        ("SUM(amount) FILTER (WHERE amount > 1) AS amount", {"forward_only": True}),
        ("SUM(amount) AS amount, MAX(amount) AS biggest", {}),  # non-breaking, kept
    ],
    ids=["forward-only", "non-breaking"],
)
def test_going_back_after_a_kept_change_builds_a_new_table(
    project: Path, new_sql: str, options: dict[str, Any]
) -> None:
    # The kept table keeps the original definition's name but holds the changed rows;
    # going back to the original SQL must not reuse it as if it held the original's.
    daily = project / "seeknal/transforms/daily.yml"
    original = compiled(project, window=window("2024-01-09"))
    state = done(original, daily=[["2024-01-01", "2024-01-10"]])
    edit(daily, "SUM(amount) AS amount", new_sql)
    kept = compiled(project, state, window=window("2024-01-12"), **options)
    kept_snapshot = kept["nodes"][DAILY]["snapshot"]
    assert kept_snapshot == original["nodes"][DAILY]["snapshot"]
    state = done(kept, daily=[["2024-01-01", "2024-01-13"]])
    edit(daily, new_sql, "SUM(amount) AS amount")
    back = compiled(project, state, window=window("2024-01-12"))
    assert back["nodes"][DAILY]["change"]["category"] == "breaking"
    assert back["nodes"][DAILY]["snapshot"] != kept_snapshot
    assert ranges(work_of(back)[DAILY]) == [("2024-01-01", "2024-01-13", "breaking_change")]


def test_a_changed_data_file_does_not_rebuild_an_incremental_node(project: Path) -> None:
    first = compiled(project, window=window("2024-01-14"))
    state = done(
        first,
        daily=[["2024-01-01", "2024-01-15"]],
        hourly=[["2024-01-01", "2024-01-15"]],
        weekly=[["2024-01-01", "2024-01-15"]],
    )
    with (project / "data/events.csv").open("a") as fh:
        fh.write("999,2024-01-03 05:00:00,1.00\n")
    plan = compiled(project, state, window=window("2024-01-14"))
    work = work_of(plan)
    assert work["source.events"]["reason"] == "source_data_changed"
    assert DAILY not in work and "transform.hourly" not in work and "transform.weekly" not in work
    # Nor does a table that reads one: the rows it reads did not change.
    assert "transform.summary" not in work
    assert plan["nodes"][DAILY]["data_version"] == first["nodes"][DAILY]["data_version"]
