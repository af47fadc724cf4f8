"""The SLA tasks end to end: sent by name to a real worker over the real broker."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import text

from tests.support import factories as f

pytestmark = pytest.mark.e2e

T0 = dt.datetime(2026, 6, 1, 13, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def test_apply_then_sweep_on_the_worker_record_a_breach_once(worker, celery_app, session):
    esc = f.insert(session, "team.teams", code="ESC", name="Escalations",
                   notify_email="esc@example.com").id  # fmt: skip
    pol = f.insert(session, "service.sla_policies", name="Normal", priority="normal",
                   response_minutes=30, resolution_minutes=600, escalate_to_team_id=esc,
                   escalate_priority="high").id  # fmt: skip
    t = f.ticket(session, created_at=T0)
    inserted_elsewhere = f.ticket(session, created_at=T0)  # nobody enqueued sla.apply for it
    session.commit()

    # As another service would send it: by name, with a JSON payload.
    applied = celery_app.send_task(
        "sla.apply", kwargs={"ticket_id": str(t), "as_of": (T0 + MIN).isoformat()}
    ).get(timeout=60)
    assert applied["sla_policy_id"] == str(pol)
    assert applied["response_due_at"] == (T0 + 30 * MIN).isoformat()

    as_of = (T0 + 45 * MIN).isoformat()
    swept = celery_app.send_task("sla.check_breaches", kwargs={"as_of": as_of}).get(timeout=60)
    assert swept["deadlines_set"] == 1 and swept["response_breaches"] == 2
    again = celery_app.send_task("sla.check_breaches", kwargs={"as_of": as_of}).get(timeout=60)
    assert again["response_breaches"] == 0 and again["deadlines_set"] == 0

    session.commit()
    rows = session.execute(
        text(
            "SELECT t.id, t.priority, t.current_team_id, t.response_breached_at,"
            " (SELECT count(*) FROM service.ticket_misses m WHERE m.ticket_id = t.id) AS misses,"
            " (SELECT count(*) FROM service.ticket_events e WHERE e.ticket_id = t.id"
            "  AND e.event_type = 'sla_breached') AS events,"
            " (SELECT count(*) FROM comms.messages c WHERE c.related_id = t.id) AS messages"
            " FROM service.tickets t ORDER BY t.ticket_number"
        )
    ).all()
    assert [(r.id, r.priority, r.current_team_id) for r in rows] == [
        (t, "high", esc),
        (inserted_elsewhere, "high", esc),
    ]
    assert all(r.response_breached_at == T0 + 30 * MIN for r in rows)
    assert all((r.misses, r.events, r.messages) == (1, 1, 1) for r in rows)
    runs = session.execute(
        text(
            "SELECT task_name, status, worker FROM ops.job_runs"
            " WHERE task_name LIKE 'sla.%' ORDER BY started_at"
        )
    ).all()
    assert [(r.task_name, r.status) for r in runs] == [
        ("sla.apply", "succeeded"),
        ("sla.check_breaches", "succeeded"),
        ("sla.check_breaches", "succeeded"),
    ]
    assert all(r.worker.startswith("test-") for r in runs)  # ran on the worker


def test_an_unknown_ticket_fails_once_on_the_worker_and_is_dead_lettered(
    worker, celery_app, session
):
    missing = "01960000-0000-7000-8000-000000000000"
    result = celery_app.send_task("sla.apply", kwargs={"ticket_id": missing})
    with pytest.raises(Exception, match="unknown ticket_id"):
        result.get(timeout=60)
    time.sleep(2)  # room for a retry, which must not come
    session.commit()
    [run] = session.execute(
        text("SELECT status, error FROM ops.job_runs WHERE task_id = :id"), {"id": result.id}
    ).all()
    assert run.status == "failed" and "unknown ticket_id" in run.error
    [letter] = session.execute(
        text("SELECT payload, error_kind, retries FROM ops.dead_letters WHERE task_id = :id"),
        {"id": result.id},
    ).all()
    assert (letter.payload, letter.error_kind, letter.retries) == (
        {"ticket_id": missing}, "validation", 0,
    )  # fmt: skip
