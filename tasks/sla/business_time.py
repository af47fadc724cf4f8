"""Business time: add N business minutes to an instant, count business time between instants.

Pure (no database, no clock). A `BusinessCalendar` is weekly opening hours read as wall-clock
times in one IANA zone, plus holidays by local date (a holiday has no business hours at all).
`None` stands for 24x7: every instant is business time and the arithmetic is plain.

How it stays right across daylight-saving changes: each local day's opening hours are turned
into UTC intervals with zoneinfo, and all arithmetic is done on those intervals in UTC. So a
00:00-24:00 day has 23 hours of business time on a spring-forward day and 25 on a fall-back
day, and 09:00-17:00 stays eight hours. A wall-clock time that does not exist (the
spring-forward gap) moves forward by the gap and an ambiguous one (fall back) is the first of
the two, as in the recurring rules (SPEC 6.1): that is what `fold=0` means in PEP 495.

Conventions:
- Intervals are half-open [open, close). Adding lands at most on a closing time: 480 business
  minutes from Monday 09:00 with 09:00-17:00 hours is Monday 17:00, not Tuesday 09:00.
- Adding zero business minutes returns the instant itself when it is business time, else the
  next opening.
- Instants must be timezone-aware; results are in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = dt.UTC
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MINUTES_PER_DAY = 24 * 60
ONE_DAY = dt.timedelta(days=1)
ZERO = dt.timedelta(0)
# A calendar whose holidays leave no business hours for this many consecutive days is treated
# as broken (the walk would otherwise never end).
MAX_CLOSED_DAYS = 3660
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class CalendarError(ValueError):
    """A calendar that cannot be used (bad hours, no hours at all, unknown zone)."""


Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly opening hours in `zone`, minutes from local midnight per weekday; holidays."""

    zone: ZoneInfo
    # weekly[weekday] = sorted, disjoint (start_minute, end_minute) pairs, 0 <= start < end <= 1440
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[dt.date] = frozenset()

    @classmethod
    def from_config(
        cls,
        timezone: str,
        weekly_hours: Mapping[str, Sequence[Sequence[str]]],
        holidays: Iterable[dt.date] = (),
    ) -> BusinessCalendar:
        """Build from the `service.business_calendars` row shape:
        `{"mon": [["09:00", "17:00"]], ...}`; a day not named has no hours; "24:00" closes at
        the next midnight."""
        try:
            zone = ZoneInfo(timezone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError for malformed keys
            raise CalendarError(f"unknown time zone {timezone!r}") from exc
        if not isinstance(weekly_hours, Mapping):
            raise CalendarError("weekly_hours must be an object keyed by day (mon ... sun)")
        unknown = set(weekly_hours) - set(DAY_KEYS)
        if unknown:
            raise CalendarError(f"unknown day key(s) {sorted(unknown)}; use {', '.join(DAY_KEYS)}")
        weekly = tuple(_day_intervals(key, weekly_hours.get(key) or ()) for key in DAY_KEYS)
        if not any(weekly):
            raise CalendarError("a business calendar needs some business hours in its week")
        return cls(zone, weekly, frozenset(holidays))

    # -- the intervals ---------------------------------------------------------------------
    def day_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        """The UTC intervals of one local date's business hours (none on a holiday)."""
        return _day_intervals_cached(self, day)

    def _compute_day_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        if day in self.holidays:
            return ()
        out: list[Interval] = []
        for start, end in self.weekly[day.weekday()]:
            a, b = self._instant(day, start), self._instant(day, end)
            if b <= a:  # both ends inside a spring-forward gap: no time at all
                continue
            if out and a < out[-1][1]:
                # An end moved forward by a gap can overlap the next interval: merge them.
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return tuple(out)

    def intervals_from(self, day: dt.date) -> Iterator[Interval]:
        """Business intervals in time order, from local date `day` on, forever."""
        closed_days = 0
        previous: Interval | None = None
        while True:
            intervals = self.day_intervals(day)
            closed_days = 0 if intervals else closed_days + 1
            if closed_days > MAX_CLOSED_DAYS:
                raise CalendarError(f"no business hours for {MAX_CLOSED_DAYS} days from {day}")
            for a, b in intervals:
                if previous is not None and a < previous[1]:
                    # Never across days in a real zone, but keep the stream disjoint regardless.
                    previous = (previous[0], max(previous[1], b))
                    continue
                if previous is not None:
                    yield previous
                previous = (a, b)
            day += ONE_DAY

    def local_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.zone).date()

    def _instant(self, day: dt.date, minute: int) -> dt.datetime:
        if minute == MINUTES_PER_DAY:
            day, minute = day + ONE_DAY, 0
        local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=self.zone)
        return local.astimezone(UTC)


# The sweep computes deadlines for hundreds of tickets on the same few calendars and days: the
# zoneinfo conversions of a (calendar, day) are done once.
@lru_cache(maxsize=8192)
def _day_intervals_cached(calendar: BusinessCalendar, day: dt.date) -> tuple[Interval, ...]:
    return calendar._compute_day_intervals(day)


def _day_intervals(key: str, spans: Sequence[Sequence[str]]) -> tuple[tuple[int, int], ...]:
    if isinstance(spans, str) or not isinstance(spans, Sequence):
        raise CalendarError(f"{key}: expected a list of [open, close] pairs")
    parsed = []
    for span in spans:
        if isinstance(span, str) or not isinstance(span, Sequence) or len(span) != 2:
            raise CalendarError(f"{key}: {span!r} is not an [open, close] pair")
        start, end = _minute(key, span[0]), _minute(key, span[1])
        if start >= end:
            raise CalendarError(f"{key}: {span[0]}-{span[1]} does not close after it opens")
        parsed.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(parsed):
        if merged and start <= merged[-1][1]:  # overlapping or touching spans are one
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _minute(key: str, value: object) -> int:
    match = _HHMM.match(value) if isinstance(value, str) else None
    minute = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not match or minute > MINUTES_PER_DAY:
        raise CalendarError(f"{key}: {value!r} is not a time HH:MM between 00:00 and 24:00")
    return minute


def _aware(instant: dt.datetime, name: str) -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return instant.astimezone(UTC)


# -- the arithmetic --------------------------------------------------------------------------


def add_business_time(
    start: dt.datetime, amount: dt.timedelta, calendar: BusinessCalendar | None
) -> dt.datetime:
    """The instant at which `amount` of business time has elapsed since `start`."""
    start = _aware(start, "start")
    if amount < ZERO:
        raise ValueError("cannot add a negative amount of business time")
    if calendar is None:
        return start + amount
    remaining = amount
    # From the day before: an interval of the previous local day may still be open at `start`
    # only through a zone oddity, but starting there costs one day and rules it out.
    for a, b in calendar.intervals_from(calendar.local_date(start) - ONE_DAY):
        if b <= start:
            continue
        opened = max(a, start)
        available = b - opened
        if remaining <= available:
            return opened + remaining
        remaining -= available
    raise AssertionError("unreachable: intervals_from never ends")  # pragma: no cover


def add_business_minutes(
    start: dt.datetime, minutes: int, calendar: BusinessCalendar | None
) -> dt.datetime:
    return add_business_time(start, dt.timedelta(minutes=minutes), calendar)


def business_time_between(
    start: dt.datetime, end: dt.datetime, calendar: BusinessCalendar | None
) -> dt.timedelta:
    """Business time in [start, end); zero when end is not after start."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        return ZERO
    if calendar is None:
        return end - start
    total = ZERO
    for a, b in calendar.intervals_from(calendar.local_date(start) - ONE_DAY):
        if a >= end:
            break
        if b <= start:
            continue
        total += min(b, end) - max(a, start)
    return total


def business_minutes_between(
    start: dt.datetime, end: dt.datetime, calendar: BusinessCalendar | None
) -> int:
    """Whole business minutes in [start, end), rounded to the nearest (half a minute up): the
    unit `tickets.sla_paused_minutes` is kept in."""
    seconds = business_time_between(start, end, calendar).total_seconds()
    return int(seconds // 60 + (1 if seconds % 60 >= 30 else 0))
