"""Recurrence in each property's own time zone (tasks.recurring.rrules), held against
python-dateutil with property-based tests (SPEC 6.1).

What must hold, for any rule, zone (with and without daylight saving) and window:
- the wall-clock occurrences are exactly python-dateutil's `rrule` for the same rule and local
  dtstart;
- each becomes the instant the wall clock shows, except that a time skipped by a spring-forward
  change moves forward by the gap, and a time repeated by a fall-back change takes the first;
- so a 09:00 rule is 09:00 local on both sides of every change.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule as du
from dateutil.tz import datetime_exists, resolve_imaginary
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tasks.recurring.rrules import (
    InvalidRule,
    expand,
    local_to_utc,
    parse_rrule,
    reservation_due,
    zone,
)

UTC = dt.UTC
DST_ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Lisbon",
    "Europe/Berlin",
    "Australia/Sydney",  # southern hemisphere: falls back in April
    "Australia/Lord_Howe",  # a 30-minute change
    "America/Santiago",  # changes at midnight
    "Pacific/Auckland",
)
FIXED_ZONES = ("UTC", "Pacific/Honolulu", "America/Phoenix", "Asia/Tokyo", "Asia/Kolkata")
ZONES = DST_ZONES + FIXED_ZONES

FREQS = {"YEARLY": du.YEARLY, "MONTHLY": du.MONTHLY, "WEEKLY": du.WEEKLY, "DAILY": du.DAILY,
         "HOURLY": du.HOURLY}  # fmt: skip
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def transitions(tz: ZoneInfo, year: int) -> list[tuple[dt.datetime, dt.timedelta, dt.timedelta]]:
    """(first instant with the new offset, offset before, offset after) for each change."""
    out = []
    t = dt.datetime(year, 1, 1, tzinfo=UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=UTC)
    before = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + dt.timedelta(days=1)
        after = nxt.astimezone(tz).utcoffset()
        if after != before:
            lo, hi = t, nxt
            while hi - lo > dt.timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid.astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, before, after))
            before = after
        t = nxt
    return out


def oracle_instant(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """SPEC 6.1's instant for a wall-clock time, built from dateutil's own tz helpers."""
    aware = local.replace(tzinfo=tz)
    if not datetime_exists(aware):
        return resolve_imaginary(aware).astimezone(UTC)  # forward by the gap
    candidates = {local.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return min(candidates)  # the first of an ambiguous pair (or the only one)


@st.composite
def rules(draw):
    """An RRULE as text plus the same rule built with dateutil's constructor."""
    # Weighted towards the frequencies whose occurrences fall into a window of a few days.
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY"] + ["WEEKLY", "HOURLY"] * 2 + ["DAILY"] * 3))
    interval = draw(st.integers(1, 3))
    parts = [f"FREQ={freq}", f"INTERVAL={interval}"]
    kwargs: dict = {"interval": interval}
    if freq != "HOURLY" and draw(st.booleans()):
        hours = sorted(draw(st.sets(st.integers(0, 23), min_size=1, max_size=3)))
        parts.append("BYHOUR=" + ",".join(map(str, hours)))
        kwargs["byhour"] = hours
        minutes = sorted(draw(st.sets(st.sampled_from([0, 15, 30, 45]), min_size=1, max_size=2)))
        parts.append("BYMINUTE=" + ",".join(map(str, minutes)))
        kwargs["byminute"] = minutes
    if freq in ("WEEKLY", "DAILY") and draw(st.booleans()):
        days = sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=3)))
        parts.append("BYDAY=" + ",".join(WEEKDAYS[d] for d in days))
        kwargs["byweekday"] = days
    if freq == "MONTHLY" and draw(st.booleans()):
        monthdays = sorted(draw(st.sets(st.integers(1, 28), min_size=1, max_size=2)))
        parts.append("BYMONTHDAY=" + ",".join(map(str, monthdays)))
        kwargs["bymonthday"] = monthdays
    if not draw(st.integers(0, 3)):  # a COUNT now and then (it ends most windows early)
        n = draw(st.integers(1, 200))
        parts.append(f"COUNT={n}")
        kwargs["count"] = n
    return ";".join(parts), FREQS[freq], kwargs


local_times = st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31)
).map(lambda d: d.replace(minute=d.minute - d.minute % 15, second=0, microsecond=0))


@st.composite
def zones_and_windows(draw):
    """A zone, a local dtstart and an aware window; most windows straddle a clock change."""
    tz_name = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(tz_name)
    changes = transitions(tz, draw(st.integers(2024, 2030)))
    if changes and draw(st.integers(0, 3)):
        change = draw(st.sampled_from(changes))[0]
        start = change - dt.timedelta(hours=draw(st.integers(0, 72)))
        dtstart = (start - dt.timedelta(minutes=15 * draw(st.integers(0, 4 * 24 * 5)))).astimezone(
            tz
        )
        dtstart = dtstart.replace(tzinfo=None, minute=dtstart.minute - dtstart.minute % 15)
    else:
        dtstart = draw(local_times)
        start = local_to_utc(dtstart, tz) + dt.timedelta(hours=draw(st.integers(-48, 400 * 24)))
    end = start + dt.timedelta(hours=draw(st.integers(1, 10 * 24)))
    return tz_name, dtstart.replace(second=0, microsecond=0), start, end


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=rules(), case=zones_and_windows())
def test_occurrences_equal_dateutils_rrule_for_the_same_rule_and_local_dtstart(rule, case):
    text, freq, kwargs = rule
    tz_name, dtstart, start, end = case
    tz = ZoneInfo(tz_name)
    reference = du.rrule(freq, dtstart=dtstart, **kwargs)
    lo = start.astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=2)
    hi = end.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=2)
    expected = [
        x for x in reference.between(lo, hi, inc=True) if start <= oracle_instant(x, tz) <= end
    ]

    got = list(expand(parse_rrule(text, dtstart), tz, start, end))

    assert [o.local for o in got] == expected
    for o in got:
        assert o.at == oracle_instant(o.local, tz)
        assert o.at.tzinfo is not None and o.at.utcoffset() == dt.timedelta(0)
        assert o.local_date == o.at.astimezone(tz).date()
        if datetime_exists(o.local.replace(tzinfo=tz)):
            assert o.at.astimezone(tz).replace(tzinfo=None) == o.local


@settings(max_examples=150, deadline=None)
@given(
    tz_name=st.sampled_from(ZONES),
    year=st.integers(2024, 2030),
    which=st.integers(0, 1),
    hour=st.integers(0, 23),
)
@example(tz_name="America/New_York", year=2026, which=0, hour=9)
@example(tz_name="Europe/Lisbon", year=2026, which=1, hour=9)
@example(tz_name="Australia/Sydney", year=2026, which=0, hour=9)
@example(tz_name="Pacific/Honolulu", year=2026, which=0, hour=9)
def test_a_daily_rule_keeps_its_local_time_on_both_sides_of_a_change(tz_name, year, which, hour):
    tz = ZoneInfo(tz_name)
    changes = transitions(tz, year)
    # Zones without daylight saving have no change: any date of the year then.
    at = changes[which % len(changes)][0] if changes else dt.datetime(year, 3, 10, tzinfo=UTC)
    start, end = at - dt.timedelta(days=3), at + dt.timedelta(days=3)
    dtstart = (
        (start - dt.timedelta(days=10))
        .astimezone(tz)
        .replace(tzinfo=None, hour=hour, minute=0, second=0, microsecond=0)
    )
    occurrences = list(expand(parse_rrule("FREQ=DAILY", dtstart), tz, start, end))
    assert len(occurrences) >= 5
    dates = [o.local.date() for o in occurrences]
    assert dates == [dates[0] + dt.timedelta(days=i) for i in range(len(dates))]
    for o in occurrences:
        assert o.local.time() == dt.time(hour)
        if datetime_exists(o.local.replace(tzinfo=tz)):
            assert o.at.astimezone(tz).time() == dt.time(hour)  # on the wall clock too
    if changes and all(datetime_exists(o.local.replace(tzinfo=tz)) for o in occurrences):
        offsets = {o.at.astimezone(tz).utcoffset() for o in occurrences}
        assert len(offsets) == 2  # the same wall time, on both sides of the change


@settings(max_examples=150, deadline=None)
@given(
    tz_name=st.sampled_from(DST_ZONES),
    year=st.integers(2024, 2030),
    into=st.floats(0, 0.999),
)
def test_a_local_time_skipped_by_the_clock_moves_forward_by_the_gap(tz_name, year, into):
    tz = ZoneInfo(tz_name)
    gaps = [(t, b, a) for t, b, a in transitions(tz, year) if a > b]
    assume(gaps)
    change, before, after = gaps[0]
    gap = after - before
    first_missing = (change + before).replace(tzinfo=None)  # the wall time that never shows
    local = first_missing + dt.timedelta(minutes=int(gap.total_seconds() / 60 * into))
    assert not datetime_exists(local.replace(tzinfo=tz))

    [occ] = expand(
        parse_rrule("FREQ=DAILY;COUNT=1", local), tz, change - dt.timedelta(days=1), change + gap
    )

    assert occ.local == local
    assert occ.at.astimezone(tz).replace(tzinfo=None) == local + gap
    assert occ.at.astimezone(tz).utcoffset() == after


@settings(max_examples=150, deadline=None)
@given(
    tz_name=st.sampled_from(DST_ZONES),
    year=st.integers(2024, 2030),
    into=st.floats(0, 0.999),
)
def test_a_local_time_repeated_by_the_clock_takes_the_first(tz_name, year, into):
    tz = ZoneInfo(tz_name)
    overlaps = [(t, b, a) for t, b, a in transitions(tz, year) if a < b]
    assume(overlaps)
    change, before, after = overlaps[0]
    repeat = before - after
    first_repeated = (change + after).replace(tzinfo=None)
    local = first_repeated + dt.timedelta(minutes=int(repeat.total_seconds() / 60 * into))
    earlier = (local - before).replace(tzinfo=UTC)  # read with the offset before the change
    later = (local - after).replace(tzinfo=UTC)
    assert earlier < later and earlier.astimezone(tz).replace(tzinfo=None) == local

    [occ] = expand(
        parse_rrule("FREQ=DAILY;COUNT=1", local), tz, change - dt.timedelta(days=1), change
    )

    assert occ.at == earlier
    assert occ.at.astimezone(tz).utcoffset() == before


# --------------------------------------------------------------------------------------------
# Examples a reader can check by hand


def test_new_york_2026_examples():
    ny = ZoneInfo("America/New_York")
    assert local_to_utc(dt.datetime(2026, 3, 8, 2, 30), ny) == dt.datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC
    )
    assert local_to_utc(dt.datetime(2026, 11, 1, 1, 30), ny) == dt.datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
    daily = parse_rrule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", dt.datetime(2026, 3, 1, 9, 0))
    window = (dt.datetime(2026, 3, 7, tzinfo=UTC), dt.datetime(2026, 3, 9, 23, tzinfo=UTC))
    got = [o.at for o in expand(daily, ny, *window)]
    assert got == [
        dt.datetime(2026, 3, 7, 14, 0, tzinfo=UTC),  # 09:00 EST
        dt.datetime(2026, 3, 8, 13, 0, tzinfo=UTC),  # 09:00 EDT
        dt.datetime(2026, 3, 9, 13, 0, tzinfo=UTC),
    ]


def test_lord_howe_moves_a_skipped_time_by_half_an_hour():
    lh = ZoneInfo("Australia/Lord_Howe")  # 02:00 -> 02:30 on 4 October 2026
    at = local_to_utc(dt.datetime(2026, 10, 4, 2, 10), lh)
    assert at.astimezone(lh).replace(tzinfo=None) == dt.datetime(2026, 10, 4, 2, 40)


def test_until_is_inclusive_and_limits_the_rrule():
    tz = ZoneInfo("Europe/Lisbon")
    rule = parse_rrule("RRULE:FREQ=DAILY", dt.datetime(2026, 6, 1, 9, 0))
    window = (dt.datetime(2026, 6, 1, tzinfo=UTC), dt.datetime(2026, 6, 30, tzinfo=UTC))
    got = list(expand(rule, tz, *window, until=dt.datetime(2026, 6, 3, 9, 0)))
    assert [o.local.day for o in got] == [1, 2, 3]
    assert list(expand(rule, tz, *window, until=dt.datetime(2026, 5, 1))) == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "FREQ=SOMETIMES",
        "garbage",
        "FREQ=DAILY\nFREQ=WEEKLY",
        "DTSTART:20260101T090000\nRRULE:FREQ=DAILY",
        "FREQ=DAILY;UNTIL=20260301T000000Z",  # a UTC UNTIL with a wall-clock dtstart
        "FREQ=DAILY;BYDAY=XX",
    ],
)
def test_a_bad_rrule_is_refused(text):
    with pytest.raises(InvalidRule):
        parse_rrule(text, dt.datetime(2026, 1, 1, 9, 0))


def test_an_unknown_zone_is_refused():
    with pytest.raises(InvalidRule):
        zone("Mars/Olympus_Mons")
    assert zone("Europe/Lisbon") is zone("Europe/Lisbon")


@pytest.mark.parametrize(
    ("anchor", "local_time", "offset", "expected"),
    [
        # 11:00 on the check-out date.
        (dt.date(2026, 7, 14), dt.time(11, 0), 0, dt.datetime(2026, 7, 14, 15, 0, tzinfo=UTC)),
        # Midnight when local_time is null.
        (dt.date(2026, 7, 14), None, 0, dt.datetime(2026, 7, 14, 4, 0, tzinfo=UTC)),
        # 1 day before check-in at 15:00, across the spring change: still 15:00 local.
        (dt.date(2026, 3, 9), dt.time(15, 0), -1440, dt.datetime(2026, 3, 8, 19, 0, tzinfo=UTC)),
        (dt.date(2026, 3, 8), dt.time(15, 0), -1440, dt.datetime(2026, 3, 7, 20, 0, tzinfo=UTC)),
        # Landing in the gap: forward by the hour.
        (dt.date(2026, 3, 8), None, 150, dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # Landing in the repeated hour: the first.
        (dt.date(2026, 11, 1), None, 90, dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
)
def test_reservation_due_is_wall_clock_time_on_the_anchor_date(
    anchor, local_time, offset, expected
):
    occ = reservation_due(anchor, local_time, offset, ZoneInfo("America/New_York"))
    assert occ.at == expected
    assert occ.local_date == expected.astimezone(ZoneInfo("America/New_York")).date()
