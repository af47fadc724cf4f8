"""recurring.* end to end: enqueued by name, run by a real worker subprocess (SPEC 6.1)."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.support import factories as f

pytestmark = pytest.mark.e2e
UTC = dt.UTC


def _rows(session, sql: str, **params):
    session.commit()  # a fresh snapshot: the worker committed in its own transaction
    return session.execute(text(sql), params).all()


def _wait_for_rows(session, sql: str, timeout: float = 30, **params):
    """The result reaches the backend just before the worker records a failure: poll."""
    deadline = time.monotonic() + timeout
    while not (rows := _rows(session, sql, **params)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


def test_an_enqueued_sync_of_a_new_stay_creates_its_tickets_on_the_worker(
    worker, celery_app, session
):
    prop = f.property_(session, name="Harbour Flat", timezone="Europe/Lisbon")
    rule = f.insert(
        session,
        "service.recurring_rules",
        name="Departure clean",
        ticket_type="PC",
        title_template="Departure clean {property_name} {date} ({reservation_code})",
        trigger_type="reservation",
        anchor="check_out",
        local_time=dt.time(11, 0),
        scope_type="all_properties",
    ).id
    # No as_of on this path: the stay must lie ahead of the real clock.
    check_in = dt.datetime.now(UTC).date() + dt.timedelta(days=30)
    check_out = check_in + dt.timedelta(days=4)
    stay = f.reservation(session, prop, check_in, check_out, confirmation_code="HM777")
    session.commit()

    # As another service would: by name, with a JSON payload.
    result = celery_app.send_task(
        "recurring.sync_reservation", kwargs={"reservation_id": str(stay)}
    )
    summary = result.get(timeout=90)

    assert summary["created"] == 1
    [ticket] = _rows(
        session,
        "SELECT t.id, t.title, t.due_at, t.source, l.recurring_rule_id FROM service.tickets t"
        " JOIN service.ticket_recurring l ON l.ticket_id = t.id WHERE t.reservation_id = :s",
        s=stay,
    )
    assert ticket.title == f"Departure clean Harbour Flat {check_out.isoformat()} (HM777)"
    lisbon = ZoneInfo("Europe/Lisbon")
    assert ticket.due_at.astimezone(lisbon).replace(tzinfo=None) == dt.datetime.combine(
        check_out, dt.time(11, 0)
    )
    assert (ticket.source, ticket.recurring_rule_id) == ("recurring", rule)
    [run] = _rows(
        session, "SELECT status, worker FROM ops.job_runs WHERE task_id = :t", t=result.id
    )
    assert run.status == "succeeded" and run.worker.startswith("test-")
    # The new ticket's SLA follows: sla.apply was enqueued after the sync committed.
    [applied] = _wait_for_rows(
        session,
        "SELECT status FROM ops.job_runs WHERE task_name = 'sla.apply'"
        " AND payload ->> 'ticket_id' = :t AND status = 'succeeded'",
        timeout=60,
        t=str(ticket.id),
    )
    assert applied.status == "succeeded"


def test_an_enqueued_generate_runs_on_the_recurring_queue(worker, celery_app, session):
    for tz in ("America/New_York", "Asia/Tokyo"):
        f.property_(session, timezone=tz)
    f.insert(
        session,
        "service.recurring_rules",
        name="Pool check",
        ticket_type="PC",
        title_template="Pool check {property_name} {date}",
        trigger_type="calendar",
        rrule="FREQ=WEEKLY;BYDAY=MO",
        dtstart=dt.datetime(2026, 6, 8, 8, 0),
        lead_minutes=7 * 24 * 60,
        scope_type="all_properties",
    )
    session.commit()
    as_of = dt.datetime(2026, 6, 3, 12, 0, tzinfo=UTC).isoformat()

    first = celery_app.send_task("recurring.generate", kwargs={"as_of": as_of}).get(timeout=90)
    second = celery_app.send_task("recurring.generate", kwargs={"as_of": as_of}).get(timeout=90)

    assert (first["created"], second["created"]) == (2, 0)
    due = [r.due_at for r in _rows(session, "SELECT due_at FROM service.tickets ORDER BY due_at")]
    assert due == [
        dt.datetime(2026, 6, 7, 23, 0, tzinfo=UTC),  # Monday 8 June 08:00 in Tokyo
        dt.datetime(2026, 6, 8, 12, 0, tzinfo=UTC),  # Monday 8 June 08:00 in New York
    ]
    assert celery_app.amqp.router.route({}, "recurring.generate")["queue"].name == "recurring"


def test_an_unknown_stay_fails_at_once_on_the_worker_and_is_dead_lettered(
    worker, celery_app, session
):
    missing = "00000000-0000-7000-8000-000000000001"
    result = celery_app.send_task("recurring.sync_reservation", kwargs={"reservation_id": missing})
    with pytest.raises(Exception, match="unknown reservation_id"):
        result.get(timeout=90)
    [dead] = _wait_for_rows(
        session,
        "SELECT payload, error_kind, retries FROM ops.dead_letters WHERE task_id = :t",
        t=result.id,
    )
    assert dead.payload == {"reservation_id": missing}
    assert (dead.error_kind, dead.retries) == ("validation", 0)
