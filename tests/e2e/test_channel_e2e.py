"""Channel sync end to end: channel.sync enqueued by name, run by a real worker subprocess, fans
out to channel.sync_mapping, which fetches feeds from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import text

from tests.support import factories as f
from tests.support import feeds

pytestmark = pytest.mark.e2e
NY = ZoneInfo("America/New_York")


def _rows(session, sql: str, **params):
    session.commit()  # a fresh snapshot: the worker committed in its own transaction
    return session.execute(text(sql), params).all()


def _wait_for(session, sql: str, predicate, timeout: float = 90, **params):
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(session, sql, **params)
        if predicate(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


@pytest.fixture(scope="module")
def server():
    with feeds.FeedServer() as srv:
        yield srv


def test_channel_sync_fans_out_on_the_worker_and_the_reservations_appear(
    worker, celery_app, session, server
):
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = as_of.astimezone(NY).date()

    def day(n: int) -> dt.date:
        return today + dt.timedelta(days=n)

    prop = f.property_(session, code=f"E2E{uuid.uuid4().hex[:4]}")
    airbnb = feeds.connection(session, channel="airbnb")
    vrbo = feeds.connection(session, channel="vrbo")
    broken = feeds.connection(session, channel="booking_com")
    server.set_feed(
        "/e2e/airbnb.ics",
        feeds.airbnb_feed(
            [
                feeds.airbnb_stay("e1", day(5), day(9), "HME2E001"),
                feeds.airbnb_block("e2", day(15), day(18)),
            ]
        ),
    )
    server.set_feed("/e2e/vrbo.ics", feeds.vrbo_feed([feeds.vrbo_stay("e3", day(8), day(12))]))
    server.set_error("/e2e/broken.ics", 500)
    m_air = feeds.mapping(session, airbnb, prop, server.url("/e2e/airbnb.ics"))
    m_vrbo = feeds.mapping(session, vrbo, prop, server.url("/e2e/vrbo.ics"))
    m_broken = feeds.mapping(session, broken, prop, server.url("/e2e/broken.ics"))
    session.commit()

    summary = celery_app.send_task("channel.sync", kwargs={"as_of": as_of.isoformat()}).get(
        timeout=90
    )
    assert summary["mappings_enqueued"] == 3

    logs = _wait_for(
        session,
        "SELECT mapping_id, status, http_status, created FROM channel.sync_log",
        lambda rows: len(rows) >= 3,
    )
    by_mapping = {r.mapping_id: r for r in logs}
    assert (by_mapping[m_air].status, by_mapping[m_air].created) == ("ok", 2)
    assert (by_mapping[m_vrbo].status, by_mapping[m_vrbo].created) == ("ok", 1)
    assert (by_mapping[m_broken].status, by_mapping[m_broken].http_status) == ("error", 500)

    stays = _rows(
        session,
        "SELECT source, reservation_type, check_in, check_out, confirmation_code"
        " FROM reservations.reservations WHERE property_id = :p ORDER BY check_in",
        p=prop,
    )
    assert [tuple(r) for r in stays] == [
        ("airbnb", "guest", day(5), day(9), "HME2E001"),
        ("vrbo", "guest", day(8), day(12), None),
        ("airbnb", "block", day(15), day(18), None),
    ]
    # The Airbnb and Vrbo stays overlap: one urgent ticket, raised by the sync itself.
    [ticket] = _rows(
        session,
        "SELECT ticket_type, priority, source FROM service.tickets WHERE property_id = :p",
        p=prop,
    )
    assert tuple(ticket) == ("RSV", "urgent", "channel")
    # One batch imported the three feeds (SPEC 7.1: one job run per batch, not per feed).
    [run] = _rows(
        session,
        "SELECT status, worker, result FROM ops.job_runs WHERE task_name = 'channel.sync_mapping'",
    )
    assert run.status == "succeeded" and run.result["mappings"] == 3
    assert (run.result["feeds_ok"], run.result["feeds_error"]) == (2, 1)
    assert run.worker.startswith("test-")  # on the worker, not here
    # Each imported stay was handed to recurring.sync_reservation after the commit.
    followups = _wait_for(
        session,
        "SELECT payload->>'reservation_id' AS id FROM ops.job_runs"
        " WHERE task_name = 'recurring.sync_reservation'",
        lambda rows: len(rows) >= 2,
    )
    stay_ids = _rows(
        session,
        "SELECT id::text FROM reservations.reservations WHERE property_id = :p"
        " AND reservation_type = 'guest'",
        p=prop,
    )
    assert {r.id for r in followups} >= {r.id for r in stay_ids}

    # The export, through the worker too, carries the three live rows.
    exported = celery_app.send_task(
        "channel.export_calendars", kwargs={"property_id": str(prop), "as_of": as_of.isoformat()}
    ).get(timeout=90)
    assert exported["events"] == 3
    [row] = _rows(
        session, "SELECT ics FROM channel.calendar_exports WHERE property_id = :p", p=prop
    )
    calendar = icalendar.Calendar.from_ical(row.ics)
    assert len(calendar.walk("VEVENT")) == 3


def test_a_bad_sync_mapping_payload_is_dead_lettered_by_the_worker(worker, celery_app, session):
    missing = str(uuid.uuid4())
    result = celery_app.send_task("channel.sync_mapping", kwargs={"mapping_id": missing})
    with pytest.raises(Exception, match="unknown mapping_id"):
        result.get(timeout=90)
    dead = _wait_for(
        session,
        "SELECT error_kind, payload, retries FROM ops.dead_letters"
        " WHERE task_name = 'channel.sync_mapping'",
        lambda rows: len(rows) >= 1,
    )
    [(kind, payload, retries)] = [tuple(r) for r in dead]
    assert kind == "validation" and payload == {"mapping_id": missing} and retries == 0
