"""sla.apply on the real database, through the task base (`Task.apply`, the `cmw run` path)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.support import factories as f
from tests.support.services import ROOT

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
T0 = dt.datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # Monday 09:00 in New York
MIN = dt.timedelta(minutes=1)
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


def policy(session, **values) -> uuid.UUID:
    values = {"name": "policy", "priority": "normal", "response_minutes": 60,
              "resolution_minutes": 480, **values}  # fmt: skip
    return f.insert(session, "service.sla_policies", **values).id


def calendar(session, *, weekly=OFFICE, timezone="America/New_York", holidays=()) -> uuid.UUID:
    cal = f.insert(
        session, "service.business_calendars", name="Office", timezone=timezone,
        weekly_hours=weekly,
    ).id  # fmt: skip
    for day in holidays:
        f.insert(session, "service.business_calendar_holidays", calendar_id=cal, holiday_date=day)
    return cal


def apply(celery_app, ticket_id, as_of: dt.datetime) -> dict:
    result = celery_app.tasks["sla.apply"].apply(
        kwargs={"ticket_id": str(ticket_id), "as_of": as_of.isoformat()}
    )
    assert result.successful(), result.result
    return result.result


def ticket_row(session, ticket_id):
    session.commit()  # a fresh snapshot: the job committed in its own session
    return session.execute(
        text("SELECT * FROM service.tickets WHERE id = :id"), {"id": ticket_id}
    ).one()


def update(session, ticket_id, **values) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    session.execute(
        text(f"UPDATE service.tickets SET {sets} WHERE id = :id"), {"id": ticket_id, **values}
    )
    session.commit()


def sla_rows(session, ticket_id) -> dict[str, list]:
    session.commit()
    q = {
        "misses": "SELECT sla_kind, due_at, breached_at, sla_policy_id, priority, team_id"
        " FROM service.ticket_misses WHERE ticket_id = :id ORDER BY sla_kind",
        "events": "SELECT event_type, occurred_at, actor, data FROM service.ticket_events"
        " WHERE ticket_id = :id ORDER BY occurred_at",
        "messages": "SELECT channel, recipient, subject, related_type, related_id, dedupe_key"
        " FROM comms.messages WHERE related_id = :id ORDER BY dedupe_key",
    }
    return {k: session.execute(text(sql), {"id": ticket_id}).all() for k, sql in q.items()}


# -- policy matching -----------------------------------------------------------------------


def test_the_most_specific_active_policy_for_the_priority_wins(celery_app, session):
    neither = policy(session, priority="high", resolution_minutes=600)
    category_only = policy(session, priority="high", category="plumbing", resolution_minutes=500)
    type_only = policy(session, priority="high", ticket_type="PC", resolution_minutes=400)
    stricter_type_only = policy(session, priority="high", ticket_type="PC", resolution_minutes=350)
    both = policy(
        session, priority="high", ticket_type="PC", category="plumbing", resolution_minutes=300
    )
    # Not candidates: inactive (however specific), or for another priority.
    policy(session, priority="high", ticket_type="PC", category="plumbing", resolution_minutes=1,
           is_active=False)  # fmt: skip
    policy(session, priority="urgent", ticket_type="PC", category="plumbing", resolution_minutes=2)
    cases = {
        ("PC", "plumbing", "high"): (both, 300),
        ("PC", "hvac", "high"): (stricter_type_only, 350),
        ("RSV", "plumbing", "high"): (category_only, 500),
        ("RSV", "complaint", "high"): (neither, 600),
        ("ADM", None, "high"): (neither, 600),
        ("PC", "plumbing", "normal"): (None, 4320),  # no normal policy: the priority's defaults
    }
    ids = {
        key: f.ticket(session, ticket_type=key[0], category=key[1], priority=key[2], created_at=T0)
        for key in cases
    }
    session.commit()
    assert type_only != stricter_type_only
    for key, (expected_policy, resolution_minutes) in cases.items():
        result = apply(celery_app, ids[key], T0)
        row = ticket_row(session, ids[key])
        assert row.sla_policy_id == expected_policy, key
        assert row.resolution_due_at == T0 + resolution_minutes * MIN, key
        assert result["sla_policy_id"] == (expected_policy and str(expected_policy))


def test_without_a_policy_the_priority_defaults_apply_24x7_with_a_warning_at_80_percent(
    celery_app, session
):
    urgent = f.ticket(session, priority="urgent", created_at=T0)
    low = f.ticket(session, priority="low", created_at=T0)
    session.commit()
    apply(celery_app, urgent, T0)
    apply(celery_app, low, T0)
    u, lo = ticket_row(session, urgent), ticket_row(session, low)
    assert (u.response_due_at, u.resolution_due_at) == (T0 + 15 * MIN, T0 + 240 * MIN)
    assert u.resolution_warn_due_at == T0 + 192 * MIN
    assert (lo.response_due_at, lo.resolution_due_at) == (T0 + 1440 * MIN, T0 + 10080 * MIN)
    assert lo.resolution_warn_due_at == T0 + 8064 * MIN
    assert u.sla_policy_id is None and u.sla_paused_since is None and u.sla_paused_minutes == 0


def test_a_business_calendar_counts_only_its_hours_and_skips_holidays(celery_app, session):
    cal = calendar(session, holidays=[dt.date(2026, 5, 25)])  # Memorial Day, a Monday
    policy(session, response_minutes=120, resolution_minutes=960, calendar_id=cal,
           warn_at_pct=50)  # fmt: skip
    created = ny(2026, 5, 22, 16)  # Friday 16:00
    t = f.ticket(session, created_at=created)
    session.commit()
    apply(celery_app, t, created)
    row = ticket_row(session, t)
    assert row.response_due_at == ny(2026, 5, 26, 10)  # 1 h Friday, 1 h Tuesday
    assert row.resolution_warn_due_at == ny(2026, 5, 26, 16)  # 480 min: 1 h + 7 h
    assert row.resolution_due_at == ny(2026, 5, 27, 16)  # 960 min: 1 + 8 + 7 h


def test_a_priority_change_recomputes_the_deadlines_from_creation(celery_app, session):
    t = f.ticket(session, priority="low", created_at=T0)
    session.commit()
    apply(celery_app, t, T0)
    update(session, t, priority="urgent")
    result = apply(celery_app, t, T0 + 5 * MIN)
    row = ticket_row(session, t)
    assert result["changed"] is True
    assert (row.response_due_at, row.resolution_due_at) == (T0 + 15 * MIN, T0 + 240 * MIN)


# -- pause and resume ----------------------------------------------------------------------


def test_pause_and_resume_move_the_resolution_deadline_by_the_paused_business_time(
    celery_app, session
):
    cal = calendar(session)
    policy(session, response_minutes=60, resolution_minutes=960, calendar_id=cal)
    created = ny(2026, 6, 1, 9)  # Monday 09:00
    t = f.ticket(session, created_at=created)
    session.commit()
    apply(celery_app, t, created)
    assert ticket_row(session, t).resolution_due_at == ny(2026, 6, 2, 17)

    update(session, t, status="pending_guest", first_response_at=ny(2026, 6, 1, 9, 30))
    result = apply(celery_app, t, ny(2026, 6, 1, 12))
    row = ticket_row(session, t)
    assert result["paused"] is True
    assert row.sla_paused_since == ny(2026, 6, 1, 12)
    # While the clock is stopped there is no instant at which it runs out.
    assert row.resolution_due_at is None and row.resolution_warn_due_at is None
    assert row.response_due_at == ny(2026, 6, 1, 10)  # the response clock is not paused

    # A sweep long after the original deadline finds nothing to breach.
    sweep = celery_app.tasks["sla.check_breaches"].apply(
        kwargs={"as_of": ny(2026, 6, 3, 12).isoformat()}
    )
    assert sweep.result["resolution_breaches"] == 0

    update(session, t, status="in_progress")
    apply(celery_app, t, ny(2026, 6, 2, 12))  # Tuesday noon: paused 5 h Monday + 3 h Tuesday
    row = ticket_row(session, t)
    assert row.sla_paused_since is None and row.sla_paused_minutes == 480
    assert row.resolution_due_at == ny(2026, 6, 3, 17)  # moved by one business day
    # 80% of 960 = 768 min + 480 paused = 1248 business minutes from Monday 09:00.
    assert row.resolution_warn_due_at == ny(2026, 6, 3, 13, 48)

    # A second pause, overnight, counts only business minutes.
    update(session, t, status="on_hold")
    apply(celery_app, t, ny(2026, 6, 3, 16))  # Wednesday 16:00
    update(session, t, status="in_progress")
    apply(celery_app, t, ny(2026, 6, 4, 10))  # Thursday 10:00: 1 h + 1 h
    row = ticket_row(session, t)
    assert row.sla_paused_minutes == 600
    assert row.resolution_due_at == ny(2026, 6, 4, 11)
    assert row.resolution_breached_at is None


def test_pausing_a_ticket_after_its_deadline_passed_does_not_escape_the_breach(celery_app, session):
    t = f.ticket(session, priority="urgent", created_at=T0, first_response_at=T0 + MIN)
    session.commit()
    apply(celery_app, t, T0)
    update(session, t, status="pending_vendor")
    result = apply(celery_app, t, T0 + 300 * MIN)  # due at +240; no sweep ran in between
    assert result["resolution_breaches"] == 1
    row = ticket_row(session, t)
    assert row.resolution_breached_at == row.resolution_due_at == T0 + 240 * MIN
    assert row.sla_paused_since == T0 + 300 * MIN  # the pause is still tracked


def test_applying_twice_changes_nothing_the_second_time(celery_app, session):
    t = f.ticket(session, status="pending_vendor", created_at=T0)
    session.commit()
    first = apply(celery_app, t, T0 + MIN)
    before = ticket_row(session, t)
    second = apply(celery_app, t, T0 + 10 * MIN)  # later, still paused: the pause began earlier
    after = ticket_row(session, t)
    assert first["changed"] is True and second["changed"] is False
    assert after.sla_paused_since == T0 + MIN
    assert after.updated_at == before.updated_at  # not even rewritten


def test_a_ticket_resolved_while_paused_stops_the_clock_at_its_resolution(celery_app, session):
    t = f.ticket(session, created_at=T0)
    session.commit()
    apply(celery_app, t, T0)
    update(session, t, status="pending_guest", first_response_at=T0 + 10 * MIN)
    apply(celery_app, t, T0 + 60 * MIN)
    update(session, t, status="resolved", resolved_at=T0 + 100 * MIN)
    apply(celery_app, t, T0 + 200 * MIN)  # the worker ran late; the pause ended at resolved_at
    row = ticket_row(session, t)
    assert row.sla_paused_since is None and row.sla_paused_minutes == 40
    assert row.resolution_due_at == T0 + (4320 + 40) * MIN
    assert sla_rows(session, t)["misses"] == []


# -- late responses and resolutions ----------------------------------------------------------


def test_a_response_after_the_deadline_is_still_a_breach_recorded_once(celery_app, session):
    first_team = f.team(session)
    f.insert(session, "team.teams", code="ESC", name="Escalations", notify_email="esc@example.com")
    esc_team = session.execute(text("SELECT id FROM team.teams WHERE code = 'ESC'")).scalar_one()
    pol = policy(session, priority="normal", escalate_to_team_id=esc_team,
                 escalate_priority="high")  # fmt: skip
    t = f.ticket(session, created_at=T0, current_team_id=first_team)
    session.commit()
    apply(celery_app, t, T0)
    due = T0 + 60 * MIN
    # Answered five minutes late, before any sweep noticed: it has left the pending index.
    update(session, t, status="acknowledged", first_response_at=due + 5 * MIN)
    result = apply(celery_app, t, due + 6 * MIN)
    assert result["response_breaches"] == 1 and result["escalations"] == 1
    row = ticket_row(session, t)
    assert row.response_breached_at == due  # the deadline, not when it was noticed
    assert row.current_team_id == esc_team and row.priority == "high"
    assert row.resolution_due_at == T0 + 480 * MIN  # escalation does not recompute deadlines
    rows = sla_rows(session, t)
    assert [tuple(m) for m in rows["misses"]] == [
        ("response", due, due, pol, "normal", first_team)  # as before the escalation
    ]
    [event] = rows["events"]
    assert (event.event_type, event.occurred_at, event.actor) == ("sla_breached", due, "system")
    assert event.data["sla_kind"] == "response" and event.data["sla_policy_id"] == str(pol)
    assert event.data["priority_before"] == "normal" and event.data["priority"] == "high"
    [message] = rows["messages"]
    assert message.recipient == "esc@example.com" and message.channel == "email"
    assert (message.related_type, message.related_id) == ("ticket", t)
    assert message.dedupe_key == f"sla:response_breach:{t}"

    # Again, and after a later status change: nothing doubles, the policy and deadlines hold
    # although the escalated priority ("high") would match other terms.
    policy(session, priority="high", resolution_minutes=30)
    update(session, t, status="in_progress")
    apply(celery_app, t, due + 30 * MIN)
    again = sla_rows(session, t)
    assert {k: len(v) for k, v in again.items()} == {"misses": 1, "events": 1, "messages": 1}
    row = ticket_row(session, t)
    assert row.sla_policy_id == pol and row.resolution_due_at == T0 + 480 * MIN


def test_a_resolution_before_the_deadline_records_nothing(celery_app, session):
    t = f.ticket(session, priority="urgent", created_at=T0)
    session.commit()
    apply(celery_app, t, T0)
    update(session, t, status="resolved", first_response_at=T0 + 10 * MIN,
           resolved_at=T0 + 200 * MIN)  # fmt: skip
    result = apply(celery_app, t, T0 + 201 * MIN)
    assert result["response_breaches"] == result["resolution_breaches"] == 0
    sweep = celery_app.tasks["sla.check_breaches"].apply(
        kwargs={"as_of": (T0 + 2000 * MIN).isoformat()}
    )
    assert sweep.successful()
    row = ticket_row(session, t)
    assert row.response_breached_at is None and row.resolution_breached_at is None
    assert sla_rows(session, t) == {"misses": [], "events": [], "messages": []}


def test_a_finished_ticket_keeps_its_terms_when_policies_change_later(celery_app, session):
    t = f.ticket(session, ticket_type="RSV", created_at=T0)
    session.commit()
    apply(celery_app, t, T0)
    update(session, t, status="resolved", first_response_at=T0 + 100 * MIN,
           resolved_at=T0 + 1000 * MIN)  # fmt: skip
    apply(celery_app, t, T0 + 1001 * MIN)
    # A stricter policy appears; ops re-run sla.apply on the old ticket.
    policy(session, ticket_type="RSV", response_minutes=30, resolution_minutes=120)
    session.commit()
    result = apply(celery_app, t, T0 + 5000 * MIN)
    row = ticket_row(session, t)
    assert result["changed"] is False and row.sla_policy_id is None
    assert (row.response_due_at, row.resolution_due_at) == (T0 + 240 * MIN, T0 + 4320 * MIN)
    assert sla_rows(session, t)["misses"] == []


def test_a_late_resolution_is_recorded_but_a_finished_ticket_is_not_escalated(celery_app, session):
    esc = f.team(session)
    pol = policy(session, priority="urgent", response_minutes=15, resolution_minutes=240,
                 escalate_to_team_id=esc, escalate_priority="urgent")  # fmt: skip
    t = f.ticket(session, priority="urgent", created_at=T0)
    session.commit()
    apply(celery_app, t, T0)
    update(session, t, status="resolved", first_response_at=T0 + 5 * MIN,
           resolved_at=T0 + 300 * MIN)  # fmt: skip
    result = apply(celery_app, t, T0 + 301 * MIN)
    assert (result["response_breaches"], result["resolution_breaches"]) == (0, 1)
    assert result["escalations"] == 0
    row = ticket_row(session, t)
    assert row.resolution_breached_at == T0 + 240 * MIN and row.current_team_id is None
    [miss] = sla_rows(session, t)["misses"]
    assert (miss.sla_kind, miss.sla_policy_id, miss.breached_at) == (
        "resolution", pol, T0 + 240 * MIN
    )  # fmt: skip
    # The recipient: no team, so the ops default.
    assert [m.recipient for m in sla_rows(session, t)["messages"]] == ["ops@localhost"]


# -- bad input, concurrency ----------------------------------------------------------------


def _dead_letters(session, task_name: str):
    session.commit()
    return session.execute(
        text(
            "SELECT payload, error, error_kind, retries FROM ops.dead_letters"
            " WHERE task_name = :t ORDER BY failed_at"
        ),
        {"t": task_name},
    ).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ticket_id": "00000000-0000-7000-8000-000000000000"}, "unknown ticket_id"),
        ({"ticket_id": "not-a-uuid"}, "ticket_id"),
        ({}, "ticket_id"),
        ({"ticket_id": "00000000-0000-7000-8000-000000000000", "priority": "high"}, "priority"),
        ({"ticket_id": "00000000-0000-7000-8000-000000000000", "as_of": "2026-06-01T00:00"},
         "as_of"),
    ],
)  # fmt: skip
def test_a_bad_payload_fails_at_once_and_is_dead_lettered(celery_app, session, kwargs, message):
    result = celery_app.tasks["sla.apply"].apply(kwargs=kwargs)
    assert result.failed()
    assert message in str(result.result)
    [letter] = _dead_letters(session, "sla.apply")
    assert letter.payload == kwargs and letter.error_kind == "validation"
    assert letter.retries == 0 and message in letter.error


def test_two_applies_at_once_in_two_processes_record_a_late_response_once(celery_app, session):
    esc = f.team(session)
    policy(session, escalate_to_team_id=esc, escalate_priority="urgent")
    tickets = [f.ticket(session, created_at=T0) for _ in range(20)]
    session.commit()
    for t in tickets:
        apply(celery_app, t, T0)
    session.execute(
        text(
            "UPDATE service.tickets SET status = 'acknowledged', first_response_at = :at"
            " WHERE id = ANY(:ids)"
        ),
        {"at": T0 + 90 * MIN, "ids": tickets},
    )
    session.commit()
    script = (
        "import json, sys\n"
        "from workers.app import app\n"
        "app.loader.import_default_modules()\n"
        "out = []\n"
        "for t in sys.argv[2:]:\n"
        "    r = app.tasks['sla.apply'].apply(kwargs={'ticket_id': t, 'as_of': sys.argv[1]})\n"
        "    assert r.successful(), r.result\n"
        "    out.append(r.result['response_breaches'])\n"
        "print(json.dumps(sum(out)))\n"
    )
    args = [(T0 + 100 * MIN).isoformat(), *map(str, tickets)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(json.loads(o.strip().splitlines()[-1]) for o in outputs) == 20
    session.commit()
    counts = session.execute(
        text(
            "SELECT (SELECT count(*) FROM service.ticket_misses),"
            " (SELECT count(*) FROM service.ticket_events WHERE event_type = 'sla_breached'),"
            " (SELECT count(*) FROM comms.messages),"
            " (SELECT count(*) FROM service.tickets WHERE priority = 'urgent'"
            "  AND current_team_id = :esc)"
        ),
        {"esc": esc},
    ).one()
    assert tuple(counts) == (20, 20, 20, 20)
