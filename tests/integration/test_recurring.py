"""recurring.generate and recurring.sync_reservation against the real database (SPEC 6.1).

The jobs run in this process through the real task base (`Task.apply`, as `cmw run` does);
the concurrency tests use two OS processes or two database sessions. Every assertion is about
rows: tickets, their ticket_recurring links, their events and the outbox.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.support import factories as f
from tests.support.cli import cmw_run_at_once

UTC = dt.UTC
NY = ZoneInfo("America/New_York")


# --------------------------------------------------------------------------------------------
# Builders and readers


def calendar_rule(
    session,
    *,
    properties=(),
    resorts=(),
    rrule: str = "FREQ=DAILY",
    dtstart: dt.datetime = dt.datetime(2026, 6, 10, 9, 0),
    **cols,
) -> uuid.UUID:
    values = {
        "name": "Daily check",
        "ticket_type": "PC",
        "title_template": "Check {property_name} on {date}",
        "trigger_type": "calendar",
        "rrule": rrule,
        "dtstart": dtstart,
        "lead_minutes": 0,
        "scope_type": "property",
        **cols,
    }
    rule_id = f.insert(session, "service.recurring_rules", **values).id
    add_targets(session, rule_id, properties=properties, resorts=resorts)
    return rule_id


def reservation_rule(session, *, properties=(), resorts=(), anchor="check_out", **cols):
    values = {
        "name": "Departure clean",
        "ticket_type": "PC",
        "category": "cleaning",
        "title_template": "Departure clean {property_name} {date} ({reservation_code})",
        "trigger_type": "reservation",
        "anchor": anchor,
        "local_time": dt.time(11, 0),
        "scope_type": "property",
        **cols,
    }
    rule_id = f.insert(session, "service.recurring_rules", **values).id
    add_targets(session, rule_id, properties=properties, resorts=resorts)
    return rule_id


def add_targets(session, rule_id, *, properties=(), resorts=()) -> None:
    for pid in properties:
        f.insert(
            session, "service.recurring_rule_targets", recurring_rule_id=rule_id, property_id=pid
        )
    for rid in resorts:
        f.insert(
            session, "service.recurring_rule_targets", recurring_rule_id=rule_id, resort_id=rid
        )


def generate(celery_app, as_of: dt.datetime, **payload) -> dict:
    result = celery_app.tasks["recurring.generate"].apply(
        kwargs={"as_of": as_of.isoformat(), **{k: str(v) for k, v in payload.items()}}
    )
    assert result.successful(), result.result
    return result.result


def sync(celery_app, reservation_id, as_of: dt.datetime) -> dict:
    """The sync's work in its own transaction, as the task runs it, minus the follow-ups.

    Through the plain function rather than `Task.apply`: the task enqueues `sla.apply` on the
    suite's broker after its commit, where the suite's shared worker (started by the e2e tests)
    would run it during later tests. The task path is covered by
    test_the_task_enqueues_sla_apply_for_what_it_changed, the dead-letter tests, the
    two-process test and the end-to-end tests.
    """
    from db.session import session_scope
    from tasks.recurring.reservation_rules import sync_reservation

    with session_scope() as s:
        return sync_reservation(s, reservation_id=reservation_id, as_of=as_of).summary


def tickets(session, **where):
    sql = (
        "SELECT t.*, p.timezone FROM service.tickets t"
        " LEFT JOIN property.properties p ON p.id = t.property_id WHERE t.source = 'recurring'"
    )
    for col in where:
        sql += f" AND t.{col} = :{col}"
    return session.execute(text(sql + " ORDER BY t.due_at, p.name"), where).all()


def links(session):
    return session.execute(
        text(
            "SELECT l.*, p.name AS property_name FROM service.ticket_recurring l"
            " JOIN property.properties p ON p.id = l.property_id"
            " ORDER BY l.occurrence_at, p.name"
        )
    ).all()


def events(session, ticket_id=None, event_type=None):
    return session.execute(
        text(
            "SELECT * FROM service.ticket_events"
            " WHERE (CAST(:t AS uuid) IS NULL OR ticket_id = CAST(:t AS uuid))"
            " AND (CAST(:e AS text) IS NULL OR event_type = CAST(:e AS text))"
            " ORDER BY occurred_at, id"
        ),
        {"t": ticket_id, "e": event_type},
    ).all()


def local(ts: dt.datetime, tz: str) -> dt.datetime:
    return ts.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def count(session, sql: str, **params) -> int:
    return session.execute(text(sql), params).scalar_one()


# --------------------------------------------------------------------------------------------
# Calendar rules


def test_an_occurrence_within_lead_time_becomes_a_filled_in_ticket_with_link_and_event(
    celery_app, session
):
    team = f.team(session)
    prop = f.property_(session, name="Ocean View", timezone="America/New_York")
    rule = calendar_rule(
        session,
        properties=[prop],
        lead_minutes=24 * 60,
        title_template="Clean {property_name} on {date}{reservation_code}",
        description="Weekly clean of {property_name}",
        category="cleaning",
        priority="low",
        team_id=team,
        estimated_minutes=90,
    )
    session.commit()
    as_of = dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # 08:00 in New York

    result = generate(celery_app, as_of)

    assert result["created"] == 1 and result["skipped"] == 0 and result["missed"] == 0
    [t] = tickets(session)
    assert t.due_at == dt.datetime(2026, 6, 10, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert t.title == "Clean Ocean View on 2026-06-10"
    assert t.description == "Weekly clean of Ocean View"
    assert (t.ticket_type, t.category, t.priority, t.status) == ("PC", "cleaning", "low", "open")
    assert (t.current_team_id, t.estimated_minutes, t.property_id) == (team, 90, prop)
    assert t.reservation_id is None and t.ticket_number.startswith("TKT-")
    [link] = links(session)
    assert (link.ticket_id, link.recurring_rule_id, link.property_id) == (t.id, rule, prop)
    assert (link.occurrence_at, link.outcome, link.reservation_id) == (t.due_at, "created", None)
    [ev] = events(session, t.id)
    assert (ev.event_type, ev.actor) == ("created", "system")
    assert ev.data["recurring_rule_id"] == str(rule) and ev.data["caught_up"] is False
    assert ev.data["rule_code"].startswith("RR-")


def test_lead_time_decides_when_the_ticket_appears(celery_app, session):
    prop = f.property_(session, timezone="America/New_York")
    calendar_rule(session, properties=[prop], lead_minutes=120)  # due 13:00 UTC daily
    session.commit()
    assert generate(celery_app, dt.datetime(2026, 6, 10, 10, 59, tzinfo=UTC))["created"] == 0
    assert tickets(session) == []
    assert generate(celery_app, dt.datetime(2026, 6, 10, 11, 0, tzinfo=UTC))["created"] == 1
    [t] = tickets(session)
    assert t.due_at == dt.datetime(2026, 6, 10, 13, 0, tzinfo=UTC)
    # The next day's occurrence is not within lead time yet.
    assert generate(celery_app, dt.datetime(2026, 6, 11, 10, 59, tzinfo=UTC))["created"] == 0
    assert generate(celery_app, dt.datetime(2026, 6, 11, 11, 0, tzinfo=UTC))["created"] == 1


def test_each_property_gets_its_local_wall_clock_time_across_daylight_saving(celery_app, session):
    zones = ["America/New_York", "Europe/Lisbon", "Pacific/Honolulu", "Australia/Sydney"]
    props = {tz: f.property_(session, name=f"P {tz}", timezone=tz) for tz in zones}
    calendar_rule(
        session,
        properties=props.values(),
        dtstart=dt.datetime(2026, 3, 6, 9, 0),
        lead_minutes=5 * 24 * 60,
        missed_policy="skip",
    )
    session.commit()
    # New York springs forward on 8 March, Sydney falls back on 5 April; look at 6-11 March.
    result = generate(celery_app, dt.datetime(2026, 3, 6, 0, 0, tzinfo=UTC))
    assert result["rule_zones"] == 4  # expanded once per zone
    for tz, pid in props.items():
        due = [t.due_at for t in tickets(session, property_id=pid)]
        assert due, tz
        assert {local(d, tz).time() for d in due} == {dt.time(9, 0)}, tz
    ny = [t for t in tickets(session, property_id=props["America/New_York"])]
    by_date = {local(t.due_at, "America/New_York").date(): t for t in ny}
    assert by_date[dt.date(2026, 3, 7)].due_at.astimezone(UTC).hour == 14  # EST
    assert by_date[dt.date(2026, 3, 8)].due_at.astimezone(UTC).hour == 13  # EDT
    assert by_date[dt.date(2026, 3, 8)].title.endswith("on 2026-03-08")


def test_a_skipped_hour_moves_forward_and_a_repeated_hour_takes_the_first(celery_app, session):
    prop = f.property_(session, timezone="America/New_York")
    calendar_rule(
        session,
        properties=[prop],
        rrule="FREQ=YEARLY;BYMONTH=3,11;BYMONTHDAY=8,1",
        dtstart=dt.datetime(2026, 3, 1, 2, 30),
        lead_minutes=366 * 24 * 60,
    )
    calendar_rule(
        session,
        properties=[prop],
        rrule="FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=1",
        dtstart=dt.datetime(2026, 11, 1, 1, 30),
        lead_minutes=366 * 24 * 60,
    )
    session.commit()
    generate(celery_app, dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    due = {t.due_at for t in tickets(session)}
    # 02:30 on 8 March 2026 does not exist in New York: 03:30 EDT (07:30 UTC).
    assert dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC) in due
    # 01:30 on 1 November 2026 happens twice: the first, 01:30 EDT (05:30 UTC).
    assert dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC) in due
    assert dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC) not in due


def test_resort_scope_expands_to_its_active_properties_at_generation_time(celery_app, session):
    resort = f.resort(session)
    other_resort = f.resort(session)
    a = f.property_(session, name="A", resort_id=resort)
    b = f.property_(session, name="B", resort_id=resort)
    dormant = f.property_(session, name="C", resort_id=resort, status="onboarding")
    f.property_(session, name="D", resort_id=other_resort)
    calendar_rule(session, resorts=[resort], scope_type="resort", lead_minutes=120)
    session.commit()
    as_of = dt.datetime(2026, 6, 10, 11, 0, tzinfo=UTC)
    assert generate(celery_app, as_of)["created"] == 2
    assert {t.property_id for t in tickets(session)} == {a, b}
    # A property that joins the resort or becomes active is picked up by the next run.
    late = f.property_(session, name="E", resort_id=resort)
    session.execute(
        text("UPDATE property.properties SET status = 'active' WHERE id = :id"), {"id": dormant}
    )
    session.commit()
    assert generate(celery_app, as_of)["created"] == 2
    assert {t.property_id for t in tickets(session)} == {a, b, dormant, late}


def test_all_properties_scope_covers_every_active_property_only(celery_app, session):
    active = {
        f.property_(session, timezone="America/New_York"),
        f.property_(session, timezone="Europe/Lisbon"),
        f.property_(session, timezone="Pacific/Honolulu"),
    }
    for status in ("inactive", "offboarded", "onboarding"):
        f.property_(session, status=status)
    calendar_rule(session, scope_type="all_properties", lead_minutes=24 * 60)
    session.commit()
    result = generate(celery_app, dt.datetime(2026, 6, 10, 0, 0, tzinfo=UTC))
    assert result["created"] == 3 and result["rule_zones"] == 3
    assert {t.property_id for t in tickets(session)} == active


def test_property_scope_uses_its_targets_and_skips_inactive_ones(celery_app, session):
    a = f.property_(session, name="A")
    gone = f.property_(session, name="B", status="inactive")
    f.property_(session, name="C")  # not a target
    calendar_rule(session, properties=[a, gone], lead_minutes=120)
    session.commit()
    assert generate(celery_app, dt.datetime(2026, 6, 10, 11, 0, tzinfo=UTC))["created"] == 1
    assert [t.property_id for t in tickets(session)] == [a]


def test_inactive_rules_and_reservation_rules_produce_nothing(celery_app, session):
    prop = f.property_(session)
    calendar_rule(session, properties=[prop], lead_minutes=120, is_active=False)
    reservation_rule(session, properties=[prop])
    session.commit()
    result = generate(celery_app, dt.datetime(2026, 6, 10, 11, 0, tzinfo=UTC))
    assert result["rules"] == 0 and result["created"] == 0
    assert links(session) == []


def test_rule_id_and_property_id_limit_a_run(celery_app, session):
    a, b = f.property_(session, name="A"), f.property_(session, name="B")
    first = calendar_rule(session, properties=[a, b], lead_minutes=120)
    second = calendar_rule(session, properties=[a, b], lead_minutes=120)
    session.commit()
    as_of = dt.datetime(2026, 6, 10, 11, 0, tzinfo=UTC)
    assert generate(celery_app, as_of, rule_id=first, property_id=b)["created"] == 1
    [only] = links(session)
    assert (only.recurring_rule_id, only.property_id) == (first, b)
    assert generate(celery_app, as_of, rule_id=second)["created"] == 2
    assert generate(celery_app, as_of)["created"] == 1  # (first, a) is all that is left


@pytest.mark.parametrize(
    ("skip_policy", "stay", "outcome"),
    [
        ("skip_if_occupied", ("guest", "confirmed"), "skipped"),
        ("skip_if_occupied", ("owner_stay", "confirmed"), "skipped"),
        ("skip_if_occupied", ("guest", "checked_in"), "skipped"),
        ("skip_if_occupied", ("block", "confirmed"), "created"),
        ("skip_if_occupied", ("guest", "cancelled"), "created"),
        ("skip_if_occupied", ("guest", "inquiry"), "created"),
        ("skip_if_occupied", None, "created"),
        ("skip_if_vacant", ("guest", "confirmed"), "created"),
        ("skip_if_vacant", ("guest", "cancelled"), "skipped"),
        ("skip_if_vacant", None, "skipped"),
        ("none", ("guest", "confirmed"), "created"),
        ("none", None, "created"),
    ],
)
def test_skip_policies_read_stays_covering_the_local_date(
    celery_app, session, skip_policy, stay, outcome
):
    # 22:00 in Honolulu on 10 June is 08:00 UTC on 11 June: the local date is what counts.
    prop = f.property_(session, timezone="Pacific/Honolulu")
    calendar_rule(
        session,
        properties=[prop],
        dtstart=dt.datetime(2026, 6, 10, 22, 0),
        rrule="FREQ=DAILY;COUNT=1",
        skip_policy=skip_policy,
        lead_minutes=24 * 60,
    )
    if stay:
        kind, status = stay
        f.reservation(
            session,
            prop,
            dt.date(2026, 6, 8),
            dt.date(2026, 6, 11),
            reservation_type=kind,
            status=status,
        )
    session.commit()
    result = generate(celery_app, dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    [link] = links(session)
    assert link.outcome == outcome
    assert link.occurrence_at == dt.datetime(2026, 6, 11, 8, 0, tzinfo=UTC)
    assert result[outcome] == 1
    assert len(tickets(session)) == (1 if outcome == "created" else 0)
    assert (link.ticket_id is None) == (outcome != "created")


def test_the_departure_day_is_vacant_and_a_skipped_occurrence_is_not_reconsidered(
    celery_app, session
):
    departing = f.property_(session, name="A", timezone="America/New_York")
    staying = f.property_(session, name="B", timezone="America/New_York")
    calendar_rule(
        session,
        properties=[departing, staying],
        skip_policy="skip_if_occupied",
        lead_minutes=24 * 60,
    )
    f.reservation(session, departing, dt.date(2026, 6, 5), dt.date(2026, 6, 10))  # leaves
    stay = f.reservation(session, staying, dt.date(2026, 6, 9), dt.date(2026, 6, 12))
    session.commit()
    as_of = dt.datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
    result = generate(celery_app, as_of)
    assert (result["created"], result["skipped"]) == (1, 1)
    assert [t.property_id for t in tickets(session)] == [departing]
    # The stay is cancelled afterwards: the skip was decided and is remembered.
    session.execute(
        text("UPDATE reservations.reservations SET status = 'cancelled' WHERE id = :id"),
        {"id": stay},
    )
    session.commit()
    result = generate(celery_app, as_of)
    assert (result["created"], result["skipped"]) == (0, 0)
    assert {(link.property_id, link.outcome) for link in links(session)} == {
        (departing, "created"),
        (staying, "skipped"),
    }


def test_catch_up_creates_occurrences_missed_during_downtime(celery_app, session):
    prop = f.property_(session, timezone="America/New_York")
    calendar_rule(session, properties=[prop], dtstart=dt.datetime(2026, 6, 1, 9, 0))
    session.commit()
    # Down for a while: the last run was long ago; 12:00 EDT on 10 June.
    result = generate(celery_app, dt.datetime(2026, 6, 10, 16, 0, tzinfo=UTC))
    # Caught up over the last 7 days only: 4 to 10 June at 09:00 (3 June 09:00 is older).
    assert result["created"] == 7 and result["missed"] == 0
    due = [local(t.due_at, "America/New_York") for t in tickets(session)]
    assert due == [dt.datetime(2026, 6, d, 9, 0) for d in range(4, 11)]
    assert all(ev.data["caught_up"] for ev in events(session, event_type="created"))


def test_an_occurrence_seen_within_the_hour_is_not_missed(celery_app, session):
    prop = f.property_(session, timezone="America/New_York")
    calendar_rule(session, properties=[prop], missed_policy="skip")
    session.commit()
    result = generate(celery_app, dt.datetime(2026, 6, 10, 14, 0, tzinfo=UTC))  # due 13:00
    assert (result["created"], result["missed"]) == (1, 0)
    [ev] = events(session, event_type="created")
    assert ev.data["caught_up"] is False


def test_skip_records_missed_occurrences_and_never_creates_them(celery_app, session):
    prop = f.property_(session, timezone="America/New_York")
    calendar_rule(
        session,
        properties=[prop],
        dtstart=dt.datetime(2026, 6, 1, 9, 0),
        missed_policy="skip",
        lead_minutes=120,
    )
    session.commit()
    result = generate(celery_app, dt.datetime(2026, 6, 10, 16, 0, tzinfo=UTC))
    assert (result["created"], result["missed"]) == (0, 7)
    assert tickets(session) == []
    assert {link.outcome for link in links(session)} == {"missed"}
    assert all(link.ticket_id is None for link in links(session))
    # Back up: the next occurrence within lead time is created; the missed ones never are.
    result = generate(celery_app, dt.datetime(2026, 6, 11, 11, 0, tzinfo=UTC))
    assert (result["created"], result["missed"]) == (1, 0)
    [t] = tickets(session)
    assert t.due_at == dt.datetime(2026, 6, 11, 13, 0, tzinfo=UTC)
    assert count(session, "SELECT count(*) FROM service.ticket_recurring") == 8


def test_until_is_inclusive_and_honoured_with_an_rrule_until(celery_app, session):
    a, b = f.property_(session, name="A"), f.property_(session, name="B")
    calendar_rule(
        session, properties=[a], until=dt.datetime(2026, 6, 12, 9, 0), lead_minutes=7 * 24 * 60
    )
    calendar_rule(
        session,
        properties=[b],
        rrule="FREQ=DAILY;UNTIL=20260611T090000",
        lead_minutes=7 * 24 * 60,
    )
    session.commit()
    generate(celery_app, dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC))

    def dates(pid):
        return [local(t.due_at, t.timezone).date() for t in tickets(session, property_id=pid)]

    assert dates(a) == [dt.date(2026, 6, 10), dt.date(2026, 6, 11), dt.date(2026, 6, 12)]
    assert dates(b) == [dt.date(2026, 6, 10), dt.date(2026, 6, 11)]


def test_a_bad_rule_is_reported_and_the_others_still_run(celery_app, session):
    prop = f.property_(session)
    bad = calendar_rule(session, properties=[prop], rrule="FREQ=SOMETIMES", lead_minutes=120)
    calendar_rule(session, properties=[prop], lead_minutes=120)
    session.commit()
    result = generate(celery_app, dt.datetime(2026, 6, 10, 11, 0, tzinfo=UTC))
    code = count(session, "SELECT rule_code FROM service.recurring_rules WHERE id = :id", id=bad)
    assert result["invalid_rules"] == [code] and result["created"] == 1


def test_generate_twice_creates_each_ticket_once(celery_app, session):
    props = [f.property_(session, timezone=tz) for tz in ("America/New_York", "Europe/Lisbon")]
    calendar_rule(session, properties=props, dtstart=dt.datetime(2026, 6, 1, 9, 0))
    calendar_rule(
        session, properties=props, rrule="FREQ=WEEKLY;BYDAY=MO,TH", skip_policy="skip_if_vacant"
    )
    session.commit()
    as_of = dt.datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
    first = generate(celery_app, as_of)
    before = (count(session, "SELECT count(*) FROM service.tickets"), len(links(session)))
    second = generate(celery_app, as_of)
    assert first["created"] + first["skipped"] > 0
    assert (second["created"], second["skipped"], second["missed"]) == (0, 0, 0)
    assert (count(session, "SELECT count(*) FROM service.tickets"), len(links(session))) == before
    assert count(session, "SELECT count(*) FROM service.ticket_events") == first["created"]


# Follow-up tasks (sla.apply) go to an in-memory broker that ends with the process, so no
# worker runs them in the middle of later tests.
IN_MEMORY_BROKER = {**os.environ, "CELERY_BROKER_URL": "memory://"}


def _assert_one_ticket_per_link(session) -> None:
    assert (
        count(
            session,
            "SELECT count(*) FROM service.tickets t WHERE t.source = 'recurring' AND NOT EXISTS"
            " (SELECT 1 FROM service.ticket_recurring l WHERE l.ticket_id = t.id)",
        )
        == 0
    )
    assert (
        count(
            session,
            "SELECT count(*) FROM (SELECT ticket_id FROM service.ticket_recurring"
            " WHERE ticket_id IS NOT NULL GROUP BY ticket_id HAVING count(*) > 1) d",
        )
        == 0
    )
    assert (
        count(
            session,
            "SELECT count(*) FROM service.tickets t WHERE t.source = 'recurring' AND"
            " (SELECT count(*) FROM service.ticket_events e WHERE e.ticket_id = t.id"
            "  AND e.event_type = 'created') <> 1",
        )
        == 0
    )


def test_generate_twice_at_once_from_two_processes_creates_each_ticket_once(celery_app, session):
    props = [f.property_(session, timezone=tz) for tz in ("America/New_York", "Asia/Tokyo") * 50]
    calendar_rule(session, scope_type="all_properties", dtstart=dt.datetime(2026, 6, 1, 9, 0))
    session.commit()
    payload = {"as_of": dt.datetime(2026, 6, 10, 16, 0, tzinfo=UTC).isoformat()}
    results = cmw_run_at_once("recurring.generate", payload, env=IN_MEMORY_BROKER, timeout=120)
    created = sum(r.get("created", 0) for r in results)
    assert created == count(session, "SELECT count(*) FROM service.tickets")
    # 7 or 8 daily occurrences within the catch-up week, per zone, for 100 properties.
    assert created == 50 * 7 + 50 * 7
    assert len(links(session)) == created
    _assert_one_ticket_per_link(session)
    statuses = sorted(
        session.execute(
            text("SELECT status FROM ops.job_runs WHERE task_name = 'recurring.generate'")
        ).scalars()
    )
    assert statuses in (["skipped", "succeeded"], ["succeeded", "succeeded"])
    assert len(props) == 100


def test_two_overlapping_runs_without_the_singleton_lock_still_create_each_ticket_once(
    engine, session
):
    """The statement itself is safe: a run that loses the race for a link drops its ticket."""
    from db.session import session_scope
    from tasks.recurring.calendar_rules import generate_tickets

    for n in range(30):
        f.property_(session, name=f"P{n:02d}", timezone="Europe/Lisbon")
    calendar_rule(session, scope_type="all_properties", dtstart=dt.datetime(2026, 6, 1, 9, 0))
    session.commit()
    as_of = dt.datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
    second: dict = {}

    def run_second() -> None:
        with session_scope() as s2:
            second.update(generate_tickets(s2, as_of=as_of))

    with session_scope() as s1:
        first = generate_tickets(s1, as_of=as_of)
        thread = threading.Thread(target=run_second)
        thread.start()
        # Let the second run reach the links of the first (it waits on their unique key).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = count(
                session,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()",
            )
            session.commit()
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the second run never waited for the first"
    thread.join(30)
    assert first["created"] == 30 * 7
    assert second["created"] == 0
    assert count(session, "SELECT count(*) FROM service.tickets") == 30 * 7
    _assert_one_ticket_per_link(session)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"rule_id": "not-a-uuid"}, "rule_id"),
        ({"rule_id": "00000000-0000-7000-8000-000000000000"}, "unknown rule_id"),
        ({"property_id": "00000000-0000-7000-8000-000000000000"}, "unknown property_id"),
        ({"as_of": "2026-06-10T12:00:00"}, "timezone"),
        ({"rules": []}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_generate_payload_is_dead_lettered(celery_app, session, payload, message):
    result = celery_app.tasks["recurring.generate"].apply(kwargs=payload)
    assert result.failed() and message in str(result.result)
    [dead] = session.execute(
        text(
            "SELECT task_name, payload, error, error_kind FROM ops.dead_letters"
            " WHERE task_name = 'recurring.generate'"
        )
    ).all()
    assert (dead.task_name, dead.payload, dead.error_kind) == (
        "recurring.generate",
        payload,
        "validation",
    )
    assert message in dead.error


def test_generate_refuses_a_reservation_rule_by_id(celery_app, session):
    rule = reservation_rule(session, properties=[f.property_(session)])
    session.commit()
    result = celery_app.tasks["recurring.generate"].apply(kwargs={"rule_id": str(rule)})
    assert result.failed() and "reservation rule" in str(result.result)
    dead = "SELECT count(*) FROM ops.dead_letters WHERE task_name = 'recurring.generate'"
    assert count(session, dead) == 1


# --------------------------------------------------------------------------------------------
# Reservation rules

SYNC_AS_OF = dt.datetime(2026, 6, 2, 2, 0, tzinfo=UTC)


def set_stay(session, reservation_id, **cols) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    session.execute(
        text(f"UPDATE reservations.reservations SET {sets} WHERE id = :id"),
        {**cols, "id": reservation_id},
    )
    session.commit()


def set_ticket(session, ticket_id, **cols) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    session.execute(
        text(f"UPDATE service.tickets SET {sets} WHERE id = :id"), {**cols, "id": ticket_id}
    )
    session.commit()


def ticket_of(session, rule_id, reservation_id):
    return session.execute(
        text(
            "SELECT t.* FROM service.ticket_recurring l"
            " JOIN service.tickets t ON t.id = l.ticket_id"
            " WHERE l.recurring_rule_id = :r AND l.reservation_id = :s"
        ),
        {"r": rule_id, "s": reservation_id},
    ).one()


def test_a_new_stay_gets_a_ticket_per_rule_at_each_anchor(celery_app, session):
    team = f.team(session)
    prop = f.property_(session, name="Casa Azul", timezone="America/New_York")
    departure = reservation_rule(
        session, properties=[prop], team_id=team, estimated_minutes=120, priority="normal"
    )
    inspection = reservation_rule(
        session,
        properties=[prop],
        anchor="check_in",
        local_time=dt.time(15, 0),
        offset_minutes=-24 * 60,
        title_template="Pre-arrival inspection {property_name} {date}",
        lead_minutes=10,  # lead time does not apply to reservation rules
    )
    welcome = reservation_rule(
        session,
        properties=[prop],
        anchor="booked",
        local_time=None,
        offset_minutes=33 * 60,  # the day after booking, 09:00
        title_template="Welcome call {reservation_code}",
        ticket_type="RSV",
    )
    # Booked at 21:30 New York time on 1 June (already 2 June in UTC).
    stay = f.reservation(
        session,
        prop,
        dt.date(2026, 7, 10),
        dt.date(2026, 7, 14),
        booked_at=dt.datetime(2026, 6, 2, 1, 30, tzinfo=UTC),
        confirmation_code="HM4242",
    )
    session.commit()

    result = sync(celery_app, stay, SYNC_AS_OF)

    assert (result["rules"], result["created"], result["missed"]) == (3, 3, 0)
    clean = ticket_of(session, departure, stay)
    assert clean.due_at == dt.datetime(2026, 7, 14, 15, 0, tzinfo=UTC)  # 11:00 EDT
    assert clean.title == "Departure clean Casa Azul 2026-07-14 (HM4242)"
    assert (clean.priority, clean.category, clean.current_team_id) == ("normal", "cleaning", team)
    assert (clean.estimated_minutes, clean.source, clean.status) == (120, "recurring", "open")
    assert (clean.property_id, clean.reservation_id) == (prop, stay)
    check = ticket_of(session, inspection, stay)
    assert check.due_at == dt.datetime(2026, 7, 9, 19, 0, tzinfo=UTC)  # 15:00 EDT, the day before
    assert check.title == "Pre-arrival inspection Casa Azul 2026-07-09"
    call = ticket_of(session, welcome, stay)
    assert call.due_at == dt.datetime(2026, 6, 2, 13, 0, tzinfo=UTC)  # 2 June 09:00 EDT
    assert (call.title, call.ticket_type) == ("Welcome call HM4242", "RSV")
    rows = links(session)
    assert {(r.recurring_rule_id, r.reservation_id, r.outcome) for r in rows} == {
        (departure, stay, "created"),
        (inspection, stay, "created"),
        (welcome, stay, "created"),
    }
    assert all(
        r.occurrence_at == ticket_of(session, r.recurring_rule_id, stay).due_at for r in rows
    )
    created = events(session, event_type="created")
    assert len(created) == 3
    assert {e.data["reservation_id"] for e in created} == {str(stay)}
    assert not any(e.data["turnover"] for e in created)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("guest", "inquiry"),
        ("guest", "cancelled"),
        ("owner_stay", "confirmed"),
        ("block", "confirmed"),
    ],
)
def test_only_live_guest_stays_get_tickets(celery_app, session, kind, status):
    prop = f.property_(session)
    reservation_rule(session, properties=[prop])
    stay = f.reservation(
        session,
        prop,
        dt.date(2026, 7, 1),
        dt.date(2026, 7, 4),
        reservation_type=kind,
        status=status,
    )
    session.commit()
    assert sync(celery_app, stay, SYNC_AS_OF)["created"] == 0
    assert links(session) == [] and tickets(session) == []


def test_reservation_rules_apply_by_scope_and_only_when_active(celery_app, session):
    resort = f.resort(session)
    here = f.property_(session, name="Here", resort_id=resort)
    elsewhere = f.property_(session, name="Elsewhere")
    by_property = reservation_rule(session, properties=[here], title_template="by property")
    by_resort = reservation_rule(
        session, resorts=[resort], scope_type="resort", title_template="by resort"
    )
    everywhere = reservation_rule(session, scope_type="all_properties", title_template="everywhere")
    reservation_rule(session, properties=[here], is_active=False, title_template="inactive")
    at_here = f.reservation(session, here, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    at_elsewhere = f.reservation(session, elsewhere, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    session.commit()
    sync(celery_app, at_here, SYNC_AS_OF)
    sync(celery_app, at_elsewhere, SYNC_AS_OF)
    got = {(r.reservation_id, r.recurring_rule_id) for r in links(session)}
    assert got == {
        (at_here, by_property),
        (at_here, by_resort),
        (at_here, everywhere),
        (at_elsewhere, everywhere),
    }


def test_a_stay_at_an_inactive_property_gets_nothing(celery_app, session):
    prop = f.property_(session, status="inactive")
    reservation_rule(session, properties=[prop])
    stay = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    session.commit()
    assert sync(celery_app, stay, SYNC_AS_OF)["created"] == 0
    assert links(session) == []


def test_a_date_change_moves_the_unfinished_tickets_with_an_event(celery_app, session):
    prop = f.property_(session, name="Villa", timezone="Europe/Lisbon")
    departure = reservation_rule(session, properties=[prop])
    arrival = reservation_rule(
        session,
        properties=[prop],
        anchor="check_in",
        local_time=dt.time(16, 0),
        title_template="Arrival {date}",
    )
    stay = f.reservation(
        session, prop, dt.date(2026, 7, 10), dt.date(2026, 7, 14), confirmation_code="BK1"
    )
    session.commit()
    sync(celery_app, stay, SYNC_AS_OF)
    arrival_ticket = ticket_of(session, arrival, stay)
    set_ticket(session, arrival_ticket.id, status="resolved")  # done already: never moves
    set_stay(session, stay, check_in=dt.date(2026, 7, 11), check_out=dt.date(2026, 7, 16))

    result = sync(celery_app, stay, SYNC_AS_OF)

    assert (result["moved"], result["created"]) == (1, 0)
    clean = ticket_of(session, departure, stay)
    assert clean.due_at == dt.datetime(2026, 7, 16, 10, 0, tzinfo=UTC)  # 11:00 WEST
    assert clean.title == "Departure clean Villa 2026-07-16 (BK1)"
    [link] = [r for r in links(session) if r.recurring_rule_id == departure]
    assert link.occurrence_at == clean.due_at
    [moved] = events(session, clean.id, "moved")
    assert moved.data["from"].startswith("2026-07-14T10:00:00")
    assert moved.data["to"].startswith("2026-07-16T10:00:00")
    assert (moved.data["check_in"], moved.data["check_out"]) == ("2026-07-11", "2026-07-16")
    assert ticket_of(session, arrival, stay).due_at == arrival_ticket.due_at
    assert events(session, arrival_ticket.id, "moved") == []
    # Synced again with nothing changed: nothing moves, no event.
    assert sync(celery_app, stay, SYNC_AS_OF)["moved"] == 0
    assert len(events(session, event_type="moved")) == 1


def test_a_stay_moved_to_another_property_takes_its_tickets_along(celery_app, session):
    first = f.property_(session, name="First", timezone="America/New_York")
    second = f.property_(session, name="Second", timezone="America/Los_Angeles")
    rule = reservation_rule(session, scope_type="all_properties")
    stay = f.reservation(session, first, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    session.commit()
    sync(celery_app, stay, SYNC_AS_OF)
    set_stay(session, stay, property_id=second)
    assert sync(celery_app, stay, SYNC_AS_OF)["moved"] == 1
    clean = ticket_of(session, rule, stay)
    assert clean.property_id == second
    assert clean.due_at == dt.datetime(2026, 7, 4, 18, 0, tzinfo=UTC)  # 11:00 PDT
    assert clean.title.startswith("Departure clean Second 2026-07-04")
    assert [r.property_id for r in links(session)] == [second]


def test_a_cancelled_stay_cancels_tickets_not_started_and_tells_the_team_of_started_ones(
    celery_app, session
):
    cleaners = f.insert(
        session, "team.teams", code="HK", name="Housekeeping", notify_email="hk@example.com"
    ).id
    prop = f.property_(session, name="Loft")
    rules = {
        status: reservation_rule(
            session, properties=[prop], team_id=cleaners, title_template=f"{status} job"
        )
        for status in ("open", "acknowledged", "in_progress", "on_hold", "resolved")
    }
    no_team = reservation_rule(session, properties=[prop], title_template="no team job")
    stay = f.reservation(
        session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4), confirmation_code="VR9"
    )
    session.commit()
    sync(celery_app, stay, SYNC_AS_OF)
    for status, rule in rules.items():
        set_ticket(session, ticket_of(session, rule, stay).id, status=status)
    set_ticket(session, ticket_of(session, no_team, stay).id, status="in_progress")
    set_stay(session, stay, status="cancelled", cancelled_at=SYNC_AS_OF)

    result = sync(celery_app, stay, SYNC_AS_OF)

    assert (result["cancelled"], result["notified"]) == (2, 3)
    status_now = {s: ticket_of(session, r, stay).status for s, r in rules.items()}
    assert status_now == {
        "open": "cancelled",
        "acknowledged": "cancelled",
        "in_progress": "in_progress",
        "on_hold": "on_hold",
        "resolved": "resolved",
    }
    for s in ("open", "acknowledged"):
        [ev] = events(session, ticket_of(session, rules[s], stay).id, "cancelled")
        assert ev.data["reason"] == "reservation_cancelled"
        assert ev.data["reservation_status"] == "cancelled"
    messages = session.execute(
        text("SELECT * FROM comms.messages ORDER BY recipient, subject")
    ).all()
    started = {ticket_of(session, rules[s], stay).id for s in ("in_progress", "on_hold")}
    started.add(ticket_of(session, no_team, stay).id)
    assert {m.related_id for m in messages} == started
    assert {m.related_type for m in messages} == {"ticket"}
    assert sorted(m.recipient for m in messages) == [
        "hk@example.com",
        "hk@example.com",
        "ops@localhost",
    ]
    assert all("VR9" in m.subject and m.status == "queued" for m in messages)
    assert all(len(events(session, t, "reservation_cancelled")) == 1 for t in started)
    # Synced again: nothing new.
    again = sync(celery_app, stay, SYNC_AS_OF)
    assert (again["cancelled"], again["notified"]) == (0, 0)
    assert count(session, "SELECT count(*) FROM comms.messages") == 3
    assert len(events(session, event_type="cancelled")) == 2


def test_a_stay_confirmed_again_reopens_what_its_cancellation_cancelled(celery_app, session):
    prop = f.property_(session)
    ours = reservation_rule(session, properties=[prop], title_template="ours")
    theirs = reservation_rule(session, properties=[prop], title_template="theirs")
    stay = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    session.commit()
    sync(celery_app, stay, SYNC_AS_OF)
    # A person cancels one ticket (e.g. the guest declined the service).
    person_cancelled = ticket_of(session, theirs, stay).id
    set_ticket(session, person_cancelled, status="cancelled")
    f.insert(
        session,
        "service.ticket_events",
        ticket_id=person_cancelled,
        event_type="cancelled",
        actor="agent@example.com",
    )
    session.commit()
    set_stay(session, stay, status="cancelled")
    assert sync(celery_app, stay, SYNC_AS_OF)["cancelled"] == 1
    set_stay(session, stay, status="confirmed", check_out=dt.date(2026, 7, 5))

    result = sync(celery_app, stay, SYNC_AS_OF)

    assert (result["reopened"], result["moved"], result["created"]) == (1, 1, 0)
    reopened = ticket_of(session, ours, stay)
    assert reopened.status == "open"
    assert reopened.due_at == dt.datetime(2026, 7, 5, 15, 0, tzinfo=UTC)
    assert [e.event_type for e in events(session, reopened.id)] == [
        "created",
        "cancelled",
        "reopened",
        "moved",
    ]
    assert ticket_of(session, theirs, stay).status == "cancelled"


def test_a_back_to_back_turnover_is_marked_whichever_stay_is_booked_first(celery_app, session):
    prop = f.property_(session, name="Beach House")
    departure = reservation_rule(session, properties=[prop])
    urgent = reservation_rule(
        session, properties=[prop], priority="urgent", title_template="Linen swap {date}"
    )
    arrival = reservation_rule(
        session, properties=[prop], anchor="check_in", title_template="Arrival {date}"
    )
    first = f.reservation(
        session, prop, dt.date(2026, 7, 10), dt.date(2026, 7, 14), confirmation_code="A1"
    )
    session.commit()
    sync(celery_app, first, SYNC_AS_OF)
    assert (
        ticket_of(session, departure, first).title == "Departure clean Beach House 2026-07-14 (A1)"
    )
    assert ticket_of(session, departure, first).priority == "normal"

    # The second booking arrives later, on the first one's departure day.
    second = f.reservation(
        session, prop, dt.date(2026, 7, 14), dt.date(2026, 7, 18), confirmation_code="B2"
    )
    session.commit()
    result = sync(celery_app, second, SYNC_AS_OF)

    assert result["turnover_marked"] == 2
    clean = ticket_of(session, departure, first)
    assert clean.title == "[Turnover] Departure clean Beach House 2026-07-14 (A1)"
    assert clean.priority == "high"
    assert ticket_of(session, urgent, first).priority == "urgent"  # never lowered
    assert ticket_of(session, urgent, first).title == "[Turnover] Linen swap 2026-07-14"
    assert ticket_of(session, arrival, first).title == "Arrival 2026-07-10"  # not a departure
    assert ticket_of(session, departure, second).title.startswith("Departure clean")
    [marked] = events(session, clean.id, "turnover_marked")
    assert marked.data["priority"] == "high"

    # A third stay booked before the departure it follows was synced: marked at creation.
    third = f.reservation(
        session, prop, dt.date(2026, 7, 18), dt.date(2026, 7, 20), confirmation_code="C3"
    )
    session.commit()
    sync(celery_app, third, SYNC_AS_OF)
    sync(celery_app, second, SYNC_AS_OF)
    turnover = ticket_of(session, departure, second)
    assert turnover.title.startswith("[Turnover] ") and turnover.priority == "high"

    # The arrival goes away: the mark goes too, and the rule's priority comes back.
    set_stay(session, second, status="cancelled")
    result = sync(celery_app, second, SYNC_AS_OF)
    assert result["turnover_cleared"] == 2
    clean = ticket_of(session, departure, first)
    assert (clean.title, clean.priority) == (
        "Departure clean Beach House 2026-07-14 (A1)",
        "normal",
    )
    assert ticket_of(session, urgent, first).priority == "urgent"
    assert len(events(session, clean.id, "turnover_cleared")) == 1
    # Idempotent: syncing any of them again changes nothing.
    for stay in (first, second, third):
        again = sync(celery_app, stay, SYNC_AS_OF)
        assert (again["turnover_marked"], again["turnover_cleared"]) == (0, 0)


def test_an_owner_arrival_makes_a_turnover_and_moving_away_clears_it(celery_app, session):
    prop = f.property_(session, name="Cabin")
    departure = reservation_rule(session, properties=[prop])
    guest = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 5))
    owner = f.reservation(
        session, prop, dt.date(2026, 7, 5), dt.date(2026, 7, 9), reservation_type="owner_stay"
    )
    session.commit()
    sync(celery_app, guest, SYNC_AS_OF)
    clean = ticket_of(session, departure, guest)
    assert clean.title.startswith("[Turnover] ") and clean.priority == "high"
    [created] = events(session, clean.id, "created")
    assert created.data["turnover"] is True
    # The owner arrives a day later: no longer back to back (the owner stay has no tickets).
    set_stay(session, owner, check_in=dt.date(2026, 7, 6))
    assert sync(celery_app, owner, SYNC_AS_OF)["turnover_cleared"] == 1
    assert ticket_of(session, departure, guest).title.startswith("Departure clean")


def test_a_stay_synced_long_after_its_dates_records_them_as_missed(celery_app, session):
    prop = f.property_(session, timezone="America/New_York")
    catch_up = reservation_rule(session, properties=[prop], title_template="catch up")
    skip = reservation_rule(session, properties=[prop], missed_policy="skip", title_template="skip")
    as_of = dt.datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
    old = f.reservation(session, prop, dt.date(2026, 6, 20), dt.date(2026, 6, 25))
    recent = f.reservation(session, prop, dt.date(2026, 7, 27), dt.date(2026, 7, 30))
    session.commit()
    assert sync(celery_app, old, as_of)["missed"] == 2  # older than the catch-up week
    result = sync(celery_app, recent, as_of)
    assert (result["created"], result["missed"]) == (1, 1)
    outcomes = {(r.reservation_id, r.recurring_rule_id): r.outcome for r in links(session)}
    assert outcomes == {
        (old, catch_up): "missed",
        (old, skip): "missed",
        (recent, catch_up): "created",
        (recent, skip): "missed",
    }
    [ev] = events(session, event_type="created")
    assert ev.data["caught_up"] is True
    # The old stay's dates change to the future: decided again, now created.
    set_stay(session, old, check_in=dt.date(2026, 8, 10), check_out=dt.date(2026, 8, 12))
    result = sync(celery_app, old, as_of)
    assert result["created"] == 2
    assert {r.outcome for r in links(session) if r.reservation_id == old} == {"created"}


def test_sync_twice_leaves_the_same_rows(celery_app, session):
    prop = f.property_(session)
    reservation_rule(session, properties=[prop])
    reservation_rule(session, properties=[prop], anchor="check_in", title_template="arrival")
    stay = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    f.reservation(session, prop, dt.date(2026, 7, 4), dt.date(2026, 7, 6))
    session.commit()
    first = sync(celery_app, stay, SYNC_AS_OF)
    snapshot = session.execute(
        text("SELECT id, title, priority, due_at, status FROM service.tickets ORDER BY id")
    ).all()
    second = sync(celery_app, stay, SYNC_AS_OF)
    assert first["created"] == 2
    assert {k: v for k, v in second.items() if k not in ("reservation_id", "rules")} == {
        "created": 0,
        "missed": 0,
        "moved": 0,
        "cancelled": 0,
        "notified": 0,
        "reopened": 0,
        "turnover_marked": 0,
        "turnover_cleared": 0,
    }
    assert (
        session.execute(
            text("SELECT id, title, priority, due_at, status FROM service.tickets ORDER BY id")
        ).all()
        == snapshot
    )
    assert len(events(session)) == 2


def test_sync_twice_at_once_from_two_processes_creates_each_ticket_once(celery_app, session):
    prop = f.property_(session)
    for n in range(5):
        reservation_rule(session, properties=[prop], title_template=f"job {n}")
    stay = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    session.commit()
    payload = {"reservation_id": str(stay), "as_of": SYNC_AS_OF.isoformat()}
    results = cmw_run_at_once(
        "recurring.sync_reservation", payload, env=IN_MEMORY_BROKER, timeout=120
    )
    assert sorted(r["created"] for r in results) == [0, 5]
    assert count(session, "SELECT count(*) FROM service.tickets") == 5
    assert len(links(session)) == 5
    _assert_one_ticket_per_link(session)


def test_the_task_enqueues_sla_apply_for_what_it_changed(celery_app, session):
    """Created, re-prioritised (turnover) and cancelled tickets get `sla.apply` after commit."""
    from tasks.recurring import SyncReservationPayload
    from workers.base import JobContext

    prop = f.property_(session)
    departure = reservation_rule(session, properties=[prop])
    first = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 4))
    second = f.reservation(
        session, prop, dt.date(2026, 7, 4), dt.date(2026, 7, 6), status="inquiry"
    )
    session.commit()
    task = celery_app.tasks["recurring.sync_reservation"]

    def run(stay) -> list[tuple[str, dict]]:
        from db.session import session_scope

        payload = SyncReservationPayload(reservation_id=stay, as_of=SYNC_AS_OF)
        with session_scope() as s:
            # As the task base builds it: the payload named its as_of.
            ctx = JobContext(
                s, SYNC_AS_OF, task.name, None, uuid.uuid4(), as_of_given=payload.as_of is not None
            )
            task.job_fn(ctx, payload)
        return ctx._after_commit

    as_of = SYNC_AS_OF.isoformat()
    sent = run(first)
    first_clean = ticket_of(session, departure, first).id
    assert sent == [("sla.apply", {"ticket_id": str(first_clean), "as_of": as_of})]
    assert run(first) == []  # nothing changed, nothing to re-apply
    set_stay(session, second, status="confirmed")
    sent = run(second)  # its own clean is created; the first's becomes a turnover (priority)
    second_clean = ticket_of(session, departure, second).id
    assert sorted(kwargs["ticket_id"] for _, kwargs in sent) == sorted(
        [str(first_clean), str(second_clean)]
    )
    set_stay(session, first, status="cancelled")
    assert run(first) == [("sla.apply", {"ticket_id": str(first_clean), "as_of": as_of})]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"reservation_id": "00000000-0000-7000-8000-000000000000"}, "unknown reservation_id"),
        ({"reservation_id": 42}, "reservation_id"),
        ({}, "reservation_id"),
        ({"reservation_id": "00000000-0000-7000-8000-000000000000", "x": 1}, "Extra inputs"),
    ],
)
def test_a_bad_sync_payload_is_dead_lettered(celery_app, session, payload, message):
    result = celery_app.tasks["recurring.sync_reservation"].apply(kwargs=payload)
    assert result.failed() and message in str(result.result)
    [dead] = session.execute(
        text(
            "SELECT task_name, payload, error, error_kind, retries FROM ops.dead_letters"
            " WHERE task_name = 'recurring.sync_reservation'"
        )
    ).all()
    assert (dead.task_name, dead.payload, dead.error_kind, dead.retries) == (
        "recurring.sync_reservation",
        payload,
        "validation",
        0,
    )
