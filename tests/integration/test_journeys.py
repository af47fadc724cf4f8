"""journeys.plan_stay and journeys.release_due against the real database (SPEC 7.6).

The planner and the sweep run as plain functions in their own transactions (as their tasks
run them) or through the real task base (`Task.apply`, as `cmw run` does); the concurrency
tests use two OS processes or two database sessions. Every assertion is about rows: the
scheduled and released messages, their instants and text, the door codes and the lock
commands in the outbox.

Times: stays in New York, Lisbon, Sydney and Honolulu around the 2026 daylight-saving changes
(New York 8 March / 1 November, Lisbon 29 March / 25 October, Sydney 5 April / 4 October;
Honolulu has none). Expected instants are computed with zoneinfo (tasks.recurring.rrules),
independently of the SQL that schedules them.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tasks.recurring.rrules import local_to_utc
from tests.support import factories as f
from tests.support.cli import cmw_run_at_once

UTC = dt.UTC
NY, LISBON, SYDNEY, HONOLULU = (
    "America/New_York",
    "Europe/Lisbon",
    "Australia/Sydney",
    "Pacific/Honolulu",
)
# Follow-ups go to an in-memory broker that ends with the process (see test_recurring.py).
IN_MEMORY_BROKER = {**os.environ, "CELERY_BROKER_URL": "memory://"}
BOOKED = dt.datetime(2026, 1, 10, 11, 50, tzinfo=UTC)  # ten minutes before PLAN_AS_OF


# --------------------------------------------------------------------------------------------
# Builders and readers


def template(session, code="pre_arrival", body="Hi {{ guest.first_name }}", **cols):
    values = {"code": code, "channel": "email", "subject": "About {{ property.name }}"}
    return f.insert(session, "comms.message_templates", body=body, **{**values, **cols}).id


def rule(session, template_id, *, anchor="check_in", name=None, **cols):
    return f.insert(
        session,
        "comms.message_rules",
        name=name or f"rule {uuid.uuid4().hex[:6]}",
        template_id=template_id,
        anchor=anchor,
        **cols,
    ).id


def stay(session, prop, check_in, check_out, *, guest=None, booked_at=BOOKED, **cols):
    guest = guest or f.contact(session, first_name="Ada", last_name="Lovelace")
    return f.reservation(
        session, prop, check_in, check_out, guest_contact_id=guest, booked_at=booked_at, **cols
    )


def plan(reservation_id, as_of: dt.datetime, **kwargs) -> dict:
    """The planner in its own transaction, as journeys.plan_stay runs it."""
    from db.session import session_scope
    from tasks.journeys.planning import plan_stays

    with session_scope() as s:
        return plan_stays(s, [reservation_id], as_of, **kwargs)


def release(as_of: dt.datetime, **kwargs) -> dict:
    from db.session import session_scope
    from tasks.journeys.release import release_due

    with session_scope() as s:
        return release_due(s, as_of=as_of, **kwargs)


def set_row(session, table, row_id, **cols) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    session.execute(text(f"UPDATE {table} SET {sets} WHERE id = :id"), {**cols, "id": row_id})
    session.commit()


def messages(session, reservation_id=None):
    session.commit()  # a fresh snapshot
    return session.execute(
        text(
            "SELECT m.*, r.name AS rule_name FROM comms.messages m"
            " LEFT JOIN comms.message_rules r ON r.id = m.message_rule_id"
            " WHERE m.related_type = 'reservation'"
            " AND (CAST(:s AS uuid) IS NULL OR m.related_id = CAST(:s AS uuid))"
            " ORDER BY m.scheduled_for, r.name"
        ),
        {"s": reservation_id},
    ).all()


def message_of(session, rule_id, reservation_id):
    [row] = [m for m in messages(session, reservation_id) if m.message_rule_id == rule_id]
    return row


def codes(session, reservation_id=None):
    session.commit()
    return session.execute(
        text(
            "SELECT * FROM property.access_codes"
            " WHERE CAST(:s AS uuid) IS NULL OR reservation_id = CAST(:s AS uuid)"
            " ORDER BY created_at, id"
        ),
        {"s": reservation_id},
    ).all()


def lock_commands(session, code_id=None):
    session.commit()
    return session.execute(
        text(
            "SELECT * FROM comms.messages WHERE related_type = 'access_code'"
            " AND (CAST(:c AS uuid) IS NULL OR related_id = CAST(:c AS uuid))"
            " ORDER BY created_at, dedupe_key"
        ),
        {"c": code_id},
    ).all()


def at(wall: dt.datetime, tz: str) -> dt.datetime:
    """The instant of a wall-clock time, by zoneinfo (SPEC 6.1's rule), not by our SQL."""
    return local_to_utc(wall, ZoneInfo(tz))


def count(session, sql: str, **params) -> int:
    session.commit()
    return session.execute(text(sql), params).scalar_one()


# --------------------------------------------------------------------------------------------
# Timing: the rule's local instant, in four zones, across daylight-saving changes

PLAN_AS_OF = dt.datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# (zone, check-in, check-out): the day before arrival, or the departure, next to a change.
DST_STAYS = [
    # The day before arrival is the spring-forward day; departure after it.
    (NY, dt.date(2026, 3, 9), dt.date(2026, 3, 12)),
    (LISBON, dt.date(2026, 3, 30), dt.date(2026, 4, 2)),
    # Sydney falls back on 5 April (03:00 AEDT -> 02:00 AEST).
    (SYDNEY, dt.date(2026, 4, 6), dt.date(2026, 4, 9)),
    (HONOLULU, dt.date(2026, 3, 9), dt.date(2026, 3, 12)),
    # Autumn: New York falls back on 1 November, Lisbon on 25 October, Sydney springs forward
    # on 4 October.
    (NY, dt.date(2026, 11, 2), dt.date(2026, 11, 5)),
    (LISBON, dt.date(2026, 10, 26), dt.date(2026, 10, 29)),
    (SYDNEY, dt.date(2026, 10, 5), dt.date(2026, 10, 8)),
]


def test_each_message_is_due_at_its_local_wall_clock_time_across_daylight_saving(session):
    body = "Hello {{ guest.first_name }}, {{ property.name }} on {{ stay.check_in }}"
    pre = rule(
        session,
        template(session, "pre", body),
        anchor="check_in",
        local_time=dt.time(10, 0),
        offset_minutes=-24 * 60,  # 10:00 the day before: a wall-clock day, DST or not
    )
    # No local_time: the property's own check-in time (16:00 by default) plus 2 hours.
    welcome = rule(session, template(session, "welcome", "Welcome"), offset_minutes=120)
    checkout = rule(
        session,
        template(session, "checkout", "Checkout at 11"),
        anchor="check_out",
        local_time=dt.time(7, 30),
    )
    booking = rule(session, template(session, "confirm", "Confirmed"), anchor="booked")
    stays = []
    for n, (tz, check_in, check_out) in enumerate(DST_STAYS):
        prop = f.property_(session, name=f"Harbour View {n}", timezone=tz)
        stays.append((stay(session, prop, check_in, check_out), n, tz, check_in, check_out))
    session.commit()

    for s, _, tz, check_in, check_out in stays:
        result = plan(s, PLAN_AS_OF)

        assert (result["created"], result["created_late"], result["skipped_late"]) == (4, 0, 0)
        day_before = dt.datetime.combine(check_in - dt.timedelta(days=1), dt.time(10, 0))
        assert message_of(session, pre, s).scheduled_for == at(day_before, tz)
        assert message_of(session, welcome, s).scheduled_for == at(
            dt.datetime.combine(check_in, dt.time(18, 0)), tz
        )
        assert message_of(session, checkout, s).scheduled_for == at(
            dt.datetime.combine(check_out, dt.time(7, 30)), tz
        )
        assert message_of(session, booking, s).scheduled_for == BOOKED
        m = message_of(session, pre, s)
        assert (m.status, m.channel, m.body) == ("scheduled", "email", "")
        assert m.dedupe_key == f"journey:{pre}:{s}" and m.recipient == ""

    assert release(PLAN_AS_OF)["released"] == len(stays)  # the confirmations

    def pre_arrival_at(entry):
        tz, check_in = entry[2], entry[3]
        return at(dt.datetime.combine(check_in - dt.timedelta(days=1), dt.time(10, 0)), tz)

    for s, n, tz, check_in, _ in sorted(stays, key=pre_arrival_at):
        # Released at that instant, not a minute before, rendered then.
        due = pre_arrival_at((s, n, tz, check_in))
        release(due - dt.timedelta(minutes=1))
        assert message_of(session, pre, s).status == "scheduled", tz
        release(due)
        m = message_of(session, pre, s)
        assert m.status == "queued"
        assert m.body == f"Hello Ada, Harbour View {n} on {check_in.isoformat()}"
        assert m.subject == f"About Harbour View {n}"


def test_a_time_in_the_spring_gap_moves_forward_and_a_repeated_one_takes_the_first(session):
    prop = f.property_(session, timezone=NY)
    gap = rule(session, template(session, "gap", "x"), local_time=dt.time(2, 30))
    repeated = rule(
        session, template(session, "rep", "y"), anchor="check_out", local_time=dt.time(1, 30)
    )
    s = stay(session, prop, dt.date(2026, 3, 8), dt.date(2026, 11, 1))
    session.commit()
    plan(s, PLAN_AS_OF)
    # 02:30 does not exist on 8 March in New York: 03:30 EDT, i.e. 07:30 UTC.
    assert message_of(session, gap, s).scheduled_for == dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # 01:30 happens twice on 1 November: the first, in EDT (05:30 UTC), not 06:30.
    assert message_of(session, repeated, s).scheduled_for == dt.datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )


# --------------------------------------------------------------------------------------------
# Quiet hours


def test_a_message_due_inside_quiet_hours_waits_until_they_end(session):
    prop = f.property_(session, timezone=LISBON)
    # 23:30 on check-in day, quiet 22:00-08:00 (wrapping midnight): released at 08:00 the
    # next morning, local; Lisbon changes to summer time that night (29 March 01:00 UTC).
    night = rule(
        session,
        template(session, "night", "Sleep well"),
        local_time=dt.time(23, 30),
        quiet_start=dt.time(22, 0),
        quiet_end=dt.time(8, 0),
    )
    # 12:30 with quiet 12:00-14:00 (not wrapping): released at 14:00.
    lunch = rule(
        session,
        template(session, "lunch", "Lunch"),
        anchor="check_out",
        local_time=dt.time(12, 30),
        quiet_start=dt.time(12, 0),
        quiet_end=dt.time(14, 0),
    )
    # 21:00 with the same night window: outside it, released at its own time.
    evening = rule(
        session,
        template(session, "evening", "Evening"),
        local_time=dt.time(21, 0),
        quiet_start=dt.time(22, 0),
        quiet_end=dt.time(8, 0),
    )
    s = stay(session, prop, dt.date(2026, 3, 28), dt.date(2026, 3, 31))
    session.commit()
    plan(s, PLAN_AS_OF)

    morning = at(dt.datetime(2026, 3, 29, 8, 0), LISBON)
    assert morning == dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # WEST by then
    assert message_of(session, night, s).scheduled_for == morning
    assert message_of(session, lunch, s).scheduled_for == at(
        dt.datetime(2026, 3, 31, 14, 0), LISBON
    )
    assert message_of(session, evening, s).scheduled_for == at(
        dt.datetime(2026, 3, 28, 21, 0), LISBON
    )
    assert release(at(dt.datetime(2026, 3, 28, 21, 0), LISBON))["released"] == 1
    assert message_of(session, evening, s).status == "queued"
    # At 23:30, when the rule said, nothing goes: the guest is asleep.
    assert release(at(dt.datetime(2026, 3, 28, 23, 30), LISBON))["released"] == 0
    assert message_of(session, night, s).status == "scheduled"
    assert release(morning)["released"] == 1
    assert message_of(session, night, s).status == "queued"


def test_a_sweep_that_catches_up_inside_quiet_hours_holds_the_message_until_they_end(session):
    prop = f.property_(session, timezone=NY)
    r = rule(
        session,
        template(session, "evening", "Evening"),
        local_time=dt.time(21, 0),
        quiet_start=dt.time(22, 0),
        quiet_end=dt.time(8, 0),
    )
    s = stay(session, prop, dt.date(2026, 6, 1), dt.date(2026, 6, 3))
    session.commit()
    plan(s, PLAN_AS_OF)
    # The 21:00 sweep never ran (an outage); the next one, at 23:00, is inside quiet hours.
    result = release(at(dt.datetime(2026, 6, 1, 23, 0), NY))
    assert (result["released"], result["deferred"]) == (0, 1)
    m = message_of(session, r, s)
    assert (m.status, m.scheduled_for) == ("scheduled", at(dt.datetime(2026, 6, 2, 8, 0), NY))


def test_quiet_hours_added_after_planning_defer_the_release(session):
    prop = f.property_(session, timezone=HONOLULU)
    tpl = template(session, "late_note", "Note")
    r = rule(session, tpl, local_time=dt.time(23, 0))
    s = stay(session, prop, dt.date(2026, 5, 1), dt.date(2026, 5, 3))
    session.commit()
    plan(s, PLAN_AS_OF)
    due = at(dt.datetime(2026, 5, 1, 23, 0), HONOLULU)
    assert message_of(session, r, s).scheduled_for == due
    # An operator adds quiet hours afterwards; the stay is not planned again.
    set_row(session, "comms.message_rules", r, quiet_start=dt.time(22, 0), quiet_end=dt.time(7, 0))

    result = release(due)

    assert (result["released"], result["deferred"]) == (0, 1)
    m = message_of(session, r, s)
    assert (m.status, m.scheduled_for) == ("scheduled", at(dt.datetime(2026, 5, 2, 7, 0), HONOLULU))
    assert release(m.scheduled_for)["released"] == 1


# --------------------------------------------------------------------------------------------
# Conditions


def test_conditions_choose_the_stays_a_rule_applies_to(session):
    prop = f.property_(session, timezone=NY)
    tpl = template(session)
    everyone = rule(session, tpl, name="everyone")
    airbnb_only = rule(session, tpl, name="airbnb", channels=["airbnb"])
    owners_too = rule(session, tpl, name="owners", reservation_types=["guest", "owner_stay"])
    long_stays = rule(session, tpl, name="long", min_nights=7)
    short_stays = rule(session, tpl, name="short", max_nights=3)
    direct_3 = stay(session, prop, dt.date(2026, 6, 1), dt.date(2026, 6, 4), source="direct")
    airbnb_7 = stay(session, prop, dt.date(2026, 6, 10), dt.date(2026, 6, 17), source="airbnb")
    owner_5 = stay(
        session,
        prop,
        dt.date(2026, 6, 20),
        dt.date(2026, 6, 25),
        source="owner",
        reservation_type="owner_stay",
    )
    block = stay(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 3), reservation_type="block")
    inquiry = stay(session, prop, dt.date(2026, 7, 5), dt.date(2026, 7, 8), status="inquiry")
    session.commit()
    for s in (direct_3, airbnb_7, owner_5, block, inquiry):
        plan(s, PLAN_AS_OF)

    def rules_of(s):
        return sorted(m.rule_name for m in messages(session, s))

    assert rules_of(direct_3) == ["everyone", "owners", "short"]
    assert rules_of(airbnb_7) == ["airbnb", "everyone", "long", "owners"]
    assert rules_of(owner_5) == ["owners"]
    assert rules_of(block) == [] and rules_of(inquiry) == []
    assert {everyone, airbnb_only, owners_too, long_stays, short_stays}  # all used above

    # The stay is shortened to 2 nights: the long-stay message goes, a short-stay one comes.
    set_row(session, "reservations.reservations", airbnb_7, check_out=dt.date(2026, 6, 12))
    result = plan(airbnb_7, PLAN_AS_OF)
    assert (result["created"], result["cancelled"], result["moved"]) == (1, 1, 0)
    long_message = message_of(session, long_stays, airbnb_7)
    assert (long_message.status, long_message.status_reason) == ("cancelled", "no_longer_applies")
    assert message_of(session, short_stays, airbnb_7).status == "scheduled"


# --------------------------------------------------------------------------------------------
# Last-minute bookings


@pytest.mark.parametrize("policy", ["send_now", "skip"])
def test_a_stay_booked_after_a_message_time_gets_it_at_once_or_never(session, policy):
    prop = f.property_(session, timezone=SYDNEY)
    three_days_before = rule(
        session,
        template(session, "pre", "Code {{ door_code }}"),
        local_time=dt.time(10, 0),
        offset_minutes=-3 * 24 * 60,
        late_policy=policy,
        quiet_start=dt.time(21, 0),
        quiet_end=dt.time(8, 0),
    )
    departure = rule(session, template(session, "bye", "Bye"), anchor="check_out")
    # Booked at 22:00 Sydney time the evening before arrival (inside the quiet hours).
    booked = at(dt.datetime(2026, 4, 9, 22, 0), SYDNEY)
    s = stay(session, prop, dt.date(2026, 4, 10), dt.date(2026, 4, 12), booked_at=booked)
    session.commit()

    result = plan(s, booked + dt.timedelta(minutes=2))

    assert message_of(session, departure, s).status == "scheduled"  # on time: untouched
    if policy == "send_now":
        assert (result["created"], result["created_late"], result["skipped_late"]) == (1, 1, 0)
        m = message_of(session, three_days_before, s)
        # At once, but not at night: 08:00 the next morning, local.
        assert m.scheduled_for == at(dt.datetime(2026, 4, 10, 8, 0), SYDNEY)
        assert m.status_reason == "late_send_now"
        assert release(m.scheduled_for)["released"] == 1
        m = message_of(session, three_days_before, s)
        [code] = codes(session, s)
        assert (m.status, m.body) == ("queued", f"Code {code.code}")
        assert m.status_reason == "late_send_now"  # still says it went late
    else:
        assert (result["created"], result["created_late"], result["skipped_late"]) == (1, 0, 1)
        assert [m.message_rule_id for m in messages(session, s)] == [departure]
        # Planned again later: still never.
        assert plan(s, booked + dt.timedelta(hours=1))["skipped_late"] == 1
        assert len(messages(session, s)) == 1


def test_a_booking_message_is_never_late_for_its_own_booking(session):
    prop = f.property_(session, timezone=NY)
    confirm = rule(session, template(session), anchor="booked", late_policy="skip")
    # Booked in the repeated hour of 1 November (the second 01:10, EST).
    booked = dt.datetime(2026, 11, 1, 6, 10, tzinfo=UTC)
    s = stay(session, prop, dt.date(2026, 11, 20), dt.date(2026, 11, 22), booked_at=booked)
    session.commit()
    assert plan(s, booked + dt.timedelta(seconds=30))["created"] == 1
    assert message_of(session, confirm, s).scheduled_for == booked


# --------------------------------------------------------------------------------------------
# Moved and cancelled stays; door codes


def journey(session, tz=NY):
    """A property, a pre-arrival message with the door code, a checkout message."""
    prop = f.property_(session, name="Cedar Cabin", timezone=tz)
    pre = rule(
        session,
        template(session, "pre", "Your code is {{ door_code }} from {{ stay.check_in_time }}"),
        local_time=dt.time(10, 0),
        offset_minutes=-24 * 60,
    )
    bye = rule(
        session, template(session, "bye", "Leave by {{ stay.check_out_time }}"), anchor="check_out"
    )
    return prop, pre, bye


def test_a_moved_stay_moves_its_unsent_messages_and_its_door_code(session):
    prop, pre, bye = journey(session)
    confirm = rule(session, template(session, "confirm", "Booked"), anchor="booked")
    s = stay(session, prop, dt.date(2026, 7, 10), dt.date(2026, 7, 14))
    session.commit()
    plan(s, PLAN_AS_OF)
    release(PLAN_AS_OF)  # the confirmation goes
    assert message_of(session, confirm, s).status == "queued"
    [code] = codes(session, s)
    # Window: 16:00 EDT check-in less an hour, 11:00 EDT check-out plus an hour.
    assert (code.valid_from, code.valid_until) == (
        at(dt.datetime(2026, 7, 10, 15, 0), NY),
        at(dt.datetime(2026, 7, 14, 12, 0), NY),
    )
    assert (code.status, code.version) == ("scheduled", 1)
    assert len(code.code) == 6 and code.code.isdigit()

    set_row(
        session,
        "reservations.reservations",
        s,
        check_in=dt.date(2026, 7, 12),
        check_out=dt.date(2026, 7, 13),
    )
    result = plan(s, PLAN_AS_OF)

    assert (result["moved"], result["created"], result["cancelled"]) == (2, 0, 0)
    assert message_of(session, pre, s).scheduled_for == at(dt.datetime(2026, 7, 11, 10, 0), NY)
    assert message_of(session, bye, s).scheduled_for == at(dt.datetime(2026, 7, 13, 11, 0), NY)
    # The queued confirmation is never moved.
    assert message_of(session, confirm, s).status == "queued"
    [moved] = codes(session, s)
    assert (moved.id, moved.code, moved.version) == (code.id, code.code, 2)
    assert (moved.valid_from, moved.valid_until) == (
        at(dt.datetime(2026, 7, 12, 15, 0), NY),
        at(dt.datetime(2026, 7, 13, 12, 0), NY),
    )
    # One `set` command per version, the latest with the new window.
    commands = lock_commands(session, code.id)
    assert [c.dedupe_key for c in commands] == [f"lock:{code.id}:v1", f"lock:{code.id}:v2"]
    import json

    latest = json.loads(commands[-1].body)
    assert latest["command"] == "set" and latest["code"] == code.code
    assert dt.datetime.fromisoformat(latest["valid_until"]) == moved.valid_until
    assert all(
        (c.channel, c.status, c.related_type, c.recipient)
        == ("webhook", "queued", "access_code", "http://lock-service/commands")
        for c in commands
    )
    # The pre-arrival message carries the code when it goes.
    release(at(dt.datetime(2026, 7, 11, 10, 0), NY))
    assert message_of(session, pre, s).body == f"Your code is {code.code} from 16:00"


def test_a_cancelled_stay_cancels_its_unsent_messages_and_revokes_its_code(session):
    prop, pre, bye = journey(session)
    confirm = rule(session, template(session, "confirm", "Booked"), anchor="booked")
    s = stay(session, prop, dt.date(2026, 7, 10), dt.date(2026, 7, 14))
    session.commit()
    plan(s, PLAN_AS_OF)
    release(PLAN_AS_OF)
    [code] = codes(session, s)
    set_row(session, "reservations.reservations", s, status="cancelled", cancelled_at=PLAN_AS_OF)

    result = plan(s, PLAN_AS_OF)

    assert (result["cancelled"], result["codes_revoked"]) == (2, 1)
    for r in (pre, bye):
        m = message_of(session, r, s)
        assert (m.status, m.status_reason) == ("cancelled", "stay_cancelled")
    assert message_of(session, confirm, s).status == "queued"  # already queued: left alone
    [revoked] = codes(session, s)
    assert (revoked.status, revoked.revoked_at) == ("revoked", PLAN_AS_OF)
    assert [c.dedupe_key for c in lock_commands(session, code.id)] == [
        f"lock:{code.id}:v1",
        f"lock:{code.id}:revoke",
    ]
    # Nothing goes out for the cancelled stay, even when its time comes.
    assert release(at(dt.datetime(2026, 7, 14, 11, 0), NY))["released"] == 0
    # Planned again: nothing more.
    again = plan(s, PLAN_AS_OF)
    assert (again["cancelled"], again["codes_revoked"], again["lock_commands"]) == (0, 0, 0)

    # Confirmed again: the messages come back, with a new code.
    set_row(session, "reservations.reservations", s, status="confirmed", cancelled_at=None)
    back = plan(s, PLAN_AS_OF)
    assert (back["revived"], back["codes_created"]) == (2, 1)
    assert {message_of(session, r, s).status for r in (pre, bye)} == {"scheduled"}
    assert [c.status for c in codes(session, s)] == ["revoked", "scheduled"]


def test_a_stay_cancelled_without_a_plan_is_caught_by_the_release(session):
    prop, pre, _ = journey(session)
    s = stay(session, prop, dt.date(2026, 7, 10), dt.date(2026, 7, 14))
    session.commit()
    plan(s, PLAN_AS_OF)
    # Another service cancels the stay and enqueues nothing.
    set_row(session, "reservations.reservations", s, status="cancelled")
    result = release(at(dt.datetime(2026, 7, 9, 10, 0), NY))
    assert (result["released"], result["cancelled"]) == (0, 1)
    m = message_of(session, pre, s)
    assert (m.status, m.status_reason) == ("cancelled", "stay_cancelled")


def test_door_codes_open_and_expire_with_their_window(session):
    prop, _, _ = journey(session, tz=HONOLULU)
    s = stay(session, prop, dt.date(2026, 8, 1), dt.date(2026, 8, 3))
    session.commit()
    plan(s, PLAN_AS_OF)
    [code] = codes(session, s)
    assert release(code.valid_from - dt.timedelta(minutes=1))["codes_activated"] == 0
    assert release(code.valid_from)["codes_activated"] == 1
    assert codes(session, s)[0].status == "active"
    assert release(code.valid_until)["codes_expired"] == 1
    assert codes(session, s)[0].status == "expired"
    # An expired code is not drawn again, nor moved for an old stay planned again.
    assert plan(s, code.valid_until + dt.timedelta(days=1))["codes_created"] == 0
    assert len(codes(session, s)) == 1


def test_codes_are_only_for_live_guest_stays_at_active_properties(session):
    prop, _, _ = journey(session)
    inactive = f.property_(session, timezone=NY, status="inactive")
    owner = stay(
        session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4), reservation_type="owner_stay"
    )
    inquiry = stay(session, prop, dt.date(2026, 7, 5), dt.date(2026, 7, 8), status="inquiry")
    elsewhere = stay(session, inactive, dt.date(2026, 7, 5), dt.date(2026, 7, 8))
    over = stay(session, prop, dt.date(2025, 12, 1), dt.date(2025, 12, 4))
    session.commit()
    for s in (owner, inquiry, elsewhere, over):
        plan(s, PLAN_AS_OF)
    assert codes(session) == []


def test_door_codes_are_unique_among_a_propertys_overlapping_windows(session):
    prop = f.property_(session, timezone=NY)
    other = f.property_(session, timezone=NY)
    base = dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

    def add(p, code, start_day, end_day, status="scheduled"):
        session.execute(
            text(
                "INSERT INTO property.access_codes (property_id, code, valid_from, valid_until,"
                " status) VALUES (:p, :c, :f, :u, :s)"
            ),
            {
                "p": p,
                "c": code,
                "f": base + dt.timedelta(days=start_day),
                "u": base + dt.timedelta(days=end_day),
                "s": status,
            },
        )

    add(prop, "123456", 0, 4)
    add(prop, "123456", 4, 6)  # back to back: no overlap
    add(other, "123456", 1, 3)  # another property
    add(prop, "123456", 1, 3, status="revoked")  # a revoked code blocks nothing
    add(prop, "654321", 1, 3)
    session.commit()
    with pytest.raises(Exception, match="access_codes_no_overlap"):
        add(prop, "123456", 3, 5)
    session.rollback()


def test_the_planner_draws_again_until_the_code_is_free_and_says_when_none_is(session):
    prop = f.property_(session, timezone=NY)
    window = (dt.datetime(2026, 6, 1, tzinfo=UTC), dt.datetime(2026, 9, 1, tzinfo=UTC))
    # Half of the four-digit codes are taken for the whole summer.
    session.execute(
        text(
            "INSERT INTO property.access_codes (property_id, code, valid_from, valid_until)"
            " SELECT :p, lpad(CAST(n AS text), 4, '0'), :f, :u"
            " FROM generate_series(0, 9999, 2) AS n"
        ),
        {"p": prop, "f": window[0], "u": window[1]},
    )
    stays = [stay(session, prop, dt.date(2026, 7, 1 + k), dt.date(2026, 7, 20)) for k in range(12)]
    session.commit()
    from db.session import session_scope
    from tasks.journeys.planning import plan_stays

    with session_scope() as s:
        result = plan_stays(s, stays, PLAN_AS_OF, code_digits=4, code_rounds=40)
    assert (result["codes_created"], result["codes_unassigned"]) == (12, 0)
    drawn = [c.code for c in codes(session) if c.reservation_id is not None]
    assert len(set(drawn)) == 12 and all(int(c) % 2 == 1 for c in drawn)

    # Every code taken: the stay gets none, and the result says so (no error, no loop).
    session.execute(
        text(
            "INSERT INTO property.access_codes (property_id, code, valid_from, valid_until)"
            " SELECT :p, lpad(CAST(n AS text), 4, '0'), :f, :u"
            " FROM generate_series(1, 9999, 2) AS n"
            " WHERE lpad(CAST(n AS text), 4, '0') <> ALL(CAST(:drawn AS text[]))"
        ),
        {"p": prop, "f": window[0], "u": window[1], "drawn": drawn},
    )
    late = stay(session, prop, dt.date(2026, 8, 1), dt.date(2026, 8, 5))
    session.commit()
    with session_scope() as s:
        result = plan_stays(s, [late], PLAN_AS_OF, code_digits=4, code_rounds=3)
    assert (result["codes_created"], result["codes_unassigned"]) == (0, 1)


# --------------------------------------------------------------------------------------------
# A broken template


def test_a_template_that_fails_fails_its_message_visibly_and_only_that_one(celery_app, session):
    prop = f.property_(session, name="Palm Villa", timezone=HONOLULU)
    good = rule(session, template(session, "good", "Aloha {{ guest.first_name }}"), name="good")
    undefined = rule(session, template(session, "undef", "Code {{ door_kode }}"), name="undefined")
    syntax = rule(session, template(session, "syntax", "Hi {{ guest.first_name "), name="syntax")
    escape = rule(
        session,
        template(session, "escape", "{{ guest.__class__.__mro__ }}"),
        name="escape",
    )
    s = stay(session, prop, dt.date(2026, 5, 1), dt.date(2026, 5, 3))
    session.commit()
    plan(s, PLAN_AS_OF)

    run = celery_app.tasks["journeys.release_due"].apply(
        kwargs={"as_of": at(dt.datetime(2026, 5, 1, 16, 0), HONOLULU).isoformat()}
    )

    assert run.successful(), run.result
    assert (run.result["released"], run.result["failed"]) == (1, 3)
    assert message_of(session, good, s).body == "Aloha Ada"
    for r, words in (
        (undefined, "'door_kode' is undefined"),
        (syntax, "TemplateSyntaxError"),
        (escape, "SecurityError"),
    ):
        m = message_of(session, r, s)
        assert (m.status, m.status_reason) == ("failed", "render_failed")
        assert words in m.error and m.error.startswith("template ")
    [job] = session.execute(
        text("SELECT status FROM ops.job_runs WHERE task_name = 'journeys.release_due'")
    ).all()
    assert job.status == "succeeded"


def test_a_guest_without_an_address_fails_the_message(session):
    prop = f.property_(session, timezone=NY)
    r = rule(session, template(session, "sms", "Hi", channel="sms", subject=None))
    guest = f.insert(session, "directory.contacts", first_name="No", last_name="Phone").id
    s = stay(session, prop, dt.date(2026, 5, 1), dt.date(2026, 5, 3), guest=guest)
    session.commit()
    plan(s, PLAN_AS_OF)
    assert release(at(dt.datetime(2026, 5, 1, 16, 0), NY))["failed"] == 1
    m = message_of(session, r, s)
    assert (m.status, m.status_reason, m.channel) == ("failed", "no_recipient", "sms")


# --------------------------------------------------------------------------------------------
# Never twice


def _snapshot(session):
    session.commit()
    return (
        session.execute(
            text(
                "SELECT id, status, scheduled_for, body, status_reason FROM comms.messages"
                " ORDER BY id"
            )
        ).all(),
        session.execute(
            text("SELECT id, code, valid_from, valid_until, status, version"
                 " FROM property.access_codes ORDER BY id")
        ).all(),
    )  # fmt: skip


def test_planning_and_releasing_twice_leaves_the_same_rows(session):
    prop, _, _ = journey(session)
    stays = [
        stay(session, prop, dt.date(2026, 7, 1 + 3 * k), dt.date(2026, 7, 3 + 3 * k))
        for k in range(3)
    ]
    session.commit()
    for s in stays:
        plan(s, PLAN_AS_OF)
    first = _snapshot(session)
    for s in stays:
        again = plan(s, PLAN_AS_OF)
        assert sum(again[k] for k in ("created", "moved", "cancelled", "codes_created")) == 0
    assert _snapshot(session) == first
    when = at(dt.datetime(2026, 7, 3, 11, 0), NY)
    assert release(when)["released"] == 3  # two pre-arrivals and a checkout
    released = _snapshot(session)
    assert release(when) == dict.fromkeys(release(when), 0)
    assert _snapshot(session) == released


def test_plan_and_release_twice_at_once_from_two_processes_send_each_message_once(session):
    prop, pre, bye = journey(session)
    s = stay(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 3))
    session.commit()
    plans = cmw_run_at_once(
        "journeys.plan_stay",
        {"reservation_id": str(s), "as_of": PLAN_AS_OF.isoformat()},
        env=IN_MEMORY_BROKER,
    )
    assert sorted(r["created"] for r in plans) == [0, 2]
    assert sorted(r["codes_created"] for r in plans) == [0, 1]
    assert len(messages(session, s)) == 2 and len(codes(session, s)) == 1
    assert len(lock_commands(session)) == 1

    when = at(dt.datetime(2026, 7, 3, 11, 0), NY)
    releases = cmw_run_at_once(
        "journeys.release_due", {"as_of": when.isoformat()}, env=IN_MEMORY_BROKER
    )
    assert sum(r.get("released", 0) for r in releases) == 2
    assert {m.status for m in messages(session, s)} == {"queued"}
    statuses = sorted(
        session.execute(
            text("SELECT status FROM ops.job_runs WHERE task_name = 'journeys.release_due'")
        ).scalars()
    )
    assert statuses in (["skipped", "succeeded"], ["succeeded", "succeeded"])


def test_two_sweeps_at_once_without_the_singleton_lock_release_each_message_once(session):
    """The statements themselves are safe: SKIP LOCKED claims, writes only what is scheduled."""
    prop = f.property_(session, timezone=LISBON)
    tpl = template(session, "many", "Hi {{ stay.confirmation_code }}")
    rule(session, tpl)
    stays = [stay(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 3)) for _ in range(60)]
    session.commit()
    from db.session import session_scope
    from tasks.journeys.planning import plan_stays
    from tasks.journeys.release import release_due

    with session_scope() as s:
        assert plan_stays(s, stays, PLAN_AS_OF)["created"] == 60
    when = at(dt.datetime(2026, 7, 1, 16, 0), LISBON)
    results: list[dict] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        with session_scope() as s:
            barrier.wait()
            results.append(release_due(s, as_of=when, batch=7))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r["released"] for r in results) == 60
    queued = "SELECT count(*) FROM comms.messages WHERE status = 'queued' AND related_type = :t"
    assert count(session, queued, t="reservation") == 60


# --------------------------------------------------------------------------------------------
# Bad input, the bulk path


@pytest.mark.parametrize(
    ("task", "payload", "message"),
    [
        (
            "journeys.plan_stay",
            {"reservation_id": "00000000-0000-7000-8000-000000000000"},
            "unknown reservation_id",
        ),
        ("journeys.plan_stay", {"reservation_id": 42}, "reservation_id"),
        ("journeys.plan_stay", {}, "reservation_id"),
        ("journeys.release_due", {"as_of": "2026-07-01T10:00:00"}, "as_of"),
        (
            "journeys.plan_stays",
            {"check_in_from": "2026-01-01", "check_in_to": "2028-01-01"},
            "366 days",
        ),
    ],
)
def test_a_bad_payload_is_dead_lettered_without_retries(
    celery_app, session, task, payload, message
):
    result = celery_app.tasks[task].apply(kwargs=payload)
    assert result.failed() and message in str(result.result)
    [dead] = session.execute(
        text(
            "SELECT payload, error, error_kind, retries FROM ops.dead_letters WHERE task_name = :t"
        ),
        {"t": task},
    ).all()
    assert (dead.payload, dead.error_kind, dead.retries) == (payload, "validation", 0)
    assert message in dead.error


def test_the_bulk_plan_plans_every_arrival_in_its_range(celery_app, session):
    prop, pre, bye = journey(session)
    other = f.property_(session, timezone=SYDNEY)
    inside = [
        stay(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 3)),
        stay(session, other, dt.date(2026, 7, 31), dt.date(2026, 8, 2)),
    ]
    outside = stay(session, prop, dt.date(2026, 8, 1), dt.date(2026, 8, 3))
    session.commit()
    run = celery_app.tasks["journeys.plan_stays"].apply(
        kwargs={
            "check_in_from": "2026-07-01",
            "check_in_to": "2026-08-01",
            "as_of": PLAN_AS_OF.isoformat(),
        }
    )
    assert run.successful(), run.result
    assert (run.result["stays"], run.result["created"], run.result["codes_created"]) == (2, 4, 2)
    assert {m.related_id for m in messages(session)} == set(inside)
    assert messages(session, outside) == []


def test_after_an_outage_a_skip_message_is_dropped_and_a_send_now_one_goes(session):
    prop = f.property_(session, timezone=LISBON)
    skip = rule(session, template(session, "welcome", "W"), late_policy="skip", name="skip")
    send = rule(session, template(session, "code", "C"), late_policy="send_now", name="send")
    s = stay(session, prop, dt.date(2026, 6, 1), dt.date(2026, 6, 3))
    session.commit()
    plan(s, PLAN_AS_OF)
    due = at(dt.datetime(2026, 6, 1, 16, 0), LISBON)
    # No sweep ran for two hours after the messages' time.
    result = release(due + dt.timedelta(hours=2))
    assert (result["released"], result["cancelled"]) == (1, 1)
    assert message_of(session, send, s).status == "queued"
    m = message_of(session, skip, s)
    assert (m.status, m.status_reason) == ("cancelled", "late_skipped")


def test_a_stay_at_a_property_with_an_unknown_zone_is_left_alone_and_counted(session):
    good = f.property_(session, timezone=NY)
    bad = f.property_(session, timezone="Mars/Olympus_Mons")
    rule(session, template(session))
    stays = [
        stay(session, good, dt.date(2026, 7, 1), dt.date(2026, 7, 3)),
        stay(session, bad, dt.date(2026, 7, 1), dt.date(2026, 7, 3)),
    ]
    session.commit()
    from db.session import session_scope
    from tasks.journeys.planning import plan_stays

    with session_scope() as s:
        result = plan_stays(s, stays, PLAN_AS_OF)
    assert (result["created"], result["codes_created"], result["invalid_zone_stays"]) == (1, 1, 1)
    assert messages(session, stays[1]) == [] and codes(session, stays[1]) == []
