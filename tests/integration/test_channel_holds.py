"""Held cancellations (SPEC 7.1): a feed that suddenly empties or shrinks cancels nothing at
once; the episode ends by itself when the events come back, and the cancellations are applied
after the connection's hold_hours or when ops release them. Real feeds on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tasks.channel.sync import import_mapping, plain_context, release_held
from tests.support import factories as f
from tests.support import feeds
from tests.support.cli import cmw, json_lines

NY = ZoneInfo("America/New_York")
# In the past, so that runs hours later are still before the real clock.
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(second=0, microsecond=0)
TODAY = T0.astimezone(NY).date()


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture(scope="module")
def server():
    with feeds.FeedServer() as srv:
        yield srv


def q(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


class Listing:
    """A property with one Airbnb mapping whose feed has 8 stays (recorded by the channel
    gateway first, then adopted by the import) and 2 blocks, all in the future."""

    def __init__(self, session, server, settings: dict | None = None) -> None:
        self.server = server
        self.property_id = f.property_(session, code=f"HO{uuid.uuid4().hex[:5]}")
        self.stays = [
            feeds.airbnb_stay(f"s{n}", day(3 + 4 * n), day(5 + 4 * n), f"HMHOLD{n:04d}")
            for n in range(8)
        ]
        self.blocks = [
            feeds.airbnb_block(f"b{n}", day(60 + 3 * n), day(61 + 3 * n)) for n in (0, 1)
        ]
        for n, stay in enumerate(self.stays):
            f.reservation(
                session,
                self.property_id,
                stay.start,
                stay.end,
                source="airbnb",
                confirmation_code=f"HMHOLD{n:04d}",
            )
        self.path = f"/hold/{uuid.uuid4().hex}.ics"
        # No validators: the channel re-serves bodies as they are (Airbnb sends no ETag).
        self.serve(self.stays + self.blocks)
        conn = feeds.connection(session, channel="airbnb", settings=settings or {})
        self.mapping_id = feeds.mapping(session, conn, self.property_id, server.url(self.path))
        session.commit()

    def serve(self, events) -> None:
        self.server.set_feed(self.path, feeds.airbnb_feed(events), etag=False)

    def sync(self, at: dt.datetime):
        return import_mapping(self.mapping_id, as_of=at)

    def bookings(self, engine):
        return q(
            engine,
            "SELECT b.external_uid, b.status, b.held_since, r.status AS r_status"
            " FROM channel.channel_bookings b"
            " JOIN reservations.reservations r ON r.id = b.reservation_id"
            " WHERE b.mapping_id = :m ORDER BY b.external_uid",
            m=self.mapping_id,
        )

    def notices(self, engine):
        return q(
            engine,
            "SELECT * FROM comms.messages WHERE related_type = 'channel_mapping'"
            " AND related_id = :m AND dedupe_key LIKE 'channel:held:%' ORDER BY created_at",
            m=self.mapping_id,
        )

    def logs(self, engine):
        return q(
            engine,
            "SELECT status, cancelled, held, runs FROM channel.sync_log WHERE mapping_id = :m"
            " ORDER BY created_at",
            m=self.mapping_id,
        )


def reservations(engine, property_id):
    return q(
        engine,
        "SELECT status, count(*) AS n FROM reservations.reservations WHERE property_id = :p"
        " GROUP BY status",
        p=property_id,
    )


def test_an_empty_feed_holds_every_cancellation_and_queues_one_notice(engine, session, server):
    listing = Listing(session, server)
    first = listing.sync(T0)
    assert first.result["created"] == 10 and first.result["reservations_adopted"] == 8
    assert dict(reservations(engine, listing.property_id)) == {"confirmed": 10}

    listing.serve([])  # a valid calendar with no events: a glitch, or every booking gone?
    held = listing.sync(T0 + dt.timedelta(minutes=15))

    assert held.result["status"] == "held"
    assert (held.result["cancelled"], held.result["held"]) == (0, 10)
    assert held.reservations_to_sync == []  # no turnover ticket is cancelled either
    assert all(b.status == "active" and b.r_status == "confirmed" for b in listing.bookings(engine))
    assert dict(reservations(engine, listing.property_id)) == {"confirmed": 10}
    [notice] = listing.notices(engine)
    assert notice.status == "queued" and notice.related_type == "channel_mapping"
    assert "cmw channels release" in notice.body and str(listing.mapping_id) in notice.body
    assert listing.logs(engine)[-1][:3] == ("held", 0, 10)

    # The same empty body again, and again: still held, still one notice, no row per run.
    for minutes in (30, 45):
        again = listing.sync(T0 + dt.timedelta(minutes=minutes))
        assert (again.result["status"], again.result["held"]) == ("held", 10)
    assert len(listing.notices(engine)) == 1
    assert listing.logs(engine)[-1] == ("held", 0, 10, 3)
    assert dict(reservations(engine, listing.property_id)) == {"confirmed": 10}


def test_the_episode_ends_with_nothing_cancelled_when_the_events_come_back(engine, session, server):
    listing = Listing(session, server)
    listing.sync(T0)
    listing.serve([])
    listing.sync(T0 + dt.timedelta(minutes=15))

    listing.serve(listing.stays + listing.blocks)
    back = listing.sync(T0 + dt.timedelta(hours=2))

    assert back.result["status"] == "ok"
    assert (back.result["cancelled"], back.result["held"]) == (0, 0)
    rows = listing.bookings(engine)
    assert all(b.status == "active" and b.held_since is None for b in rows)
    [m] = q(
        engine,
        "SELECT hold_started_at FROM channel.channel_mappings WHERE id = :m",
        m=listing.mapping_id,
    )
    assert m.hold_started_at is None
    # Past the hold: nothing was left to cancel.
    listing.sync(T0 + dt.timedelta(hours=7))
    assert dict(reservations(engine, listing.property_id)) == {"confirmed": 10}
    # A new glitch later is a new episode, with a notice of its own.
    listing.serve([])
    listing.sync(T0 + dt.timedelta(hours=8))
    assert len(listing.notices(engine)) == 2


def test_cancellations_still_missing_after_the_hold_are_applied(engine, session, server):
    listing = Listing(session, server, settings={"hold_hours": 6})
    listing.sync(T0)
    listing.serve([])
    listing.sync(T0 + dt.timedelta(minutes=15))
    early = listing.sync(T0 + dt.timedelta(hours=6))  # 5 h 45 min after the first held run
    assert (early.result["status"], early.result["cancelled"]) == ("held", 0)

    late = listing.sync(T0 + dt.timedelta(hours=6, minutes=15))

    assert (late.result["status"], late.result["cancelled"], late.result["held"]) == ("ok", 10, 0)
    assert dict(reservations(engine, listing.property_id)) == {"cancelled": 10}
    stays = q(
        engine,
        "SELECT id FROM reservations.reservations WHERE property_id = :p"
        " AND reservation_type = 'guest'",
        p=listing.property_id,
    )
    assert sorted(late.reservations_to_sync) == sorted(r.id for r in stays)  # their tickets go
    assert len(listing.notices(engine)) == 1


def test_a_shorter_hold_from_the_connection_settings(engine, session, server):
    listing = Listing(session, server, settings={"hold_hours": 1})
    listing.sync(T0)
    listing.serve(listing.stays[:2])  # 8 of 10 gone
    assert listing.sync(T0 + dt.timedelta(minutes=15)).result["held"] == 8
    done = listing.sync(T0 + dt.timedelta(hours=1, minutes=15))
    assert (done.result["cancelled"], done.result["held"]) == (8, 0)


def test_release_applies_the_held_cancellations_at_once(engine, session, server, celery_app):
    listing = Listing(session, server)
    listing.sync(T0)
    listing.serve([])
    listing.sync(T0 + dt.timedelta(minutes=15))

    released = celery_app.tasks["channel.release_held"].apply(
        kwargs={"mapping_id": str(listing.mapping_id)}
    )

    assert released.successful(), released.result
    assert released.result["cancelled"] == 10 and released.result["reservations_cancelled"] == 10
    assert dict(reservations(engine, listing.property_id)) == {"cancelled": 10}
    [m] = q(
        engine,
        "SELECT hold_started_at FROM channel.channel_mappings WHERE id = :m",
        m=listing.mapping_id,
    )
    assert m.hold_started_at is None
    # The stays' follow-ups were sent (recurring.sync_reservation cancels their tickets).
    after = listing.sync(T0 + dt.timedelta(minutes=30))
    assert (after.result["cancelled"], after.result["held"]) == (0, 0)
    celery_app.control.purge()


def test_release_of_an_unknown_mapping_is_a_payload_error(celery_app, engine):
    done = celery_app.tasks["channel.release_held"].apply(kwargs={"mapping_id": str(uuid.uuid4())})
    assert done.failed() and "unknown mapping_id" in str(done.result)
    [dead] = q(engine, "SELECT * FROM ops.dead_letters WHERE task_name = 'channel.release_held'")
    assert dead.error_kind == "validation"


def test_release_as_a_plain_function_collects_the_follow_ups(engine, session, server):
    listing = Listing(session, server)
    listing.sync(T0)
    listing.serve([])
    listing.sync(T0 + dt.timedelta(minutes=15))
    ctx = plain_context(T0 + dt.timedelta(minutes=20), "channel.release_held")
    result = release_held(ctx, listing.mapping_id)
    assert result["cancelled"] == 10
    sent = [kw["reservation_id"] for name, kw in ctx._after_commit]
    # The stays, not the blocks: each to recurring.sync_reservation and journeys.plan_stay.
    assert len(sent) == 16 and len(set(sent)) == 8
    assert sorted({name for name, _ in ctx._after_commit}) == [
        "journeys.plan_stay",
        "recurring.sync_reservation",
    ]


@pytest.mark.parametrize(
    ("kept", "expected"),
    [
        (9, ("ok", 1, 0)),  # one cancellation: ordinary, at once
        (6, ("ok", 4, 0)),  # 4 of 10: at least three, but not more than half
        (5, ("ok", 5, 0)),  # exactly half is not more than half
        (4, ("held", 0, 6)),  # 6 of 10: held
        (0, ("held", 0, 10)),
    ],
)
def test_which_losses_are_held(engine, session, server, kept, expected):
    listing = Listing(session, server)
    listing.sync(T0)
    events = listing.stays + listing.blocks
    listing.serve(events[:kept])
    run = listing.sync(T0 + dt.timedelta(minutes=15))
    assert (run.result["status"], run.result["cancelled"], run.result["held"]) == expected


def test_an_empty_feed_with_a_single_live_booking_cancels_it(engine, session, server):
    prop = f.property_(session, code=f"HO{uuid.uuid4().hex[:5]}")
    path = f"/hold/{uuid.uuid4().hex}.ics"
    server.set_feed(path, feeds.airbnb_feed([feeds.airbnb_stay("one", day(3), day(5), "HM1")]))
    mid = feeds.mapping(session, feeds.connection(session), prop, server.url(path))
    session.commit()
    import_mapping(mid, as_of=T0)
    server.set_feed(path, feeds.airbnb_feed([]))
    run = import_mapping(mid, as_of=T0 + dt.timedelta(minutes=15))
    assert (run.result["status"], run.result["cancelled"], run.result["held"]) == ("ok", 1, 0)


def test_a_partial_return_ends_the_episode_and_cancels_what_is_still_missing(
    engine, session, server
):
    listing = Listing(session, server)
    listing.sync(T0)
    listing.serve([])
    listing.sync(T0 + dt.timedelta(minutes=15))
    listing.serve((listing.stays + listing.blocks)[1:])  # nine come back, one is really gone
    run = listing.sync(T0 + dt.timedelta(minutes=30))
    assert (run.result["status"], run.result["cancelled"], run.result["held"]) == ("ok", 1, 0)
    [m] = q(
        engine,
        "SELECT hold_started_at FROM channel.channel_mappings WHERE id = :m",
        m=listing.mapping_id,
    )
    assert m.hold_started_at is None


def test_cmw_channels_shows_the_hold_and_release_applies_it(engine, session, server):
    listing = Listing(session, server)
    listing.sync(T0)
    listing.serve([])
    listing.sync(T0 + dt.timedelta(minutes=15))

    shown = cmw("channels", "--unhealthy", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json_lines(shown.stdout)
    [mine] = [r for r in rows if r["mapping_id"] == str(listing.mapping_id)]
    assert mine["health"] == "held"

    released = cmw("channels", "release", str(listing.mapping_id))
    assert released.returncode == 0, released.stderr
    assert "10 held bookings cancelled" in released.stdout
    assert dict(reservations(engine, listing.property_id)) == {"cancelled": 10}
    again = cmw("channels", "release", str(listing.mapping_id), "--json")
    assert json_lines(again.stdout)[-1]["cancelled"] == 0
    unknown = cmw("channels", "release", str(uuid.uuid4()))
    assert unknown.returncode == 1 and "unknown mapping_id" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1  # one line, no traceback
