"""Sources read in place (``materialized: view``): a grown file loads nothing, each run
reads what it asks of the file, and every table equals the same project loaded whole.
End to end on real DuckDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seeknal.state.file import FileStateBackend
from tests.cli.conftest import invoke, tables_of
from tests.conftest import EXAMPLE, copy_project

EVENTS = "seeknal/sources/events.yml"
ORDERS = "seeknal/sources/orders.yml"
# A late event for a day already done (inside the lookback), and the next day's first.
NEW_EVENTS = "90001,7,2024-01-10 23:00:00,purchase,10.00\n90002,3,2024-01-11 08:00:00,visit,0.00\n"


def ok(project: Path, *args: str) -> str:
    result = invoke(project, *args)
    assert result.exit_code == 0, result.output
    return result.output


def in_place(project: Path, node_file: str) -> None:
    path = project / node_file
    path.write_text(path.read_text() + "materialized: view\n")


def append(project: Path, data_file: str, text: str) -> None:
    with (project / data_file).open("a", encoding="utf-8") as fh:
        fh.write(text)


def plan_of(project: Path, *args: str) -> dict[str, Any]:
    ok(project, "compile", "-o", "target/check.json", *args)
    return dict(json.loads((project / "target/check.json").read_text()))


def loaded_whole(tmp_path: Path, end: str, appended: dict[str, str]) -> dict[str, Any]:
    """The example with the same data files, every source loaded (the default), run once."""
    fresh = copy_project(EXAMPLE, tmp_path / "loaded_whole")
    for data_file, text in appended.items():
        append(fresh, data_file, text)
    ok(fresh, "run", "-q", "--end", end)
    return tables_of(fresh / "target/warehouse.duckdb")


def test_a_grown_file_loads_nothing_and_the_new_day_is_read(shop: Path, tmp_path: Path) -> None:
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    plan = plan_of(shop, "--end", "2024-01-10")
    assert plan["nodes"]["source.events"]["materialized"] == "view"
    before = plan["nodes"]["source.events"]["data_version"]
    append(shop, "data/events.csv", NEW_EVENTS)
    plan = plan_of(shop, "--end", "2024-01-11")
    # The view reads the file live: its version does not follow the file's content.
    assert plan["nodes"]["source.events"]["data_version"] == before
    assert [w["node"] for w in plan["work"]] == [
        "transform.daily_events",
        "transform.monthly_events",
    ]
    ok(shop, "run", "-q", "--end", "2024-01-11")
    expected = loaded_whole(tmp_path, "2024-01-11", {"data/events.csv": NEW_EVENTS})
    assert tables_of(shop / "target/warehouse.duckdb") == expected
    assert "nothing to do" in ok(shop, "run", "--end", "2024-01-11")


def test_tables_reading_a_source_read_in_place_are_rebuilt_when_its_file_changes(
    shop: Path, tmp_path: Path
) -> None:
    in_place(shop, ORDERS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    row = "9001,3,2024-03-01,completed,99.50\n"
    header = (shop / "data/orders.csv").read_text().splitlines()[0]
    assert header.count(",") == row.count(",")
    append(shop, "data/orders.csv", row)
    output = ok(shop, "run", "--end", "2024-01-10")
    built = [line.split()[1] for line in output.splitlines() if line.startswith("  built ")]
    assert "transform.daily_revenue" in built  # a table reading the orders
    assert "source.orders" not in built  # the view itself reads the file as it is
    assert "[source data changed]" in output
    expected = loaded_whole(tmp_path, "2024-01-10", {"data/orders.csv": row})
    assert tables_of(shop / "target/warehouse.duckdb") == expected


def test_show_and_query_read_only_the_files_read_in_place(shop: Path) -> None:
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    assert "visit" in ok(shop, "show", "source.events", "--limit", "3")
    assert "1 row" in ok(shop, "query", "SELECT count(*) FROM read_csv('data/events.csv')")
    refused = invoke(shop, "query", "SELECT * FROM read_csv('data/orders.csv')")
    assert refused.exit_code == 2, refused.output
    assert "Permission Error" in refused.output


def test_a_source_materialization_other_than_table_or_view_is_refused(shop: Path) -> None:
    path = shop / EVENTS
    path.write_text(path.read_text() + "materialized: incremental_by_time\n")
    result = invoke(shop, "compile")
    assert result.exit_code == 2, result.output
    assert "seeknal/sources/events.yml:" in result.output
    assert "materialized" in result.output


def test_environments_over_a_source_read_in_place(shop: Path) -> None:
    # Creating a view over such a source reads its file: promote, rollback and the
    # janitor may read it (and only it), as a run does.
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    ok(shop, "promote", "prod", "dev")
    assert "visit" in ok(shop, "show", "source.events", "--env", "dev", "--limit", "3")
    path = shop / "seeknal/transforms/monthly_events.yml"
    path.write_text(path.read_text().replace("SELECT", "SELECT DISTINCT", 1))
    ok(shop, "run", "-q", "--end", "2024-01-10")  # a second apply, to roll back
    ok(shop, "rollback", "prod")
    ok(shop, "env", "delete", "dev")
    ok(shop, "janitor")
    assert "visit" in ok(shop, "show", "source.events", "--limit", "3")


def test_a_file_in_the_working_directory_does_not_stand_in_for_the_projects(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data/events.csv").write_text(
        "event_id,customer_id,event_at,event_type,amount\n1,1,2024-01-01 00:00:00,visit,0\n"
    )
    monkeypatch.chdir(elsewhere)
    for args in (("query", "SELECT count(*) FROM source.events"), ("promote", "prod", "dev")):
        result = invoke(shop, *args)
        assert result.exit_code == 2, result.output
        assert "would be loaded instead of the project's" in " ".join(result.output.split())


def test_only_files_inside_the_project_are_read_in_place(shop: Path, tmp_path: Path) -> None:
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\nsecret\n")
    # The data file swapped for a link out of the project after the run.
    events = shop / "data/events.csv"
    events.unlink()
    events.symlink_to(secret)
    result = invoke(shop, "query", f"SELECT * FROM read_csv('{secret}')")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "data/events.csv, read in place by source.events, leads outside the project" in text
    assert "secret" not in text.replace(str(secret), "")
    # A record naming a file outside the project (a hand-edited plan's) grants nothing.
    events.unlink()
    backend = FileStateBackend(shop / "target/state")
    with backend.lock():
        name, record = next((k, v) for k, v in backend.read().snapshots.items() if v.get("reads"))
        backend.record_snapshot(name, {**record, "reads": str(secret)})
    result = invoke(shop, "query", f"SELECT * FROM read_csv('{secret}')")
    assert result.exit_code == 2, result.output
    assert "leads outside the project and the directories allow_external_data lists" in " ".join(
        result.output.split()
    )


def test_a_missing_file_read_in_place_is_named(shop: Path) -> None:
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    ok(shop, "promote", "prod", "staging")
    (shop / "data/events.csv").unlink()
    ok(shop, "env", "delete", "staging")
    for args in (("show", "source.events"), ("promote", "prod", "dev")):
        result = invoke(shop, *args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "data/events.csv, read in place by source.events, no longer exists" in text
    # Commands that create no view over it still work: dropping a view reads nothing.
    ok(shop, "env", "list")
    ok(shop, "janitor")


def test_a_saved_plan_is_stale_when_a_file_read_in_place_changed(shop: Path) -> None:
    # The work reads the file through the source's view, which is not itself in the
    # work: executed over another file, its tables would be recorded as the plan's.
    in_place(shop, ORDERS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    append(shop, "data/orders.csv", "9001,3,2024-03-01,completed,99.50\n")
    ok(shop, "compile", "--end", "2024-01-10")
    append(shop, "data/orders.csv", "9002,4,2024-03-02,completed,10.00\n")
    before = tables_of(shop / "target/warehouse.duckdb")
    result = invoke(shop, "execute")
    assert result.exit_code == 2, result.output
    assert "data/orders.csv changed since this plan was compiled" in result.output
    assert tables_of(shop / "target/warehouse.duckdb") == before


def test_a_source_read_in_place_from_an_allowed_external_directory(
    shop: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shop / "data/events.csv").rename(shared / "events.csv")
    config = shop / "seeknal_project.yml"
    config.write_text(config.read_text() + "allow_external_data: ['../shared']\n")
    path = shop / EVENTS
    path.write_text(path.read_text().replace("data/events.csv", "../shared/events.csv"))
    in_place(shop, EVENTS)
    ok(shop, "run", "-q", "--end", "2024-01-10")
    assert "visit" in ok(shop, "show", "source.events", "--limit", "3")
    ok(shop, "promote", "prod", "dev")
    assert "1 row" in ok(shop, "query", "SELECT count(*) FROM transform__dev.daily_events")
