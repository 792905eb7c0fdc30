"""The incremental benchmark: one new day through seeknal, against the same day in DuckDB.

A project with one parquet source of site events (``--per-day`` rows a day over January
2024) and one incremental node aggregating them per day is filled up to the 10th (and
one more day is run to warm up). Then, ``repeat`` times, one more day arrives:

- ``seeknal run --end <next day> --json``, as a process of its own. It runs through a
  small wrapper that first imports every module such a run imports (the list is taken
  from the warm-up run), then calls seeknal's entry point: so the process splits into
  seeknal's **start-up** (interpreter, imports) and its **work** (compile, state,
  guards, the SQL, promotion), the same code path the console script takes;
- the same day done by **plain DuckDB**, as a process of its own: a script that imports
  DuckDB, opens (a copy of) the warehouse, replaces the day in the node's table (DELETE,
  and INSERT of the plan's engine SQL with the day's bounds, in one transaction) and
  closes it: what the day costs without seeknal, the file opened and the write made
  durable. Its work is timed from opening the warehouse to closing it;
- the day's SQL alone: the plan's engine SQL run as ``CREATE TEMP TABLE ... AS`` in a
  process already connected to the warehouse (neither opening the file nor writing);
- process start-up: the interpreter importing DuckDB, the floor of any Python process
  that runs DuckDB SQL.

The target, "seeknal's overhead beyond process start-up within 10%", is judged on the
work: ``seeknal's work / plain DuckDB's work`` at most 1.10. Stricter figures are shown
beside it: the whole processes, ``(run - start-up) / (plain job - start-up)`` with
start-up = python + import duckdb (so seeknal's own imports count against it), and
``(run - start-up) / day's SQL``. Fixed costs weigh more the smaller a day is, so every
ratio falls as ``--per-day`` grows.

Python's bytecode cache is allowed in the timed processes (``PYTHONDONTWRITEBYTECODE``
is dropped): with it off, every process compiles seeknal's sources again, which no
installed seeknal does.

With ``--beside N`` the incremental node sits in a layered project of N other
transforms (``bench/generate.py``): what one new day costs in a real project, where the
run also compiles, checks and promotes everything else.

Usage::

    python bench/incremental.py [--per-day 200000] [--repeat 5] [--work DIR] [--beside 1000]
    python bench/incremental.py --growing [--per-day 200000] [--repeat 5]

With ``--growing`` the source file grows by one day before each run, as an event log
does: ``seeknal run`` with the source loaded (the default) against read in place
(``materialized: view``), and plain DuckDB doing the day straight from the file.
"""

from __future__ import annotations

import argparse
import json
import os
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
FILLED_UNTIL = date(2024, 1, 10)  # twenty days left to time: the median steadies
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
# The day by hand: argv = warehouse, table, time column, start, end, engine SQL; the
# engine SQL's time parameters are bound as seeknal binds them.
PLAIN_JOB = """\
import json, sys, time
from datetime import datetime
import duckdb
database, table, column, start, end, sql = sys.argv[1:7]
start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
values = {"start_ts": start, "end_ts": end, "start_date": start.date(), "end_date": end.date()}
began = time.perf_counter()
con = duckdb.connect(database)
con.execute("BEGIN TRANSACTION")
con.execute(f"DELETE FROM {table} WHERE {column} >= $s AND {column} < $e", {"s": start, "e": end})
con.execute(f"INSERT INTO {table} BY NAME " + sql, {p: values[p] for p in values if "$" + p in sql})
con.execute("COMMIT")
con.close()
print(json.dumps({"work": time.perf_counter() - began}))
"""
# seeknal's entry point, with every module the run needs imported first: argv = the
# module list file (written by this run when it does not exist yet), then seeknal's args.
TIMED_RUN = """\
import importlib, json, os, sys, time
began = time.perf_counter()
listing = sys.argv[1]
discover = not os.path.exists(listing)
if not discover:
    import seeknal.cli.main  # the entry point first: its import order is the run's
    for name in open(listing).read().split():
        importlib.import_module(name)
ready = time.perf_counter()

def finish():
    done = time.perf_counter()
    if discover:
        names = sorted(n for n, m in list(sys.modules.items())
                       if n != "__main__" and getattr(m, "__spec__", None) is not None)
        with open(listing, "w") as fh:
            fh.write("\\n".join(names))
    print(json.dumps({"start_up": ready - began, "work": done - ready}), file=sys.stderr)
    sys.stderr.flush()

# The command line ends its process with os._exit once its command is done (it skips
# the teardown: seeknal/process.py): the work ends there.
exit_now = os._exit
def timed_exit(code):
    finish()
    exit_now(code)
os._exit = timed_exit
from seeknal.cli.main import main
sys.argv = ["seeknal", *sys.argv[2:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
finish()
sys.exit(code)
"""


def write_project(root: Path, per_day: int, beside: int = 0) -> Path:
    """The benchmark project, its parquet written by DuckDB (seeded: same bytes each time).

    With ``beside``, the incremental node lives in a layered project of that many
    transforms (``bench/generate.py``), as it would in a real warehouse.
    """
    shutil.rmtree(root, ignore_errors=True)
    if beside:
        generator = [sys.executable, str(BENCH / "generate.py"), str(root)]
        subprocess.run([*generator, "--transforms", str(beside)], check=True, capture_output=True)
    else:
        root.mkdir(parents=True)
        (root / "seeknal_project.yml").write_text(PROJECT_YML)
    (root / "seeknal/sources").mkdir(parents=True, exist_ok=True)
    (root / "seeknal/transforms").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
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


def timing_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with Python's bytecode cache allowed."""
    out = dict(os.environ if env is None else env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def _run(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, str, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout, done.stderr


def _last_json(text: str) -> dict[str, Any]:
    line = [x for x in text.splitlines() if x.startswith("{")][-1]
    value: dict[str, Any] = json.loads(line)
    return value


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
    beside: int = 0,
) -> dict[str, Any]:
    """Fill the project to the 10th, warm up with the 11th, then time ``repeat``
    one-new-day runs; medians.

    ``seeknal`` is the command that fills the project (a path, or argv); the timed runs
    call the entry point of the seeknal this interpreter imports with ``env``. With
    ``beside``, the project also holds that many other transforms (see
    :func:`write_project`): every run compiles and checks them too, and both seeknal and
    the plain job open and checkpoint a warehouse that holds their tables.
    """
    if not 1 <= repeat <= DAYS - FILLED_UNTIL.day - 1:
        raise ValueError(f"repeat must be between 1 and {DAYS - FILLED_UNTIL.day - 1}")
    env = timing_env(env)
    name = f"incremental-{beside}" if beside else "incremental"
    project = write_project(work / name, per_day, beside)
    base = [*([seeknal] if isinstance(seeknal, str) else seeknal), "--project", str(project)]
    _run([*base, "run", "-q", "--end", FILLED_UNTIL.isoformat()], env)
    listing = work / f"{name}-modules.txt"
    listing.unlink(missing_ok=True)
    warehouse = project / "target/warehouse.duckdb"
    plan_path = project / "target/plan.json"
    figures: dict[str, list[float]] = {k: [] for k in _SERIES}
    for index in range(repeat + 1):
        day = FILLED_UNTIL + timedelta(days=index + 1)
        begin = datetime(day.year, day.month, day.day)
        # The plain job starts from the warehouse as the run finds it (the day not there
        # yet), and the two take turns going first: a process runs the day's SQL faster
        # right after another process ran it (by 2-5 ms here: the machine's caches), which
        # would favour whichever always went second.
        copy = _copy_warehouse(warehouse, work) if index else None
        plain_first = index % 2 == 1
        if copy is not None and plain_first:
            plain, plain_work = _plain_job(copy, plan_path, begin, env)
        argv = [sys.executable, "-c", TIMED_RUN, str(listing), "--project", str(project)]
        elapsed, out, err = _run([*argv, "run", "--json", "--end", day.isoformat()], env)
        if copy is None:
            continue  # the warm-up: it lists the modules a one-day run imports
        if not plain_first:
            plain, plain_work = _plain_job(copy, plan_path, begin, env)
        split = _last_json(err)
        figures["runs"].append(elapsed)
        figures["run_start_up"].append(split["start_up"])
        figures["run_work"].append(split["work"])
        figures["executes"].append(_finished_seconds(out))
        figures["plain_jobs"].append(plain)
        figures["plain_work"].append(plain_work)
        figures["day_sql"].append(_day_sql(warehouse, plan_path, begin, env))
        figures["start_up"].append(_run([sys.executable, "-c", START_UP], env)[0])
    med = {k: statistics.median(v) for k, v in figures.items()}
    run, start, plain, sql = med["runs"], med["start_up"], med["plain_jobs"], med["day_sql"]
    return {
        "per_day": per_day,
        "beside": beside,
        "rows": per_day * DAYS,
        **figures,
        "medians": med,
        "work_ratio": med["run_work"] / med["plain_work"],
        "job_ratio": (run - start) / (plain - start) if plain > start else None,
        "overhead_ratio": (run - start) / sql if sql else None,
        "execute_ratio": med["executes"] / sql if sql else None,
    }


# Each timed series, in the order describe() shows them.
_SERIES = (
    "runs",
    "run_start_up",
    "run_work",
    "executes",
    "plain_jobs",
    "plain_work",
    "day_sql",
    "start_up",
)


def _day_sql(warehouse: Path, plan_path: Path, begin: datetime, env: dict[str, str]) -> float:
    """Seconds of the day's SELECT alone, in a warm read-only connection."""
    end = begin + timedelta(days=1)
    argv = [sys.executable, "-c", DAY_SQL, str(warehouse), str(plan_path), NODE]
    out = _run([*argv, begin.isoformat(), end.isoformat()], env)[1]
    return float(json.loads(out)["seconds"])


def _copy_warehouse(warehouse: Path, work: Path) -> Path:
    """A copy of ``warehouse`` (and its log, if any) for the plain job, on disk."""
    copy = work / "plain.duckdb"
    for suffix in ("", ".wal"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
        if Path(f"{warehouse}{suffix}").exists():
            shutil.copyfile(f"{warehouse}{suffix}", f"{copy}{suffix}")
            # On disk before the clock starts: else the job's checkpoint (an fsync) would
            # also flush the copy, and plain DuckDB would look slower than it is.
            with open(f"{copy}{suffix}", "rb+") as fh:
                os.fsync(fh.fileno())
    return copy


def _plain_job(
    copy: Path,
    plan_path: Path,
    begin: datetime,
    env: dict[str, str],
    cwd: Path | None = None,
) -> tuple[float, float]:
    """Plain DuckDB replacing the day ``begin`` in ``copy``, a copy of the warehouse
    (:func:`_copy_warehouse`): the process's seconds, and those from opening the
    warehouse to closing it. ``cwd``: where relative data file names resolve (a source
    read in place names its file so)."""
    node = json.loads(plan_path.read_text(encoding="utf-8"))["nodes"][NODE]
    schema, _, name = node["snapshot"].partition(".")
    table = f'"{schema}"."{name}"'
    column = node["incremental"]["time_column"]
    end = begin + timedelta(days=1)
    argv = [sys.executable, "-c", PLAIN_JOB, str(copy), table, f'"{column}"']
    argv += [begin.isoformat(), end.isoformat(), node["sql"]["engine"]]
    elapsed, out, _ = _run(argv, env, cwd)
    return elapsed, float(_last_json(out)["work"])


# A growing source: days timed, after a warm-up day.
GROWING_SERIES = ("table_runs", "view_runs", "plain_file_jobs")


def measure_growing(
    seeknal: str | list[str],
    work: Path,
    per_day: int,
    repeat: int,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One new day arriving in a source file that grows: before each run the file is
    written again with one more day, as an event log grows. Timed as whole processes:
    ``seeknal run`` with the source loaded (``materialized: table``, the default: the
    file is loaded again, whole) and read in place (``materialized: view``), and a plain
    DuckDB job doing the day straight from the file (open, replace the day, close)."""
    if not 1 <= repeat <= DAYS - FILLED_UNTIL.day - 1:
        raise ValueError(f"repeat must be between 1 and {DAYS - FILLED_UNTIL.day - 1}")
    env = timing_env(env)
    full = write_project(work / "growing-full", per_day)
    month = full / "data/events.parquet"
    base = [seeknal] if isinstance(seeknal, str) else list(seeknal)
    projects = {}
    for mode in ("table", "view"):
        root = work / f"growing-{mode}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(full, root)
        if mode == "view":
            source = root / "seeknal/sources/events.yml"
            source.write_text(source.read_text() + "materialized: view\n")
        _write_until(month, root / "data/events.parquet", FILLED_UNTIL)
        _run([*base, "--project", str(root), "run", "-q", "--end", FILLED_UNTIL.isoformat()], env)
        projects[mode] = root
    figures: dict[str, list[float]] = {k: [] for k in GROWING_SERIES}
    for index in range(repeat + 1):
        day = FILLED_UNTIL + timedelta(days=index + 1)
        for mode, root in projects.items():
            _write_until(month, root / "data/events.parquet", day)
            argv = [*base, "--project", str(root), "run", "-q", "--end", day.isoformat()]
            elapsed = _run(argv, env)[0]
            if index:  # the first day warms up
                figures[f"{mode}_runs"].append(elapsed)
        view = projects["view"]
        begin = datetime(day.year, day.month, day.day)
        copy = _copy_warehouse(view / "target/warehouse.duckdb", work)
        plain = _plain_job(copy, view / "target/plan.json", begin, env, view)[0]
        if index:
            figures["plain_file_jobs"].append(plain)
    return {
        "per_day": per_day,
        **figures,
        "medians": {k: statistics.median(v) for k, v in figures.items()},
    }


def _write_until(month: Path, out: Path, last: date) -> None:
    """The events of ``month`` up to the end of day ``last``, as the file would be then."""
    end = (last + timedelta(days=1)).isoformat()
    duckdb.sql(
        f"COPY (SELECT * FROM read_parquet('{month.as_posix()}') WHERE event_at < "
        f"TIMESTAMP '{end}' ORDER BY event_at) TO '{out.as_posix()}' (FORMAT parquet)"
    )


def describe_growing(result: dict[str, Any]) -> str:
    med = result["medians"]
    return "\n".join(
        [
            f"incremental, one new day of {result['per_day']:,} events arriving in a "
            "growing source file, medians:",
            f"  seeknal run, source loaded (table)       {med['table_runs']:8.3f}s",
            f"  seeknal run, source read in place (view) {med['view_runs']:8.3f}s",
            f"  plain DuckDB job, the day from the file  {med['plain_file_jobs']:8.3f}s",
        ]
    )


def describe(result: dict[str, Any]) -> str:
    med = result["medians"]
    work, job, ratio = result["work_ratio"], result["job_ratio"], result["overhead_ratio"]
    met = work <= 1.10
    return "\n".join(
        [
            f"incremental, one new day of {result['per_day']:,} events "
            f"({result['rows']:,} in the source"
            + (f"; {result['beside']:,} other transforms" if result.get("beside") else "")
            + "), medians:",
            f"  seeknal run (process)                    {med['runs']:8.3f}s",
            f"    its start-up (interpreter, imports)    {med['runs'] - med['run_work']:8.3f}s",
            f"    its work (compile, state, SQL)         {med['run_work']:8.3f}s",
            f"    its execute (as it reports)            {med['executes']:8.3f}s",
            f"  plain DuckDB job for the day (process)   {med['plain_jobs']:8.3f}s",
            f"    its start-up (interpreter, duckdb)     {med['plain_jobs'] - med['plain_work']:8.3f}s",
            f"    its work (open, replace, close)        {med['plain_work']:8.3f}s",
            f"  that day's SQL alone in DuckDB (warm)    {med['day_sql']:8.3f}s",
            f"  start-up (python + import duckdb)        {med['start_up']:8.3f}s",
            f"  seeknal's work / plain DuckDB's work     {work:8.2f}x  "
            f"(target 1.10x: {'met' if met else 'not met'})",
            f"  (run - start-up) / (job - start-up)      {_times(job)}  (whole processes)",
            f"  (run - start-up) / day's SQL             {_times(ratio)}",
        ]
    )


def _times(ratio: float | None) -> str:
    """A ratio for the table; ``n/a`` when its denominator was not positive (on a tiny
    day, the plain job can finish within the noise of Python's start-up)."""
    return "     n/a " if ratio is None else f"{ratio:8.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=BENCH / ".work")
    parser.add_argument("--seeknal", default=str(Path(sys.executable).parent / "seeknal"))
    parser.add_argument("--beside", type=int, default=0, help="other transforms in the project")
    parser.add_argument(
        "--growing", action="store_true", help="a source file that grows by a day each run"
    )
    args = parser.parse_args(argv)
    if args.growing:
        grown = measure_growing(args.seeknal, args.work, args.per_day, args.repeat)
        print(describe_growing(grown))
        return 0
    result = measure(args.seeknal, args.work, args.per_day, args.repeat, beside=args.beside)
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
