"""Reservation-driven ticket rules with SPEC 7.6's settings: conditions (channels, reservation
types, minimum and maximum nights), owner stays, and assignment to the least-loaded member of
the rule's team. Rules without these settings behave as in SPEC 6.1 (tests/integration/
test_recurring.py, unchanged)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tests.integration.test_recurring import (
    SYNC_AS_OF,
    events,
    reservation_rule,
    set_stay,
    sync,
    ticket_of,
)
from tests.support import factories as f


def linked_rules(session, stay) -> set:
    session.commit()
    return set(
        session.execute(
            text(
                "SELECT l.recurring_rule_id FROM service.ticket_recurring l"
                " JOIN service.tickets t ON t.id = l.ticket_id"
                " WHERE l.reservation_id = :s AND t.status <> 'cancelled'"
            ),
            {"s": stay},
        ).scalars()
    )


def test_conditions_choose_the_stays_a_ticket_rule_applies_to(celery_app, session):
    prop = f.property_(session, name="Dune House")
    plain = reservation_rule(session, properties=[prop], title_template="plain")
    vrbo = reservation_rule(session, properties=[prop], channels=["vrbo"], title_template="vrbo")
    owners = reservation_rule(
        session, properties=[prop], reservation_types=["owner_stay"], title_template="owners"
    )
    long_ = reservation_rule(session, properties=[prop], min_nights=7, title_template="deep")
    short = reservation_rule(session, properties=[prop], max_nights=2, title_template="short")
    direct_2 = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 3))
    vrbo_7 = f.reservation(session, prop, dt.date(2026, 7, 5), dt.date(2026, 7, 12), source="vrbo")
    owner_3 = f.reservation(
        session,
        prop,
        dt.date(2026, 7, 20),
        dt.date(2026, 7, 23),
        source="owner",
        reservation_type="owner_stay",
    )
    session.commit()
    for stay in (direct_2, vrbo_7, owner_3):
        sync(celery_app, stay, SYNC_AS_OF)

    assert linked_rules(session, direct_2) == {plain, short}
    assert linked_rules(session, vrbo_7) == {plain, vrbo, long_}
    # An owner stay gets tickets only from a rule that names owner stays.
    assert linked_rules(session, owner_3) == {owners}
    assert ticket_of(session, owners, owner_3).title == "owners"


def test_a_stay_that_stops_meeting_a_rule_cancels_its_ticket_and_gets_it_back(celery_app, session):
    prop = f.property_(session)
    deep = reservation_rule(session, properties=[prop], min_nights=5, title_template="deep")
    plain = reservation_rule(session, properties=[prop], title_template="plain")
    stay = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 8))
    session.commit()
    sync(celery_app, stay, SYNC_AS_OF)
    set_stay(session, stay, check_out=dt.date(2026, 7, 3))  # 2 nights now

    result = sync(celery_app, stay, SYNC_AS_OF)

    assert result["cancelled"] == 1
    deep_ticket = ticket_of(session, deep, stay)
    assert deep_ticket.status == "cancelled"
    [ev] = events(session, deep_ticket.id, "cancelled")
    assert ev.data["reason"] == "rule_no_longer_applies"
    assert ticket_of(session, plain, stay).status == "open"  # moved, not cancelled
    # Long again: the ticket this job cancelled is reopened (and moved), not duplicated.
    set_stay(session, stay, check_out=dt.date(2026, 7, 9))
    again = sync(celery_app, stay, SYNC_AS_OF)
    assert (again["reopened"], again["created"]) == (1, 0)
    assert ticket_of(session, deep, stay).status == "open"
    assert ticket_of(session, deep, stay).due_at == dt.datetime(2026, 7, 9, 15, 0, tzinfo=dt.UTC)


def test_a_rule_assigns_each_new_ticket_to_the_least_loaded_active_member(celery_app, session):
    cleaners = f.team(session, code="HK")
    elsewhere = f.team(session, code="MT")
    busy = f.team_member(session, cleaners)
    idle = f.team_member(session, cleaners)
    away = f.team_member(session, cleaners)
    session.execute(
        text("UPDATE team.team_directory SET status = 'on_leave' WHERE id = :m"), {"m": away}
    )
    # busy joined the team first (ties go to the longest-serving member).
    session.execute(
        text("UPDATE team.team_directory SET created_at = now() - interval '1 year' WHERE id = :m"),
        {"m": busy},
    )
    prop = f.property_(session)
    # busy has two open tickets of the team; idle has one closed one and one of another team.
    for status, agent, team in (
        ("open", busy, cleaners),
        ("in_progress", busy, cleaners),
        ("closed", idle, cleaners),
        ("open", idle, elsewhere),
    ):
        f.ticket(session, status=status, current_agent_id=agent, current_team_id=team)
    assigned = reservation_rule(session, properties=[prop], team_id=cleaners, assign_to_member=True)
    unassigned = reservation_rule(
        session, properties=[prop], team_id=cleaners, title_template="team only"
    )
    first = f.reservation(session, prop, dt.date(2026, 7, 1), dt.date(2026, 7, 3))
    second = f.reservation(session, prop, dt.date(2026, 7, 10), dt.date(2026, 7, 12))
    session.commit()

    sync(celery_app, first, SYNC_AS_OF)
    assert ticket_of(session, assigned, first).current_agent_id == idle
    assert ticket_of(session, unassigned, first).current_agent_id is None
    # idle has one open ticket of the team now, busy two: idle again; then 2 each, a tie.
    sync(celery_app, second, SYNC_AS_OF)
    assert ticket_of(session, assigned, second).current_agent_id == idle
    third = f.reservation(session, prop, dt.date(2026, 7, 20), dt.date(2026, 7, 22))
    session.commit()
    sync(celery_app, third, SYNC_AS_OF)
    assert ticket_of(session, assigned, third).current_agent_id == busy  # 2 each: the elder
