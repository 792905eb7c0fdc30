"""bench/run.py's verdicts: the incremental target is judged on the model alone."""

from __future__ import annotations

import sys

from tests.bench.load import BENCH, load_bench_module

if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))  # run.py imports its siblings as a script does
run = load_bench_module("run")


def _day(per_day: int, beside: int, work: float, plain: float) -> list:
    unit = run.incremental_unit(beside)
    figures = {"run_work": work, "plain_work": plain, "runs": work + 0.2}
    figures |= {"start_up": 0.2, "plain_jobs": plain + 0.2}
    return [
        run.Measurement(run.INCREMENTAL[key], size=per_day, times=[value], unit=unit)
        for key, value in figures.items()
    ]


def test_the_large_project_day_is_shown_not_judged() -> None:
    results = _day(200_000, 0, 0.100, 0.095) + _day(200_000, 1000, 0.600, 0.200)

    found = {what: (figure, met) for what, figure, met in run.verdicts(results, [])}

    alone = "one new day of 200,000 events: seeknal's work / plain DuckDB's work"
    assert found[alone] == ("1.05x (limit 1.10x)", True)
    beside = (
        "one new day of 200,000 events, 1,000 other transforms: "
        "seeknal's work / plain DuckDB's work"
    )
    assert found[beside] == ("3.00x (shown: the day in a large project)", None)
    whole = "one new day of 200,000 events, whole processes: (run - start-up) / (job - start-up)"
    assert found[whole][1] is None
    assert list(found).index(alone) < list(found).index(beside)
