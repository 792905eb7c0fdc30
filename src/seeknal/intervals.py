"""Half-open UTC time intervals, and the cron schedules that cut time into them.

The compiler and the runtime share this module (it imports nothing else from seeknal):
the compiler computes which intervals of an incremental node are expected, completed,
missing, looked back on or restated; the runtime cuts the plan's ranges into batches and
records what it finished.

- An :class:`Interval` is ``[start, end)`` in whole seconds since the Unix epoch, UTC.
  A set of intervals is always kept **merged**: a sorted tuple of disjoint, non-adjacent
  intervals (``merge`` makes one), so equal sets have equal representations.
- A :class:`Schedule` is a cron expression (or ``@hourly``, ``@daily``, ``@weekly``,
  ``@monthly``) in a time zone (UTC unless told). Its ticks are the interval boundaries:
  ``@daily`` in ``Europe/Amsterdam`` cuts time at local midnights. The common shapes
  (every N minutes or hours in UTC; daily, weekly, monthly at a fixed time in any zone)
  are computed directly; anything else goes through croniter, which is correct but
  slow (a fraction of a millisecond per tick).
- Times are written as ISO-8601 UTC text, ``2024-01-01T00:00:00Z`` (``format_time``);
  ``parse_time`` reads what a user types: a date, or a date and time with or without an
  offset.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from croniter import croniter

DAY = 86_400
# What users write for the common schedules, as croniter spells them.
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# croniter.expand of each alias, so the common schedules need not import croniter (a
# test checks this table against croniter).
_EXPANDED: dict[str, tuple[list[int | str], ...]] = {
    "0 * * * *": ([0], ["*"], ["*"], ["*"], ["*"]),
    "0 0 * * *": ([0], [0], ["*"], ["*"], ["*"]),
    "0 0 * * 0": ([0], [0], ["*"], ["*"], [0]),
    "0 0 1 * *": ([0], [0], [1], ["*"], ["*"]),
    "0 0 1 1 *": ([0], [0], [1], [1], ["*"]),
}


def _croniter() -> type[croniter]:
    from croniter import croniter

    return croniter


class IntervalError(ValueError):
    """A time, time zone, schedule or interval that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """``[start, end)`` in seconds since the epoch (UTC); never empty.

    Example:
        >>> Interval(0, 3600).seconds
        3600
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise IntervalError(f"empty interval [{self.start}, {self.end})")

    @property
    def seconds(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"[{format_time(self.start)}, {format_time(self.end)})"


Intervals = tuple[Interval, ...]


# --- the algebra of merged interval sets -------------------------------------------------


def merge(intervals: Iterable[Interval]) -> Intervals:
    """Sort and join overlapping or adjacent intervals.

    Example:
        >>> merge([Interval(5, 9), Interval(0, 2), Interval(2, 4)])
        (Interval(start=0, end=4), Interval(start=5, end=9))
    """
    out: list[Interval] = []
    for interval in sorted(intervals):
        if out and interval.start <= out[-1].end:
            if interval.end > out[-1].end:
                out[-1] = Interval(out[-1].start, interval.end)
        else:
            out.append(interval)
    return tuple(out)


def union(*groups: Iterable[Interval]) -> Intervals:
    """Every instant in any of ``groups``, merged."""
    return merge(i for group in groups for i in group)


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> Intervals:
    """Instants in both ``a`` and ``b``, merged.

    Example:
        >>> intersect([Interval(0, 10)], [Interval(2, 4), Interval(8, 12)])
        (Interval(start=2, end=4), Interval(start=8, end=10))
    """
    left, right = merge(a), merge(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            out.append(Interval(start, end))
        if left[i].end < right[j].end:
            i += 1
        else:
            j += 1
    return merge(out)


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> Intervals:
    """Instants in ``a`` but not in ``b``, merged.

    Example:
        >>> subtract([Interval(0, 10)], [Interval(2, 4)])
        (Interval(start=0, end=2), Interval(start=4, end=10))
    """
    out: list[Interval] = []
    cuts = merge(b)
    for interval in merge(a):
        start = interval.start
        for cut in cuts:
            if cut.end <= start:
                continue
            if cut.start >= interval.end:
                break
            if cut.start > start:
                out.append(Interval(start, cut.start))
            start = max(start, cut.end)
            if start >= interval.end:
                break
        if start < interval.end:
            out.append(Interval(start, interval.end))
    return merge(out)


def covers(ranges: Iterable[Interval], interval: Interval) -> bool:
    """Whether every instant of ``interval`` lies in ``ranges``."""
    return not subtract([interval], ranges)


def seconds_in(ranges: Iterable[Interval]) -> int:
    """Total length of a set of intervals (overlaps counted once)."""
    return sum(i.seconds for i in merge(ranges))


# --- times --------------------------------------------------------------------------------


def zone(name: str | None) -> tzinfo:
    """The time zone ``name`` (IANA, e.g. ``Europe/Amsterdam``); UTC for None or ``UTC``.

    Raises:
        IntervalError: No such time zone.
    """
    if name is None or name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise IntervalError(
            f"unknown time zone '{name}' (use an IANA name such as Europe/Amsterdam)"
        ) from None


# The times a user may write (in UTC): wide enough for any data, narrow enough that
# every schedule's next interval stays representable and every time is written with a
# four-digit year.
EARLIEST = "1000-01-01"
LATEST = "9900-01-01"


def parse_time(text: str, tz: tzinfo = UTC, *, day_end: bool = False) -> int:
    """Seconds since the epoch of a date or timestamp as a user writes it.

    A date means its midnight in ``tz``; with ``day_end`` it means the end of that day
    (the next midnight), so a date-only end includes the whole day. A timestamp without
    an offset is in ``tz``; one with an offset (``Z``, ``+02:00``) means what it says.

    Raises:
        IntervalError: Not an ISO-8601 date or timestamp, or before ``EARLIEST`` or
            after ``LATEST``.

    Example:
        >>> format_time(parse_time("2024-02-15", day_end=True))
        '2024-02-16T00:00:00Z'
        >>> format_time(parse_time("2024-02-15 12:30"))
        '2024-02-15T12:30:00Z'
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if day_end:
                day += timedelta(days=1)
            moment = datetime(day.year, day.month, day.day, tzinfo=tz)
        else:
            moment = datetime.fromisoformat(value.replace(" ", "T", 1))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
        seconds = moment.timestamp()
    except ValueError:
        raise IntervalError(
            f"'{text}' is not a date or timestamp (write 2024-01-31 or 2024-01-31T06:00:00)"
        ) from None
    except OverflowError:
        seconds = float("inf")
    if not _EARLIEST <= seconds <= _LATEST:
        raise IntervalError(
            f"'{text}' is outside the times seeknal handles, {EARLIEST} to {LATEST} UTC"
        )
    if seconds != int(seconds):
        raise IntervalError(
            f"'{text}' has fractions of a second; interval bounds are whole seconds"
        )
    return int(seconds)


_EARLIEST = datetime.fromisoformat(EARLIEST).replace(tzinfo=UTC).timestamp()
_LATEST = datetime.fromisoformat(LATEST).replace(tzinfo=UTC).timestamp()


def format_time(ts: int) -> str:
    """ISO-8601 UTC text of ``ts``: how plans and state write times.

    Example:
        >>> format_time(0)
        '1970-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_short(ts: int, tz: tzinfo = UTC) -> str:
    """``ts`` for people: a date at midnight in ``tz``, else the local date and time.

    Example:
        >>> format_short(86_400), format_short(90_000)
        ('1970-01-02', '1970-01-02 01:00')
    """
    local = datetime.fromtimestamp(ts, tz)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return local.strftime("%Y-%m-%d")
    text = local.strftime("%Y-%m-%d %H:%M" if local.second == 0 else "%Y-%m-%d %H:%M:%S")
    return text if tz is UTC else text + local.strftime("%z")


def ranges_to_json(ranges: Iterable[Interval]) -> list[list[str]]:
    """Merged ranges as ``[[start, end], ...]`` of ISO-8601 UTC text (state's format)."""
    return [[format_time(i.start), format_time(i.end)] for i in merge(ranges)]


def ranges_from_json(data: Iterable[Sequence[str]]) -> Intervals:
    """The inverse of :func:`ranges_to_json`.

    Raises:
        IntervalError: A bound is not ISO-8601 text, or a range is empty.
    """
    return merge(Interval(parse_time(start), parse_time(end)) for start, end in data)


# --- schedules ----------------------------------------------------------------------------


class _Ticks(Protocol):
    def floor(self, ts: int) -> int: ...
    def after(self, ts: int) -> int: ...
    def before(self, ts: int) -> int: ...


@dataclass(frozen=True, slots=True)
class _Periodic:
    """Ticks every ``period`` seconds, shifted by ``offset``: sub-daily or UTC schedules."""

    period: int
    offset: int

    def floor(self, ts: int) -> int:
        return ts - (ts - self.offset) % self.period

    def after(self, ts: int) -> int:
        return self.floor(ts) + self.period

    def before(self, ts: int) -> int:
        base = self.floor(ts)
        return base - self.period if base == ts else base


@dataclass(frozen=True, slots=True)
class _Calendar:
    """Ticks at a fixed local time on matching days: daily, weekly, monthly in any zone.

    Local times are turned into instants by the zone's rules, so a daily schedule in
    ``Europe/Amsterdam`` has 23- and 25-hour intervals around the DST changes.
    """

    tz: tzinfo
    hour: int
    minute: int
    day: int | None  # day of the month, or None
    weekday: int | None  # 0 = Sunday, as in cron, or None
    months: frozenset[int] | None  # None: every month

    def _instant(self, d: date) -> int:
        return int(
            datetime(d.year, d.month, d.day, self.hour, self.minute, tzinfo=self.tz).timestamp()
        )

    def _matches(self, d: date) -> bool:
        return (
            (self.day is None or d.day == self.day)
            and (self.weekday is None or d.isoweekday() % 7 == self.weekday)
            and (self.months is None or d.month in self.months)
        )

    def _days(self, start: date, step: int) -> Iterator[date]:
        """Matching days from ``start`` (included) going forward (1) or back (-1)."""
        d = start
        if self.day is not None:
            # Month by month: the fixed day of each month, then the months filter.
            year, month = d.year, d.month
            if (step > 0 and d.day > self.day) or (step < 0 and d.day < self.day):
                year, month = _add_month(year, month, step)
            while True:
                candidate = date(year, month, self.day)
                if self.months is None or month in self.months:
                    yield candidate
                year, month = _add_month(year, month, step)
        stride = timedelta(days=step)
        while not self._matches(d):
            d += stride
        stride = timedelta(days=7 * step if self.weekday is not None else step)
        while True:
            if self.months is None or d.month in self.months:
                yield d
            d += stride

    def floor(self, ts: int) -> int:
        local = datetime.fromtimestamp(ts, self.tz).date() + timedelta(days=1)
        for d in self._days(local, -1):
            instant = self._instant(d)
            if instant <= ts:
                return instant
        raise AssertionError("unreachable: a matching day always comes")

    def after(self, ts: int) -> int:
        local = datetime.fromtimestamp(ts, self.tz).date() - timedelta(days=1)
        for d in self._days(local, 1):
            instant = self._instant(d)
            if instant > ts:
                return instant
        raise AssertionError("unreachable: a matching day always comes")

    def before(self, ts: int) -> int:
        local = datetime.fromtimestamp(ts, self.tz).date() + timedelta(days=1)
        for d in self._days(local, -1):
            instant = self._instant(d)
            if instant < ts:
                return instant
        raise AssertionError("unreachable: a matching day always comes")


def _add_month(year: int, month: int, step: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + step
    return index // 12, index % 12 + 1


@dataclass(frozen=True, slots=True)
class _Cron:
    """Any other cron expression, through croniter (correct, slower)."""

    expression: str
    tz: tzinfo

    def _at(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def floor(self, ts: int) -> int:
        # croniter's get_prev is strictly before its start: start one second later.
        return int(self._iter(ts + 1).get_prev(datetime).timestamp())

    def after(self, ts: int) -> int:
        return int(self._iter(ts).get_next(datetime).timestamp())

    def before(self, ts: int) -> int:
        return int(self._iter(ts).get_prev(datetime).timestamp())

    def _iter(self, ts: int) -> Any:
        return _croniter()(self.expression, self._at(ts))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule in a time zone: where intervals begin and end.

    Example:
        >>> daily = Schedule.parse("@daily")
        >>> format_time(daily.floor(parse_time("2024-01-05 13:00")))
        '2024-01-05T00:00:00Z'
        >>> daily.count(Interval(parse_time("2024-01-01"), parse_time("2024-02-01")))
        31
    """

    expression: str
    timezone: str
    _ticks: _Ticks

    @classmethod
    def parse(cls, expression: str, timezone: str | None = None) -> Schedule:
        """The schedule of a cron expression or alias, in ``timezone`` (default UTC).

        Raises:
            IntervalError: Not a valid cron expression, or an unknown time zone.
        """
        tz = zone(timezone)
        text = " ".join(expression.split())
        cron = ALIASES.get(text.lower(), text)
        if not cron or (cron not in _EXPANDED and not _croniter().is_valid(cron)):
            raise IntervalError(
                f"'{expression}' is not a cron expression "
                "(write e.g. @daily, @hourly, @weekly, @monthly or '0 6 * * *')"
            )
        name = "UTC" if tz is UTC else str(timezone)
        ticks = _fast_ticks(cron, tz) or _Cron(cron, tz)
        if isinstance(ticks, _Cron):
            try:  # a valid expression can still name no date ('0 0 31 2 *')
                ticks.after(0)
            except Exception:
                raise IntervalError(
                    f"'{expression}' never fires: no date matches it "
                    "(write e.g. @daily, @hourly, @weekly, @monthly or '0 6 * * *')"
                ) from None
        return cls(cron, name, ticks)

    @property
    def tz(self) -> tzinfo:
        return zone(self.timezone)

    def floor(self, ts: int) -> int:
        """The last tick at or before ``ts``."""
        return self._ticks.floor(ts)

    def ceil(self, ts: int) -> int:
        """The first tick at or after ``ts``."""
        below = self._ticks.floor(ts)
        return below if below == ts else self._ticks.after(ts)

    def next(self, ts: int) -> int:
        """The first tick strictly after ``ts``."""
        return self._ticks.after(ts)

    def previous(self, ts: int) -> int:
        """The last tick strictly before ``ts``."""
        return self._ticks.before(ts)

    def is_tick(self, ts: int) -> bool:
        return self._ticks.floor(ts) == ts

    def inward(self, interval: Interval) -> Interval | None:
        """The whole intervals of the schedule inside ``interval`` (None if there are none)."""
        start, end = self.ceil(interval.start), self.floor(interval.end)
        return Interval(start, end) if start < end else None

    def outward(self, interval: Interval) -> Interval:
        """The smallest run of whole intervals of the schedule containing ``interval``."""
        return Interval(self.floor(interval.start), self.ceil(interval.end))

    def ticks(self, interval: Interval) -> Iterator[int]:
        """Every tick in ``[start, end)``, in order."""
        tick = self.ceil(interval.start)
        while tick < interval.end:
            yield tick
            tick = self._ticks.after(tick)

    def count(self, interval: Interval) -> int:
        """How many whole intervals ``interval`` holds."""
        aligned = self.inward(interval)
        if aligned is None:
            return 0
        if isinstance(self._ticks, _Periodic):
            return aligned.seconds // self._ticks.period
        return sum(1 for _ in self.ticks(aligned))

    def back(self, ts: int, steps: int, *, floor: int | None = None) -> int:
        """``steps`` ticks before tick ``ts``, never before ``floor``."""
        for _ in range(steps):
            if floor is not None and ts <= floor:
                return floor
            ts = self._ticks.before(ts)
        return ts if floor is None else max(ts, floor)


def _fast_ticks(cron: str, tz: tzinfo) -> _Ticks | None:
    """A direct computation of the ticks, for the shapes nearly every schedule has."""
    try:
        expanded = _EXPANDED.get(cron)
        if expanded is None:
            expanded = _croniter().expand(cron)[0]
        minutes, hours, days, months, weekdays = expanded
    except Exception:  # croniter raises several kinds on odd expressions: use it as is
        return None
    if len(cron.split()) != 5:
        return None  # a seconds field: croniter's business

    def every(values: list[int | str], unit: int, limit: int) -> int | None:
        """The step of an evenly spaced list that wraps around ``limit`` (None if not)."""
        if values == ["*"]:
            return unit
        ints = [v for v in values if isinstance(v, int)]
        if len(ints) != len(values) or limit % len(ints):
            return None
        step = limit // len(ints)
        if any(b - a != step for a, b in itertools.pairwise(ints)):
            return None
        return step * unit

    def single(values: list[int | str]) -> int | None:
        return values[0] if len(values) == 1 and isinstance(values[0], int) else None

    minute, hour = single(minutes), single(hours)
    anyday = days == ["*"] and months == ["*"] and weekdays == ["*"]
    if tz is UTC and anyday and hours == ["*"]:
        period = every(minutes, 60, 60)
        if period is not None:
            first = minutes[0] if isinstance(minutes[0], int) else 0
            return _Periodic(period, first * 60)
    if tz is UTC and anyday and minute is not None:
        period = every(hours, 3600, 24)
        if period is not None and hours != ["*"]:
            first = hours[0] if isinstance(hours[0], int) else 0
            return _Periodic(period, first * 3600 + minute * 60)
    if minute is None or hour is None:
        return None
    day, weekday = single(days), single(weekdays)
    month_set = None if months == ["*"] else frozenset(m for m in months if isinstance(m, int))
    if days == ["*"] and weekdays == ["*"]:
        return _Calendar(tz, hour, minute, None, None, month_set)
    if days == ["*"] and weekday is not None:
        return _Calendar(tz, hour, minute, None, weekday % 7, month_set)
    if weekdays == ["*"] and day is not None and day <= 28:
        return _Calendar(tz, hour, minute, day, None, month_set)
    return None


# --- batches and lookback -----------------------------------------------------------------


def split_batches(
    ranges: Iterable[Interval], schedule: Schedule, batch_size: int | None
) -> list[Interval]:
    """Cut ``ranges`` into batches of at most ``batch_size`` schedule intervals, in time order.

    A batch never spans a gap between two ranges. Without a batch size, each range is one
    batch.

    Example:
        >>> day = Schedule.parse("@daily")
        >>> week = Interval(parse_time("2024-01-01"), parse_time("2024-01-08"))
        >>> [b.seconds // DAY for b in split_batches([week], day, 3)]
        [3, 3, 1]
    """
    batches: list[Interval] = []
    for interval in merge(ranges):
        if batch_size is None:
            batches.append(interval)
            continue
        start = interval.start
        while start < interval.end:
            end = start
            for _ in range(batch_size):
                end = schedule.next(end)
                if end >= interval.end:
                    end = interval.end
                    break
            batches.append(Interval(start, end))
            start = end
    return batches


def lookback_ranges(
    missing: Iterable[Interval],
    completed: Iterable[Interval],
    schedule: Schedule,
    intervals: int,
    *,
    floor: int,
) -> Intervals:
    """The ``intervals`` completed intervals just before each missing range.

    Late data lands in the recent past: a run that fills new intervals also reprocesses
    the few before them. A run with nothing missing reprocesses nothing.

    Example:
        >>> day = Schedule.parse("@daily")
        >>> done = [Interval(0, 10 * DAY)]
        >>> lookback_ranges([Interval(10 * DAY, 11 * DAY)], done, day, 2, floor=0)
        (Interval(start=691200, end=864000),)
    """
    if intervals <= 0:
        return ()
    before = [
        Interval(schedule.back(m.start, intervals, floor=floor), m.start)
        for m in merge(missing)
        if m.start > floor
    ]
    return intersect(before, completed)
