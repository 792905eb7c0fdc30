"""seeknal's benchmark: compile at scale, execution against plain DuckDB.

For generated layered projects of N transforms (``--sizes``, default 100, 1000 and 5000;
see generate.py), each measured as whole processes, median of ``--repeat`` runs (fewer
at 5000):

- compile, cold: ``seeknal compile`` with an empty compile cache and no ``target/``;
- compile, one file changed: one transform in the middle of the graph gets a new filter
  constant (same output columns), then ``seeknal compile``;
- compile, no-op: ``seeknal compile`` again, nothing changed;
- first execute: ``seeknal execute`` of the plan on an empty warehouse and state, with
  the default thread pool, and with ``--threads 1``;
- plain DuckDB: bench/direct.py, the same SQL run sequentially by a plain script;
- run, no-op: ``seeknal run`` when everything is built (compile + nothing to build);
- peak memory (maximum RSS) of the cold compile and the first execute processes.

Also ``seeknal --help``, Python's own start-up, and a fixed pure-Python loop, which says
how fast this machine was at the time (other work on it slows every figure alike).

And one new day of an incremental model (bench/incremental.py, ``--per-day`` events a
day): ``seeknal run`` against a plain DuckDB process doing the same day, twenty days each
whatever ``--repeat`` says (a few milliseconds decide it); the target is seeknal's work
(after its imports) within 1.10x of the plain job's. The same day is also
shown in a project of ``--beside`` other transforms (1,000 by default): what a day costs
in a real project, where every run also compiles and checks everything else. And the
same day arriving in a source file that grows by a day before each run (six days): the
source loaded (the default) against read in place (``materialized: view``), beside a
plain DuckDB job doing the day straight from the file; shown, with no target.

Prints a table with ratios against plain DuckDB and the targets, compares with the
previous ``bench/results.json``, and writes it again. A time budget (``--budget``,
seconds) keeps the whole run under ten minutes on a slow machine: when it runs out,
the remaining repetitions are skipped and the table says so.

Usage::

    python bench/run.py [--sizes 100,1000,5000] [--repeat 3] [--budget 540]
        [--per-day 200000] [--beside 1000] [--skip-incremental]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import generate  # bench/ is on sys.path when this file runs as a script
import incremental

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TIMEOUT = 900
# Targets of issue #6: name -> (measurement, limit, unit of the limit).
TARGETS = {
    "cold compile, 1000 transforms": ("compile, cold", 1000, 5.0, "s"),
    "compile after one changed file, 1000 transforms": (
        "compile, one file changed",
        1000,
        1.0,
        "s",
    ),
    "no-op compile, 1000 transforms": ("compile, no-op", 1000, 1.0, "s"),
    "peak memory, 5000 transforms": ("compile, cold", 5000, 1024.0, "MB"),
    "seeknal --help": ("seeknal --help", None, 0.3, "s"),
}
# first execute / plain DuckDB, and (one new day - start-up) / that day's SQL, must stay
# within this ratio.
EXECUTE_RATIO = 1.10
# What each scenario measures, in order (per size; the incremental ones once).
SCENARIOS = (
    "compile, cold",
    "compile, one file changed",
    "compile, no-op",
    "first execute",
    "first execute, --threads 1",
    "plain DuckDB, same SQL (sequential)",
    "run, no-op",
)
INCREMENTAL = {
    "runs": "incremental: seeknal run, one new day",
    "run_work": "incremental: seeknal run's work (after its imports)",
    "executes": "incremental: seeknal execute, one new day (in-process)",
    "plain_jobs": "incremental: plain DuckDB job for the day",
    "plain_work": "incremental: plain DuckDB job's work (open, replace, close)",
    "day_sql": "incremental: that day's SQL alone in DuckDB",
    "start_up": "incremental: python start + import duckdb",
}
GROWING = {
    "table_runs": "incremental: seeknal run, one new day, source loaded",
    "view_runs": "incremental: seeknal run, one new day, source read in place",
    "plain_file_jobs": "incremental: plain DuckDB job, the day from the file",
}
GROWING_UNIT = "events a day, growing source file"
GROWING_DAYS = 6


@dataclass
class Measurement:
    """Repeated timings (seconds) and peak memory (MB) of one benchmark."""

    name: str
    size: int | None = None
    times: list[float] = field(default_factory=list)
    inner: list[float] = field(default_factory=list)  # in-process seconds the command reports
    peak_mb: list[float] = field(default_factory=list)
    error: str | None = None
    skipped: int = 0

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def inner_median(self) -> float | None:
        return statistics.median(self.inner) if self.inner else None

    @property
    def peak(self) -> float | None:
        return max(self.peak_mb) if self.peak_mb else None

    unit: str = "transforms"

    @property
    def label(self) -> str:
        return self.name if self.size is None else f"{self.name} ({self.size:,} {self.unit})"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "times": self.times}
        if self.size is not None:
            out.update(size=self.size, unit=self.unit)
        if self.times:
            out.update(median=self.median, min=min(self.times), max=max(self.times))
        if self.inner:
            out.update(inner=self.inner, inner_median=self.inner_median)
        if self.peak_mb:
            out["peak_mb"] = self.peak
        if self.error:
            out["error"] = self.error
        if self.skipped:
            out["skipped"] = self.skipped
        return out


class CommandFailed(Exception):
    pass


@dataclass(frozen=True)
class Finished:
    seconds: float
    stdout: str
    peak_mb: float


def measured(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Finished:
    """Run ``argv`` to the end: its wall time, stdout and peak memory (its maximum RSS)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        deadline = started + TIMEOUT
        while True:
            # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix all children).
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                raise CommandFailed(f"{' '.join(argv)} timed out after {TIMEOUT}s")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if child.returncode != 0:
        tail = (stdout + stderr).strip().splitlines()[-15:]
        raise CommandFailed(f"{' '.join(argv)} exited {child.returncode}:\n" + "\n".join(tail))
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return Finished(elapsed, stdout, usage.ru_maxrss / scale)


def event_seconds(stdout: str, event: str = "run_finished") -> float | None:
    """The ``seconds`` of the last JSON-lines event named ``event``, if any."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event and "seconds" in record:
            return float(record["seconds"])
    return None


@dataclass
class Bench:
    """Runs measurements within a time budget."""

    seeknal: list[str]
    env: dict[str, str]
    budget: float
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.started)

    def repeat(
        self,
        m: Measurement,
        times: int,
        once: Callable[[], Finished],
        *,
        prepare: Callable[[int], None] | None = None,
        inner: Callable[[Finished], float | None] | None = None,
    ) -> Measurement:
        """``once()`` ``times`` times (after ``prepare(i)``), while the budget lasts.

        The first repetition always runs: a figure is better late than missing.
        """
        for i in range(times):
            if i and self.left() <= 0:
                m.skipped = times - i
                break
            try:
                if prepare is not None:
                    prepare(i)
                done = once()
            except (CommandFailed, OSError, ValueError) as exc:
                m.error = str(exc)
                break
            m.times.append(done.seconds)
            m.peak_mb.append(done.peak_mb)
            if inner is not None and (seconds := inner(done)) is not None:
                m.inner.append(seconds)
        return m

    def command(self, *args: str) -> list[str]:
        return [*self.seeknal, *args]


def changed_node(project: Path) -> Path:
    """A transform in the middle layer with a ``WHERE revenue > N`` filter."""
    layers = sorted((project / "seeknal" / "transforms").iterdir())
    middle = layers[len(layers) // 2 :] + layers[: len(layers) // 2]
    for layer in middle:
        for path in sorted(layer.glob("*.yml")) + sorted(layer.glob("*.sql")):
            if re.search(r"WHERE revenue > \d+", path.read_text(encoding="utf-8")):
                return path
    raise ValueError(f"no transform with a revenue filter in {project}")


def bench_size(bench: Bench, work: Path, size: int, repeat: int) -> list[Measurement]:
    project = generate.generate_project(work / f"project_{size}", size)
    cache = work / f"cache_{size}"
    env = {**bench.env, "SEEKNAL_CACHE_DIR": str(cache)}
    base = bench.command("--project", str(project))

    def run(*args: str) -> Finished:
        return measured([*base, *args], env)

    def cold_prepare(_: int) -> None:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(project / "target", ignore_errors=True)

    node = changed_node(project)
    original = node.read_text(encoding="utf-8")

    def change(i: int) -> None:
        # A new constant every time: each compile sees a file it has never seen.
        text = re.sub(r"WHERE revenue > \d+", f"WHERE revenue > {1000 + i}", original, count=1)
        node.write_text(text, encoding="utf-8")

    def fresh_warehouse(_: int) -> None:
        shutil.rmtree(project / "target" / "state", ignore_errors=True)
        (project / "target" / "warehouse.duckdb").unlink(missing_ok=True)

    def direct() -> Finished:
        db = work / f"direct_{size}.duckdb"
        db.unlink(missing_ok=True)
        return measured(
            [sys.executable, str(BENCH / "direct.py"), str(project), "--json", "--db", str(db)],
            env,
        )

    def direct_seconds(done: Finished) -> float | None:
        return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])

    few = 1 if size >= 5000 else repeat
    results = [
        bench.repeat(
            Measurement("compile, cold", size), few, lambda: run("compile"), prepare=cold_prepare
        ),
        bench.repeat(
            Measurement("compile, one file changed", size),
            few,
            lambda: run("compile"),
            prepare=change,
        ),
        bench.repeat(Measurement("compile, no-op", size), repeat, lambda: run("compile")),
    ]
    # Interleaved, so that a change in the machine's load hits both alike.
    execute = Measurement("first execute", size)
    sequential = Measurement("first execute, --threads 1", size)
    plain = Measurement("plain DuckDB, same SQL (sequential)", size)
    for _ in range(few):
        bench.repeat(
            execute,
            1,
            lambda: run("execute", "--json"),
            prepare=fresh_warehouse,
            inner=lambda d: event_seconds(d.stdout),
        )
        bench.repeat(plain, 1, direct, inner=direct_seconds)
        if size < 5000:
            bench.repeat(
                sequential,
                1,
                lambda: run("execute", "--json", "--threads", "1"),
                prepare=fresh_warehouse,
                inner=lambda d: event_seconds(d.stdout),
            )
        if bench.left() <= 0:
            break
    # The last execute left a built warehouse: a run now has nothing to build.
    noop_run = bench.repeat(
        Measurement("run, no-op", size), repeat, lambda: run("run", "--json", "--quiet")
    )
    node.write_text(original, encoding="utf-8")
    measured_here = [*results, execute, sequential, plain, noop_run]
    return [m for m in measured_here if m.times or m.error]


def bench_startup(bench: Bench, repeat: int) -> list[Measurement]:
    def loop() -> Finished:
        code = "import time\nt=time.perf_counter()\ns=0\nfor i in range(3_000_000): s+=i\nprint(time.perf_counter()-t)"
        done = measured([sys.executable, "-c", code], bench.env)
        return Finished(float(done.stdout.strip()), done.stdout, done.peak_mb)

    return [
        bench.repeat(
            Measurement("seeknal --help"),
            repeat * 2,
            lambda: measured(bench.command("--help"), bench.env),
        ),
        bench.repeat(
            Measurement("python start-up"),
            repeat * 2,
            lambda: measured([sys.executable, "-c", "pass"], bench.env),
        ),
        bench.repeat(Measurement("machine: 3M-step Python loop"), repeat, loop),
    ]


# New days timed per incremental measurement: as many as the month of events leaves (a
# few milliseconds decide the verdict, and single days vary by more).
INCREMENTAL_DAYS = incremental.DAYS - incremental.FILLED_UNTIL.day - 1


def bench_incremental(
    bench: Bench, work: Path, repeat: int, per_day: int, beside: int = 0
) -> list[Measurement]:
    """One new day of ``per_day`` events through seeknal, and the same day in plain DuckDB
    (see bench/incremental.py); with ``beside`` other transforms in the project."""
    unit = incremental_unit(beside)
    return _filled(
        {key: Measurement(name, size=per_day, unit=unit) for key, name in INCREMENTAL.items()},
        lambda: incremental.measure(
            bench.seeknal, work, per_day, repeat, env=bench.env, beside=beside
        ),
    )


def _filled(
    results: dict[str, Measurement], measure: Callable[[], dict[str, Any]]
) -> list[Measurement]:
    """``results`` with the series ``measure`` returns under their keys, or each with
    the error that stopped it."""
    try:
        figures = measure()
    except (
        RuntimeError,
        ValueError,
        OSError,
        subprocess.TimeoutExpired,
        subprocess.CalledProcessError,
    ) as exc:
        for m in results.values():
            m.error = str(exc)
        return list(results.values())
    for key, m in results.items():
        m.times = list(figures[key])
    return list(results.values())


def bench_growing(bench: Bench, work: Path, per_day: int) -> list[Measurement]:
    """One new day arriving in a source file that grows (bench/incremental.py
    ``measure_growing``): the source loaded against read in place, and plain DuckDB."""
    return _filled(
        {key: Measurement(name, size=per_day, unit=GROWING_UNIT) for key, name in GROWING.items()},
        lambda: incremental.measure_growing(
            bench.seeknal, work, per_day, GROWING_DAYS, env=bench.env
        ),
    )


def incremental_unit(beside: int) -> str:
    """How the incremental measurements of a project with ``beside`` other transforms
    are labelled: ``events a day`` alone, else with the project's size."""
    return "events a day" if not beside else f"events a day, {beside:,} other transforms"


def find(
    results: list[Measurement], name: str, size: int | None, unit: str | None = None
) -> Measurement | None:
    return next(
        (
            m
            for m in results
            if m.name == name and m.size == size and (unit is None or m.unit == unit)
        ),
        None,
    )


def verdicts(results: list[Measurement], sizes: list[int]) -> list[tuple[str, str, bool | None]]:
    """Each target: (what, the figure against the limit, met? None when not measured)."""
    out: list[tuple[str, str, bool | None]] = []
    for what, (name, size, limit, unit) in TARGETS.items():
        m = find(results, name, size)
        value = None if m is None else (m.peak if unit == "MB" else m.median)
        if value is None:
            out.append((what, "not measured", None))
            continue
        out.append((what, f"{value:.2f} {unit} (limit {limit:g} {unit})", value <= limit))
    for size in sizes:
        plain = find(results, "plain DuckDB, same SQL (sequential)", size)
        for name in ("first execute", "first execute, --threads 1"):
            m = find(results, name, size)
            if m is None or plain is None or not m.inner or not plain.inner:
                continue
            ratio = m.inner_median / plain.inner_median  # type: ignore[operator]
            threads = "sequential" if "threads 1" in name else "4 threads"
            out.append(
                (
                    f"{name} / plain DuckDB, {size} transforms ({threads})",
                    f"{ratio:.2f}x (limit {EXECUTE_RATIO:.2f}x)",
                    ratio <= EXECUTE_RATIO,
                )
            )
    runs = {
        (m.size, m.unit)
        for m in results
        if m.unit.startswith("events a day") and m.size and m.name == INCREMENTAL["run_work"]
    }
    # The target is judged on the incremental model alone; in a large project it is shown.
    for per_day, unit in sorted(runs, key=lambda r: (r[1] != "events a day", r[0], r[1])):
        out += _incremental_verdicts(results, per_day, unit)
    return out


def _day_pairs(
    work: Measurement | None, plain: Measurement | None
) -> tuple[float, float, float] | None:
    """Quartiles (low, median, high) of each day's seeknal work over the plain job's work
    of the same day (timed back to back, so a change in the machine's speed hits both
    alike); None without at least two such days."""
    if work is None or plain is None or len(work.times) != len(plain.times):
        return None
    ratios = [w / p for w, p in zip(work.times, plain.times, strict=True) if p > 0]
    if len(ratios) < 2:
        return None
    low, middle, high = statistics.quantiles(ratios, n=4)
    return low, middle, high


def _incremental_verdicts(
    results: list[Measurement], per_day: int, unit: str = "events a day"
) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []
    what = f"one new day of {per_day:,} {unit.replace('events a day', 'events', 1)}"
    judged = unit == "events a day"
    work, plain = (find(results, INCREMENTAL[k], per_day, unit) for k in ("run_work", "plain_work"))
    if work and plain and work.median and plain.median:
        ratio = work.median / plain.median
        out.append(
            (
                f"{what}: seeknal's work / plain DuckDB's work",
                f"{ratio:.2f}x (limit {EXECUTE_RATIO:.2f}x)"
                if judged
                else f"{ratio:.2f}x (shown: the day in a large project)",
                ratio <= EXECUTE_RATIO if judged else None,
            )
        )
    pairs = _day_pairs(work, plain)
    if pairs is not None:
        low, middle, high = pairs
        out.append(
            (
                f"{what}: each day's seeknal work / that day's plain DuckDB work",
                f"median {middle:.2f}x, quartiles {low:.2f}-{high:.2f}x "
                "(shown: how far the verdict can move on this machine)",
                None,
            )
        )
    run, start, job = (
        find(results, INCREMENTAL[k], per_day, unit) for k in ("runs", "start_up", "plain_jobs")
    )
    if run and start and job and run.median and start.median and job.median:
        whole = (run.median - start.median) / (job.median - start.median)
        out.append(
            (
                f"{what}, whole processes: (run - start-up) / (job - start-up)",
                f"{whole:.2f}x (shown; the target is judged on the work)",
                None,
            )
        )
    return out


def format_table(results: list[Measurement], sizes: list[int]) -> str:
    width = max(len(m.label) for m in results) + 2
    lines = [
        f"{'benchmark':<{width}}{'runs':>5}{'median':>10}{'min':>10}{'max':>10}"
        f"{'in-proc':>10}{'peak MB':>9}  vs plain DuckDB"
    ]
    for m in results:
        if not m.times:
            why = (m.error or "").strip().splitlines()
            lines.append(f"{m.label:<{width}}{0:>5}  {'failed: ' + why[0] if why else 'not run'}")
            continue
        plain = find(results, "plain DuckDB, same SQL (sequential)", m.size)
        ratio = ""
        executes = m.name.startswith(("first execute", "run"))
        if executes and plain is not None and plain.median and m.size is not None:
            ratio = f"{m.median / plain.median:6.2f}x"  # type: ignore[operator]
            if m.inner and plain.inner:
                ratio += f" (in-process {m.inner_median / plain.inner_median:.2f}x)"  # type: ignore[operator]
        inner = f"{m.inner_median:9.3f}s" if m.inner else " " * 10
        peak = f"{m.peak:9.0f}" if m.peak is not None else " " * 9
        skipped = f"  ({m.skipped} skipped: time budget)" if m.skipped else ""
        lines.append(
            f"{m.label:<{width}}{len(m.times):>5}{m.median:>9.3f}s{min(m.times):>9.3f}s"
            f"{max(m.times):>9.3f}s{inner}{peak}  {ratio}{skipped}"
        )
    lines += ["", "targets:"]
    for what, figure, met in verdicts(results, sizes):
        mark = {True: "met", False: "MISSED", None: "-"}[met]
        lines.append(f"  {mark:<7}{what}: {figure}")
    return "\n".join(lines)


def compare_with_previous(path: Path, results: list[Measurement]) -> str:
    """Each median as a ratio of the previous run's (the last results file written)."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "\nno previous results to compare with (first run here)"
    before: dict[tuple[str, int | None, str | None], float | None] = {}
    twice = set()
    for r in previous.get("results", []):
        key = (r["name"], r.get("size"), _unit_of(r))
        if key in before:
            twice.add(key)  # an old file without units: which one is which is unknown
        before[key] = r.get("median")
    for key in twice:
        del before[key]
    meta = previous.get("metadata", {})
    commit = (meta.get("commit") or "unknown")[:12]
    lines = [f"\nagainst the previous run (commit {commit}): now / before"]
    for m in results:
        old = before.get((m.name, m.size, m.unit if m.size is not None else None))
        if m.median is not None and old:
            lines.append(f"  {m.label:<58}{m.median / old:8.2f}x  ({old:.3f}s -> {m.median:.3f}s)")
    return "\n".join(lines)


def _unit_of(result: dict[str, Any]) -> str | None:
    """The unit of a stored result's size; files written before units were stored had
    only transforms, and events a day for the incremental model."""
    if result.get("size") is None:
        return None
    default = "events a day" if result["name"].startswith("incremental") else "transforms"
    unit: str = result.get("unit", default)
    return unit


def find_seeknal(explicit: str | None) -> list[str]:
    """The command to run seeknal: ``--seeknal``, else the console script beside this Python
    (``PYTHONPATH`` makes it run this checkout's code), else the same through ``-c``."""
    if explicit:
        return [explicit]
    script = Path(sys.executable).parent / "seeknal"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from seeknal.cli.main import main; main()"]


def metadata() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit or None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark seeknal.")
    parser.add_argument("--sizes", default="100,1000,5000", help="comma-separated transform counts")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (1 at 5000 transforms)")
    parser.add_argument("--budget", type=float, default=540, help="seconds before skipping repeats")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--work", type=Path, default=BENCH / ".work", help="scratch directory")
    parser.add_argument("--seeknal", default=None, help="the seeknal executable to time")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument(
        "--per-day",
        default="200000,1000000",
        help="events a day in the incremental benchmark (comma-separated: one run each)",
    )
    parser.add_argument(
        "--beside",
        default="1000",
        help="also run the incremental benchmark (at the first --per-day) in a project of "
        "this many other transforms (comma-separated; empty: none)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    besides = [int(n) for n in args.beside.split(",") if n.strip()]
    if any(n < 1 for n in besides):
        parser.error("--beside takes transform counts of at least 1")
    args.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("SEEKNAL_NO_CACHE", None)
    # Bytecode as any installed seeknal has it (else every process compiles its sources).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # The checkout's own code, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
    )
    bench = Bench(find_seeknal(args.seeknal), env, args.budget)
    meta = metadata()

    results: list[Measurement] = bench_startup(bench, args.repeat)
    for size in sizes:
        print(f"benchmarking {size} transforms ...", file=sys.stderr)
        results += bench_size(bench, args.work, size, args.repeat)
    if not args.skip_incremental:
        days = [int(n) for n in args.per_day.split(",") if n.strip()]
        for per_day in days:
            print(f"benchmarking one new day of {per_day:,} events ...", file=sys.stderr)
            results += bench_incremental(bench, args.work, INCREMENTAL_DAYS, per_day)
        for beside in besides if days else []:
            print(
                f"benchmarking one new day of {days[0]:,} events beside {beside:,} transforms ...",
                file=sys.stderr,
            )
            results += bench_incremental(bench, args.work, INCREMENTAL_DAYS, days[0], beside)
        if days:
            print(
                f"benchmarking one new day of {days[0]:,} events in a growing source file ...",
                file=sys.stderr,
            )
            results += bench_growing(bench, args.work, days[0])
    meta["seconds"] = round(time.perf_counter() - bench.started, 1)
    meta["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    previous = compare_with_previous(args.out, results)
    document = {
        "metadata": meta,
        "sizes": sizes,
        "repeat": args.repeat,
        "results": [m.as_dict() for m in results],
        "targets": [
            {"target": what, "figure": figure, "met": met}
            for what, figure, met in verdicts(results, sizes)
        ],
    }
    args.out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(format_table(results, sizes))
    print(previous)
    print(f"\nwrote {args.out} ({meta['seconds']}s)", file=sys.stderr)
    return 1 if any(m.error for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
