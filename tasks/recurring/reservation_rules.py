"""Reservation rules: the tickets of one stay, kept right as the stay changes (SPEC 6.1).

`sync_reservation` brings one stay's reservation-rule tickets to where they should be:

- a live stay (confirmed, checked in or out) gets one ticket per rule whose conditions it
  meets (SPEC 7.6: its type is among the rule's reservation_types, '{guest}' unless the rule
  says otherwise, so owner stays get tickets only from rules that name them; its source among
  the rule's channels; its nights within min_nights..max_nights), due on the anchor's local
  date at the rule's local_time plus offset_minutes (lead time does not apply); an anchor more
  than an hour past is "missed": created when the rule catches up (and it is at most
  CATCH_UP_LOOKBACK old), otherwise recorded as missed;
- a rule with assign_to_member gives each new ticket to the active member of its team with
  the fewest open tickets of that team (ties: the longest-serving member);
- a live stay that no longer meets a rule's conditions (shortened below min_nights, another
  channel) has that rule's not-started tickets cancelled with an event (started ones are left
  to their team: the stay still happens); they reopen if it meets them again;
- when its dates (or its property) change, its unfinished tickets move, with a `moved` event;
- when it is cancelled (or stops being a live guest stay), its tickets nobody has started are
  cancelled with an event; started ones are left alone and their team is told through
  comms.messages; if it is confirmed again, the tickets this job cancelled are reopened;
- a departure with another arrival on the same day at the same property (a back-to-back
  turnover) has its check-out tickets marked in the title and raised to priority high, and
  unmarked again when that arrival goes away, whichever of the two stays is synced.

A reservation rule's skip_policy is not applied: its ticket exists because of its stay, and
SPEC 6.1's occupancy test ("a confirmed stay covers the local date") is about calendar work.

Stays of one property are synced one at a time (a transaction-scoped advisory lock per
property), because a stay's turnover marks depend on its neighbours; the reservation key of
service.ticket_recurring (recurring_rule_id, reservation_id) keeps creation idempotent on top.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from tasks.recurring.common import (
    FINISHED_TICKET_STATUSES,
    LIVE_STAY_STATUSES,
    LIVE_STAYS_SQL,
    NOT_STARTED_SQL,
    OCCUPYING_TYPES_SQL,
    OPEN_TICKET_SQL,
    STARTED_SQL,
    TURNOVER_PREFIX,
    TURNOVER_PRIORITY,
    fill_template_sql,
    sql_list,
)
from tasks.recurring.rrules import (
    CATCH_UP_LOOKBACK,
    MISSED_AFTER,
    InvalidRule,
    reservation_due,
    zone,
)
from workers.base import PayloadError
from workers.settings import get_settings

log = logging.getLogger("cmw.jobs.recurring")

# Written into the data of the events this job writes, so a later sync can tell its own
# cancellations (which a re-confirmed stay undoes) from a person's.
ACTOR_TAG = "recurring.sync_reservation"
FINISHED_SQL = sql_list(FINISHED_TICKET_STATUSES)


def raise_to_turnover_priority_sql(priority: str) -> str:
    """`priority` raised to 'high' unless it is already as urgent (ref sort_order)."""
    return (
        f"CASE WHEN (SELECT sort_order FROM ref.ticket_priority_key WHERE code = {priority})"
        f" > (SELECT sort_order FROM ref.ticket_priority_key WHERE code = '{TURNOVER_PRIORITY}')"
        f" THEN '{TURNOVER_PRIORITY}' ELSE {priority} END"
    )


STAY_SQL = text(
    "SELECT s.id, s.property_id, s.check_in, s.check_out, s.booked_at, s.status,"
    " s.reservation_type, s.source, s.nights, s.confirmation_code, p.timezone,"
    " p.name AS property_name,"
    " p.status AS property_status, p.resort_id"
    " FROM reservations.reservations s JOIN property.properties p ON p.id = s.property_id"
    " WHERE s.id = :id"
)

LINKED_PROPERTIES_SQL = text(
    "SELECT DISTINCT property_id FROM service.ticket_recurring WHERE reservation_id = :id"
)

LOCK_PROPERTY_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")

# The active reservation rules whose targets cover the property (rule index on trigger_type).
RULES_SQL = text(
    """
    SELECT r.id, r.rule_code, r.anchor, r.local_time, r.offset_minutes, r.channels,
           r.reservation_types, r.min_nights, r.max_nights
    FROM service.recurring_rules r
    WHERE r.is_active AND r.trigger_type = 'reservation'
      AND (r.scope_type = 'all_properties'
           OR EXISTS (
               SELECT 1 FROM service.recurring_rule_targets t
               WHERE t.recurring_rule_id = r.id
                 AND (t.property_id = :property_id OR t.resort_id = :resort_id)
           ))
    ORDER BY r.rule_code
    """
)

# The active member of the rule's team with the fewest open tickets of that team (index
# ix_tickets_current_agent_id_open); ties go to the longest-serving member, then the id.
LEAST_LOADED_MEMBER_SQL = f"""(
    SELECT m.id FROM team.team_directory m
    WHERE m.team_id = r.team_id AND m.status = 'active'
    ORDER BY (SELECT count(*) FROM service.tickets o
              WHERE o.current_agent_id = m.id AND o.current_team_id = r.team_id
                AND o.{OPEN_TICKET_SQL}),
             m.created_at, m.id
    LIMIT 1
)"""

WANT_CTE = """
    want AS (
        SELECT w.rule_id, w.occurrence_at, w.local_date
        FROM unnest(CAST(:rule_ids AS uuid[]), CAST(:occurrences AS timestamptz[]),
                    CAST(:local_dates AS date[])) AS w(rule_id, occurrence_at, local_date)
    )
"""

# Another live guest or owner stay arriving on stay `s`'s departure date, same property.
TURNOVER_EXISTS_SQL = f"""
    EXISTS (
        SELECT 1 FROM reservations.reservations n
        WHERE n.property_id = s.property_id AND n.check_in = s.check_out AND n.id <> s.id
          AND n.status IN {LIVE_STAYS_SQL} AND n.reservation_type IN {OCCUPYING_TYPES_SQL}
    )
"""

REOPEN_SQL = text(
    f"""
    WITH reopened AS (
        UPDATE service.tickets t SET status = 'open'
        FROM service.ticket_recurring l
        WHERE l.reservation_id = :reservation_id AND t.id = l.ticket_id
          AND l.recurring_rule_id = ANY(CAST(:rule_ids AS uuid[]))
          AND t.status = 'cancelled'
          AND (SELECT e.event_type || ':' || coalesce(e.data ->> 'by', '')
               FROM service.ticket_events e WHERE e.ticket_id = t.id
               ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) = :cancelled_by_us
        RETURNING t.id
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT id, 'reopened', 'system',
               jsonb_build_object('reason', 'reservation_reconfirmed', 'by', '{ACTOR_TAG}',
                                  'reservation_id', CAST(:reservation_id AS uuid))
        FROM reopened
        RETURNING 1
    )
    SELECT count(*) AS reopened, array_agg(id) AS ticket_ids FROM reopened
    """
)

# Unfinished tickets whose occurrence (or property) is no longer the stay's: due_at, property
# and title follow the stay; the link keeps the current occurrence; a `moved` event says from
# where to where. A turnover mark is kept here and re-decided by TURNOVER_SQL afterwards.
MOVE_SQL = text(
    f"""
    WITH {WANT_CTE},
    moving AS MATERIALIZED (
        SELECT l.id AS link_id, l.ticket_id, l.occurrence_at AS old_at,
               l.property_id AS old_property_id, w.occurrence_at AS new_at, w.local_date,
               r.title_template,
               left(t.title, length(:prefix)) = :prefix AS marked
        FROM service.ticket_recurring l
        JOIN want w ON w.rule_id = l.recurring_rule_id
        JOIN service.recurring_rules r ON r.id = l.recurring_rule_id
        JOIN service.tickets t ON t.id = l.ticket_id
        WHERE l.reservation_id = :reservation_id
          AND t.status NOT IN {FINISHED_SQL}
          AND (l.occurrence_at <> w.occurrence_at OR l.property_id <> :property_id)
    ),
    moved AS (
        UPDATE service.tickets t
        SET due_at = m.new_at,
            property_id = :property_id,
            title = CASE WHEN m.marked THEN :prefix ELSE '' END
                    || {
        fill_template_sql("m.title_template", ":property_name", "m.local_date", ":code")
    }
        FROM moving m
        WHERE t.id = m.ticket_id
        RETURNING t.id
    ),
    relinked AS (
        UPDATE service.ticket_recurring l
        SET occurrence_at = m.new_at, property_id = :property_id
        FROM moving m
        WHERE l.id = m.link_id
        RETURNING l.id
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT m.ticket_id, 'moved', 'system',
               jsonb_build_object(
                   'reason', 'reservation_changed', 'by', '{ACTOR_TAG}',
                   'reservation_id', CAST(:reservation_id AS uuid),
                   'from', m.old_at, 'to', m.new_at,
                   'from_property_id', m.old_property_id,
                   'to_property_id', CAST(:property_id AS uuid),
                   'check_in', CAST(:check_in AS date), 'check_out', CAST(:check_out AS date))
        FROM moving m
        RETURNING 1
    )
    SELECT count(*) FROM moving
    """
)

# A recorded "missed" whose occurrence has since moved is decided again, as if first seen.
FORGET_STALE_MISSED_SQL = text(
    f"""
    WITH {WANT_CTE}
    DELETE FROM service.ticket_recurring l
    USING want w
    WHERE l.reservation_id = :reservation_id AND l.recurring_rule_id = w.rule_id
      AND l.ticket_id IS NULL AND l.outcome <> 'created'
      AND l.occurrence_at <> w.occurrence_at
    """
)

# New occurrences: tickets first, then their links from them (the link's foreign key needs the
# ticket), ON CONFLICT on the reservation key; a ticket whose link lost a race is an orphan,
# deleted by the caller.
CREATE_SQL = text(
    f"""
    WITH {WANT_CTE},
    planned AS MATERIALIZED (
        SELECT w.rule_id, w.occurrence_at, w.local_date, r.rule_code,
               r.ticket_type, r.category, r.priority, r.title_template, r.description,
               r.team_id, r.estimated_minutes,
               CASE WHEN r.assign_to_member THEN {LEAST_LOADED_MEMBER_SQL} END AS agent_id,
               ops.uuid_generate_v7() AS ticket_id,
               r.anchor = 'check_out' AND {TURNOVER_EXISTS_SQL} AS turnover,
               CASE
                   WHEN w.occurrence_at >= CAST(:missed_before AS timestamptz) THEN 'created'
                   WHEN r.missed_policy = 'catch_up'
                        AND w.occurrence_at >= CAST(:catch_up_from AS timestamptz)
                       THEN 'created'
                   ELSE 'missed'
               END AS outcome
        FROM want w
        JOIN service.recurring_rules r ON r.id = w.rule_id
        JOIN reservations.reservations s ON s.id = CAST(:reservation_id AS uuid)
        WHERE NOT EXISTS (
            SELECT 1 FROM service.ticket_recurring l
            WHERE l.recurring_rule_id = w.rule_id AND l.reservation_id = s.id
        )
    ),
    new_tickets AS (
        INSERT INTO service.tickets (id, ticket_type, category, title, description, priority,
                                     source, property_id, reservation_id, current_team_id,
                                     current_agent_id, due_at, estimated_minutes)
        SELECT p.ticket_id, p.ticket_type, p.category,
               CASE WHEN p.turnover THEN :prefix ELSE '' END
               || {
        fill_template_sql("p.title_template", ":property_name", "p.local_date", ":code")
    },
               {fill_template_sql("p.description", ":property_name", "p.local_date", ":code")},
               CASE WHEN p.turnover THEN {raise_to_turnover_priority_sql("p.priority")}
                    ELSE p.priority END,
               'recurring', :property_id, :reservation_id, p.team_id, p.agent_id,
               p.occurrence_at, p.estimated_minutes
        FROM planned p
        WHERE p.outcome = 'created'
        RETURNING id
    ),
    links AS (
        INSERT INTO service.ticket_recurring (ticket_id, recurring_rule_id, property_id,
                                              reservation_id, occurrence_at, outcome)
        SELECT CASE WHEN p.outcome = 'created' THEN p.ticket_id END, p.rule_id, :property_id,
               :reservation_id, p.occurrence_at, p.outcome
        FROM planned p
        ON CONFLICT (recurring_rule_id, reservation_id) WHERE reservation_id IS NOT NULL
            DO NOTHING
        RETURNING ticket_id, outcome
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT l.ticket_id, 'created', 'system',
               jsonb_build_object(
                   'source', 'recurring', 'by', '{ACTOR_TAG}',
                   'recurring_rule_id', p.rule_id, 'rule_code', p.rule_code,
                   'reservation_id', CAST(:reservation_id AS uuid),
                   'occurrence_at', p.occurrence_at,
                   'caught_up', p.occurrence_at < CAST(:missed_before AS timestamptz),
                   'turnover', p.turnover)
        FROM links l
        JOIN planned p ON p.ticket_id = l.ticket_id
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE outcome = 'created') AS created,
           count(*) FILTER (WHERE outcome = 'missed') AS missed,
           array_agg(ticket_id) FILTER (WHERE ticket_id IS NOT NULL) AS ticket_ids,
           ARRAY(SELECT id FROM new_tickets
                 EXCEPT ALL
                 SELECT ticket_id FROM links WHERE ticket_id IS NOT NULL) AS orphans
    FROM links
    """
)

DELETE_ORPHANS_SQL = text("DELETE FROM service.tickets WHERE id = ANY(CAST(:ids AS uuid[]))")

# The stay is off: not-started tickets are cancelled (event); started ones stay as they are,
# and their team gets one message each (dedupe_key) and the ticket a note in its history.
CANCEL_SQL = text(
    f"""
    WITH linked AS (
        SELECT l.ticket_id FROM service.ticket_recurring l
        WHERE l.reservation_id = :reservation_id AND l.ticket_id IS NOT NULL
    ),
    cancelled AS (
        UPDATE service.tickets t SET status = 'cancelled'
        FROM linked
        WHERE t.id = linked.ticket_id AND t.status IN {NOT_STARTED_SQL}
        RETURNING t.id
    ),
    cancel_events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT id, 'cancelled', 'system',
               jsonb_build_object('reason', 'reservation_cancelled', 'by', '{ACTOR_TAG}',
                                  'reservation_id', CAST(:reservation_id AS uuid),
                                  'reservation_status', CAST(:status AS text),
                                  'reservation_type', CAST(:reservation_type AS text))
        FROM cancelled
        RETURNING 1
    ),
    started AS (
        SELECT t.id, t.ticket_number, t.title, t.status, tm.notify_email
        FROM linked
        JOIN service.tickets t ON t.id = linked.ticket_id
        LEFT JOIN team.teams tm ON tm.id = t.current_team_id
        WHERE t.status IN {STARTED_SQL}
    ),
    messages AS (
        INSERT INTO comms.messages (channel, recipient, subject, body, related_type,
                                    related_id, dedupe_key)
        SELECT 'email', coalesce(s.notify_email, :ops_recipient),
               format('Stay %s cancelled: %s is already under way', CAST(:code AS text),
                      s.ticket_number),
               format('The stay %s at %s (%s to %s) is %s. Ticket %s "%s" was already %s,'
                      ' so it was left as it is: finish or close it as appropriate.',
                      CAST(:code AS text), CAST(:property_name AS text), CAST(:check_in AS date),
                      CAST(:check_out AS date), CAST(:status AS text), s.ticket_number,
                      s.title, replace(s.status, '_', ' ')),
               'ticket', s.id, 'recurring:reservation_cancelled:' || s.id
        FROM started s
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING related_id
    ),
    note_events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT related_id, 'reservation_cancelled', 'system',
               jsonb_build_object('by', '{ACTOR_TAG}',
                                  'reservation_id', CAST(:reservation_id AS uuid),
                                  'reservation_status', CAST(:status AS text),
                                  'team_notified', true)
        FROM messages
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM cancelled) AS cancelled,
           (SELECT array_agg(id) FROM cancelled) AS ticket_ids,
           (SELECT count(*) FROM messages) AS notified
    """
)

# A live stay that no longer meets these rules' conditions: their tickets nobody has started
# are cancelled with an event (the stay still happens, so started work is left to its team).
CANCEL_RULES_SQL = text(
    f"""
    WITH cancelled AS (
        UPDATE service.tickets t SET status = 'cancelled'
        FROM service.ticket_recurring l
        WHERE l.reservation_id = :reservation_id AND t.id = l.ticket_id
          AND l.recurring_rule_id = ANY(CAST(:rule_ids AS uuid[]))
          AND t.status IN {NOT_STARTED_SQL}
        RETURNING t.id, l.recurring_rule_id
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT id, 'cancelled', 'system',
               jsonb_build_object('reason', 'rule_no_longer_applies', 'by', '{ACTOR_TAG}',
                                  'reservation_id', CAST(:reservation_id AS uuid),
                                  'recurring_rule_id', recurring_rule_id)
        FROM cancelled
        RETURNING 1
    )
    SELECT count(*) AS cancelled, array_agg(id) AS ticket_ids FROM cancelled
    """
)

# Turnover marks of the unfinished check-out tickets of live guest stays at the properties that
# have not yet left (check_out from :from_date), made to agree with the stays as they are now:
# marked (title prefix, priority raised to high) when another stay arrives on the departure
# date, unmarked (prefix removed, the rule's priority back unless someone changed it since)
# when none does. Driven from the property's stays (ix_reservations_property_dates), so its
# cost follows the stays of one property, not the history of its tickets.
TURNOVER_SQL = text(
    f"""
    WITH marks AS MATERIALIZED (
        SELECT t.id AS ticket_id, s.id AS reservation_id, r.priority AS rule_priority,
               left(t.title, length(:prefix)) = :prefix AS marked,
               {TURNOVER_EXISTS_SQL} AS turnover
        FROM reservations.reservations s
        JOIN service.ticket_recurring l ON l.reservation_id = s.id
        JOIN service.recurring_rules r
          ON r.id = l.recurring_rule_id AND r.trigger_type = 'reservation'
             AND r.anchor = 'check_out'
        JOIN service.tickets t ON t.id = l.ticket_id
        WHERE s.property_id = ANY(CAST(:property_ids AS uuid[]))
          AND s.check_out >= CAST(:from_date AS date)
          AND s.status IN {LIVE_STAYS_SQL} AND s.reservation_type IN {OCCUPYING_TYPES_SQL}
          AND t.status NOT IN {FINISHED_SQL}
    ),
    changed AS (
        UPDATE service.tickets t
        SET title = CASE WHEN c.turnover THEN :prefix || t.title
                         ELSE substr(t.title, length(:prefix) + 1) END,
            priority = CASE WHEN c.turnover THEN {raise_to_turnover_priority_sql("t.priority")}
                            WHEN t.priority = '{TURNOVER_PRIORITY}' THEN c.rule_priority
                            ELSE t.priority END
        FROM marks c
        WHERE t.id = c.ticket_id AND c.turnover <> c.marked
        RETURNING t.id, c.turnover, c.reservation_id, t.priority
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT id, CASE WHEN turnover THEN 'turnover_marked' ELSE 'turnover_cleared' END,
               'system',
               jsonb_build_object('by', '{ACTOR_TAG}', 'reservation_id', reservation_id,
                                  'priority', priority)
        FROM changed
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE turnover) AS marked,
           count(*) FILTER (WHERE NOT turnover) AS cleared,
           array_agg(id) AS ticket_ids
    FROM changed
    """
)


def load_stay(session: Session, reservation_id: uuid.UUID) -> Row:
    stay = session.execute(STAY_SQL, {"id": reservation_id}).one_or_none()
    if stay is None:
        raise PayloadError(f"unknown reservation_id {reservation_id}")
    return stay


def lock_properties(session: Session, property_ids: set[uuid.UUID]) -> None:
    """Serialise the syncs of stays of these properties (sorted: no lock-order deadlock)."""
    for pid in sorted(property_ids):
        session.execute(LOCK_PROPERTY_SQL, {"key": f"cmw.recurring.property:{pid}"})


def is_live(stay: Row) -> bool:
    """The stay happens (or happened): its tickets follow the rules' conditions."""
    return stay.status in LIVE_STAY_STATUSES


def meets_conditions(rule: Row, stay: Row) -> bool:
    """SPEC 7.6's conditions: reservation type, channel (the stay's source), nights."""
    return (
        stay.reservation_type in rule.reservation_types
        and (rule.channels is None or stay.source in rule.channels)
        and (rule.min_nights is None or stay.nights >= rule.min_nights)
        and (rule.max_nights is None or stay.nights <= rule.max_nights)
    )


def rules_for(session: Session, stay: Row) -> tuple[list[Row], list[Row]]:
    """The active rules targeting the stay's property: those whose conditions it meets, and
    the others."""
    rules = session.execute(
        RULES_SQL, {"property_id": stay.property_id, "resort_id": stay.resort_id}
    ).all()
    applicable = [r for r in rules if meets_conditions(r, stay)]
    return applicable, [r for r in rules if not meets_conditions(r, stay)]


def desired_occurrences(stay: Row, rules: list[Row]) -> dict[str, list[Any]]:
    """Each applicable rule's occurrence for the stay, as the arrays of WANT_CTE."""
    want: dict[str, list[Any]] = {"rule_ids": [], "occurrences": [], "local_dates": []}
    try:
        tz = zone(stay.timezone)
    except InvalidRule as exc:
        log.warning("reservation %s: no reservation-rule tickets: %s", stay.id, exc)
        return want
    for rule in rules:
        if rule.anchor == "check_in":
            anchor_date = stay.check_in
        elif rule.anchor == "check_out":
            anchor_date = stay.check_out
        else:  # booked: the local date of booked_at at the property
            anchor_date = stay.booked_at.astimezone(tz).date()
        occ = reservation_due(anchor_date, rule.local_time, rule.offset_minutes, tz)
        want["rule_ids"].append(rule.id)
        want["occurrences"].append(occ.at)
        want["local_dates"].append(occ.local_date)
    return want


@dataclass
class SyncOutcome:
    """What one sync did (the job's result), and the tickets whose SLA must be (re)applied:
    created, cancelled, reopened, or with a priority changed by a turnover mark."""

    summary: dict[str, Any]
    sla_ticket_ids: list[uuid.UUID] = field(default_factory=list)


def sync_reservation(
    session: Session, *, reservation_id: uuid.UUID, as_of: dt.datetime
) -> SyncOutcome:
    """Create, move, cancel, reopen and (un)mark the reservation-rule tickets of one stay."""
    stay = load_stay(session, reservation_id)
    linked = set(session.execute(LINKED_PROPERTIES_SQL, {"id": reservation_id}).scalars())
    locked = {stay.property_id, *linked}
    lock_properties(session, locked)
    # Read again under the lock: a sync that held it may have been about a changed stay.
    stay = load_stay(session, reservation_id)
    if stay.property_id not in locked:  # moved to another property meanwhile
        lock_properties(session, {stay.property_id})
        locked.add(stay.property_id)

    counts: dict[str, Any] = {
        "reservation_id": str(reservation_id),
        "rules": 0,
        "created": 0,
        "missed": 0,
        "moved": 0,
        "cancelled": 0,
        "notified": 0,
        "reopened": 0,
    }
    common = {
        "reservation_id": stay.id,
        "property_id": stay.property_id,
        "property_name": stay.property_name,
        "code": stay.confirmation_code,
        "check_in": stay.check_in,
        "check_out": stay.check_out,
        "status": stay.status,
        "reservation_type": stay.reservation_type,
        "prefix": TURNOVER_PREFIX,
    }
    sla_ticket_ids: list[uuid.UUID] = []
    if not is_live(stay):
        row = session.execute(
            CANCEL_SQL, {**common, "ops_recipient": get_settings().cmw_ops_email}
        ).one()
        counts["cancelled"], counts["notified"] = row.cancelled, row.notified
        sla_ticket_ids += row.ticket_ids or []
    else:
        applicable, others = rules_for(session, stay)
        if others:
            row = session.execute(
                CANCEL_RULES_SQL, {**common, "rule_ids": [r.id for r in others]}
            ).one()
            counts["cancelled"] = row.cancelled
            sla_ticket_ids += row.ticket_ids or []
        row = session.execute(
            REOPEN_SQL,
            {
                **common,
                "cancelled_by_us": f"cancelled:{ACTOR_TAG}",
                "rule_ids": [r.id for r in applicable],
            },
        ).one()
        counts["reopened"] = row.reopened
        sla_ticket_ids += row.ticket_ids or []
        # An inactive property gets no new tickets and keeps the ones it has as they are.
        if stay.property_status == "active":
            want = desired_occurrences(stay, applicable)
            counts["rules"] = len(want["rule_ids"])
            if want["rule_ids"]:
                params = {
                    **common,
                    **want,
                    "missed_before": as_of - MISSED_AFTER,
                    "catch_up_from": as_of - CATCH_UP_LOOKBACK,
                }
                counts["moved"] = session.execute(MOVE_SQL, params).scalar_one()
                session.execute(FORGET_STALE_MISSED_SQL, params)
                row = session.execute(CREATE_SQL, params).one()
                if row.orphans:
                    session.execute(DELETE_ORPHANS_SQL, {"ids": list(row.orphans)})
                counts["created"], counts["missed"] = row.created, row.missed
                sla_ticket_ids += row.ticket_ids or []
    turnover = session.execute(
        TURNOVER_SQL,
        {
            "property_ids": sorted(locked),
            "prefix": TURNOVER_PREFIX,
            # A day of slack for the zones behind UTC; departures before that are history.
            "from_date": as_of.date() - dt.timedelta(days=1),
        },
    ).one()
    counts["turnover_marked"], counts["turnover_cleared"] = turnover.marked, turnover.cleared
    sla_ticket_ids += turnover.ticket_ids or []
    return SyncOutcome(counts, sorted(set(sla_ticket_ids)))
