"""The business-time module (tasks.sla.business_time): properties, DST days, holidays."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tasks.sla.business_time import (
    DAY_KEYS,
    MINUTES_PER_DAY,
    BusinessCalendar,
    CalendarError,
    add_business_minutes,
    add_business_time,
    business_minutes_between,
    business_time_between,
)

UTC = dt.UTC
# Zones with DST at 02:00 (US), at 01:00 UTC (EU), at midnight (Santiago, Havana: the gap or
# the repeated hour is midnight itself), a half-hour DST shift (Lord Howe), none (Phoenix).
ZONES = (
    "America/New_York",
    "Europe/Lisbon",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "America/Phoenix",
    "UTC",
)
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
ALL_DAY = {day: [["00:00", "24:00"]] for day in DAY_KEYS}
NY = ZoneInfo("America/New_York")


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


# -- strategies --------------------------------------------------------------------------------

minutes_of_day = st.integers(0, MINUTES_PER_DAY)


@st.composite
def day_spans(draw) -> list[list[str]]:
    """0-3 spans of a day as ["HH:MM", "HH:MM"], possibly overlapping or touching."""
    spans = []
    for _ in range(draw(st.integers(0, 3))):
        a = draw(st.integers(0, MINUTES_PER_DAY - 1))
        b = draw(st.integers(a + 1, MINUTES_PER_DAY))
        spans.append([f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"])
    return spans


@st.composite
def calendars(draw) -> BusinessCalendar:
    weekly = {day: draw(day_spans()) for day in DAY_KEYS}
    assume(any(weekly.values()))
    holidays = draw(st.sets(st.dates(dt.date(2025, 12, 1), dt.date(2027, 2, 1)), max_size=40))
    return BusinessCalendar.from_config(draw(st.sampled_from(ZONES)), weekly, holidays)


# Instants across 2026 (and its DST changes), to the microsecond, in any zone's offset.
instants = st.datetimes(
    min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31), timezones=st.just(UTC)
)


def bounded(calendar: BusinessCalendar, minutes: int) -> int:
    """At most about half a year of the calendar's business time, so a calendar with a few
    minutes a week does not make an example walk for centuries."""
    per_week = sum(end - start for day in calendar.weekly for start, end in day)
    return 1 + (minutes - 1) % (per_week * 26)


def in_business_hours(calendar: BusinessCalendar, instant: dt.datetime) -> bool:
    """The instant lies in (open, close] of some opening: the moment just before it is
    business time by wall clock, and its local date is not a holiday."""
    just_before = instant - dt.timedelta(microseconds=1)
    for day in (calendar.local_date(just_before) - dt.timedelta(days=1),
                calendar.local_date(just_before)):  # fmt: skip
        for a, b in calendar.day_intervals(day):
            if a <= just_before < b:
                assert day not in calendar.holidays
                return True
    return False


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(calendar=calendars(), start=instants, minutes=st.integers(1, 30_000))
def test_adding_then_counting_gives_back_the_same_minutes(calendar, start, minutes):
    minutes = bounded(calendar, minutes)
    end = add_business_minutes(start, minutes, calendar)
    assert end > start
    assert business_time_between(start, end, calendar) == dt.timedelta(minutes=minutes)
    assert business_minutes_between(start, end, calendar) == minutes


@settings(max_examples=300, deadline=None)
@given(calendar=calendars(), start=instants, minutes=st.integers(1, 30_000))
def test_a_result_never_lands_outside_business_hours_or_on_a_holiday(calendar, start, minutes):
    minutes = bounded(calendar, minutes)
    end = add_business_minutes(start, minutes, calendar)
    assert in_business_hours(calendar, end)
    local = (end - dt.timedelta(microseconds=1)).astimezone(calendar.zone)
    assert local.date() not in calendar.holidays


@settings(max_examples=200, deadline=None)
@given(calendar=calendars(), a=instants, b=instants, c=instants)
def test_counting_is_additive_and_never_exceeds_elapsed_time(calendar, a, b, c):
    a, b, c = sorted((a, b, c))
    whole = business_time_between(a, c, calendar)
    assert whole == business_time_between(a, b, calendar) + business_time_between(b, c, calendar)
    assert dt.timedelta(0) <= whole <= c - a
    assert business_time_between(c, a, calendar) == dt.timedelta(0)


@settings(max_examples=200, deadline=None)
@given(calendar=calendars(), start=instants, m=st.integers(1, 20_000), n=st.integers(1, 20_000))
def test_adding_in_two_steps_equals_adding_at_once(calendar, start, m, n):
    # What lets a paused ticket's deadline be recomputed from creation with the paused minutes.
    # (Both steps at least a minute: adding 0 at a closing time snaps to the next opening.)
    m, n = bounded(calendar, m), bounded(calendar, n)
    once = add_business_minutes(start, m + n, calendar)
    assert add_business_minutes(add_business_minutes(start, m, calendar), n, calendar) == once


@settings(max_examples=300, deadline=None)
@given(start=instants, minutes=st.integers(0, 200_000), zone=st.sampled_from(ZONES))
def test_24x7_is_plain_arithmetic_even_as_an_all_day_calendar_in_a_dst_zone(start, minutes, zone):
    delta = dt.timedelta(minutes=minutes)
    assert add_business_minutes(start, minutes, None) == start + delta
    assert business_time_between(start, start + delta, None) == delta
    all_day = BusinessCalendar.from_config(zone, ALL_DAY)
    assert add_business_minutes(start, minutes, all_day) == start + delta
    assert business_time_between(start, start + delta, all_day) == delta


# -- DST days ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", dt.date(2026, 3, 8), 23),
        ("America/New_York", dt.date(2026, 11, 1), 25),
        ("Europe/Lisbon", dt.date(2026, 3, 29), 23),
        ("Europe/Lisbon", dt.date(2026, 10, 25), 25),
        ("America/Santiago", dt.date(2026, 9, 6), 23),  # DST starts at midnight: 00:00 is gone
        ("America/Santiago", dt.date(2026, 4, 4), 25),  # midnight comes twice
        ("Australia/Lord_Howe", dt.date(2026, 4, 5), 24.5),
        ("America/Phoenix", dt.date(2026, 3, 8), 24),
        ("America/New_York", dt.date(2026, 3, 9), 24),
    ],
)
def test_an_all_day_calendar_counts_a_local_day_as_it_really_lasted(zone, day, hours):
    cal = BusinessCalendar.from_config(zone, ALL_DAY)
    z = ZoneInfo(zone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=z)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=z)
    counted = business_time_between(start - dt.timedelta(hours=3), end + dt.timedelta(hours=3), cal)
    assert counted - dt.timedelta(hours=6) == dt.timedelta(hours=hours)
    assert sum((b - a for a, b in cal.day_intervals(day)), dt.timedelta()) == dt.timedelta(
        hours=hours
    )


def test_office_hours_stay_eight_hours_on_dst_days_and_in_local_time():
    cal = BusinessCalendar.from_config("America/New_York", OFFICE)
    # Friday 2026-03-06 16:00 EST + 2 h: 1 h on Friday, 1 h on Monday 03-09 (now EDT).
    assert add_business_minutes(ny(2026, 3, 6, 16), 120, cal) == ny(2026, 3, 9, 10)
    assert ny(2026, 3, 9, 10).utcoffset() == dt.timedelta(hours=-4)
    # A whole working week across the change is 40 hours.
    week = business_time_between(ny(2026, 3, 2), ny(2026, 3, 14), cal)
    assert week == dt.timedelta(hours=80)  # two weeks, 03-02..03-13


def test_hours_spanning_the_spring_forward_gap_lose_the_missing_hour():
    night = {"sun": [["00:00", "04:00"]]}
    cal = BusinessCalendar.from_config("America/New_York", night)
    assert cal.day_intervals(dt.date(2026, 3, 8)) == (
        (dt.datetime(2026, 3, 8, 5, tzinfo=UTC), dt.datetime(2026, 3, 8, 8, tzinfo=UTC)),
    )  # 00:00 EST .. 04:00 EDT: three hours
    assert cal.day_intervals(dt.date(2026, 11, 1)) == (
        (dt.datetime(2026, 11, 1, 4, tzinfo=UTC), dt.datetime(2026, 11, 1, 9, tzinfo=UTC)),
    )  # 00:00 EDT .. 04:00 EST: five hours


def test_an_opening_inside_the_gap_moves_forward_by_the_gap():
    cal = BusinessCalendar.from_config("America/New_York", {"sun": [["02:30", "05:00"]]})
    [(a, b)] = cal.day_intervals(dt.date(2026, 3, 8))
    assert a.astimezone(NY) == ny(2026, 3, 8, 3, 30)  # 02:30 does not exist: 03:30 EDT
    assert b.astimezone(NY) == ny(2026, 3, 8, 5)


# -- holidays, weekends, edges -----------------------------------------------------------------


def test_holidays_and_weekends_are_skipped():
    cal = BusinessCalendar.from_config(
        "America/New_York", OFFICE, holidays=[dt.date(2026, 5, 25)]
    )  # Memorial Day, a Monday
    assert add_business_minutes(ny(2026, 5, 22, 16), 120, cal) == ny(2026, 5, 26, 10)
    assert business_minutes_between(ny(2026, 5, 22, 16), ny(2026, 5, 26, 10), cal) == 120
    # From a holiday morning the clock starts on the next working day.
    assert add_business_minutes(ny(2026, 5, 25, 9), 30, cal) == ny(2026, 5, 26, 9, 30)


def test_a_deadline_may_land_on_closing_time_and_adding_zero_snaps_to_the_next_opening():
    cal = BusinessCalendar.from_config("America/New_York", OFFICE)
    assert add_business_minutes(ny(2026, 6, 1, 9), 480, cal) == ny(2026, 6, 1, 17)
    assert add_business_minutes(ny(2026, 6, 1, 9), 481, cal) == ny(2026, 6, 2, 9, 1)
    assert add_business_minutes(ny(2026, 6, 1, 12), 0, cal) == ny(2026, 6, 1, 12)
    assert add_business_minutes(ny(2026, 6, 6, 12), 0, cal) == ny(2026, 6, 8, 9)  # Saturday


def test_several_spans_a_day_and_overlaps_are_merged():
    split = {"mon": [["13:00", "17:00"], ["08:00", "12:00"], ["11:00", "12:30"]]}
    cal = BusinessCalendar.from_config("America/New_York", split)
    assert cal.weekly[0] == ((480, 750), (780, 1020))
    assert add_business_minutes(ny(2026, 6, 1, 12), 60, cal) == ny(2026, 6, 1, 13, 30)


def test_minutes_round_half_up():
    assert business_minutes_between(ny(2026, 6, 1, 9), ny(2026, 6, 1, 9, 0, 29), None) == 0
    assert business_minutes_between(ny(2026, 6, 1, 9), ny(2026, 6, 1, 9, 0, 30), None) == 1


@pytest.mark.parametrize(
    ("zone", "weekly", "message"),
    [
        ("America/New_York", {}, "needs some business hours"),
        ("America/New_York", {"monday": [["09:00", "17:00"]]}, "unknown day"),
        ("America/New_York", {"mon": [["17:00", "09:00"]]}, "does not close after"),
        ("America/New_York", {"mon": [["9", "17:00"]]}, "is not a time"),
        ("America/New_York", {"mon": [["09:00", "24:30"]]}, "is not a time"),
        ("America/New_York", {"mon": ["09:00", "17:00"]}, "pair"),
        ("Mars/Olympus", {"mon": [["09:00", "17:00"]]}, "unknown time zone"),
    ],
)
def test_an_unusable_calendar_is_refused(zone, weekly, message):
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_config(zone, weekly)


def test_naive_instants_and_negative_amounts_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(dt.datetime(2026, 1, 1), 5, None)
    with pytest.raises(ValueError, match="negative"):
        add_business_time(ny(2026, 1, 1), dt.timedelta(minutes=-1), None)
