"""sla.check_breaches on the real database: breaches, warnings, escalation, tickets inserted
without deadlines, and two sweeps at once in two processes (with and without the lock)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tasks.sla.sweep import fill_missing_deadlines
from tests.support import factories as f
from tests.support.services import ROOT

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
T0 = dt.datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # Monday 09:00 in New York
MIN = dt.timedelta(minutes=1)
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


def sweep(celery_app, as_of: dt.datetime) -> dict:
    result = celery_app.tasks["sla.check_breaches"].apply(kwargs={"as_of": as_of.isoformat()})
    assert result.successful(), result.result
    return result.result


def policy(session, **values) -> uuid.UUID:
    values = {"name": "policy", "priority": "normal", "response_minutes": 60,
              "resolution_minutes": 480, **values}  # fmt: skip
    return f.insert(session, "service.sla_policies", **values).id


def team(session, code: str, notify_email: str | None) -> uuid.UUID:
    return f.insert(
        session, "team.teams", code=code, name=f"Team {code}", notify_email=notify_email
    ).id


def row(session, ticket_id):
    session.commit()
    return session.execute(
        text("SELECT * FROM service.tickets WHERE id = :id"), {"id": ticket_id}
    ).one()


def scalar(session, sql: str, **params):
    session.commit()
    return session.execute(text(sql), params).scalar_one()


def totals(session) -> tuple[int, ...]:
    session.commit()
    return tuple(
        session.execute(
            text(
                "SELECT (SELECT count(*) FROM service.ticket_misses),"
                " (SELECT count(*) FROM service.ticket_events WHERE event_type = 'sla_breached'),"
                " (SELECT count(*) FROM service.ticket_events WHERE event_type = 'sla_warning'),"
                " (SELECT count(*) FROM comms.messages)"
            )
        ).one()
    )


def deadlined_ticket(session, *, created_at=T0, response=60, resolution=480, **cols):
    """A ticket with deadlines already set (as sla.apply would have set them, 24x7)."""
    warn = dt.timedelta(seconds=round(resolution * 60 * 0.8))
    return f.ticket(
        session,
        created_at=created_at,
        response_due_at=created_at + response * MIN,
        resolution_due_at=created_at + resolution * MIN,
        resolution_warn_due_at=created_at + warn,
        **cols,
    )


# -- breaches ------------------------------------------------------------------------------


def test_a_breach_is_recorded_once_at_its_deadline_with_miss_event_escalation_and_message(
    celery_app, session
):
    first, esc = team(session, "PC", "pc@example.com"), team(session, "ESC", "esc@example.com")
    pol = policy(session, escalate_to_team_id=esc, escalate_priority="urgent")
    t = deadlined_ticket(session, sla_policy_id=pol, current_team_id=first)
    session.commit()

    assert sweep(celery_app, T0 + 60 * MIN)["response_breaches"] == 0  # due, not yet past
    result = sweep(celery_app, T0 + 61 * MIN)
    assert result["response_breaches"] == 1 and result["resolution_breaches"] == 0
    assert (result["escalations"], result["misses"], result["events"], result["messages"]) == (
        1, 1, 1, 1,
    )  # fmt: skip
    r = row(session, t)
    assert r.response_breached_at == T0 + 60 * MIN
    assert (r.current_team_id, r.priority) == (esc, "urgent")
    assert r.resolution_due_at == T0 + 480 * MIN  # not recomputed
    miss = session.execute(text("SELECT * FROM service.ticket_misses")).one()
    assert (miss.ticket_id, miss.sla_kind, miss.due_at, miss.breached_at) == (
        t, "response", T0 + 60 * MIN, T0 + 60 * MIN,
    )  # fmt: skip
    assert (miss.sla_policy_id, miss.priority, miss.team_id) == (pol, "normal", first)
    event = session.execute(text("SELECT * FROM service.ticket_events")).one()
    assert (event.ticket_id, event.event_type, event.actor) == (t, "sla_breached", "system")
    assert event.occurred_at == T0 + 60 * MIN
    assert event.data["detected_at"].startswith("2026-06-01T14:01")
    assert event.data["escalated"] is True and event.data["team_id"] == str(esc)
    message = session.execute(text("SELECT * FROM comms.messages")).one()
    assert (message.channel, message.recipient, message.status) == (
        "email", "esc@example.com", "queued",
    )  # fmt: skip
    assert (message.related_type, message.related_id) == ("ticket", t)
    assert message.dedupe_key == f"sla:response_breach:{t}"
    assert "TKT-" in message.subject and "Escalated" in message.body

    # The same sweep again, and later ones: nothing more, until the resolution deadline.
    assert sweep(celery_app, T0 + 61 * MIN)["response_breaches"] == 0
    later = sweep(celery_app, T0 + 481 * MIN)
    assert (later["response_breaches"], later["resolution_breaches"]) == (0, 1)
    assert row(session, t).resolution_breached_at == T0 + 480 * MIN
    assert totals(session) == (2, 2, 0, 2)  # the warning was overtaken by the breach sweep
    assert sweep(celery_app, T0 + 10_000 * MIN)["resolution_breaches"] == 0
    assert totals(session) == (2, 2, 0, 2)


def test_escalation_never_lowers_the_priority_and_notifies_ops_when_the_team_has_no_address(
    celery_app, session
):
    quiet = team(session, "Q", None)
    pol = policy(session, priority="urgent", response_minutes=15, resolution_minutes=240,
                 escalate_to_team_id=quiet, escalate_priority="normal")  # fmt: skip
    t = deadlined_ticket(session, priority="urgent", response=15, resolution=240,
                         sla_policy_id=pol)  # fmt: skip
    no_team = deadlined_ticket(session)  # defaults: no policy, so no escalation
    session.commit()
    result = sweep(celery_app, T0 + 100 * MIN)
    assert result["response_breaches"] == 2 and result["escalations"] == 1  # the team only
    r = row(session, t)
    assert (r.priority, r.current_team_id) == ("urgent", quiet)
    n = row(session, no_team)
    assert (n.priority, n.current_team_id) == ("normal", None)
    recipients = session.execute(text("SELECT recipient FROM comms.messages")).scalars().all()
    assert recipients == ["ops@localhost", "ops@localhost"]


def test_resolved_paused_and_answered_tickets_are_not_breached(celery_app, session):
    deadlined_ticket(session, status="resolved", resolved_at=T0 + 30 * MIN)
    deadlined_ticket(session, status="cancelled")
    answered = deadlined_ticket(session, status="in_progress", first_response_at=T0 + 5 * MIN)
    # Paused as sla.apply leaves it: no resolution deadline while the clock is stopped.
    f.ticket(session, status="pending_guest", created_at=T0, first_response_at=T0 + 5 * MIN,
             response_due_at=T0 + 60 * MIN, sla_paused_since=T0 + 10 * MIN)  # fmt: skip
    session.commit()
    result = sweep(celery_app, T0 + 400 * MIN)
    assert result["response_breaches"] == 0 and result["resolution_breaches"] == 0
    assert result["warnings"] == 1  # the answered one, at 80% of its resolution time
    assert row(session, answered).sla_warned_at == T0 + 384 * MIN


# -- warnings ------------------------------------------------------------------------------


def test_a_warning_is_recorded_once_at_warn_at_pct_of_the_resolution_time(celery_app, session):
    esc = team(session, "ESC", "esc@example.com")
    pol = policy(session, warn_at_pct=50, escalate_to_team_id=esc)
    t = f.ticket(session, created_at=T0, current_team_id=esc, first_response_at=T0 + MIN)
    session.commit()
    celery_app.tasks["sla.apply"].apply(kwargs={"ticket_id": str(t), "as_of": T0.isoformat()})
    assert row(session, t).resolution_warn_due_at == T0 + 240 * MIN

    assert sweep(celery_app, T0 + 240 * MIN)["warnings"] == 0
    result = sweep(celery_app, T0 + 241 * MIN)
    assert result["warnings"] == 1 and result["escalations"] == 0
    r = row(session, t)
    assert r.sla_warned_at == T0 + 240 * MIN
    event = session.execute(
        text("SELECT * FROM service.ticket_events WHERE event_type = 'sla_warning'")
    ).one()
    assert event.occurred_at == T0 + 240 * MIN and event.data["sla_policy_id"] == str(pol)
    message = session.execute(text("SELECT * FROM comms.messages")).one()
    assert message.dedupe_key == f"sla:resolution_warning:{t}"
    assert message.recipient == "esc@example.com" and message.related_id == t
    assert sweep(celery_app, T0 + 300 * MIN)["warnings"] == 0
    assert totals(session) == (0, 0, 1, 1)


def test_a_ticket_whose_resolution_is_already_past_gets_its_breach_not_a_warning(
    celery_app, session
):
    deadlined_ticket(session, first_response_at=T0 + MIN)
    session.commit()
    result = sweep(celery_app, T0 + 1000 * MIN)  # the sweep was down through both instants
    assert (result["resolution_breaches"], result["warnings"]) == (1, 0)


# -- tickets inserted without deadlines ----------------------------------------------------


def test_tickets_inserted_without_deadlines_get_them_from_the_sweep(celery_app, session):
    cal = f.insert(session, "service.business_calendars", name="Office",
                   timezone="America/New_York", weekly_hours=OFFICE).id  # fmt: skip
    business = policy(session, priority="high", response_minutes=120, resolution_minutes=960,
                      calendar_id=cal)  # fmt: skip
    created = ny(2026, 6, 5, 16)  # Friday 16:00
    plain = f.ticket(session, created_at=created)  # normal, no policy: defaults, 24x7
    hours = f.ticket(session, priority="high", created_at=created)
    waiting = f.ticket(session, status="pending_vendor", created_at=created)
    closed = f.ticket(session, status="closed", created_at=created)
    session.commit()
    result = sweep(celery_app, created + 5 * MIN)
    assert (result["deadlines_set"], result["deadlines_set_business_hours"]) == (3, 1)
    p = row(session, plain)
    assert (p.sla_policy_id, p.response_due_at, p.resolution_due_at) == (
        None, created + 240 * MIN, created + 4320 * MIN,
    )  # fmt: skip
    assert p.resolution_warn_due_at == created + 3456 * MIN
    h = row(session, hours)
    assert h.sla_policy_id == business
    assert h.response_due_at == ny(2026, 6, 8, 10)  # 1 h Friday + 1 h Monday
    assert h.resolution_due_at == ny(2026, 6, 9, 16)
    assert h.resolution_warn_due_at == ny(2026, 6, 9, 12, 48)  # 768 business minutes
    w = row(session, waiting)
    assert w.response_due_at == created + 240 * MIN and w.resolution_due_at is None
    assert w.sla_paused_since == created  # waiting since it was inserted
    assert row(session, closed).response_due_at is None  # finished: no clock at all
    # The same deadlines sla.apply computes.
    for t in (plain, hours, waiting):
        before = row(session, t)
        res = celery_app.tasks["sla.apply"].apply(
            kwargs={"ticket_id": str(t), "as_of": (created + 5 * MIN).isoformat()}
        )
        assert res.result["changed"] is False, t
        assert row(session, t).resolution_due_at == before.resolution_due_at
    assert sweep(celery_app, created + 6 * MIN)["deadlines_set"] == 0


def test_an_inserted_ticket_past_its_deadlines_is_breached_even_if_answered_late(
    celery_app, session
):
    late = f.ticket(session, created_at=T0, status="in_progress", first_response_at=T0 + 300 * MIN)
    unanswered = f.ticket(session, created_at=T0)
    session.commit()
    result = sweep(celery_app, T0 + 5000 * MIN)
    assert result["deadlines_set"] == 2
    assert (result["response_breaches"], result["resolution_breaches"]) == (2, 2)
    r = row(session, late)
    assert r.response_breached_at == T0 + 240 * MIN
    assert r.resolution_breached_at == T0 + 4320 * MIN
    assert row(session, unanswered).response_breached_at == T0 + 240 * MIN
    assert totals(session) == (4, 4, 0, 4)


def test_the_business_hours_fill_works_in_bounded_batches_oldest_first(session):
    cal = f.insert(session, "service.business_calendars", name="Office",
                   timezone="America/New_York", weekly_hours=OFFICE).id  # fmt: skip
    policy(session, calendar_id=cal)
    ids = [f.ticket(session, created_at=T0 + n * MIN) for n in range(5)]
    session.commit()
    first, with_calendar = fill_missing_deadlines(session, as_of=T0 + 10 * MIN, calendar_batch=2)
    assert (sorted(first), with_calendar) == (sorted(ids[:2]), 2)
    second, _ = fill_missing_deadlines(session, as_of=T0 + 10 * MIN, calendar_batch=2)
    assert sorted(second) == sorted(ids[2:4])
    session.commit()


def test_an_unusable_calendar_counts_24x7_instead_of_stopping_the_sweep(celery_app, session):
    cal = f.insert(session, "service.business_calendars", name="Broken", timezone="Nowhere/Else",
                   weekly_hours={"mon": [["09:00", "17:00"]]}).id  # fmt: skip
    policy(session, calendar_id=cal)
    t = f.ticket(session, created_at=T0)
    session.commit()
    assert sweep(celery_app, T0 + MIN)["deadlines_set"] == 1
    assert row(session, t).response_due_at == T0 + 60 * MIN


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"as_of": "2026-06-01T12:00:00"}, "as_of"), ({"ticket_id": str(uuid.uuid4())}, "ticket_id")],
)
def test_a_bad_payload_is_dead_lettered(celery_app, session, kwargs, message):
    result = celery_app.tasks["sla.check_breaches"].apply(kwargs=kwargs)
    assert result.failed() and message in str(result.result)
    session.commit()
    letter = session.execute(
        text("SELECT payload, error_kind FROM ops.dead_letters WHERE task_name = :t"),
        {"t": "sla.check_breaches"},
    ).one()
    assert letter.payload == kwargs and letter.error_kind == "validation"


def test_a_sweep_records_its_run(celery_app, session):
    result = sweep(celery_app, T0)
    run = session.execute(
        text("SELECT status, as_of, result FROM ops.job_runs WHERE task_name = :t"),
        {"t": "sla.check_breaches"},
    ).one()
    assert (run.status, run.as_of, run.result) == ("succeeded", T0, result)


# -- two sweeps at once, 10,000 due tickets ------------------------------------------------

DUE_TICKETS = 10_000


def _many_due_tickets(session) -> tuple[uuid.UUID, uuid.UUID]:
    """10,000 open tickets past both deadlines, half of them under an escalating policy."""
    first, esc = team(session, "PC", "pc@example.com"), team(session, "ESC", None)
    pol = policy(session, escalate_to_team_id=esc, escalate_priority="high")
    session.execute(
        text(
            "INSERT INTO service.tickets (ticket_type, title, source, created_at, current_team_id,"
            " sla_policy_id, response_due_at, resolution_due_at, resolution_warn_due_at)"
            " SELECT 'PC', 'Ticket ' || g, 'agent', :t0, :team,"
            " CASE WHEN g % 2 = 0 THEN CAST(:pol AS uuid) END,"
            " :t0 + interval '60 minutes' + g * interval '1 millisecond',"
            " :t0 + interval '480 minutes', :t0 + interval '384 minutes'"
            " FROM generate_series(1, :n) g"
        ),
        {"t0": T0, "team": first, "pol": pol, "n": DUE_TICKETS},
    )
    session.commit()
    return first, esc


def _assert_each_breach_once(session, first, esc) -> None:
    assert totals(session) == (2 * DUE_TICKETS, 2 * DUE_TICKETS, 0, 2 * DUE_TICKETS)
    assert (
        scalar(
            session,
            "SELECT count(DISTINCT (ticket_id, sla_kind)) FROM service.ticket_misses"
            " WHERE breached_at = due_at",
        )
        == 2 * DUE_TICKETS
    )
    assert (
        scalar(
            session,
            "SELECT count(DISTINCT (ticket_id, data->>'sla_kind')) FROM service.ticket_events",
        )
        == 2 * DUE_TICKETS
    )
    assert (
        scalar(
            session,
            "SELECT count(*) FROM service.tickets WHERE response_breached_at = response_due_at"
            " AND resolution_breached_at = resolution_due_at",
        )
        == DUE_TICKETS
    )
    # A miss keeps the team and priority from before its escalation; the resolution misses of
    # escalated tickets come after the response breach moved them (the response deadline
    # passed first), the tickets have the new team.
    assert scalar(session, "SELECT count(*) FROM service.ticket_misses WHERE team_id = :t"
                  " AND priority = 'normal' AND sla_kind = 'response'",
                  t=first) == DUE_TICKETS  # fmt: skip
    assert scalar(session, "SELECT count(*) FROM service.ticket_misses WHERE team_id = :t"
                  " AND priority = 'high' AND sla_kind = 'resolution'",
                  t=esc) == DUE_TICKETS // 2  # fmt: skip
    assert scalar(session, "SELECT count(*) FROM service.tickets WHERE current_team_id = :t"
                  " AND priority = 'high'", t=esc) == DUE_TICKETS // 2  # fmt: skip


def _start_together(script: str, *args: str) -> list[str]:
    """Two processes that connect first and then start the work at the same instant."""
    start_at = str(time.time() + 4)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, start_at, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    return [out.strip().splitlines()[-1] for out, _ in outs]


# Bypasses the task base and its advisory lock: the plain sweep function in its own session,
# holding its transaction open a moment after the work so the two certainly overlap.
UNLOCKED = """
import datetime as dt, json, sys, time
from sqlalchemy import text
from db.session import session_scope
from tasks.sla.sweep import check_breaches
start_at, as_of = float(sys.argv[1]), dt.datetime.fromisoformat(sys.argv[2])
with session_scope() as s:
    s.execute(text("SELECT 1"))
    time.sleep(max(0, start_at - time.time()))
    result = check_breaches(s, as_of=as_of)
    time.sleep(1)
print(json.dumps(result))
"""
# Through the task base, as two workers would run it.
LOCKED = """
import json, sys, time
from workers.app import app
app.loader.import_default_modules()
task = app.tasks["sla.check_breaches"]
time.sleep(max(0, float(sys.argv[1]) - time.time()))
r = task.apply(kwargs={"as_of": sys.argv[2]})
assert r.successful(), r.result
print(json.dumps(r.result))
"""


def test_two_sweeps_at_once_without_the_lock_record_each_breach_exactly_once(session):
    first, esc = _many_due_tickets(session)
    results = [json.loads(o) for o in _start_together(UNLOCKED, (T0 + 600 * MIN).isoformat())]
    assert sum(r["response_breaches"] for r in results) == DUE_TICKETS
    assert sum(r["resolution_breaches"] for r in results) == DUE_TICKETS
    assert sum(r["messages"] for r in results) == 2 * DUE_TICKETS
    _assert_each_breach_once(session, first, esc)


def test_two_sweeps_at_once_through_the_task_base_record_each_breach_exactly_once(session):
    first, esc = _many_due_tickets(session)
    results = [json.loads(o) for o in _start_together(LOCKED, (T0 + 600 * MIN).isoformat())]
    done = [r for r in results if "skipped" not in r]
    assert sum(r["response_breaches"] for r in done) == DUE_TICKETS
    _assert_each_breach_once(session, first, esc)
    statuses = session.execute(
        text("SELECT status FROM ops.job_runs WHERE task_name = 'sla.check_breaches'")
    ).scalars()
    assert sorted(statuses) in (["skipped", "succeeded"], ["succeeded", "succeeded"])


# -- status changed without sla.apply ----------------------------------------------------------


def _now(session) -> dt.datetime:
    session.commit()
    return session.execute(text("SELECT now()")).scalar_one()


def _set_status(session, ticket_id, status: str) -> dt.datetime:
    """Change the status as a service that forgets to enqueue sla.apply; returns updated_at."""
    changed = session.execute(
        text("UPDATE service.tickets SET status = :s WHERE id = :id RETURNING updated_at"),
        {"s": status, "id": ticket_id},
    ).scalar_one()
    session.commit()
    return changed


def test_a_ticket_resumed_without_sla_apply_gets_its_clock_back_from_the_sweep(celery_app, session):
    now = _now(session)
    created = now - dt.timedelta(hours=10)
    paused_since = created + 60 * MIN  # after an hour of its 8; stopped since, no deadline
    pol = policy(session)  # response 60, resolution 480, 24x7
    t = f.ticket(session, status="pending_guest", created_at=created, sla_policy_id=pol,
                 first_response_at=created + 5 * MIN, response_due_at=created + 60 * MIN,
                 sla_paused_since=paused_since)  # fmt: skip
    session.commit()
    resumed = _set_status(session, t, "in_progress")

    result = sweep(celery_app, resumed + MIN)
    assert result["pause_clocks_reconciled"] == 1
    r = row(session, t)
    paused = round((resumed - paused_since).total_seconds() / 60)
    assert (r.sla_paused_since, r.sla_paused_minutes) == (None, paused)
    # Seven business hours (24x7) were left when it was paused, and are left from `resumed`.
    assert r.resolution_due_at == created + (480 + paused) * MIN
    assert abs(r.resolution_due_at - (resumed + 420 * MIN)) < MIN
    assert r.resolution_breached_at is None
    # Put right once: a later sweep finds nothing to reconcile, and sla.apply nothing to change.
    assert sweep(celery_app, resumed + 2 * MIN)["pause_clocks_reconciled"] == 0
    applied = celery_app.tasks["sla.apply"].apply(
        kwargs={"ticket_id": str(t), "as_of": (resumed + 2 * MIN).isoformat()}
    )
    assert applied.successful() and applied.result["changed"] is False


def test_a_ticket_resumed_without_sla_apply_is_breached_when_its_moved_deadline_passes(
    celery_app, session
):
    now = _now(session)
    created = now - dt.timedelta(hours=5)
    pol = policy(session, response_minutes=15, resolution_minutes=60)
    t = f.ticket(session, status="on_hold", created_at=created, sla_policy_id=pol,
                 first_response_at=created + 5 * MIN, response_due_at=created + 15 * MIN,
                 sla_paused_since=created + 30 * MIN)  # fmt: skip
    session.commit()
    resumed = _set_status(session, t, "open")

    # Thirty minutes were left: a sweep 31 minutes after the change both reconciles and breaches.
    result = sweep(celery_app, resumed + 31 * MIN)
    assert result["pause_clocks_reconciled"] == 1 and result["resolution_breaches"] == 1
    r = row(session, t)
    assert r.resolution_breached_at == r.resolution_due_at
    assert abs(r.resolution_due_at - (resumed + 30 * MIN)) < MIN
    assert totals(session)[0] == 1  # one miss
    assert sweep(celery_app, resumed + 40 * MIN)["resolution_breaches"] == 0
    assert totals(session)[0] == 1


def test_a_ticket_put_on_hold_without_sla_apply_has_its_clock_stopped_from_the_change(
    celery_app, session
):
    now = _now(session)
    created = now - dt.timedelta(hours=2)
    t = deadlined_ticket(session, created_at=created, first_response_at=created + 5 * MIN)
    session.commit()
    held = _set_status(session, t, "pending_vendor")

    # Six hours later (past the old resolution deadline) the clock has been stopped since the
    # change, so nothing is breached and nothing warned.
    result = sweep(celery_app, held + 360 * MIN)
    assert result["pause_clocks_reconciled"] == 1
    assert (result["resolution_breaches"], result["warnings"]) == (0, 0)
    r = row(session, t)
    assert r.sla_paused_since == held
    assert (r.resolution_due_at, r.resolution_warn_due_at) == (None, None)
    assert totals(session) == (0, 0, 0, 0)


def test_the_ops_default_recipient_comes_from_the_environment(celery_app, session, monkeypatch):
    from db.settings import get_settings

    deadlined_ticket(session)  # no team: its breach notice goes to ops
    session.commit()
    monkeypatch.setenv("CMW_OPS_EMAIL", "night-desk@example.com")
    get_settings.cache_clear()
    try:
        assert sweep(celery_app, T0 + 61 * MIN)["response_breaches"] == 1
    finally:
        monkeypatch.delenv("CMW_OPS_EMAIL")
        get_settings.cache_clear()
    recipients = session.execute(text("SELECT recipient FROM comms.messages")).scalars().all()
    assert recipients == ["night-desk@example.com"]
