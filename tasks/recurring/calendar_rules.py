"""Calendar rules: the tickets of RRULE occurrences within lead time (SPEC 6.1).

A run of `generate_tickets`:

1. loads the active calendar rules and, in one query, the distinct time zones of each rule's
   target properties;
2. expands each rule once per time zone (not once per property) with python-dateutil, over
   [as_of - CATCH_UP_LOOKBACK, as_of + lead_minutes];
3. issues one statement (`GENERATE_SQL`) that joins those occurrences with the target
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

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.recurring.common import (
    LIVE_STAYS_SQL,
    OCCUPYING_TYPES_SQL,
    TARGETS_SQL,
    fill_template_sql,
)
from tasks.recurring.rrules import (
    CATCH_UP_LOOKBACK,
    MISSED_AFTER,
    InvalidRule,
    expand,
    parse_rrule,
    zone,
)
from workers.base import PayloadError

log = logging.getLogger("cmw.jobs.recurring")

RULES_SQL = text(
    "SELECT id, rule_code, rrule, dtstart, until, lead_minutes FROM service.recurring_rules"
    " WHERE is_active AND trigger_type = 'calendar'"
    " AND (CAST(:rule_id AS uuid) IS NULL OR id = CAST(:rule_id AS uuid))"
    " ORDER BY rule_code"
)

ZONES_SQL = text(
    f"""
    WITH rules AS (
        SELECT id, scope_type FROM service.recurring_rules
        WHERE id = ANY(CAST(:rule_ids AS uuid[]))
    )
    SELECT DISTINCT rule_id, timezone FROM ({TARGETS_SQL}) AS tg
    """
)

# The occurrences arrive as parallel arrays, one element per (rule, zone, occurrence); the
# target properties are joined by zone. A property is occupied on a local date D when a live
# guest or owner stay has check_in <= D < check_out (ix_reservations_property_dates); the
# EXISTS is evaluated only for rules with a skip policy (CASE is lazy).
GENERATE_SQL = text(
    f"""
    WITH occ AS (
        SELECT o.rule_id, o.timezone, o.occurrence_at, o.local_date
        FROM unnest(CAST(:rule_ids AS uuid[]), CAST(:zones AS text[]),
                    CAST(:occurrences AS timestamptz[]), CAST(:local_dates AS date[]))
             AS o(rule_id, timezone, occurrence_at, local_date)
    ),
    rules AS (
        SELECT * FROM service.recurring_rules
        WHERE id = ANY(CAST(:distinct_rule_ids AS uuid[]))
          AND is_active AND trigger_type = 'calendar'
    ),
    targets AS ({TARGETS_SQL}),
    -- The occurrences of each rule's zone at its target properties, without those already
    -- considered. One probe of the calendar key's unique index per candidate, by
    -- construction: OFFSET 0 keeps the NOT EXISTS a per-row subplan whose three equalities
    -- are index conditions. Turned into an anti-join, it was planned (whenever the statistics
    -- called ticket_recurring empty) as a scan of the whole index filtered per candidate,
    -- while this very statement fills that index: quadratic, 9 minutes instead of 40 seconds
    -- for 97k tickets. The rule's template travels with each row, so that nothing below joins
    -- two large CTEs (the planner expects a row or two from each and would rescan one per row
    -- of the other); only `rules`, a handful of rows, is joined again.
    fresh AS (
        SELECT o.rule_id, o.occurrence_at, o.local_date, tg.property_id, tg.property_name,
               r.ticket_type, r.category, r.priority, r.title_template, r.description,
               r.team_id, r.estimated_minutes, r.skip_policy, r.missed_policy
        FROM occ o
        JOIN rules r ON r.id = o.rule_id
        JOIN targets tg ON tg.rule_id = o.rule_id AND tg.timezone = o.timezone
        WHERE NOT EXISTS (
            SELECT 1 FROM service.ticket_recurring l
            WHERE l.recurring_rule_id = o.rule_id AND l.property_id = tg.property_id
              AND l.occurrence_at = o.occurrence_at AND l.reservation_id IS NULL
            OFFSET 0
        )
    ),
    decided AS MATERIALIZED (
        SELECT f.rule_id, f.occurrence_at, f.local_date, f.property_id, f.property_name,
               f.ticket_type, f.category, f.priority, f.title_template, f.description,
               f.team_id, f.estimated_minutes,
               ops.uuid_generate_v7() AS ticket_id,
               CASE
                   WHEN CASE f.skip_policy
                            WHEN 'none' THEN false
                            ELSE (f.skip_policy = 'skip_if_occupied') = EXISTS (
                                SELECT 1 FROM reservations.reservations s
                                WHERE s.property_id = f.property_id
                                  AND s.check_in <= f.local_date AND s.check_out > f.local_date
                                  AND s.status IN {LIVE_STAYS_SQL}
                                  AND s.reservation_type IN {OCCUPYING_TYPES_SQL}
                            )
                        END
                       THEN 'skipped'
                   WHEN f.occurrence_at < CAST(:missed_before AS timestamptz)
                        AND f.missed_policy = 'skip'
                       THEN 'missed'
                   ELSE 'created'
               END AS outcome
        FROM fresh f
    ),
    new_tickets AS (
        INSERT INTO service.tickets (id, ticket_type, category, title, description, priority,
                                     source, property_id, current_team_id, due_at,
                                     estimated_minutes)
        SELECT d.ticket_id, d.ticket_type, d.category,
               {fill_template_sql("d.title_template", "d.property_name", "d.local_date", "NULL")},
               {fill_template_sql("d.description", "d.property_name", "d.local_date", "NULL")},
               d.priority, 'recurring', d.property_id, d.team_id, d.occurrence_at,
               d.estimated_minutes
        FROM decided d
        WHERE d.outcome = 'created'
        RETURNING id
    ),
    links AS (
        INSERT INTO service.ticket_recurring (ticket_id, recurring_rule_id, property_id,
                                              occurrence_at, outcome)
        -- Straight from `decided`: every created row's ticket is inserted by new_tickets above
        -- (its foreign key is checked at the end of the statement). Joining the two CTEs
        -- instead invites a nested loop: the planner expects a row or two from each.
        SELECT CASE WHEN d.outcome = 'created' THEN d.ticket_id END, d.rule_id,
               d.property_id, d.occurrence_at, d.outcome
        FROM decided d
        ON CONFLICT (recurring_rule_id, property_id, occurrence_at)
            WHERE reservation_id IS NULL DO NOTHING
        RETURNING ticket_id, recurring_rule_id, occurrence_at, outcome
    ),
    events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, actor, data)
        SELECT l.ticket_id, 'created', 'system',
               jsonb_build_object(
                   'source', 'recurring',
                   'recurring_rule_id', l.recurring_rule_id,
                   'rule_code', r.rule_code,
                   'occurrence_at', l.occurrence_at,
                   'caught_up', l.occurrence_at < CAST(:missed_before AS timestamptz),
                   'as_of', CAST(:as_of AS timestamptz))
        FROM links l
        JOIN rules r ON r.id = l.recurring_rule_id
        WHERE l.ticket_id IS NOT NULL
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE outcome = 'created') AS created,
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped,
           count(*) FILTER (WHERE outcome = 'missed') AS missed,
           -- Tickets whose link lost a race: a set difference (hashed or sorted), never a
           -- nested loop between the two CTEs.
           ARRAY(SELECT id FROM new_tickets
                 EXCEPT ALL
                 SELECT ticket_id FROM links WHERE ticket_id IS NOT NULL) AS orphans
    FROM links
    """
)

# Planner settings for GENERATE_SQL alone (SET LOCAL, undone by PLAN_RESET right after it):
# - enable_seqscan off: the statement probes ticket_recurring for every candidate while it is
#   inserting into that same table. Whenever the statistics call the table empty (a fresh
#   install, or straight after a VACUUM that truncated it) a sequential scan looks free, and
#   each one would also read every row the statement has inserted so far (quadratic; see
#   `fresh` in GENERATE_SQL). No other table of the statement is worth a sequential scan
#   either (properties has no index on status and is still scanned whole, the only path);
# - jit off: at volume the estimated cost passes jit_above_cost, and compiling expressions
#   does not pay off for an INSERT bound by index and foreign-key work.
PLAN_SETTINGS = (text("SET LOCAL enable_seqscan = off"), text("SET LOCAL jit = off"))
PLAN_RESET = (text("SET LOCAL enable_seqscan TO DEFAULT"), text("SET LOCAL jit TO DEFAULT"))

DELETE_ORPHANS_SQL = text("DELETE FROM service.tickets WHERE id = ANY(CAST(:ids AS uuid[]))")


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
        """The bound parameters of GENERATE_SQL."""
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
    """An unknown id (or a reservation rule) in the payload is bad input, not an empty run."""
    if rule_id is not None:
        kind = session.execute(
            text("SELECT trigger_type FROM service.recurring_rules WHERE id = :id"),
            {"id": rule_id},
        ).scalar_one_or_none()
        if kind is None:
            raise PayloadError(f"unknown rule_id {rule_id}")
        if kind != "calendar":
            raise PayloadError(
                f"rule {rule_id} is a {kind} rule; recurring.generate expands calendar rules"
                " (reservation rules run through recurring.sync_reservation)"
            )
    if property_id is not None:
        found = session.execute(
            text("SELECT 1 FROM property.properties WHERE id = :id"), {"id": property_id}
        ).scalar_one_or_none()
        if found is None:
            raise PayloadError(f"unknown property_id {property_id}")


def plan_calendar_run(
    session: Session,
    *,
    as_of: dt.datetime,
    rule_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
) -> CalendarPlan:
    """Expand every active calendar rule once per time zone of its targets (no writes)."""
    plan = CalendarPlan(as_of=as_of, property_id=property_id)
    rules = session.execute(RULES_SQL, {"rule_id": rule_id}).all()
    plan.rules = len(rules)
    if not rules:
        return plan
    zones: dict[uuid.UUID, list[str]] = {}
    for rid, tz_name in session.execute(
        ZONES_SQL, {"rule_ids": [r.id for r in rules], "property_id": property_id}
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
    for setting in PLAN_SETTINGS:
        session.execute(setting)
    row = session.execute(GENERATE_SQL, plan.params()).one()
    for setting in PLAN_RESET:
        session.execute(setting)
    if row.orphans:
        # Only when a concurrent run inserted the same links first (see the module docstring).
        session.execute(DELETE_ORPHANS_SQL, {"ids": list(row.orphans)})
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
