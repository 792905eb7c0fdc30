"""The interval algebra and cron schedules, checked against brute-force models."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from seeknal.intervals import (
    DAY,
    Interval,
    IntervalError,
    Schedule,
    covers,
    format_short,
    format_time,
    intersect,
    lookback_ranges,
    merge,
    parse_time,
    ranges_from_json,
    ranges_to_json,
    split_batches,
    subtract,
    union,
    zone,
)

# A small domain, so that overlaps, adjacency and gaps are all common.
bounds = st.integers(min_value=0, max_value=60)


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    start = draw(bounds)
    end = draw(st.integers(min_value=start + 1, max_value=61))
    return Interval(start, end)


interval_lists = st.lists(intervals(), max_size=8)


def points(ranges: list[Interval] | tuple[Interval, ...]) -> set[int]:
    return {p for r in ranges for p in range(r.start, r.end)}


def is_merged(ranges: tuple[Interval, ...]) -> bool:
    return all(a.end < b.start for a, b in itertools.pairwise(ranges))


@given(interval_lists)
def test_merge_keeps_the_points_in_canonical_form(ranges: list[Interval]) -> None:
    merged = merge(ranges)
    assert points(merged) == points(ranges)
    assert is_merged(merged)
    assert merge(merged) == merged
    assert merge(reversed(ranges)) == merged


@given(interval_lists, interval_lists)
def test_set_operations_match_sets_of_points(a: list[Interval], b: list[Interval]) -> None:
    for result, expected in (
        (union(a, b), points(a) | points(b)),
        (intersect(a, b), points(a) & points(b)),
        (subtract(a, b), points(a) - points(b)),
    ):
        assert points(result) == expected
        assert is_merged(result)


@given(interval_lists, interval_lists)
def test_algebra_laws(a: list[Interval], b: list[Interval]) -> None:
    assert union(subtract(a, b), intersect(a, b)) == merge(a)
    assert intersect(subtract(a, b), b) == ()
    assert union(a, b) == union(b, a)
    assert intersect(a, b) == intersect(b, a)


@given(interval_lists, intervals())
def test_covers_is_inclusion(ranges: list[Interval], one: Interval) -> None:
    assert covers(ranges, one) == (points([one]) <= points(ranges))


def test_empty_interval_is_refused() -> None:
    with pytest.raises(IntervalError):
        Interval(5, 5)


# --- schedules ----------------------------------------------------------------------------

# Times from 2020 to 2030: DST changes, leap days, month and year ends.
timestamps = st.integers(min_value=1_577_836_800, max_value=1_893_456_000)
FAST_SCHEDULES = [
    ("@hourly", None),
    ("@daily", None),
    ("@weekly", None),
    ("@monthly", None),
    ("*/15 * * * *", None),
    ("5 * * * *", None),
    ("30 */6 * * *", None),
    ("0 6 * * *", None),
    ("0 0 1 */3 *", None),
    ("@yearly", None),
    ("@daily", "Europe/Amsterdam"),
    ("@weekly", "America/New_York"),
    ("@monthly", "Asia/Kolkata"),
    ("30 23 * * 5", "Australia/Sydney"),
    ("0 6 * * *", "America/New_York"),
]


def croniter_floor(expression: str, timezone: str | None, ts: int) -> int:
    at = datetime.fromtimestamp(ts + 1, zone(timezone))
    return int(croniter(expression, at).get_prev(datetime).timestamp())


def croniter_next(expression: str, timezone: str | None, ts: int) -> int:
    at = datetime.fromtimestamp(ts, zone(timezone))
    return int(croniter(expression, at).get_next(datetime).timestamp())


@pytest.mark.parametrize(("expression", "timezone"), FAST_SCHEDULES)
@settings(max_examples=40, deadline=None)
@given(ts=timestamps)
def test_direct_ticks_agree_with_croniter(expression: str, timezone: str | None, ts: int) -> None:
    schedule = Schedule.parse(expression, timezone)
    assert type(schedule._ticks).__name__ != "_Cron", "this shape should be computed directly"
    cron = schedule.expression
    assert schedule.floor(ts) == croniter_floor(cron, timezone, ts)
    assert schedule.next(ts) == croniter_next(cron, timezone, ts)
    floor = schedule.floor(ts)
    assert schedule.previous(floor) == croniter_floor(cron, timezone, floor - 1)


@pytest.mark.parametrize(
    ("expression", "timezone"), [*FAST_SCHEDULES, ("0 6 * * 1-5", None), ("0 0 1,15 * *", "UTC")]
)
@settings(max_examples=25, deadline=None)
@given(ts=timestamps)
def test_tick_properties(expression: str, timezone: str | None, ts: int) -> None:
    schedule = Schedule.parse(expression, timezone)
    floor, ceil, after = schedule.floor(ts), schedule.ceil(ts), schedule.next(ts)
    assert floor <= ts < after
    assert schedule.is_tick(floor) and schedule.is_tick(after) and schedule.is_tick(ceil)
    assert ceil == (ts if schedule.is_tick(ts) else after)
    assert schedule.previous(after) == floor
    assert schedule.next(floor) == after


@settings(max_examples=60, deadline=None)
@given(
    start=timestamps,
    days=st.integers(min_value=1, max_value=90),
    batch_size=st.one_of(st.none(), st.integers(min_value=1, max_value=10)),
    holes=st.lists(st.integers(min_value=0, max_value=89), max_size=5),
)
def test_batches_cover_exactly_in_order(
    start: int, days: int, batch_size: int | None, holes: list[int]
) -> None:
    schedule = Schedule.parse("@daily")
    first = schedule.ceil(start)
    whole = Interval(first, first + days * DAY)
    gaps = [Interval(first + h * DAY, first + (h + 1) * DAY) for h in holes if h < days]
    ranges = subtract([whole], gaps)
    assume(ranges)
    batches = split_batches(ranges, schedule, batch_size)
    assert merge(batches) == ranges
    assert batches == sorted(batches)
    assert all(a.end <= b.start for a, b in itertools.pairwise(batches))
    for batch in batches:
        assert covers(ranges, batch), "a batch never spans a gap"
        assert schedule.is_tick(batch.start) and schedule.is_tick(batch.end)
        if batch_size is not None:
            assert schedule.count(batch) <= batch_size
    if batch_size is None:
        assert len(batches) == len(ranges)


def test_monthly_batches_follow_the_calendar() -> None:
    monthly = Schedule.parse("@monthly")
    year = Interval(parse_time("2024-01-01"), parse_time("2025-01-01"))
    batches = split_batches([year], monthly, 1)
    assert [format_time(b.start)[:10] for b in batches][:3] == [
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]
    assert batches[1].seconds == 29 * DAY  # 2024 is a leap year
    assert monthly.count(year) == 12


def test_daily_in_a_time_zone_has_short_and_long_days() -> None:
    amsterdam = Schedule.parse("@daily", "Europe/Amsterdam")
    march = Interval(parse_time("2024-03-30T23:00:00Z"), parse_time("2024-04-01T22:00:00Z"))
    lengths = [b.seconds // 3600 for b in split_batches([march], amsterdam, 1)]
    assert lengths == [23, 24]
    assert format_short(march.start, amsterdam.tz) == "2024-03-31"


@settings(max_examples=60, deadline=None)
@given(
    done=st.lists(st.integers(min_value=0, max_value=39), max_size=40),
    lookback=st.integers(min_value=0, max_value=5),
)
def test_lookback_is_the_completed_intervals_before_each_gap(
    done: list[int], lookback: int
) -> None:
    day = Schedule.parse("@daily")
    expected = Interval(0, 40 * DAY)
    completed = merge(Interval(d * DAY, (d + 1) * DAY) for d in done)
    missing = subtract([expected], completed)
    looked = lookback_ranges(missing, completed, day, lookback, floor=0)
    assert covers(completed, looked[0]) if looked else True
    assert intersect(looked, missing) == ()
    wanted = {
        d
        for gap in missing
        for d in range(gap.start // DAY - lookback, gap.start // DAY)
        if d >= 0 and d in set(done)
    }
    assert points(looked) == {p for d in wanted for p in range(d * DAY, (d + 1) * DAY)}


# --- times --------------------------------------------------------------------------------


def test_parse_time_forms() -> None:
    assert format_time(parse_time("2024-02-15")) == "2024-02-15T00:00:00Z"
    assert format_time(parse_time("2024-02-15", day_end=True)) == "2024-02-16T00:00:00Z"
    assert format_time(parse_time("2024-02-15T12:00:00")) == "2024-02-15T12:00:00Z"
    assert format_time(parse_time("2024-02-15T12:00:00+02:00")) == "2024-02-15T10:00:00Z"
    # A timestamp is exclusive as written, even with day_end.
    assert format_time(parse_time("2024-02-15 00:00", day_end=True)) == "2024-02-15T00:00:00Z"
    amsterdam = zone("Europe/Amsterdam")
    assert format_time(parse_time("2024-07-01", amsterdam)) == "2024-06-30T22:00:00Z"


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024-02-30", "", "1.5"])
def test_parse_time_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(IntervalError, match="not a date or timestamp"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "day_end"),
    [
        ("9999-12-31", True),
        ("9999-12-31", False),
        ("9900-01-01", True),
        ("9900-01-01T00:00:01", False),
        ("0001-01-01", False),
        ("0999-12-31T23:59:59Z", False),
    ],
)
def test_parse_time_refuses_times_outside_what_schedules_handle(text: str, day_end: bool) -> None:
    with pytest.raises(IntervalError, match="outside the times seeknal handles"):
        parse_time(text, day_end=day_end)


def test_the_bounds_of_what_parse_time_takes() -> None:
    assert format_time(parse_time("1000-01-01")) == "1000-01-01T00:00:00Z"
    assert format_time(parse_time("1850-06-01")) == "1850-06-01T00:00:00Z"  # old data
    assert format_time(parse_time("9899-12-31", day_end=True)) == "9900-01-01T00:00:00Z"
    tokyo = zone("Asia/Tokyo")
    assert format_time(parse_time("1900-01-01", tokyo)) == "1899-12-31T15:00:00Z"


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *"])
def test_a_cron_that_never_fires_is_refused(cron: str) -> None:
    with pytest.raises(IntervalError, match="never fires"):
        Schedule.parse(cron)


def test_the_aliases_need_no_croniter_and_expand_as_croniter_does() -> None:
    from seeknal import intervals

    assert set(intervals._EXPANDED) == set(intervals.ALIASES.values())
    for cron, expanded in intervals._EXPANDED.items():
        fields, _ = croniter.expand(cron)
        assert [list(f) for f in expanded] == fields, cron
        assert croniter.is_valid(cron)


def test_unknown_schedule_and_zone() -> None:
    with pytest.raises(IntervalError, match="not a cron expression"):
        Schedule.parse("every day")
    with pytest.raises(IntervalError, match="unknown time zone"):
        Schedule.parse("@daily", "Mars/Olympus")


@given(interval_lists)
def test_json_round_trip(ranges: list[Interval]) -> None:
    shifted = [Interval(r.start * 3600, r.end * 3600) for r in ranges]
    assert ranges_from_json(ranges_to_json(shifted)) == merge(shifted)


def test_format_short() -> None:
    assert format_short(parse_time("2024-01-01")) == "2024-01-01"
    assert format_short(parse_time("2024-01-01T06:30:00")) == "2024-01-01 06:30"
    assert datetime.fromtimestamp(parse_time("2024-01-01"), UTC).year == 2024
