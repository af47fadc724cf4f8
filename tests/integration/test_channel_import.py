"""channel.sync_mapping and channel.sync against real feeds served on 127.0.0.1.

Each test builds its property, connection and mappings, serves feeds in the channels' own
formats from a real HTTP server, runs the import (the plain function, or the task through the
real task base, or two `cmw run` processes at once) and asserts the rows it left.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from db.session import session_scope
from tasks.channel.bookkeeping import HEALTH_AFTER, MAX_BACKOFF, backoff_delay
from tasks.channel.export import export_calendars
from tasks.channel.plan import plan_sync
from tasks.channel.sync import import_mapping
from tests.support import factories as f
from tests.support import feeds
from tests.support.cli import start_cmw_run

NY = ZoneInfo("America/New_York")
# Real time: mappings are created "now" (created_at), and feed health compares against it.
AS_OF = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
TODAY = AS_OF.astimezone(NY).date()


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def server():
    with feeds.FeedServer() as srv:
        yield srv


@pytest.fixture
def purge_broker(celery_app):
    """Tasks run through the task base send their follow-ups to the broker; no worker is
    draining it here, so empty the session's queues afterwards for the tests that follow."""
    yield
    celery_app.control.purge()


def q(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def run(mapping_id, as_of=AS_OF, **kw):
    return import_mapping(mapping_id, as_of=as_of, **kw)


class Setup:
    """A property with one connection per channel; mappings added per test."""

    def __init__(self, session, server):
        self.session = session
        self.server = server
        self.property_id = f.property_(session, code=f"CH{uuid.uuid4().hex[:5]}")
        self.connections: dict[str, uuid.UUID] = {}

    def connection(self, channel: str = "airbnb", **kw) -> uuid.UUID:
        key = kw.pop("key", channel)
        if key not in self.connections:
            self.connections[key] = feeds.connection(self.session, channel=channel, **kw)
        return self.connections[key]

    def mapping(self, channel: str = "airbnb", body: bytes | None = None, **kw) -> tuple:
        path = f"/{channel}/{uuid.uuid4().hex}.ics"
        if body is not None:
            self.server.set_feed(path, body)
        connection_kw = {k: kw.pop(k) for k in ("settings", "key") if k in kw}
        property_id = kw.pop("property_id", self.property_id)
        mid = feeds.mapping(
            self.session,
            self.connection(channel, **connection_kw),
            property_id,
            self.server.url(path),
            **kw,
        )
        return mid, path

    def commit(self) -> None:
        self.session.commit()


@pytest.fixture
def setup(session, server):
    return Setup(session, server)


def bookings(engine, mapping_id):
    return {
        r.external_uid: r
        for r in q(
            engine,
            "SELECT b.*, r.status AS r_status, r.check_in, r.check_out, r.reservation_type,"
            " r.source, r.confirmation_code, r.cancelled_at AS r_cancelled_at"
            " FROM channel.channel_bookings b"
            " LEFT JOIN reservations.reservations r ON r.id = b.reservation_id"
            " WHERE b.mapping_id = :m",
            m=mapping_id,
        )
    }


def sync_logs(engine, mapping_id):
    return q(
        engine,
        "SELECT * FROM channel.sync_log WHERE mapping_id = :m ORDER BY started_at, created_at",
        m=mapping_id,
    )


def tickets(engine, property_id):
    return q(
        engine,
        "SELECT * FROM service.tickets WHERE property_id = :p ORDER BY created_at",
        p=property_id,
    )


# -- first import, per channel -----------------------------------------------------------------


def test_first_import_of_an_airbnb_feed(engine, setup):
    body = feeds.airbnb_feed(
        [
            feeds.airbnb_stay("s1", day(3), day(7), "HMAAAA1111", phone="1234"),
            feeds.airbnb_stay("s2", day(10), day(12), "HMBBBB2222"),
            feeds.airbnb_block("b1", day(20), day(25)),
        ]
    )
    mid, path = setup.mapping("airbnb", body)
    setup.commit()

    outcome = run(mid)

    assert outcome.result["status"] == "ok" and outcome.result["created"] == 3
    assert outcome.result["flavor"] == "airbnb"
    rows = bookings(engine, mid)
    s1, b1 = rows["s1@airbnb.com"], rows["b1@airbnb.com"]
    assert (s1.kind, s1.start_date, s1.end_date, s1.status) == (
        "reservation",
        day(3),
        day(7),
        "active",
    )
    assert (s1.source, s1.reservation_type, s1.r_status) == ("airbnb", "guest", "confirmed")
    assert (s1.check_in, s1.check_out, s1.confirmation_code) == (day(3), day(7), "HMAAAA1111")
    assert "Phone Number (Last 4 Digits): 1234" in s1.description
    assert (b1.kind, b1.reservation_type, b1.source) == ("block", "block", "airbnb")
    assert b1.confirmation_code is None
    # The stays, not the block, are handed to recurring.sync_reservation.
    assert sorted(outcome.reservations_to_sync) == sorted(
        [rows["s1@airbnb.com"].reservation_id, rows["s2@airbnb.com"].reservation_id]
    )
    [log] = sync_logs(engine, mid)
    assert (
        log.status,
        log.http_status,
        log.events_seen,
        log.created,
        log.updated,
        log.cancelled,
        log.conflicts,
        log.error,
    ) == ("ok", 200, 3, 3, 0, 0, 0, None)
    m = one(engine, "SELECT * FROM channel.channel_mappings WHERE id = :m", m=mid)
    assert m.last_etag == setup.server.routes[path].etag
    assert m.last_synced_at == AS_OF and m.last_changed_at == AS_OF
    c = one(
        engine,
        "SELECT * FROM channel.channel_connections WHERE id = :c",
        c=setup.connections["airbnb"],
    )
    assert c.last_success_at == AS_OF and c.consecutive_failures == 0


def test_vrbo_booking_com_and_generic_feeds(engine, setup):
    vrbo, _ = setup.mapping(
        "vrbo",
        feeds.vrbo_feed(
            [feeds.vrbo_stay("v1", day(2), day(5), "Maria"), feeds.vrbo_block("v2", day(8), day(9))]
        ),
    )
    booking, _ = setup.mapping(
        "booking_com", feeds.booking_feed([feeds.booking_closed("k1", day(30), day(33))])
    )
    booking_stays, _ = setup.mapping(
        "booking_com",
        feeds.booking_feed([feeds.booking_closed("k2", day(40), day(43))]),
        settings={"booking_closed_as": "reservation"},
        key="booking_stays",
    )
    generic, _ = setup.mapping(
        "ical",
        feeds.generic_feed([feeds.Event("g1", day(50), day(52), "Lee family")]),
    )
    setup.commit()
    for mid in (vrbo, booking, booking_stays, generic):
        assert run(mid).result["status"] == "ok"

    v = bookings(engine, vrbo)
    assert (v["v1"].source, v["v1"].reservation_type, v["v1"].summary) == (
        "vrbo",
        "guest",
        "Reserved - Maria",
    )
    assert v["v2"].reservation_type == "block"
    b = bookings(engine, booking)["k1@booking.com"]
    assert (b.kind, b.source, b.reservation_type) == ("block", "booking_com", "block")
    bs = bookings(engine, booking_stays)["k2@booking.com"]
    assert (bs.kind, bs.reservation_type) == ("reservation", "guest")
    g = bookings(engine, generic)["g1"]
    assert (g.source, g.reservation_type) == ("ical", "guest")


# -- later syncs ------------------------------------------------------------------------------


def test_an_unchanged_feed_is_a_304_and_writes_nothing(engine, setup, server):
    mid, path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("u1", day(3), day(6), "HMU1")])
    )
    setup.commit()
    run(mid)
    before = one(
        engine,
        "SELECT updated_at, last_seen_at FROM channel.channel_bookings WHERE mapping_id = :m",
        m=mid,
    )

    outcome = run(mid, AS_OF + dt.timedelta(minutes=15))

    assert outcome.result["status"] == "not_modified" and outcome.result["http_status"] == 304
    assert server.hits(path)[-1].headers["if-none-match"] == server.routes[path].etag
    assert outcome.reservations_to_sync == []
    after = one(
        engine,
        "SELECT updated_at, last_seen_at FROM channel.channel_bookings WHERE mapping_id = :m",
        m=mid,
    )
    assert after == before
    logs = sync_logs(engine, mid)
    assert [(x.status, x.http_status, x.created + x.updated + x.cancelled) for x in logs] == [
        ("ok", 200, 1),
        ("not_modified", 304, 0),
    ]
    m = one(
        engine,
        "SELECT last_synced_at, last_changed_at FROM channel.channel_mappings WHERE id = :m",
        m=mid,
    )
    assert m.last_synced_at == AS_OF + dt.timedelta(minutes=15) and m.last_changed_at == AS_OF


def test_a_feed_without_validators_answering_the_same_bytes_is_not_modified(engine, setup, server):
    body = feeds.airbnb_feed([feeds.airbnb_stay("nv", day(3), day(6), "HMNV")])
    mid, path = setup.mapping("airbnb")
    server.set_feed(path, body, etag=False)
    setup.commit()
    assert run(mid).result["status"] == "ok"
    again = run(mid, AS_OF + dt.timedelta(minutes=15)).result
    assert (again["status"], again["http_status"]) == ("not_modified", 200)


def test_a_changed_date_updates_booking_and_reservation(engine, setup, server):
    mid, path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("c1", day(3), day(6), "HMC1")])
    )
    setup.commit()
    run(mid)
    [before] = bookings(engine, mid).values()
    server.set_feed(path, feeds.airbnb_feed([feeds.airbnb_stay("c1", day(4), day(8), "HMC1")]))

    outcome = run(mid, AS_OF + dt.timedelta(minutes=15))

    assert (outcome.result["created"], outcome.result["updated"]) == (0, 1)
    [after] = bookings(engine, mid).values()
    assert after.reservation_id == before.reservation_id
    assert (after.start_date, after.end_date, after.check_in, after.check_out) == (
        day(4),
        day(8),
        day(4),
        day(8),
    )
    assert outcome.reservations_to_sync == [after.reservation_id]
    assert sync_logs(engine, mid)[-1].updated == 1


def test_a_stay_gone_from_the_feed_is_cancelled_and_comes_back_if_it_reappears(
    engine, setup, server
):
    stay = feeds.airbnb_stay("x1", day(5), day(9), "HMX1")
    ended = feeds.airbnb_stay("x0", day(-6), day(-2), "HMX0")
    block = feeds.airbnb_block("x2", day(12), day(14))
    # Stays the channel keeps listing: losing two bookings of five is an ordinary
    # cancellation (an emptied feed is held instead: test_channel_holds.py).
    kept = [
        feeds.airbnb_stay(f"k{n}", day(20 + 5 * n), day(22 + 5 * n), f"HMK{n}") for n in range(3)
    ]
    mid, path = setup.mapping("airbnb", feeds.airbnb_feed([ended, stay, block, *kept]))
    setup.commit()
    # The ended stay was imported while it was current.
    run(mid, AS_OF - dt.timedelta(days=10))
    server.set_feed(path, feeds.airbnb_feed(kept))  # the channel dropped these three

    outcome = run(mid)

    rows = bookings(engine, mid)
    assert (rows["x1@airbnb.com"].status, rows["x1@airbnb.com"].r_status) == (
        "cancelled",
        "cancelled",
    )
    assert rows["x1@airbnb.com"].cancelled_at == AS_OF
    assert rows["x1@airbnb.com"].r_cancelled_at == AS_OF
    assert rows["x2@airbnb.com"].r_status == "cancelled"
    # A stay that has ended is history: dropping it from the feed cancels nothing.
    assert (rows["x0@airbnb.com"].status, rows["x0@airbnb.com"].r_status) == ("active", "confirmed")
    assert outcome.result["cancelled"] == 2
    assert outcome.reservations_to_sync == [rows["x1@airbnb.com"].reservation_id]

    server.set_feed(path, feeds.airbnb_feed([stay, *kept]))
    back = run(mid, AS_OF + dt.timedelta(minutes=15))
    row = bookings(engine, mid)["x1@airbnb.com"]
    assert (row.status, row.r_status, row.cancelled_at, row.r_cancelled_at) == (
        "active",
        "confirmed",
        None,
        None,
    )
    assert back.result["updated"] == 1 and back.reservations_to_sync == [row.reservation_id]


def test_a_cancelled_event_status_cancels_like_a_missing_one(engine, setup, server):
    event = feeds.vrbo_stay("sc", day(5), day(9))
    mid, path = setup.mapping("vrbo", feeds.vrbo_feed([event]))
    setup.commit()
    run(mid)
    server.set_feed(
        path,
        feeds.vrbo_feed(
            [feeds.Event(event.uid, event.start, event.end, event.summary, status="CANCELLED")]
        ),
    )
    assert run(mid, AS_OF + dt.timedelta(minutes=15)).result["cancelled"] == 1
    assert bookings(engine, mid)["sc"].r_status == "cancelled"


def test_a_checked_in_guest_is_not_cancelled_by_a_missing_event(engine, setup, server):
    mid, path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("ci", day(-1), day(3), "HMCI")])
    )
    setup.commit()
    run(mid)
    [row] = bookings(engine, mid).values()
    with session_scope() as s:
        s.execute(
            text("UPDATE reservations.reservations SET status = 'checked_in' WHERE id = :r"),
            {"r": row.reservation_id},
        )
    server.set_feed(path, feeds.airbnb_feed([]))
    outcome = run(mid, AS_OF + dt.timedelta(minutes=15))
    [row] = bookings(engine, mid).values()
    assert (row.status, row.r_status) == ("cancelled", "checked_in")
    assert outcome.result["kept_checked_in"] == 1


def test_a_reservation_deleted_elsewhere_is_recreated_when_the_feed_next_changes(
    engine, setup, server
):
    stay = feeds.airbnb_stay("rp", day(5), day(9), "HMRP")
    mid, path = setup.mapping("airbnb", feeds.airbnb_feed([stay]))
    setup.commit()
    run(mid)
    [row] = bookings(engine, mid).values()
    with session_scope() as s:
        s.execute(
            text("DELETE FROM reservations.reservations WHERE id = :r"), {"r": row.reservation_id}
        )
    server.set_feed(path, feeds.airbnb_feed([stay, feeds.airbnb_block("rq", day(20), day(22))]))
    outcome = run(mid, AS_OF + dt.timedelta(minutes=15))
    repaired = bookings(engine, mid)["rp@airbnb.com"]
    assert repaired.reservation_id is not None and repaired.reservation_id != row.reservation_id
    assert (repaired.check_in, repaired.check_out, repaired.confirmation_code) == (
        day(5),
        day(9),
        "HMRP",
    )
    assert (outcome.result["created"], outcome.result["updated"]) == (1, 1)
    assert repaired.reservation_id in outcome.reservations_to_sync


def test_a_block_and_a_block_turning_into_a_stay(engine, setup, server):
    mid, path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_block("bk", day(3), day(6))])
    )
    setup.commit()
    first = run(mid)
    [row] = bookings(engine, mid).values()
    assert (row.kind, row.reservation_type, row.r_status) == ("block", "block", "confirmed")
    assert first.reservations_to_sync == []  # a block has no turnover work
    server.set_feed(path, feeds.airbnb_feed([feeds.airbnb_stay("bk", day(3), day(6), "HMBK")]))
    second = run(mid, AS_OF + dt.timedelta(minutes=15))
    [row] = bookings(engine, mid).values()
    assert (row.kind, row.reservation_type, row.confirmation_code) == (
        "reservation",
        "guest",
        "HMBK",
    )
    assert second.reservations_to_sync == [row.reservation_id]


def test_past_events_are_ignored(engine, setup):
    mid, _ = setup.mapping(
        "airbnb",
        feeds.airbnb_feed(
            [
                feeds.airbnb_stay("past", day(-10), day(-3), "HMPAST"),
                feeds.airbnb_stay("leaving", day(-3), day(0), "HMLEAVE"),  # checks out today
            ]
        ),
    )
    setup.commit()
    outcome = run(mid)
    assert list(bookings(engine, mid)) == ["leaving@airbnb.com"]
    assert outcome.result["ignored_past"] == 1 and outcome.result["events_seen"] == 2


# -- double bookings -------------------------------------------------------------------------


def test_overlapping_stays_raise_one_urgent_ticket_per_pair_across_syncs(engine, setup, server):
    air, air_path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("o1", day(10), day(15), "HMO1")])
    )
    vrbo, vrbo_path = setup.mapping(
        "vrbo",
        feeds.vrbo_feed(
            [
                feeds.vrbo_stay("o2", day(13), day(17)),  # overlaps o1
                feeds.vrbo_block("o3", day(11), day(12)),  # a block overlapping is no conflict
            ]
        ),
    )
    setup.commit()
    assert run(air).result["conflicts"] == 0
    second = run(vrbo)

    assert second.result["conflicts"] == 1 and second.result["tickets_created"] == 1
    [ticket] = tickets(engine, setup.property_id)
    a = bookings(engine, air)["o1@airbnb.com"].reservation_id
    b = bookings(engine, vrbo)["o2"].reservation_id
    lo, hi = sorted([a, b])
    assert (ticket.ticket_type, ticket.priority, ticket.source, ticket.status) == (
        "RSV",
        "urgent",
        "channel",
        "open",
    )
    assert ticket.dedupe_key == f"channel:overlap:{lo}:{hi}" and ticket.reservation_id == hi
    assert "Possible double booking" in ticket.title and "HMO1" in ticket.description
    assert second.tickets_created == [ticket.id]
    [event] = q(engine, "SELECT * FROM service.ticket_events WHERE ticket_id = :t", t=ticket.id)
    assert event.event_type == "created" and event.data["reason"] == "possible_double_booking"

    # Both feeds change (so both re-check), again and again: still one ticket.
    for n, minutes in enumerate((15, 30, 45)):
        at = AS_OF + dt.timedelta(minutes=minutes)
        server.set_feed(
            air_path, feeds.airbnb_feed([feeds.airbnb_stay("o1", day(10), day(16 + n), "HMO1")])
        )
        server.set_feed(vrbo_path, feeds.vrbo_feed([feeds.vrbo_stay("o2", day(13), day(18 + n))]))
        assert run(air, at).result["conflicts"] == 1
        assert run(vrbo, at).result["tickets_created"] == 0
    assert len(tickets(engine, setup.property_id)) == 1
    # Resolved by an agent, the pair is not raised again.
    with session_scope() as s:
        s.execute(text("UPDATE service.tickets SET status = 'resolved', resolved_at = now()"))
    server.set_feed(
        air_path, feeds.airbnb_feed([feeds.airbnb_stay("o1", day(10), day(19), "HMO1")])
    )
    assert run(air, AS_OF + dt.timedelta(hours=1)).result["tickets_created"] == 0
    assert len(tickets(engine, setup.property_id)) == 1


def test_an_import_overlapping_a_direct_booking_raises_a_ticket(engine, setup):
    direct = f.reservation(setup.session, setup.property_id, day(4), day(8), source="direct")
    mid, _ = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("d1", day(6), day(9), "HMD1")])
    )
    setup.commit()
    assert run(mid).result["tickets_created"] == 1
    [ticket] = tickets(engine, setup.property_id)
    assert str(direct) in ticket.dedupe_key


def test_a_direct_booking_made_later_is_found_by_the_next_sync_even_a_304(engine, setup):
    mid, path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("l1", day(10), day(14), "HML1")])
    )
    setup.commit()
    assert run(mid).result["conflicts"] == 0
    with session_scope() as s:
        f.reservation(s, setup.property_id, day(12), day(16), source="direct")
    later = run(mid, AS_OF + dt.timedelta(minutes=15))
    assert later.result["status"] == "not_modified" and later.result["http_status"] == 304
    assert later.result["conflicts"] == 1 and later.result["tickets_created"] == 1
    assert sync_logs(engine, mid)[-1].conflicts == 1
    assert len(tickets(engine, setup.property_id)) == 1


def test_our_own_export_reimported_creates_nothing(engine, setup, server):
    air, _ = setup.mapping(
        "airbnb",
        feeds.airbnb_feed(
            [
                feeds.airbnb_stay("e1", day(3), day(6), "HME1"),
                feeds.airbnb_block("e2", day(9), day(11)),
            ]
        ),
    )
    f.reservation(setup.session, setup.property_id, day(20), day(24), source="direct")
    setup.commit()
    run(air)
    with session_scope() as s:
        export_calendars(s, as_of=AS_OF, property_id=setup.property_id)
    [ics] = [r.ics for r in q(engine, "SELECT ics FROM channel.calendar_exports")]
    # A generic channel (and the same channel) serving our calendar back to us.
    echo, echo_path = setup.mapping("ical")
    server.set_feed(echo_path, ics.encode())
    air_echo, air_echo_path = setup.mapping("airbnb", key="airbnb-2")
    server.set_feed(air_echo_path, ics.encode())
    setup.commit()
    reservations_before = one(engine, "SELECT count(*) AS n FROM reservations.reservations").n

    for mid in (echo, air_echo):
        outcome = run(mid)
        assert outcome.result["created"] == 0 and outcome.result["ignored_own_export"] == 3
        assert outcome.result["conflicts"] == 0
    assert one(engine, "SELECT count(*) AS n FROM reservations.reservations").n == (
        reservations_before
    )
    assert tickets(engine, setup.property_id) == []


def test_a_reservation_already_recorded_by_the_gateway_is_adopted_not_duplicated(engine, setup):
    existing = f.reservation(
        setup.session,
        setup.property_id,
        day(3),
        day(6),
        source="airbnb",
        confirmation_code="HMGATE01",
    )
    mid, _ = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("gw", day(3), day(7), "HMGATE01")])
    )
    setup.commit()
    outcome = run(mid)
    [row] = bookings(engine, mid).values()
    assert row.reservation_id == existing and row.check_out == day(7)  # adopted, then updated
    assert outcome.result["reservations_adopted"] == 1
    assert one(engine, "SELECT count(*) AS n FROM reservations.reservations").n == 1
    assert tickets(engine, setup.property_id) == []


# -- failures, backoff, isolation ------------------------------------------------------------


def test_a_500_backs_off_the_mapping_and_others_are_unaffected(engine, setup, server):
    ok, _ = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("ok", day(3), day(6), "HMOK")])
    )
    bad, bad_path = setup.mapping("airbnb")
    server.set_error(bad_path, 500)
    setup.commit()
    # In the past: next_sync_at counts from the earlier of as_of and the real clock (SPEC 7.2),
    # so only a past as_of shows the arithmetic exactly.
    t0 = AS_OF - dt.timedelta(hours=2)

    failed = run(bad, t0)
    assert failed.result["status"] == "error" and failed.result["http_status"] == 500
    assert run(ok, t0).result["status"] == "ok"

    [log] = sync_logs(engine, bad)
    assert (log.status, log.http_status) == ("error", 500) and "HTTP 500" in log.error
    m = one(engine, "SELECT * FROM channel.channel_mappings WHERE id = :m", m=bad)
    assert m.consecutive_failures == 1 and m.failing_since == t0
    assert m.next_sync_at == t0 + dt.timedelta(minutes=30)  # 15 min interval, doubled
    assert m.last_synced_at is None and m.last_etag is None
    good = one(engine, "SELECT * FROM channel.channel_mappings WHERE id = :m", m=ok)
    assert good.consecutive_failures == 0 and good.next_sync_at is None
    assert len(bookings(engine, ok)) == 1
    # One bad listing does not make the connection failing or back it off.
    c = one(
        engine,
        "SELECT * FROM channel.channel_connections WHERE id = :c",
        c=setup.connections["airbnb"],
    )
    assert c.consecutive_failures == 0 and c.failing_since is None

    second = run(bad, t0 + dt.timedelta(minutes=30))
    assert second.result["consecutive_failures"] == 2
    m = one(engine, "SELECT * FROM channel.channel_mappings WHERE id = :m", m=bad)
    assert m.next_sync_at == t0 + dt.timedelta(minutes=30 + 60)
    assert m.failing_since == t0


def test_a_connection_whose_every_mapping_fails_backs_off_doubling_to_six_hours(
    engine, setup, server
):
    mid, path = setup.mapping("vrbo")
    server.set_error(path, 503, retry_after="7200")
    setup.commit()
    conn = setup.connections["vrbo"]
    # Far enough in the past that every run below is too (see SPEC 7.2 above).
    t0 = AS_OF - dt.timedelta(days=3)

    run(mid, t0)
    c = one(engine, "SELECT * FROM channel.channel_connections WHERE id = :c", c=conn)
    # Retry-After (2 h) beats the doubled interval (30 min).
    assert c.next_sync_at == t0 + dt.timedelta(hours=2)
    assert (c.consecutive_failures, c.failing_since) == (1, t0) and "503" in c.last_error

    server.set_error(path, 500)
    at = t0
    delays = []
    for _ in range(6):
        at = at + dt.timedelta(hours=7)
        run(mid, at)
        c = one(engine, "SELECT * FROM channel.channel_connections WHERE id = :c", c=conn)
        delays.append(c.next_sync_at - at)
    minutes = [int(d.total_seconds() // 60) for d in delays]
    assert minutes == [60, 120, 240, 360, 360, 360]  # 15 x 2^n, capped at 6 h
    assert c.failing_since == t0 and c.consecutive_failures == 7

    # Recovery: everything resets and the round is back to the interval.
    server.set_feed(path, feeds.vrbo_feed([]))
    at = at + dt.timedelta(hours=7)
    assert run(mid, at).result["status"] == "ok"
    c = one(engine, "SELECT * FROM channel.channel_connections WHERE id = :c", c=conn)
    assert (c.consecutive_failures, c.failing_since, c.last_error) == (0, None, None)
    assert c.last_success_at == at and c.next_sync_at <= at + dt.timedelta(minutes=15)


def test_backoff_arithmetic():
    assert backoff_delay(15, 1) == dt.timedelta(minutes=30)
    assert backoff_delay(15, 3) == dt.timedelta(minutes=120)
    assert backoff_delay(15, 50) == MAX_BACKOFF
    assert backoff_delay(15, 1, retry_after=3600) == dt.timedelta(hours=1)
    assert backoff_delay(15, 1, retry_after=10 * 3600) == MAX_BACKOFF
    assert backoff_delay(15, 4, retry_after=60) == dt.timedelta(minutes=240)


def test_a_timeout_is_an_error_with_backoff(engine, setup, server):
    mid, path = setup.mapping("airbnb", settings={"timeout_seconds": 1})
    server.set_slow(path, delay=3.0, body=feeds.airbnb_feed([]))
    setup.commit()
    outcome = run(mid)
    assert outcome.result["status"] == "error" and "timed out" in outcome.result["error"]
    m = one(engine, "SELECT * FROM channel.channel_mappings WHERE id = :m", m=mid)
    assert m.consecutive_failures == 1 and m.next_sync_at == AS_OF + dt.timedelta(minutes=30)


def test_a_body_over_the_cap_is_an_error(engine, setup, server):
    mid, path = setup.mapping("airbnb", settings={"max_feed_bytes": 64 * 1024})
    server.set_oversized(path, 1024 * 1024)
    setup.commit()
    outcome = run(mid)
    assert outcome.result["status"] == "error" and "too big" in outcome.result["error"]
    assert sync_logs(engine, mid)[0].status == "error"


def test_an_unparsable_feed_is_an_error_and_keeps_no_validators(engine, setup, server):
    mid, path = setup.mapping("airbnb")
    server.set_feed(path, b"<html>maintenance</html>")
    setup.commit()
    outcome = run(mid)
    assert outcome.result["status"] == "error" and "unparsable" in outcome.result["error"]
    m = one(
        engine,
        "SELECT last_etag, last_feed_hash FROM channel.channel_mappings WHERE id = :m",
        m=mid,
    )
    assert (m.last_etag, m.last_feed_hash) == (None, None)  # next time it is read again


REFUSED = [
    ("http://127.0.0.1:{port}/feed.ics", ()),  # loopback, with no allowed hosts
    ("http://10.0.0.1/feed.ics", None),
    ("http://169.254.169.254/latest/meta-data/", None),
    ("http://100.64.0.1/feed.ics", None),
    ("http://[::ffff:127.0.0.1]:{port}/feed.ics", None),
    ("/redirect-to-private", None),  # an allowed host redirecting inside
    ("file:///etc/passwd", None),
    ("gopher://127.0.0.1:{port}/_x", None),
]


@pytest.mark.parametrize(("url", "allowed"), REFUSED)
def test_refused_fetches_are_in_the_sync_log(engine, setup, server, url, allowed):
    server.set_redirect("/redirect-to-private", "http://10.0.0.1/feed.ics")
    if url.startswith("/"):
        url = server.url(url)
    url = url.format(port=server.port)
    conn = setup.connection("ical")
    mid = feeds.mapping(setup.session, conn, setup.property_id, url)
    setup.commit()
    outcome = run(mid, allowed_hosts=allowed)
    assert outcome.result["status"] == "error" and "refused" in outcome.result["error"]
    [log] = sync_logs(engine, mid)
    assert log.status == "error" and "refused" in log.error
    assert "/etc/passwd" not in log.error and "meta-data" not in log.error  # hosts only


# -- feed health -----------------------------------------------------------------------------


def messages(engine, mapping_id):
    return q(
        engine,
        "SELECT * FROM comms.messages WHERE related_type = 'channel_mapping'"
        " AND related_id = :m ORDER BY created_at",
        m=mapping_id,
    )


def test_a_mapping_failing_for_24_hours_queues_one_notice_per_episode(engine, setup, server):
    mid, path = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("h1", day(3), day(6), "HMH1")])
    )
    setup.commit()
    run(mid)  # a success at AS_OF
    server.set_error(path, 500)
    for hours in (1, 6, 23):
        run(mid, AS_OF + dt.timedelta(hours=hours))
    assert messages(engine, mid) == []
    for hours in (25, 30, 40):
        run(mid, AS_OF + dt.timedelta(hours=hours))
    [notice] = messages(engine, mid)
    assert notice.status == "queued" and notice.channel == "slack"
    assert "unhealthy" in notice.subject and "HTTP 500" in notice.body
    # Recovery, then a new failing episode: a new notice.
    server.set_feed(path, feeds.airbnb_feed([]))
    recovered = AS_OF + dt.timedelta(hours=41)
    run(mid, recovered)
    server.set_error(path, 404)
    run(mid, recovered + dt.timedelta(hours=25))
    run(mid, recovered + dt.timedelta(hours=26))
    assert len(messages(engine, mid)) == 2


def test_the_sweep_reports_a_mapping_never_synced_for_24_hours(engine, setup, server):
    stale, _ = setup.mapping("airbnb", created_at=AS_OF - HEALTH_AFTER - dt.timedelta(hours=1))
    fresh, _ = setup.mapping("airbnb")
    paused_conn = setup.connection("vrbo", status="paused")
    paused = feeds.mapping(
        setup.session,
        paused_conn,
        setup.property_id,
        "http://127.0.0.1/x",
        created_at=AS_OF - dt.timedelta(days=3),
    )
    setup.commit()
    with session_scope() as s:
        result, _ = plan_sync(s, as_of=AS_OF)
    assert result["health_notices"] == 1
    assert len(messages(engine, stale)) == 1
    assert messages(engine, fresh) == [] and messages(engine, paused) == []
    assert "has not been synced" in messages(engine, stale)[0].body
    with session_scope() as s:
        again, _ = plan_sync(s, as_of=AS_OF + dt.timedelta(minutes=5))
    assert again["health_notices"] == 0 and len(messages(engine, stale)) == 1


# -- the fan-out -----------------------------------------------------------------------------


def test_channel_sync_lists_due_active_mappings_once(engine, setup):
    due, _ = setup.mapping("airbnb")
    due2, _ = setup.mapping("airbnb")
    inactive, _ = setup.mapping("airbnb", is_active=False)
    backing_off, _ = setup.mapping(
        "airbnb", next_sync_at=AS_OF + dt.timedelta(hours=1), consecutive_failures=2
    )
    export_only = feeds.mapping(setup.session, setup.connection("airbnb"), setup.property_id, None)
    later, _ = setup.mapping("vrbo")
    setup.session.execute(
        text("UPDATE channel.channel_connections SET next_sync_at = :t WHERE id = :c"),
        {"t": AS_OF + dt.timedelta(minutes=10), "c": setup.connections["vrbo"]},
    )
    paused_conn = setup.connection("booking_com", status="paused")
    feeds.mapping(setup.session, paused_conn, setup.property_id, "http://127.0.0.1/p")
    setup.commit()

    with session_scope() as s:
        result, ids = plan_sync(s, as_of=AS_OF)
    assert sorted(ids) == sorted([due, due2])
    assert result["mappings_enqueued"] == 2
    assert inactive not in ids and backing_off not in ids and export_only not in ids
    assert later not in ids
    c = one(
        engine,
        "SELECT next_sync_at FROM channel.channel_connections WHERE id = :c",
        c=setup.connections["airbnb"],
    )
    assert c.next_sync_at == AS_OF + dt.timedelta(minutes=15)
    # Run again five minutes later: the round is claimed, nothing is listed twice.
    with session_scope() as s:
        _, again = plan_sync(s, as_of=AS_OF + dt.timedelta(minutes=5))
    assert again == []
    # By hand, for one connection: every active mapping of it, backing off or not.
    with session_scope() as s:
        _, by_hand = plan_sync(
            s, as_of=AS_OF + dt.timedelta(minutes=6), connection_id=setup.connections["airbnb"]
        )
    assert sorted(by_hand) == sorted([due, due2, backing_off])


def test_channel_sync_task_enqueues_and_a_bad_payload_is_dead_lettered(
    engine, setup, celery_app, purge_broker
):
    setup.mapping("airbnb")
    setup.commit()
    task = celery_app.tasks["channel.sync"]
    done = task.apply(kwargs={"as_of": AS_OF.isoformat()})
    assert done.successful() and done.result["mappings_enqueued"] == 1
    bad = task.apply(kwargs={"connection_id": str(uuid.uuid4())})
    assert bad.failed() and "unknown connection_id" in str(bad.result)
    [dead] = q(engine, "SELECT * FROM ops.dead_letters WHERE task_name = 'channel.sync'")
    assert dead.error_kind == "validation"


# -- the task: outcomes, twice, twice at once, bad payloads ---------------------------------------


def test_sync_mapping_task_succeeds_with_a_failing_feed_and_runs_twice_idempotently(
    engine, setup, server, celery_app, purge_broker
):
    good, good_path = setup.mapping(
        "airbnb",
        feeds.airbnb_feed(
            [
                feeds.airbnb_stay("t1", day(3), day(6), "HMT1"),
                feeds.airbnb_block("t2", day(8), day(9)),
            ]
        ),
    )
    bad, bad_path = setup.mapping("airbnb")
    server.set_error(bad_path, 500)
    setup.commit()
    task = celery_app.tasks["channel.sync_mapping"]

    failing = task.apply(kwargs={"mapping_id": str(bad), "as_of": AS_OF.isoformat()})
    assert failing.successful() and failing.result["status"] == "error"
    first = task.apply(kwargs={"mapping_id": str(good), "as_of": AS_OF.isoformat()})
    assert first.successful() and first.result["created"] == 2
    snapshot = _state(engine, setup.property_id)
    second = task.apply(kwargs={"mapping_id": str(good), "as_of": AS_OF.isoformat()})
    assert second.successful() and second.result["status"] == "not_modified"
    assert _state(engine, setup.property_id) == snapshot
    runs = q(engine, "SELECT status FROM ops.job_runs WHERE task_name = 'channel.sync_mapping'")
    assert [r.status for r in runs] == ["succeeded"] * 3


def _state(engine, property_id):
    """Everything an import writes, minus timestamps of the run itself."""
    return (
        q(
            engine,
            "SELECT mapping_id, external_uid, kind, start_date, end_date, status,"
            " reservation_id FROM channel.channel_bookings ORDER BY external_uid",
        ),
        q(
            engine,
            "SELECT id, reservation_type, status, check_in, check_out, confirmation_code"
            " FROM reservations.reservations WHERE property_id = :p ORDER BY id",
            p=property_id,
        ),
        q(engine, "SELECT dedupe_key, status FROM service.tickets ORDER BY dedupe_key"),
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"mapping_id": str(uuid.UUID(int=1))},
        {"mapping_id": "not-a-uuid"},
        {"mapping_id": str(uuid.UUID(int=1)), "surprise": 1},
        {},
    ],
)
def test_a_bad_payload_is_dead_lettered(engine, celery_app, payload):
    done = celery_app.tasks["channel.sync_mapping"].apply(kwargs=payload)
    assert done.failed()
    [dead] = q(engine, "SELECT * FROM ops.dead_letters WHERE task_name = 'channel.sync_mapping'")
    assert dead.error_kind == "validation" and dead.payload == payload and dead.retries == 0


def test_two_imports_of_one_feed_at_once_leave_the_rows_of_one(
    engine, setup, server, celery_app, purge_broker
):
    # Two overlapping stays in one feed and a slow server, so both processes are mid-import.
    body = feeds.airbnb_feed(
        [
            feeds.airbnb_stay("p1", day(3), day(8), "HMP1"),
            feeds.airbnb_stay("p2", day(6), day(9), "HMP2"),
            feeds.airbnb_block("p3", day(12), day(13)),
        ]
    )
    mid, path = setup.mapping("airbnb")
    server.routes[path] = feeds.Route(body=body, delay=1.0, etag='"v1"')
    setup.commit()
    payload = {"mapping_id": str(mid), "as_of": AS_OF.isoformat()}
    procs = [start_cmw_run("channel.sync_mapping", payload) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    outcomes = sorted(r.get("status", "skipped") for r in results)
    assert outcomes in (["ok", "skipped"], ["not_modified", "ok"])
    assert len(bookings(engine, mid)) == 3
    assert (
        one(
            engine,
            "SELECT count(*) AS n FROM reservations.reservations WHERE property_id = :p",
            p=setup.property_id,
        ).n
        == 3
    )
    assert len(tickets(engine, setup.property_id)) == 1


def test_two_imports_of_two_feeds_of_one_property_at_once_see_each_other(
    engine, setup, server, celery_app, purge_broker
):
    # Airbnb and Vrbo sell the same nights at the same moment: one ticket, whatever the order.
    air, air_path = setup.mapping("airbnb")
    vrbo, vrbo_path = setup.mapping("vrbo")
    server.routes[air_path] = feeds.Route(
        body=feeds.airbnb_feed([feeds.airbnb_stay("r1", day(3), day(8), "HMR1")]), delay=0.5
    )
    server.routes[vrbo_path] = feeds.Route(
        body=feeds.vrbo_feed([feeds.vrbo_stay("r2", day(5), day(9))]), delay=0.5
    )
    setup.commit()
    procs = [
        start_cmw_run("channel.sync_mapping", {"mapping_id": str(m), "as_of": AS_OF.isoformat()})
        for m in (air, vrbo)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(tickets(engine, setup.property_id)) == 1


def test_two_channel_sync_sweeps_at_once_enqueue_each_mapping_once(
    engine, setup, celery_app, purge_broker
):
    for _ in range(3):
        setup.mapping("airbnb")
    setup.commit()
    procs = [start_cmw_run("channel.sync", {"as_of": AS_OF.isoformat()}) for _ in range(2)]
    total = 0
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        total += json.loads(out.strip().splitlines()[-1]).get("mappings_enqueued", 0)
    assert total == 3


# -- cmw channels ----------------------------------------------------------------------------


def test_cmw_channels_lists_last_success_last_change_and_failures(engine, setup, server):
    import typer

    from tasks.channel.cli import channels_cli, mapping_health

    ok, _ = setup.mapping(
        "airbnb", feeds.airbnb_feed([feeds.airbnb_stay("l1", day(3), day(6), "HML1")])
    )
    bad, bad_path = setup.mapping("vrbo")
    server.set_error(bad_path, 500)
    setup.commit()
    now = dt.datetime.now(dt.UTC)
    run(ok, now)
    run(bad, now)
    run(bad, now + dt.timedelta(seconds=1))

    with session_scope() as s:
        health = {h.mapping_id: h for h in mapping_health(s, as_of=now + dt.timedelta(minutes=1))}
    assert health[str(ok)].health == "ok" and health[str(ok)].last_change == now
    assert health[str(ok)].last_success == now
    assert health[str(bad)].health == "failing"
    assert (health[str(bad)].consecutive_failures, health[str(bad)].failures_24h) == (2, 2)
    assert list(health)[0] == str(bad)  # the unhealthy first

    cmw = typer.Typer()
    cmw.add_typer(channels_cli, name="channels")
    wide = {"COLUMNS": "320"}
    shown = CliRunner().invoke(cmw, ["channels"], env=wide)
    assert shown.exit_code == 0, shown.output
    assert "failing" in shown.output and "HTTP 500" in shown.output and str(ok) in shown.output
    only = CliRunner().invoke(cmw, ["channels", "--unhealthy"], env=wide)
    assert only.exit_code == 0 and str(bad) in only.output and str(ok) not in only.output
