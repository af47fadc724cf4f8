"""The zone arithmetic of migration 0012, held against zoneinfo: `ops.local_to_utc` gives the
instant SPEC 6.1's rule gives (tasks.recurring.rrules.local_to_utc: a time in a gap moves
forward by it, a repeated one takes the first) for every wall-clock half hour around every
transition of 2020-2027 in zones with 1-hour, 30-minute, odd-offset and no daylight saving;
`comms.after_quiet_hours` agrees with a plain Python reading of quiet hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tasks.recurring.rrules import local_to_utc

ZONES = (
    "America/New_York",
    "Europe/Lisbon",
    "Australia/Sydney",
    "Pacific/Honolulu",
    "Australia/Lord_Howe",  # 30-minute shift
    "America/St_Johns",  # -03:30 / -02:30
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # transitions at midnight
    "Asia/Kolkata",
)
HALF_HOUR = dt.timedelta(minutes=30)


def transition_days(tz: ZoneInfo) -> list[dt.date]:
    days = []
    day = dt.date(2020, 1, 1)
    while day < dt.date(2028, 1, 1):
        nxt = day + dt.timedelta(days=1)
        if (
            dt.datetime.combine(day, dt.time(), tz).utcoffset()
            != dt.datetime.combine(nxt, dt.time(), tz).utcoffset()
        ):
            days.append(day)
        day = nxt
    return days


def walls_around_transitions(name: str) -> list[dt.datetime]:
    tz = ZoneInfo(name)
    walls = []
    for day in transition_days(tz) or [dt.date(2026, 3, 8)]:
        wall = dt.datetime.combine(day - dt.timedelta(days=1), dt.time())
        while wall < dt.datetime.combine(day + dt.timedelta(days=2), dt.time()):
            walls.append(wall)
            wall += HALF_HOUR
    return walls


def test_local_to_utc_agrees_with_zoneinfo_around_every_transition(session):
    zones, walls, expected = [], [], []
    for name in ZONES:
        for wall in walls_around_transitions(name):
            zones.append(name)
            walls.append(wall)
            expected.append(local_to_utc(wall, ZoneInfo(name)))
    got = session.execute(
        text(
            "SELECT ops.local_to_utc(w, z) FROM unnest(CAST(:w AS timestamp[]),"
            " CAST(:z AS text[])) WITH ORDINALITY AS u(w, z, n) ORDER BY n"
        ),
        {"w": walls, "z": zones},
    ).scalars()
    wrong = [(z, w, e, g) for z, w, e, g in zip(zones, walls, expected, got, strict=True) if e != g]
    assert len(walls) > 10_000
    assert wrong == []


def after_quiet_hours(ts: dt.datetime, name: str, start: dt.time, end: dt.time) -> dt.datetime:
    tz = ZoneInfo(name)
    local = ts.astimezone(tz)
    t, day = local.time().replace(tzinfo=None), local.date()
    if start == end:
        return ts
    if start < end:
        inside, end_day = start <= t < end, day
    else:
        inside = t >= start or t < end
        end_day = day + dt.timedelta(days=1) if t >= start else day
    if not inside:
        return ts
    return max(ts, local_to_utc(dt.datetime.combine(end_day, end), tz))


def test_after_quiet_hours_agrees_with_a_plain_reading(session):
    windows = [(dt.time(22, 0), dt.time(8, 0)), (dt.time(12, 0), dt.time(14, 0)),
               (dt.time(0, 0), dt.time(2, 30)), (dt.time(1, 0), dt.time(3, 0))]  # fmt: skip
    cases = []
    for name in ("America/New_York", "Europe/Lisbon", "Australia/Sydney", "Pacific/Honolulu"):
        for day in transition_days(ZoneInfo(name))[10:12] or [dt.date(2026, 3, 8)]:
            ts = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), dt.UTC)
            while ts < dt.datetime.combine(day + dt.timedelta(days=2), dt.time(), dt.UTC):
                for start, end in windows:
                    cases.append((ts, name, start, end))
                ts += dt.timedelta(minutes=23)
    got = session.execute(
        text(
            "SELECT comms.after_quiet_hours(ts, z, s, e) FROM unnest(CAST(:ts AS timestamptz[]),"
            " CAST(:z AS text[]), CAST(:s AS time[]), CAST(:e AS time[])) WITH ORDINALITY"
            " AS u(ts, z, s, e, n) ORDER BY n"
        ),
        {
            "ts": [c[0] for c in cases],
            "z": [c[1] for c in cases],
            "s": [c[2] for c in cases],
            "e": [c[3] for c in cases],
        },
    ).scalars()
    wrong = [(c, g) for c, g in zip(cases, got, strict=True) if after_quiet_hours(*c) != g]
    assert len(cases) > 1_000
    assert wrong == []
