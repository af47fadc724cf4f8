"""channel.export_calendars: per property, every live stay and block as a valid RFC 5545
calendar, parsed back with icalendar."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from db.session import session_scope
from tasks.channel.export import (
    ExportStay,
    build_calendar,
    escape_text,
    export_calendars,
    fold,
)
from tests.support import factories as f
from tests.support import feeds
from tests.support.cli import cmw_run_at_once

NY = ZoneInfo("America/New_York")
AS_OF = dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC)
TODAY = AS_OF.astimezone(NY).date()


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def q(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def export(**kw):
    with session_scope() as s:
        return export_calendars(s, as_of=kw.pop("as_of", AS_OF), **kw)


def exported(engine, property_id):
    [row] = q(
        engine, "SELECT * FROM channel.calendar_exports WHERE property_id = :p", p=property_id
    )
    return row


def mapped_property(session, **kw):
    pid = f.property_(session, **kw)
    feeds.mapping(session, feeds.connection(session), pid, "http://127.0.0.1/x.ics")
    return pid


def events_of(ics: str) -> dict[str, tuple]:
    calendar = icalendar.Calendar.from_ical(ics)
    return {
        str(e["UID"]): (e.decoded("DTSTART"), e.decoded("DTEND"), str(e["SUMMARY"]))
        for e in calendar.walk("VEVENT")
    }


def test_the_export_parses_back_to_the_same_live_stays(engine, session):
    pid = mapped_property(session, name="Maison Élodie — 日本語の名前, a very long name; indeed")
    guest = f.reservation(session, pid, day(2), day(6))
    owner = f.reservation(
        session, pid, day(8), day(10), reservation_type="owner_stay", source="owner"
    )
    block = f.reservation(session, pid, day(12), day(13), reservation_type="block")
    leaving = f.reservation(session, pid, day(-3), day(0))  # checks out today: still live
    f.reservation(session, pid, day(20), day(22), status="cancelled")
    f.reservation(session, pid, day(-10), day(-4))  # ended
    other = f.property_(session)  # no mapping: no export
    f.reservation(session, other, day(2), day(4))
    session.commit()

    result = export()

    assert result == {"properties": 1, "calendars_written": 1, "unchanged": 0, "events": 4}
    row = exported(engine, pid)
    ics = row.ics
    assert events_of(ics) == {
        f"{guest}@cmw.export": (day(2), day(6), "Reserved"),
        f"{owner}@cmw.export": (day(8), day(10), "Owner stay"),
        f"{block}@cmw.export": (day(12), day(13), "Not available"),
        f"{leaving}@cmw.export": (day(-3), day(0), "Reserved"),
    }
    raw = ics.encode("utf-8")
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 75
    calendar = icalendar.Calendar.from_ical(ics)
    assert str(calendar["VERSION"]) == "2.0" and "Central Memory" in str(calendar["PRODID"])
    assert str(calendar["X-WR-CALNAME"]).endswith(
        "Maison Élodie — 日本語の名前, a very long name; indeed"
    )
    for event in calendar.walk("VEVENT"):
        assert isinstance(event.decoded("DTSTAMP"), dt.datetime)
    assert row.etag.startswith('"') and row.etag.endswith('"') and len(row.etag) == 42
    assert q(engine, "SELECT 1 FROM channel.calendar_exports WHERE property_id = :p", p=other) == []


def test_an_unchanged_calendar_keeps_its_bytes_etag_and_row(engine, session):
    pid = mapped_property(session)
    f.reservation(session, pid, day(2), day(6))
    session.commit()
    export()
    first = exported(engine, pid)

    again = export(as_of=AS_OF + dt.timedelta(minutes=15))

    assert again["calendars_written"] == 0 and again["unchanged"] == 1
    second = exported(engine, pid)
    assert (second.ics, second.etag, second.generated_at, second.updated_at) == (
        first.ics,
        first.etag,
        first.generated_at,
        first.updated_at,
    )

    with session_scope() as s:
        f.reservation(s, pid, day(9), day(11))
    changed = export(as_of=AS_OF + dt.timedelta(minutes=30))
    third = exported(engine, pid)
    assert changed["calendars_written"] == 1 and third.etag != first.etag
    assert third.generated_at == AS_OF + dt.timedelta(minutes=30)
    assert len(events_of(third.ics)) == 2


def test_a_property_without_stays_gets_a_valid_empty_calendar(engine, session):
    pid = mapped_property(session)
    session.commit()
    export()
    ics = exported(engine, pid).ics
    assert events_of(ics) == {}
    assert icalendar.Calendar.from_ical(ics).name == "VCALENDAR"


def test_one_property_by_id_and_an_unknown_one_is_dead_lettered(engine, session, celery_app):
    pid = f.property_(session)  # by id it is exported even without a mapping
    f.reservation(session, pid, day(1), day(3))
    mapped_property(session)
    session.commit()
    task = celery_app.tasks["channel.export_calendars"]
    done = task.apply(kwargs={"property_id": str(pid), "as_of": AS_OF.isoformat()})
    assert done.successful() and done.result["properties"] == 1
    assert [
        r.property_id for r in q(engine, "SELECT property_id FROM channel.calendar_exports")
    ] == [pid]
    bad = task.apply(kwargs={"property_id": str(uuid.uuid4())})
    assert bad.failed()
    [dead] = q(
        engine, "SELECT * FROM ops.dead_letters WHERE task_name = 'channel.export_calendars'"
    )
    assert dead.error_kind == "validation" and "unknown property_id" in dead.error
    wrong = task.apply(kwargs={"property_id": 5})
    assert wrong.failed()


def test_twice_and_twice_at_once_leave_the_rows_of_once(engine, session):
    pids = [mapped_property(session) for _ in range(3)]
    for n, pid in enumerate(pids):
        f.reservation(session, pid, day(n + 1), day(n + 4))
    session.commit()
    export()
    once = q(
        engine, "SELECT property_id, ics, etag FROM channel.calendar_exports ORDER BY property_id"
    )
    with session_scope() as s:
        s.execute(text("DELETE FROM channel.calendar_exports"))
    cmw_run_at_once("channel.export_calendars", {"as_of": AS_OF.isoformat()}, timeout=120)
    assert (
        q(
            engine,
            "SELECT property_id, ics, etag FROM channel.calendar_exports ORDER BY property_id",
        )
        == once
    )
    export()
    assert (
        q(
            engine,
            "SELECT property_id, ics, etag FROM channel.calendar_exports ORDER BY property_id",
        )
        == once
    )


# -- the writer ------------------------------------------------------------------------------


def test_fold_keeps_every_line_within_75_octets_without_splitting_characters():
    line = "X-WR-CALNAME:" + "é日" * 60
    folded = fold(line)
    physical = folded.encode("utf-8").split(b"\r\n")
    assert all(len(p) <= 75 for p in physical)
    for p in physical:
        p.decode("utf-8")  # each physical line is whole characters
    assert folded.replace("\r\n ", "").rstrip("\r\n") == line


def test_escape_text():
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200
).filter(lambda s: s.strip() == s)


@settings(max_examples=200, deadline=None)
@given(
    NAMES,
    st.lists(
        st.tuples(
            st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2035, 1, 1)),
            st.integers(min_value=1, max_value=60),
            st.sampled_from(["guest", "owner_stay", "block"]),
        ),
        max_size=8,
    ),
)
def test_any_calendar_parses_back_with_icalendar(name, stays):
    items = [
        ExportStay(
            uuid.uuid4(),
            kind,
            start,
            start + dt.timedelta(days=nights),
            dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        )
        for start, nights, kind in stays
    ]
    ics = build_calendar(name, items)
    assert max(len(line) for line in ics.encode("utf-8").split(b"\r\n")) <= 75
    calendar = icalendar.Calendar.from_ical(ics)
    assert str(calendar["X-WR-CALNAME"]) == name
    parsed = {
        str(e["UID"]): (e.decoded("DTSTART"), e.decoded("DTEND")) for e in calendar.walk("VEVENT")
    }
    assert parsed == {f"{s.reservation_id}@cmw.export": (s.check_in, s.check_out) for s in items}


@pytest.mark.parametrize("kind", ["guest", "owner_stay", "block"])
def test_no_guest_names_in_the_export(kind):
    stay = ExportStay(
        uuid.uuid4(),
        kind,
        dt.date(2026, 7, 1),
        dt.date(2026, 7, 3),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    ics = build_calendar("P1 Villa", [stay])
    assert "DESCRIPTION" not in ics and "ATTENDEE" not in ics
