"""journeys.* end to end: enqueued by name, run by a real worker subprocess (SPEC 7.6)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.support import factories as f

pytestmark = pytest.mark.e2e
UTC = dt.UTC


def _rows(session, sql: str, **params):
    session.commit()  # a fresh snapshot: the worker committed in its own transaction
    return session.execute(text(sql), params).all()


def test_a_stay_planned_and_released_on_the_worker_gets_its_message_with_its_code(
    worker, celery_app, session
):
    sydney = ZoneInfo("Australia/Sydney")
    prop = f.property_(session, name="Bondi Loft", timezone="Australia/Sydney")
    tpl = f.insert(
        session,
        "comms.message_templates",
        code="pre_arrival",
        channel="email",
        subject="Your stay at {{ property.name }}",
        body="Hi {{ guest.first_name }}, your door code is {{ door_code }}.",
    ).id
    f.insert(
        session,
        "comms.message_rules",
        name="Pre-arrival",
        template_id=tpl,
        anchor="check_in",
        local_time=dt.time(10, 0),
        offset_minutes=-24 * 60,
    )
    guest = f.contact(session, first_name="Grace", email="grace@example.com")
    # Sydney falls back on 5 April 2026: the day before arrival is the change.
    stay = f.reservation(
        session, prop, dt.date(2026, 4, 6), dt.date(2026, 4, 9), guest_contact_id=guest
    )
    session.commit()
    as_of = dt.datetime(2026, 3, 1, tzinfo=UTC)

    # As another service would: by name, with a JSON payload.
    planned = celery_app.send_task(
        "journeys.plan_stay", kwargs={"reservation_id": str(stay), "as_of": as_of.isoformat()}
    ).get(timeout=90)
    assert (planned["created"], planned["codes_created"], planned["lock_commands"]) == (1, 1, 1)
    due = dt.datetime(2026, 4, 5, 10, 0, tzinfo=sydney).astimezone(UTC)
    [message] = _rows(session, "SELECT * FROM comms.messages WHERE related_type = 'reservation'")
    assert (message.status, message.scheduled_for) == ("scheduled", due)

    early = celery_app.send_task(
        "journeys.release_due", kwargs={"as_of": (due - dt.timedelta(minutes=1)).isoformat()}
    ).get(timeout=90)
    assert early["released"] == 0
    released = celery_app.send_task("journeys.release_due", kwargs={"as_of": due.isoformat()}).get(
        timeout=90
    )
    assert released["released"] == 1

    [code] = _rows(session, "SELECT * FROM property.access_codes WHERE reservation_id = :s", s=stay)
    [message] = _rows(session, "SELECT * FROM comms.messages WHERE related_type = 'reservation'")
    assert (message.status, message.recipient) == ("queued", "grace@example.com")
    assert message.subject == "Your stay at Bondi Loft"
    assert message.body == f"Hi Grace, your door code is {code.code}."
    [command] = _rows(session, "SELECT * FROM comms.messages WHERE related_type = 'access_code'")
    assert json.loads(command.body)["code"] == code.code
    runs = _rows(
        session,
        "SELECT task_name, status, worker FROM ops.job_runs WHERE task_name LIKE 'journeys.%'",
    )
    assert len(runs) == 3 and all(r.status == "succeeded" for r in runs)
    assert all(r.worker.startswith("test-") for r in runs)
    assert celery_app.amqp.router.route({}, "journeys.release_due")["queue"].name == "journeys"
