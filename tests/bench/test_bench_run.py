"""bench/run.py: the incremental target is judged on the model alone, and a run is
compared with the previous one measurement by measurement."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


def test_the_previous_run_is_matched_by_size_and_unit(tmp_path: Path) -> None:
    old = _day(200_000, 0, 0.100, 0.095)
    stored = [m.as_dict() for m in old]
    for entry in stored:
        del entry["unit"]  # a file written before units were stored
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": stored, "metadata": {"commit": "abc"}}))
    now = _day(200_000, 0, 0.050, 0.095) + _day(200_000, 1000, 0.600, 0.200)

    lines = run.compare_with_previous(path, now).splitlines()

    work = [line for line in lines if "seeknal run's work" in line]
    assert len(work) == 1 and "0.50x" in work[0] and "other transforms" not in work[0]


def test_an_old_file_holding_one_name_twice_is_not_compared(tmp_path: Path) -> None:
    # Written before units were stored: the large-project day and the small one share
    # name and size, and nothing says which is which.
    stored = [m.as_dict() for m in _day(200_000, 0, 0.100, 0.095)]
    stored += [m.as_dict() for m in _day(200_000, 1000, 0.600, 0.200)]
    for entry in stored:
        del entry["unit"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": stored, "metadata": {"commit": "abc"}}))

    lines = run.compare_with_previous(path, _day(200_000, 0, 0.050, 0.095)).splitlines()

    assert not [line for line in lines if "seeknal run's work" in line]


def test_each_days_pair_is_shown_beside_the_verdict() -> None:
    unit = run.incremental_unit(0)
    work = [0.080, 0.070, 0.090, 0.075]
    plain = [0.060, 0.060, 0.060, 0.050]  # the same days, back to back
    results = [
        run.Measurement(run.INCREMENTAL["run_work"], size=200_000, times=work, unit=unit),
        run.Measurement(run.INCREMENTAL["plain_work"], size=200_000, times=plain, unit=unit),
    ]

    found = {what: (figure, met) for what, figure, met in run.verdicts(results, [])}

    pairs = found[
        "one new day of 200,000 events: each day's seeknal work / that day's plain DuckDB work"
    ]
    # Ratios 1.33, 1.17, 1.50, 1.50: quartiles as statistics.quantiles gives them.
    assert pairs == (
        "median 1.42x, quartiles 1.21-1.50x (shown: how far the verdict can move on this machine)",
        None,
    )
    judged = found["one new day of 200,000 events: seeknal's work / plain DuckDB's work"]
    assert judged[1] is False  # the verdict is still the ratio of the medians
    assert run._day_pairs(results[0], None) is None
