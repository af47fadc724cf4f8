"""Calendar rules: the tickets of RRULE occurrences within lead time (SPEC 6.1).

A run of `generate_tickets`:

1. loads the active calendar rules and, in one query, the distinct time zones of each rule's
   target properties;
2. expands each rule once per time zone (not once per property) with python-dateutil, over
   [as_of - CATCH_UP_LOOKBACK, as_of + lead_minutes];
3. issues one statement (queries.GENERATE_SQL) that joins those occurrences with the target
   properties of their zone, drops the occurrences already considered (the calendar key of
   service.ticket_recurring), decides each one (skip policy, missed policy), and inserts the
   tickets, their links and their `created` events, set-based.

Idempotency is the key (recurring_rule_id, property_id, occurrence_at) of ticket_recurring: the
statement inserts the tickets first and their links from them with ON CONFLICT DO NOTHING (the
link's foreign key needs the ticket to exist), and a ticket whose link lost a race with a
concurrent run is deleted again in the same transaction (`orphans`), so each occurrence has one
ticket however many runs overlap. The job is also a singleton, so overlapping runs are rare.

What a run costs: every occurrence of the window [as_of - 7 days, as_of + lead] is checked for
every target property on each run, one probe of that unique index per (rule, property,
occurrence); what is new is then inserted. So the cost of a run follows the rules' frequency x
(lead + 7 days) x properties, never the history in ticket_recurring. There is deliberately no
"generated up to" mark per rule: a property that joins a rule's resort, or becomes active, must
still get the occurrences already inside the window that the other properties got earlier.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from db.session import local_settings
from tasks.recurring import queries as q
from tasks.recurring.rrules import (
    CATCH_UP_LOOKBACK,
    MISSED_AFTER,
    InvalidRule,
    expand,
    parse_rrule,
    zone,
)
from workers.base import NotFound

log = logging.getLogger("cmw.jobs.recurring")


@dataclass
class CalendarPlan:
    """What one run will insert: the occurrences of every (rule, zone), as parallel arrays."""

    as_of: dt.datetime
    property_id: uuid.UUID | None = None
    rules: int = 0
    rule_zones: int = 0
    invalid_rules: list[str] = field(default_factory=list)
    rule_ids: list[uuid.UUID] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    occurrences: list[dt.datetime] = field(default_factory=list)
    local_dates: list[dt.date] = field(default_factory=list)

    def params(self) -> dict[str, Any]:
        """The bound parameters of q.GENERATE_SQL."""
        return {
            "rule_ids": self.rule_ids,
            "zones": self.zones,
            "occurrences": self.occurrences,
            "local_dates": self.local_dates,
            "distinct_rule_ids": sorted(set(self.rule_ids)),
            "property_id": self.property_id,
            "missed_before": self.as_of - MISSED_AFTER,
            "as_of": self.as_of,
        }


def check_filters(
    session: Session, rule_id: uuid.UUID | None, property_id: uuid.UUID | None
) -> None:
    """An unknown id in the payload is bad input, not an empty run: NotFound. So is the id of a
    reservation rule: there is no calendar rule of that id."""
    if rule_id is not None:
        kind = session.execute(q.RULE_TRIGGER_TYPE_SQL, {"id": rule_id}).scalar_one_or_none()
        if kind is None:
            raise NotFound(f"unknown rule_id {rule_id}")
        if kind != "calendar":
            raise NotFound(
                f"rule {rule_id} is a {kind} rule; recurring.generate expands calendar rules"
                " (reservation rules run through recurring.sync_reservation)"
            )
    if property_id is not None:
        found = session.execute(q.PROPERTY_EXISTS_SQL, {"id": property_id}).scalar_one_or_none()
        if found is None:
            raise NotFound(f"unknown property_id {property_id}")


def plan_calendar_run(
    session: Session,
    *,
    as_of: dt.datetime,
    rule_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
) -> CalendarPlan:
    """Expand every active calendar rule once per time zone of its targets (no writes)."""
    plan = CalendarPlan(as_of=as_of, property_id=property_id)
    rules = session.execute(q.CALENDAR_RULES_SQL, {"rule_id": rule_id}).all()
    plan.rules = len(rules)
    if not rules:
        return plan
    zones: dict[uuid.UUID, list[str]] = {}
    for rid, tz_name in session.execute(
        q.ZONES_SQL, {"rule_ids": [r.id for r in rules], "property_id": property_id}
    ):
        zones.setdefault(rid, []).append(tz_name)
    # Occurrences older than the catch-up window are neither created nor recorded.
    start = as_of - CATCH_UP_LOOKBACK
    for rule in rules:
        rule_zones = sorted(zones.get(rule.id, ()))
        if not rule_zones:
            continue
        try:
            parsed = parse_rrule(rule.rrule, rule.dtstart)
        except InvalidRule as exc:
            # One bad rule must not stop every other rule's tickets: it is logged and counted
            # in the run's result (ops see it in job_runs) until someone fixes it.
            log.warning("recurring rule %s skipped: %s", rule.rule_code, exc)
            plan.invalid_rules.append(rule.rule_code)
            continue
        end = as_of + dt.timedelta(minutes=rule.lead_minutes)
        for tz_name in rule_zones:
            try:
                tz = zone(tz_name)
            except InvalidRule as exc:
                log.warning("recurring rule %s: properties skipped: %s", rule.rule_code, exc)
                continue
            plan.rule_zones += 1
            for occ in expand(parsed, tz, start, end, until=rule.until):
                plan.rule_ids.append(rule.id)
                plan.zones.append(tz_name)
                plan.occurrences.append(occ.at)
                plan.local_dates.append(occ.local_date)
    return plan


def execute_plan(session: Session, plan: CalendarPlan) -> dict[str, int]:
    """Insert the plan's tickets, links and events in one statement; returns the counts."""
    counts = {"created": 0, "skipped": 0, "missed": 0}
    if not plan.occurrences:
        return counts
    with local_settings(session, **q.GENERATE_SETTINGS):
        row = session.execute(q.GENERATE_SQL, plan.params()).one()
    if row.orphans:
        # Only when a concurrent run inserted the same links first (see the module docstring).
        session.execute(q.DELETE_ORPHANS_SQL, {"ids": list(row.orphans)})
        log.info("recurring.generate: %d duplicate tickets of a concurrent run removed",
                 len(row.orphans))  # fmt: skip
    return {"created": row.created, "skipped": row.skipped, "missed": row.missed}


def generate_tickets(
    session: Session,
    *,
    as_of: dt.datetime,
    rule_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Create the tickets of calendar-rule occurrences due within lead time at `as_of`.

    Returns counts: rules considered, (rule, zone) expansions, occurrences expanded, tickets
    created, occurrences skipped (skip policy) and missed (missed_policy='skip'), and the
    codes of rules that could not be expanded.
    """
    check_filters(session, rule_id, property_id)
    plan = plan_calendar_run(session, as_of=as_of, rule_id=rule_id, property_id=property_id)
    counts = execute_plan(session, plan)
    return {
        "rules": plan.rules,
        "rule_zones": plan.rule_zones,
        "occurrences": len(plan.occurrences),
        **counts,
        "invalid_rules": plan.invalid_rules,
    }
