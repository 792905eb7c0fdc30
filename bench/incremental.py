"""The incremental benchmark: one new day through seeknal, against that day's SQL alone.

A project with one parquet source of site events (``--per-day`` rows a day over January
2024) and one incremental node aggregating them per day is filled up to the 20th. Then,
``repeat`` times, one more day arrives:

- ``seeknal run --end <next day> --json`` as a whole process (compile + execute), and the
  in-process execute time it reports;
- the same day's SQL alone in DuckDB: the plan's engine SQL with that day's bounds bound,
  run as ``CREATE TEMP TABLE ... AS`` in a process already connected to the warehouse
  (so neither interpreter start-up nor opening the file counts);
- process start-up: the interpreter importing DuckDB, the floor any Python process that
  runs DuckDB SQL pays (seeknal imports neither sqlglot nor Jinja on this path now, so
  counting them as start-up would flatter it).

The target: seeknal's time beyond start-up within 10% of the day's SQL. It is reported
as ``(run - start-up) / day's SQL``; fixed costs (compiling, hashing the source file,
state) weigh more the smaller a day is, so the ratio falls as ``--per-day`` grows.

Usage::

    python bench/incremental.py [--per-day 200000] [--repeat 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

BENCH = Path(__file__).resolve().parent
FILLED_UNTIL = date(2024, 1, 20)
DAYS = 31
NODE = "transform.daily_events"

PROJECT_YML = "name: bench_incremental\ndialect: duckdb\n"
SOURCE_YML = """\
kind: source
name: events
source: parquet
table: data/events.parquet
"""
NODE_YML = """\
kind: transform
name: daily_events
materialized: incremental_by_time
incremental:
  time_column: event_date
  schedule: "@daily"
  start: 2024-01-01
  end: 2024-02-01
transform: |
  SELECT
      CAST(event_at AS DATE) AS event_date,
      event_type,
      COUNT(*) AS events,
      COUNT(DISTINCT customer_id) AS customers,
      SUM(amount) AS revenue,
      MEDIAN(amount) AS median_amount,
      MAX(amount) AS largest
  FROM source.events
  WHERE event_at >= {{ start_ts }} AND event_at < {{ end_ts }}
  GROUP BY 1, 2
"""
START_UP = "import duckdb"
DAY_SQL = """\
import json, sys, time
from datetime import datetime
import duckdb
plan = json.load(open(sys.argv[2]))
node = plan["nodes"][sys.argv[3]]
con = duckdb.connect(sys.argv[1], read_only=True)
start, end = datetime.fromisoformat(sys.argv[4]), datetime.fromisoformat(sys.argv[5])
values = {"start_ts": start, "end_ts": end, "start_date": start.date(), "end_date": end.date()}
params = {p: values[p] for p in node["incremental"]["parameters"]}
con.execute("SELECT 1").fetchall()  # the connection is warm, as seeknal's is
began = time.perf_counter()
con.execute("CREATE TEMP TABLE day AS " + node["sql"]["engine"], params)
print(json.dumps({"seconds": time.perf_counter() - began}))
"""


def write_project(root: Path, per_day: int) -> Path:
    """The benchmark project, its parquet written by DuckDB (seeded: same bytes each time)."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "seeknal/sources").mkdir(parents=True)
    (root / "seeknal/transforms").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "seeknal_project.yml").write_text(PROJECT_YML)
    (root / "seeknal/sources/events.yml").write_text(SOURCE_YML)
    (root / "seeknal/transforms/daily_events.yml").write_text(NODE_YML)
    rows = per_day * DAYS
    step = 86_400 * DAYS / rows
    duckdb.sql(
        f"""
        COPY (
            SELECT
                i AS event_id,
                CAST(hash(i) % 50000 AS INTEGER) AS customer_id,
                TIMESTAMP '2024-01-01' + TO_MICROSECONDS(CAST(i * {step} * 1e6 AS BIGINT))
                    AS event_at,
                ['visit', 'visit', 'cart', 'purchase'][1 + CAST(hash(i * 7) % 4 AS INTEGER)]
                    AS event_type,
                CAST((hash(i * 13) % 20000) / 100.0 AS DECIMAL(10, 2)) AS amount
            FROM range({rows}) AS t(i)
            ORDER BY event_at
        ) TO '{(root / "data/events.parquet").as_posix()}' (FORMAT parquet)
        """
    )
    return root


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout


def _finished_seconds(stdout: str) -> float:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and json.loads(line).get("event") == "run_finished":
            return float(json.loads(line)["seconds"])
    raise ValueError("no run_finished event")


def measure(
    seeknal: str | list[str],
    work: Path,
    per_day: int,
    repeat: int,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Fill the project to the 20th, then time ``repeat`` one-new-day runs; medians.

    ``seeknal`` is the command (a path, or argv) and ``env`` its environment.
    """
    project = write_project(work / "incremental", per_day)
    base = [*([seeknal] if isinstance(seeknal, str) else seeknal), "--project", str(project)]
    _run([*base, "run", "-q", "--end", FILLED_UNTIL.isoformat()], env)
    runs, executes, sqls, starts = [], [], [], []
    for index in range(repeat):
        day = FILLED_UNTIL + timedelta(days=index + 1)
        elapsed, out = _run([*base, "run", "--json", "--end", day.isoformat()], env)
        runs.append(elapsed)
        executes.append(_finished_seconds(out))
        begin = datetime(day.year, day.month, day.day)
        _, out = _run(
            [
                sys.executable,
                "-c",
                DAY_SQL,
                str(project / "target/warehouse.duckdb"),
                str(project / "target/plan.json"),
                NODE,
                begin.isoformat(),
                (begin + timedelta(days=1)).isoformat(),
            ]
        )
        sqls.append(float(json.loads(out)["seconds"]))
        starts.append(_run([sys.executable, "-c", START_UP])[0])
    run, execute, sql, start = (statistics.median(x) for x in (runs, executes, sqls, starts))
    return {
        "per_day": per_day,
        "rows": per_day * DAYS,
        "runs": runs,
        "executes": executes,
        "day_sql": sqls,
        "start_up": starts,
        "run": run,
        "execute": execute,
        "sql": sql,
        "start": start,
        "overhead_ratio": (run - start) / sql if sql else None,
        "execute_ratio": execute / sql if sql else None,
    }


def describe(result: dict[str, Any]) -> str:
    ratio = result["overhead_ratio"]
    met = ratio is not None and ratio <= 1.10
    return "\n".join(
        [
            f"incremental, one new day of {result['per_day']:,} events "
            f"({result['rows']:,} in the source):",
            f"  seeknal run (process)                 {result['run']:8.3f}s",
            f"  seeknal execute (in-process)          {result['execute']:8.3f}s",
            f"  that day's SQL alone in DuckDB        {result['sql']:8.3f}s",
            f"  start-up (python + import duckdb)     {result['start']:8.3f}s",
            f"  (run - start-up) / day's SQL          {ratio:8.2f}x  "
            f"(target 1.10x: {'met' if met else 'not met'})",
            f"  execute / day's SQL                   {result['execute_ratio']:8.2f}x",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=BENCH / ".work")
    parser.add_argument("--seeknal", default=str(Path(sys.executable).parent / "seeknal"))
    args = parser.parse_args(argv)
    result = measure(args.seeknal, args.work, args.per_day, args.repeat)
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
