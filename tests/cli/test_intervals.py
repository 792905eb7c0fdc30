"""`seeknal intervals`, and the window options of compile/plan/run, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import invoke

DAILY = "transform.daily_events"


def test_intervals_before_and_after_runs(shop: Path) -> None:
    before = invoke(shop, "intervals")
    assert before.exit_code == 0, before.output
    assert "(new snapshot: nothing built yet)" in before.output
    assert "missing    [2024-01-01, 2025-01-01)    366 intervals" in before.output
    assert invoke(shop, "run", "-q", "--end", "2024-03-31").exit_code == 0
    after = invoke(shop, "intervals", DAILY)
    assert after.exit_code == 0, after.output
    lines = after.output.splitlines()
    assert lines[0].startswith(f"{DAILY}  @daily  seeknal__transform.daily_events__")
    assert lines[1:] == [
        "  completed  [2024-01-01, 2024-04-01)    91 intervals",
        "  missing    [2024-04-01, 2025-01-01)    275 intervals",
    ]
    # --end counts up to that day instead of now.
    capped = invoke(shop, "intervals", "--end", "2024-04-02")
    assert "  missing    [2024-04-01, 2024-04-03)    2 intervals" in capped.output


def test_intervals_json(shop: Path) -> None:
    assert invoke(shop, "run", "-q", "--end", "2024-01-10").exit_code == 0
    result = invoke(shop, "intervals", "--json", "--end", "2024-01-12")
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)
    assert report["node"] == DAILY
    assert report["completed"] == [["2024-01-01T00:00:00Z", "2024-01-11T00:00:00Z"]]
    assert report["missing"] == [["2024-01-11T00:00:00Z", "2024-01-13T00:00:00Z"]]
    # What the next run would process: the missing days and the lookback before them.
    assert report["next_run"] == [["2024-01-09T00:00:00Z", "2024-01-13T00:00:00Z"]]
    assert report["schedule"] == "0 0 * * *" and report["timezone"] == "UTC"


def test_intervals_of_a_node_that_is_not_incremental(shop: Path) -> None:
    result = invoke(shop, "intervals", "transform.monthly_events")
    assert result.exit_code == 2
    assert "transform.monthly_events is not incremental" in result.output
    assert f"incremental nodes: {DAILY}" in result.output
    result = invoke(shop, "intervals", "transform.daily_event")
    assert result.exit_code == 2
    assert f"did you mean '{DAILY}'?" in result.output


def test_intervals_without_incremental_nodes(minimal: Path) -> None:
    result = invoke(minimal, "intervals")
    assert result.exit_code == 0
    assert "no incremental nodes" in result.output


def test_window_options_are_checked(shop: Path) -> None:
    result = invoke(shop, "run", "--end", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' is not a date or timestamp" in result.output
    result = invoke(shop, "run", "--start", "2024-03-01", "--end", "2024-02-01")
    assert result.exit_code == 2
    assert (
        "--start 2024-03-01 (2024-03-01T00:00:00Z) is not before --end 2024-02-01 "
        "(2024-02-02T00:00:00Z, the end of that day)" in " ".join(result.output.split())
    )
    start, end = "2024-03-01T05:00", "2024-03-01T06:00+02:00"  # 05:00 UTC is after 04:00 UTC
    result = invoke(shop, "run", "--start", start, "--end", end)
    assert result.exit_code == 2
    assert (
        "--start 2024-03-01T05:00 (2024-03-01T05:00:00Z) is not before --end "
        "2024-03-01T06:00+02:00 (2024-03-01T04:00:00Z)" in " ".join(result.output.split())
    )
    result = invoke(shop, "run", "--backfill", "--start", "2024-03-01")
    assert result.exit_code == 2
    assert "--backfill fills every gap" in result.output
    result = invoke(shop, "run", "--restate", "transform.daily_event")
    assert result.exit_code == 2
    assert "--restate: unknown node 'transform.daily_event'" in result.output
    assert not (shop / "target/warehouse.duckdb").exists()


def test_compile_with_an_end_writes_the_same_plan(shop: Path) -> None:
    assert invoke(shop, "compile", "--end", "2024-05-01").exit_code == 0
    first = (shop / "target/plan.json").read_bytes()
    assert invoke(shop, "compile", "--end", "2024-05-01").exit_code == 0
    assert (shop / "target/plan.json").read_bytes() == first
    work = {w["node"]: w for w in json.loads(first)["work"]}
    assert work[DAILY]["intervals"] == [
        {"start": "2024-01-01T00:00:00Z", "end": "2024-05-02T00:00:00Z", "reason": "new"}
    ]


def test_run_json_reports_every_batch(shop: Path) -> None:
    result = invoke(shop, "run", "--json", "--end", "2024-02-15")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    batches = [e for e in events if e["event"] == "batch_built"]
    assert [(b["start"], b["end"]) for b in batches] == [
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"),
        ("2024-02-01T00:00:00Z", "2024-02-16T00:00:00Z"),
    ]
    assert all(b["dropped"] == 0 and b["reason"] == "new" for b in batches)
    assert sum(b["rows"] for b in batches) == 46
    built = next(e for e in events if e["event"] == "node_built" and e["node"] == DAILY)
    assert built["rows"] == 46 and built["dropped"] == 0


def test_plan_shows_the_intervals(shop: Path) -> None:
    assert invoke(shop, "run", "-q", "--end", "2024-01-31").exit_code == 0
    result = invoke(shop, "plan", "--end", "2024-02-02", "--out", "target/next.json")
    assert result.exit_code == 0, result.output
    assert (
        f"  {DAILY}: [2024-01-30, 2024-02-01) lookback; [2024-02-01, 2024-02-03) missing "
        "(batches of 31)" in result.output
    )
    summary = invoke(shop, "plan", "--end", "2024-02-02", "--json")
    intervals = json.loads(summary.output)["intervals"]
    assert intervals[0]["node"] == DAILY and intervals[0]["batch_size"] == 31


def test_daily_runs_keep_the_state_journal_short(shop: Path) -> None:
    """A run that only adds intervals promotes nothing; its batch records are folded
    into the state document once many have gathered, not replayed by every later read."""
    from seeknal.state.file import JOURNAL_FOLD_LINES

    assert invoke(shop, "run", "-q", "--end", "2024-01-10").exit_code == 0
    journal = shop / "target/state/journal.jsonl"
    assert invoke(shop, "run", "-q", "--end", "2024-01-11").exit_code == 0
    lines = journal.read_bytes().splitlines(keepends=True)
    assert 0 < len(lines) < JOURNAL_FOLD_LINES  # the day's batch: recorded, not folded
    # As after many such days: the same records again (replaying them changes nothing).
    journal.write_bytes(b"".join(lines) * JOURNAL_FOLD_LINES)
    before = invoke(shop, "intervals", "--json", "--end", "2024-01-13").output
    assert invoke(shop, "run", "-q", "--end", "2024-01-12").exit_code == 0
    assert journal.read_bytes() == b""  # folded by the run, under its lock
    after = json.loads(invoke(shop, "intervals", "--json", "--end", "2024-01-13").output)
    assert json.loads(before)[0]["completed"] == [["2024-01-01T00:00:00Z", "2024-01-12T00:00:00Z"]]
    assert after[0]["completed"] == [["2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"]]


def test_a_fold_that_fails_does_not_fail_the_run(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seeknal.errors import StateError
    from seeknal.state.file import FileStateBackend

    assert invoke(shop, "run", "-q", "--end", "2024-01-10").exit_code == 0

    def full(self: FileStateBackend) -> bool:
        raise StateError("cannot write the state file: No space left on device")

    monkeypatch.setattr(FileStateBackend, "compact", full)
    result = invoke(shop, "run", "--end", "2024-01-11")
    assert result.exit_code == 0, result.output
    assert "the state journal was not folded, the next run tries again" in result.output
    assert "No space left on device" in result.output


def test_a_run_with_a_failed_node_folds_the_journal_too(shop: Path) -> None:
    from seeknal.state.file import JOURNAL_FOLD_LINES

    assert invoke(shop, "run", "-q", "--end", "2024-01-10").exit_code == 0
    journal = shop / "target/state/journal.jsonl"
    assert invoke(shop, "run", "-q", "--end", "2024-01-11").exit_code == 0
    journal.write_bytes(journal.read_bytes() * JOURNAL_FOLD_LINES)
    monthly = shop / "seeknal/transforms/monthly_events.yml"
    monthly.write_text(
        monthly.read_text(encoding="utf-8").replace(
            "GROUP BY 1", "GROUP BY 1 HAVING error('monthly_events fails') IS NULL"
        ),
        encoding="utf-8",
    )
    result = invoke(shop, "run", "-q", "--end", "2024-01-12")
    assert result.exit_code == 1, result.output
    assert "monthly_events fails" in result.output
    assert journal.read_bytes() == b""  # the day's batch and the rest, folded
    intervals = json.loads(invoke(shop, "intervals", "--json", "--end", "2024-01-13").output)
    assert intervals[0]["completed"] == [["2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"]]
