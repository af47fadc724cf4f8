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

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db.settings import get_settings
from tasks.recurring import queries as q
from tasks.recurring.common import ACTOR_TAG, LIVE_STAY_STATUSES, TURNOVER_PREFIX
from tasks.recurring.rrules import (
    CATCH_UP_LOOKBACK,
    MISSED_AFTER,
    InvalidRule,
    reservation_due,
    zone,
)
from workers.base import NotFound

log = logging.getLogger("cmw.jobs.recurring")


def load_stay(session: Session, reservation_id: uuid.UUID) -> Row:
    stay = session.execute(q.STAY_SQL, {"id": reservation_id}).one_or_none()
    if stay is None:
        raise NotFound(f"unknown reservation_id {reservation_id}")
    return stay


def lock_properties(session: Session, property_ids: set[uuid.UUID]) -> None:
    """Serialise the syncs of stays of these properties (sorted: no lock-order deadlock)."""
    for pid in sorted(property_ids):
        session.execute(q.LOCK_PROPERTY_SQL, {"key": f"cmw.recurring.property:{pid}"})


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
        q.RESERVATION_RULES_SQL, {"property_id": stay.property_id, "resort_id": stay.resort_id}
    ).all()
    applicable = [r for r in rules if meets_conditions(r, stay)]
    return applicable, [r for r in rules if not meets_conditions(r, stay)]


def desired_occurrences(stay: Row, rules: list[Row]) -> dict[str, list[Any]]:
    """Each applicable rule's occurrence for the stay, as the arrays of queries.WANT_CTE."""
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
    linked = set(session.execute(q.LINKED_PROPERTIES_SQL, {"id": reservation_id}).scalars())
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
            q.CANCEL_SQL, {**common, "ops_recipient": get_settings().cmw_ops_email}
        ).one()
        counts["cancelled"], counts["notified"] = row.cancelled, row.notified
        sla_ticket_ids += row.ticket_ids or []
    else:
        applicable, others = rules_for(session, stay)
        if others:
            row = session.execute(
                q.CANCEL_RULES_SQL, {**common, "rule_ids": [r.id for r in others]}
            ).one()
            counts["cancelled"] = row.cancelled
            sla_ticket_ids += row.ticket_ids or []
        row = session.execute(
            q.REOPEN_SQL,
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
                counts["moved"] = session.execute(q.MOVE_SQL, params).scalar_one()
                session.execute(q.FORGET_STALE_MISSED_SQL, params)
                row = session.execute(q.CREATE_SQL, params).one()
                if row.orphans:
                    session.execute(q.DELETE_ORPHANS_SQL, {"ids": list(row.orphans)})
                counts["created"], counts["missed"] = row.created, row.missed
                sla_ticket_ids += row.ticket_ids or []
    turnover = session.execute(
        q.TURNOVER_SQL,
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
