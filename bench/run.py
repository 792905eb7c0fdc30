"""seeknal's benchmark: compile times of generated projects, and a run against plain DuckDB.

Measures, each several times (the median is reported):

- cold compile of generated projects of N transforms (``--sizes``, default 100 and 1000):
  ``seeknal --project P compile`` after deleting ``P/target``, as a whole process;
- no-op compile: the same command again, nothing changed;
- in-process ``compile_project()`` (without interpreter start-up), when importable;
- the example shop: ``seeknal run`` on a fresh target versus ``bench/direct.py``, a plain
  DuckDB script creating the same tables in dependency order, both as whole processes
  and as the in-process times each reports;
- an incremental run of one new day against that day's SQL alone in DuckDB
  (``bench/incremental.py``, ``--per-day`` events a day): the target is seeknal's time
  beyond process start-up within 10% of the day's SQL.

Prints a table with ratios and writes ``bench/results.json``. The default run takes a few
minutes on 2 cores.

Usage::

    python bench/run.py [--sizes 100,1000] [--repeat 3] [--per-day 200000]
        [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import generate  # bench/ is on sys.path when this file runs as a script
import incremental

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHOP = REPO / "src" / "seeknal" / "examples" / "shop"
TIMEOUT = 900

IN_PROCESS_COMPILE = """\
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from seeknal.compiler import compile_project
imported = time.perf_counter()
compile_project(Path(sys.argv[1]))
done = time.perf_counter()
print(json.dumps({"import": imported - started, "seconds": done - imported}))
"""


@dataclass
class Measurement:
    """Repeated timings of one benchmark."""

    name: str
    group: str
    times: list[float] = field(default_factory=list)
    nodes: int | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "group": self.group, "times": self.times}
        if self.times:
            out.update(median=self.median, min=min(self.times), max=max(self.times))
        if self.nodes:
            out["nodes"] = self.nodes
        if self.error:
            out["error"] = self.error
        return out


class CommandFailed(Exception):
    pass


def timed(argv: list[str], cwd: Path | None = None) -> tuple[float, str]:
    """Run ``argv``; return its wall time and stdout. Raise CommandFailed on non-zero exit."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise CommandFailed(f"{' '.join(argv)} exited {done.returncode}:\n" + "\n".join(tail))
    return elapsed, done.stdout


def repeat_into(m: Measurement, repeat: int, once: Any) -> Measurement:
    """Call ``once()`` (which returns seconds) ``repeat`` times, recording failures."""
    for _ in range(repeat):
        try:
            m.times.append(once())
        except (CommandFailed, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
            m.error = str(exc)
            break
    return m


def event_seconds(stdout: str, event: str = "run_finished") -> float:
    """The ``seconds`` of the last JSON-lines event named ``event``."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("event") == event and "seconds" in record:
            return float(record["seconds"])
    raise ValueError(f"no {event!r} event with 'seconds' in the output")


def bench_compile(seeknal: str, work: Path, size: int, repeat: int) -> list[Measurement]:
    project = generate.generate_project(work / f"project_{size}", size)
    nodes = size + 3
    base = [seeknal, "--project", str(project), "compile"]

    def cold() -> float:
        shutil.rmtree(project / "target", ignore_errors=True)
        return timed(base)[0]

    def in_process() -> float:
        _, out = timed([sys.executable, "-c", IN_PROCESS_COMPILE, str(project)])
        return float(json.loads(out.strip().splitlines()[-1])["seconds"])

    label = f"{size} transforms"

    def first_execute() -> float:
        """`seeknal execute` of the compiled plan on an empty warehouse (in-process time)."""
        shutil.rmtree(project / "target" / "state", ignore_errors=True)
        (project / "target" / "warehouse.duckdb").unlink(missing_ok=True)
        _, out = timed(
            [seeknal, "--project", str(project), "execute", "target/plan.json", "--json"]
        )
        return event_seconds(out)

    def direct_execute() -> float:
        db = work / f"direct_{size}.duckdb"
        db.unlink(missing_ok=True)
        cmd = [sys.executable, str(BENCH / "direct.py"), str(project), "--json", "--db", str(db)]
        _, out = timed(cmd)
        return float(json.loads(out.strip().splitlines()[-1])["seconds"])

    results = [
        repeat_into(Measurement(f"compile, cold ({label})", "compile", nodes=nodes), repeat, cold),
        repeat_into(
            Measurement(f"compile, no-op ({label})", "compile", nodes=nodes),
            repeat,
            lambda: timed(base)[0],
        ),
        repeat_into(
            Measurement(f"compile_project() in-process ({label})", "compile", nodes=nodes),
            repeat,
            in_process,
        ),
        repeat_into(
            Measurement(f"first execute, in-process ({label})", "execute", nodes=nodes),
            repeat,
            first_execute,
        ),
        repeat_into(
            Measurement(f"plain DuckDB, same SQL ({label})", "execute", nodes=nodes),
            repeat,
            direct_execute,
        ),
    ]
    return results


def bench_shop(seeknal: str, work: Path, repeat: int) -> list[Measurement]:
    shop = work / "shop"
    shutil.rmtree(shop, ignore_errors=True)
    shutil.copytree(SHOP, shop, ignore=shutil.ignore_patterns("target"))
    direct = [sys.executable, str(BENCH / "direct.py"), str(shop), "--json"]
    seeknal_inproc: list[float] = []
    direct_inproc: list[float] = []

    def seeknal_run() -> float:
        shutil.rmtree(shop / "target", ignore_errors=True)
        elapsed, out = timed([seeknal, "--project", str(shop), "run", "--json"])
        # Without a run_finished event the process time still counts.
        with contextlib.suppress(ValueError, json.JSONDecodeError):
            seeknal_inproc.append(event_seconds(out))
        return elapsed

    def direct_run() -> float:
        elapsed, out = timed(direct)
        direct_inproc.append(float(json.loads(out.strip().splitlines()[-1])["seconds"]))
        return elapsed

    def python_start() -> float:
        return timed([sys.executable, "-c", "import duckdb, jinja2, yaml"])[0]

    results = [
        repeat_into(Measurement("shop: seeknal run (process)", "shop"), repeat, seeknal_run),
        repeat_into(Measurement("shop: plain DuckDB script (process)", "shop"), repeat, direct_run),
        repeat_into(
            Measurement("python start + import duckdb (process)", "shop"), repeat, python_start
        ),
    ]
    inproc = Measurement("shop: seeknal execute (in-process, from --json)", "shop")
    inproc.times = seeknal_inproc
    if not seeknal_inproc:
        inproc.error = "seeknal run --json reported no run_finished seconds"
    results.append(inproc)
    direct_m = Measurement("shop: plain DuckDB script (in-process)", "shop")
    direct_m.times = direct_inproc
    results.append(direct_m)
    return results


def bench_incremental(seeknal: str, work: Path, repeat: int, per_day: int) -> list[Measurement]:
    """One new day through seeknal, and the same day's SQL alone (see bench/incremental.py)."""
    names = {
        "runs": "incremental: seeknal run, one new day (process)",
        "executes": "incremental: seeknal execute, one new day (in-process)",
        "day_sql": "incremental: that day's SQL alone in DuckDB (in-process)",
        "start_up": "incremental: python start + seeknal's imports (process)",
    }
    results = {key: Measurement(name, "incremental") for key, name in names.items()}
    try:
        measured = incremental.measure(seeknal, work, per_day, repeat)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        for m in results.values():
            m.error = str(exc)
        return list(results.values())
    for key, m in results.items():
        m.times = list(measured[key])
    return list(results.values())


def ratio(results: list[Measurement], a: str, b: str) -> float | None:
    by_name = {m.name: m.median for m in results}
    top, bottom = by_name.get(a), by_name.get(b)
    return top / bottom if top is not None and bottom else None


def format_table(results: list[Measurement], ratios: dict[str, float | None]) -> str:
    width = max(len(m.name) for m in results) + 2
    lines = [f"{'benchmark':<{width}}{'runs':>5}{'median':>10}{'min':>10}{'max':>10}  per node"]
    for m in results:
        if not m.times:
            lines.append(f"{m.name:<{width}}{0:>5}  failed: {(m.error or '').splitlines()[0]}")
            continue
        per_node = f"{1000 * m.median / m.nodes:8.1f} ms" if m.nodes and m.median else ""
        lines.append(
            f"{m.name:<{width}}{len(m.times):>5}{m.median:>9.3f}s{min(m.times):>9.3f}s"
            f"{max(m.times):>9.3f}s  {per_node}"
        )
    lines.append("")
    for name, value in ratios.items():
        lines.append(f"{name:<{width + 5}}{'n/a' if value is None else f'{value:9.2f}x'}")
    return "\n".join(lines)


def compare_with_previous(path: Path, results: list[Measurement]) -> str:
    """Each median as a ratio of the previous run's (the last results file written)."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "\nno previous results to compare with (first run here)"
    before = {r["name"]: r.get("median") for r in previous.get("results", [])}
    commit = (previous.get("metadata", {}).get("commit") or "unknown")[:12]
    lines = [f"\nagainst the previous run (commit {commit}): now / before"]
    for m in results:
        old = before.get(m.name)
        if m.median is not None and old:
            lines.append(f"  {m.name:<56}{m.median / old:8.2f}x  ({old:.3f}s -> {m.median:.3f}s)")
    return "\n".join(lines)


def find_seeknal(explicit: str | None) -> str:
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "seeknal"
    if beside.exists():
        return str(beside)
    found = shutil.which("seeknal")
    if not found:
        raise SystemExit("no `seeknal` command found: pip install -e . first, or pass --seeknal")
    return found


def metadata(seeknal: str) -> dict[str, Any]:
    try:
        version = timed([seeknal, "--version"])[1].strip()
    except (CommandFailed, OSError):
        version = None
    try:
        commit = timed(["git", "-C", str(REPO), "rev-parse", "HEAD"])[1].strip()
    except (CommandFailed, OSError):
        commit = None
    return {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seeknal_version": version,
        "commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark seeknal.")
    parser.add_argument("--sizes", default="100,1000", help="comma-separated transform counts")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per benchmark")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--work", type=Path, default=BENCH / ".work", help="scratch directory")
    parser.add_argument("--seeknal", default=None, help="the seeknal executable to time")
    parser.add_argument("--skip-shop", action="store_true")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument(
        "--per-day", type=int, default=200_000, help="events a day in the incremental benchmark"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    seeknal = find_seeknal(args.seeknal)
    args.work.mkdir(parents=True, exist_ok=True)

    results: list[Measurement] = []
    for size in sizes:
        print(f"compiling generated projects of {size} transforms ...", file=sys.stderr)
        results += bench_compile(seeknal, args.work, size, args.repeat)
    if not args.skip_shop:
        print("running the example shop ...", file=sys.stderr)
        results += bench_shop(seeknal, args.work, max(args.repeat, 5))
    if not args.skip_incremental:
        print("running one new day of an incremental node ...", file=sys.stderr)
        results += bench_incremental(seeknal, args.work, max(args.repeat, 5), args.per_day)

    ratios = {
        "shop: seeknal run / plain DuckDB (process)": ratio(
            results, "shop: seeknal run (process)", "shop: plain DuckDB script (process)"
        ),
        "shop: seeknal execute / plain DuckDB (in-process)": ratio(
            results,
            "shop: seeknal execute (in-process, from --json)",
            "shop: plain DuckDB script (in-process)",
        ),
    }
    by_name = {m.name: m.median for m in results}
    run_s = by_name.get("incremental: seeknal run, one new day (process)")
    start_s = by_name.get("incremental: python start + seeknal's imports (process)")
    sql_s = by_name.get("incremental: that day's SQL alone in DuckDB (in-process)")
    if run_s is not None and start_s is not None and sql_s:
        # The target: within 1.10x (seeknal's time beyond start-up vs the day's SQL).
        ratios["incremental: (run - start-up) / day's SQL (target 1.10)"] = (
            run_s - start_s
        ) / sql_s
    ratios["incremental: execute / day's SQL"] = ratio(
        results,
        "incremental: seeknal execute, one new day (in-process)",
        "incremental: that day's SQL alone in DuckDB (in-process)",
    )
    for size in sizes:
        label = f"{size} transforms"
        ratios[f"compile no-op / cold ({label})"] = ratio(
            results, f"compile, no-op ({label})", f"compile, cold ({label})"
        )
        ratios[f"first execute / plain DuckDB ({label})"] = ratio(
            results, f"first execute, in-process ({label})", f"plain DuckDB, same SQL ({label})"
        )
    print(format_table(results, ratios))
    print(compare_with_previous(args.out, results))
    document = {
        "metadata": metadata(seeknal),
        "sizes": sizes,
        "repeat": args.repeat,
        "results": [m.as_dict() for m in results],
        "ratios": ratios,
    }
    args.out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 1 if any(m.error for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
