"""What commands print: a closed pipe, --quiet, counts and their nouns, JSON rows."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import click
import pytest

from seeknal.cli.main import COMMANDS, cli
from tests.cli.conftest import SEEKNAL, invoke, run_process, tables_of

COUNT = "kind: transform\nname: order_count\ntransform: SELECT COUNT(*) AS n FROM source.orders\n"


@pytest.mark.slow
def test_run_finishes_when_its_reader_goes_away(shop: Path) -> None:
    # `seeknal run --json | head -0`: the reader is gone before the first line, so
    # every write fails (with `head -5`, only the ones after the fifth line would).
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [SEEKNAL, "--project", str(shop), "run", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no BrokenPipeError, no "Exception ignored" at exit
    # The run went on to the end: every node built and promoted, state up to date.
    assert len(tables_of(shop / "target/warehouse.duckdb")) == 13
    assert "nothing to do" in run_process(shop, "run").stdout


@pytest.mark.slow
def test_run_piped_into_head_keeps_running(shop: Path) -> None:
    done = subprocess.run(
        f"{SEEKNAL} --project {shop} run --json | head -2",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert len(done.stdout.splitlines()) == 2
    assert "Error" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert "nothing to do" in run_process(shop, "run").stdout


def test_query_piped_into_a_closed_pipe_exits_quietly(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [SEEKNAL, "--project", str(shop), "query", "SELECT * FROM source.orders"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)

    assert done.returncode == 0
    assert done.stderr == ""


def test_quiet_run_prints_only_the_result(minimal: Path) -> None:
    first = run_process(minimal, "run", "-q")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [first.stdout.strip()]  # one line
    assert first.stdout.startswith("run finished in ")
    assert first.stdout.rstrip().endswith("built 2, reused 0")

    again = run_process(minimal, "run", "--quiet")
    assert again.stdout.strip() == "nothing to do: environment 'prod' is up to date"


def test_quiet_run_prints_failures_and_the_result(minimal: Path) -> None:
    totals = minimal / "seeknal/transforms/customer_totals.yml"
    totals.write_text(totals.read_text().replace("SUM(amount)", "SUM(CAST('x' || amount AS INT))"))

    failed = run_process(minimal, "run", "-q")

    assert failed.returncode == 1
    assert failed.stdout.strip().startswith("run finished in ")
    assert failed.stdout.strip().endswith("1 node failed")
    assert "FAILED   transform.customer_totals" in failed.stderr
    assert "built" not in failed.stdout


def test_one_row_is_one_row_and_reused_counts_what_was_kept(minimal: Path) -> None:
    (minimal / "seeknal/transforms/order_count.yml").write_text(COUNT)

    first = run_process(minimal, "run")
    assert first.returncode == 0, first.stderr
    assert "built    transform.order_count" in first.stdout
    line = next(ln for ln in first.stdout.splitlines() if "transform.order_count" in ln)
    assert " 1 row, " in line and "1 rows" not in first.stdout
    assert "built 3, reused 0" in first.stdout

    (minimal / "seeknal/transforms/order_count.yml").write_text(COUNT.replace("n FROM", "k FROM"))
    second = run_process(minimal, "run")
    assert second.returncode == 0, second.stderr
    assert "built 1, reused 2" in second.stdout  # two nodes kept their snapshots

    events = [json.loads(x) for x in run_process(minimal, "run", "--json").stdout.splitlines()]
    finished = next(e for e in events if e["event"] == "run_finished")
    assert finished["message"].endswith("built 0, reused 3")


def test_json_rows_keep_columns_of_the_same_name(shop: Path) -> None:
    assert run_process(shop, "run").returncode == 0

    result = invoke(shop, "query", "SELECT 1 AS a, 2 AS a, 3 AS a_1, 4 AS b", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"a": 1, "a_2": 2, "a_1": 3, "b": 4}]
    table = invoke(shop, "query", "SELECT 1 AS a, 2 AS a")
    assert table.output.count("a") >= 2 and "1 row" in table.output


def test_every_command_is_found_by_its_name_and_listed_in_order() -> None:
    """Commands load lazily from seeknal.cli.main.COMMANDS: each name finds its command."""
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == list(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
    assert cli.get_command(ctx, "complie") is None
