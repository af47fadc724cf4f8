"""Recording SLA breaches and warnings: one statement each, exactly once by construction.

A breach is recorded by one SQL statement per kind (response, resolution) whose data-modifying
CTEs do everything in one go:

1. `due`: the tickets to judge, locked (`FOR UPDATE`; the sweep adds `SKIP LOCKED` so it never
   waits behind an agent's open transaction and simply catches that ticket a minute later),
   with their values from before the breach;
2. `plan`: the escalation each will get (the policy's team, and its priority when that is
   higher: a lower `sort_order` is more urgent; never lowered);
3. `marked`: the conditional `UPDATE ... SET <kind>_breached_at = <kind>_due_at ... WHERE
   <kind>_breached_at IS NULL`, which applies the same escalation;
4. the `ticket_misses` row (ON CONFLICT (ticket_id, sla_kind) DO NOTHING), the `sla_breached`
   event and the `comms.messages` notification (ON CONFLICT (dedupe_key) DO NOTHING), from
   `plan`, which has both the values from before (for the miss) and after (for the message).

Exactly once: a row is in `due` only if this transaction holds its lock and its
`<kind>_breached_at` is NULL in its latest version (a concurrent sweep's rows are skipped, or
waited for and re-checked), so every row of `due` is marked by this statement's UPDATE and by
no one else's; Python checks that `marked` and `due` have the same count and fails the
transaction otherwise. The unique keys are the second line of defence.

Plans that do not depend on estimates: no statement joins `due` to `service.tickets`. The
UPDATE finds its rows by primary key from the array of `due`'s ids, and the escalation and the
recipient are correlated lookups by primary key in the small policy, priority and team tables.
(A join lets the planner pick a hash join over a sequential scan of every ticket when it
expects many due rows or, on a table not yet analyzed, a nested loop that rescans an index
for every due row: both were measured, the second took minutes for 10,000 breaches.)

Times: `<kind>_breached_at`, the miss's `due_at` and `breached_at`, and the event's
`occurred_at` are all the deadline, not the moment the sweep noticed; that moment is the
event's `data.detected_at`. A warning's event and `sla_warned_at` are the warning instant.

Escalation is applied only to tickets still open: a late response or resolution found on a
finished ticket is recorded (miss, event, message) but reassigning a closed ticket would only
be noise.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from db.models.service import (
    RESOLUTION_PENDING_SQL,
    RESPONSE_PENDING_SQL,
    TICKET_OPEN_SQL,
    WARNING_PENDING_SQL,
)
from db.settings import get_settings

KINDS = ("response", "resolution")

_PENDING = {"response": RESPONSE_PENDING_SQL, "resolution": RESOLUTION_PENDING_SQL}
_AS_OF = "CAST(:as_of AS timestamptz)"
# The instant a targeted judgement compares the deadline with: when the clock stopped (the
# first response / the resolution), else now for an open ticket; NULL (no judgement) for a
# ticket finished without that instant, e.g. cancelled unanswered — the sweep judged it while
# it was open.
_CLOCK_END = {
    "response": f"""CASE WHEN first_response_at IS NOT NULL THEN least(first_response_at, {_AS_OF})
                         WHEN {TICKET_OPEN_SQL} THEN {_AS_OF}
                         WHEN resolved_at IS NOT NULL THEN least(resolved_at, {_AS_OF}) END""",
    "resolution": f"""CASE WHEN resolved_at IS NOT NULL THEN least(resolved_at, {_AS_OF})
                           WHEN {TICKET_OPEN_SQL} THEN {_AS_OF} END""",
}


_DUE_COLUMNS = """id, status, priority, current_team_id, sla_policy_id, ticket_number, title"""


def _due_sweep(kind: str) -> str:
    # The WHERE repeats the partial index predicate word for word, so the planner walks
    # ix_tickets_<kind>_due_pending in deadline order and stops at the first future deadline.
    return f"""
        SELECT {_DUE_COLUMNS}, {kind}_due_at AS due_at
        FROM service.tickets
        WHERE {_PENDING[kind]} AND {kind}_due_at < {_AS_OF}
        ORDER BY {kind}_due_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED"""


def _due_targeted(kind: str) -> str:
    # A few tickets by id (the one sla.apply handles, or those the sweep just gave deadlines):
    # also catches a response or resolution that came after the deadline, which has already
    # left the pending index.
    return f"""
        SELECT {_DUE_COLUMNS}, {kind}_due_at AS due_at
        FROM service.tickets
        WHERE id = ANY(CAST(:ids AS uuid[])) AND {kind}_breached_at IS NULL
          AND {kind}_due_at < {_CLOCK_END[kind]}
        FOR UPDATE"""


def _escalated_team(row: str) -> str:
    """The team after escalation of ticket row `row` (its columns, as of before)."""
    return f"""CASE WHEN {row}.status NOT IN ('resolved', 'closed', 'cancelled')
        THEN coalesce((SELECT p.escalate_to_team_id FROM service.sla_policies p
                       WHERE p.id = {row}.sla_policy_id), {row}.current_team_id)
        ELSE {row}.current_team_id END"""


def _escalated_priority(row: str) -> str:
    """The priority after escalation: the policy's, when it is more urgent (raise, never
    lower), on an open ticket."""
    return f"""coalesce((SELECT p.escalate_priority FROM service.sla_policies p
                  JOIN ref.ticket_priority_key ep ON ep.code = p.escalate_priority
                  JOIN ref.ticket_priority_key cp ON cp.code = {row}.priority
                  WHERE p.id = {row}.sla_policy_id AND ep.sort_order < cp.sort_order
                    AND {row}.status NOT IN ('resolved', 'closed', 'cancelled')),
                 {row}.priority)"""


# The UPDATE finds its rows by primary key from the ids of `due` (see the module docstring).
_BY_DUE_IDS = "t.id = ANY(ARRAY(SELECT id FROM due))"


def _breach_statement(kind: str, due: str) -> TextClause:
    return text(
        f"""
    WITH due AS ({due}
    ), plan AS (
        SELECT d.*, {_escalated_team("d")} AS new_team_id,
               {_escalated_priority("d")} AS new_priority
        FROM due d
    ), marked AS (
        UPDATE service.tickets t
        SET {kind}_breached_at = t.{kind}_due_at,
            current_team_id = {_escalated_team("t")},
            priority = {_escalated_priority("t")}
        WHERE {_BY_DUE_IDS} AND t.{kind}_breached_at IS NULL
        RETURNING t.id
    ), flagged AS (
        SELECT pl.*, (pl.new_team_id IS DISTINCT FROM pl.current_team_id
                      OR pl.new_priority <> pl.priority) AS escalated
        FROM plan pl
    ), misses AS (
        INSERT INTO service.ticket_misses
            (ticket_id, sla_kind, due_at, breached_at, sla_policy_id, priority, team_id)
        SELECT id, '{kind}', due_at, due_at, sla_policy_id, priority, current_team_id
        FROM flagged
        ON CONFLICT (ticket_id, sla_kind) DO NOTHING
        RETURNING ticket_id
    ), events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, occurred_at, actor, data)
        SELECT id, 'sla_breached', due_at, 'system',
               jsonb_build_object(
                   'sla_kind', '{kind}', 'due_at', due_at, 'sla_policy_id', sla_policy_id,
                   'detected_at', {_AS_OF}, 'escalated', escalated,
                   'team_id_before', current_team_id, 'team_id', new_team_id,
                   'priority_before', priority, 'priority', new_priority)
        FROM flagged
        RETURNING ticket_id
    ), messages AS (
        INSERT INTO comms.messages
            (channel, recipient, subject, body, related_type, related_id, dedupe_key)
        SELECT 'email',
               coalesce((SELECT tm.notify_email FROM team.teams tm WHERE tm.id = f.new_team_id),
                        :ops_recipient),
               format('SLA %s deadline missed: %s', '{kind}', f.ticket_number),
               format('Ticket %s "%s" missed its %s deadline of %s UTC.%s',
                      f.ticket_number, f.title, '{kind}',
                      to_char(f.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                      CASE WHEN f.escalated THEN format(
                          ' Escalated: priority %s -> %s, team %s.', f.priority, f.new_priority,
                          coalesce((SELECT tm.name FROM team.teams tm
                                    WHERE tm.id = f.new_team_id), 'none'))
                      ELSE '' END),
               'ticket', f.id, 'sla:{kind}_breach:' || f.id
        FROM flagged f
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM due) AS due,
           (SELECT count(*) FROM marked) AS breaches,
           (SELECT count(*) FROM flagged WHERE escalated) AS escalations,
           (SELECT count(*) FROM misses) AS misses,
           (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM messages) AS messages"""
    )


SWEEP_BREACH = {kind: _breach_statement(kind, _due_sweep(kind)) for kind in KINDS}
TARGETED_BREACH = {kind: _breach_statement(kind, _due_targeted(kind)) for kind in KINDS}

# Warnings: at warn_at_pct of the resolution time, once, for an unbreached open ticket. A
# ticket whose resolution deadline has passed too gets its breach instead: the breaches run
# first, and the outer filter skips any a full breach batch left for the next sweep. (That
# filter is outside the locking subquery on purpose: inside, a condition on resolution_due_at
# would tempt the planner to walk ix_tickets_resolution_due_pending, every unresolved ticket,
# instead of the warning index; a filter is never pushed below a LIMIT.)
SWEEP_WARNING = text(
    f"""
    WITH due AS (
        SELECT * FROM (
            SELECT id, ticket_number, title, resolution_warn_due_at AS warn_at,
                   resolution_due_at AS due_at, current_team_id AS team_id, sla_policy_id
            FROM service.tickets
            WHERE {WARNING_PENDING_SQL} AND resolution_warn_due_at < {_AS_OF}
            ORDER BY resolution_warn_due_at
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        ) locked
        WHERE due_at >= {_AS_OF}
    ), marked AS (
        UPDATE service.tickets t
        SET sla_warned_at = t.resolution_warn_due_at
        WHERE {_BY_DUE_IDS} AND t.sla_warned_at IS NULL
        RETURNING t.id
    ), events AS (
        INSERT INTO service.ticket_events (ticket_id, event_type, occurred_at, actor, data)
        SELECT id, 'sla_warning', warn_at, 'system',
               jsonb_build_object('sla_kind', 'resolution', 'due_at', due_at,
                                  'warn_at', warn_at, 'sla_policy_id', sla_policy_id,
                                  'detected_at', {_AS_OF})
        FROM due
        RETURNING ticket_id
    ), messages AS (
        INSERT INTO comms.messages
            (channel, recipient, subject, body, related_type, related_id, dedupe_key)
        SELECT 'email',
               coalesce((SELECT tm.notify_email FROM team.teams tm WHERE tm.id = d.team_id),
                        :ops_recipient),
               format('SLA resolution deadline approaching: %s', d.ticket_number),
               format('Ticket %s "%s" must be resolved by %s UTC.', d.ticket_number, d.title,
                      to_char(d.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')),
               'ticket', d.id, 'sla:resolution_warning:' || d.id
        FROM due d
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM due) AS due,
           (SELECT count(*) FROM marked) AS warnings,
           (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM messages) AS messages"""
)


class ExactlyOnceViolation(RuntimeError):
    """A locked, due row was not marked: never expected; the whole sweep is rolled back."""


def _check(kind: str, row) -> None:
    marked = row.breaches if kind in KINDS else row.warnings
    if marked != row.due:
        raise ExactlyOnceViolation(f"{kind}: {row.due} rows locked as due, {marked} marked")


@dataclass
class Counts:
    """What the breach and warning statements did; added up across batches and kinds."""

    response_breaches: int = 0
    resolution_breaches: int = 0
    escalations: int = 0
    misses: int = 0
    warnings: int = 0
    events: int = 0
    messages: int = 0

    def add_breaches(self, kind: str, row) -> int:
        _check(kind, row)
        if kind == "response":
            self.response_breaches += row.breaches
        else:
            self.resolution_breaches += row.breaches
        self.escalations += row.escalations
        self.misses += row.misses
        self.events += row.events
        self.messages += row.messages
        return row.breaches

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def record_breaches_of(
    session: Session, ticket_ids: list[uuid.UUID], *, as_of: dt.datetime, counts: Counts
) -> None:
    """Judge these tickets (both kinds) and record what they missed; they should already be
    locked by the caller's transaction."""
    if not ticket_ids:
        return
    for kind in KINDS:
        row = session.execute(
            TARGETED_BREACH[kind],
            {"ids": ticket_ids, "as_of": as_of, "ops_recipient": get_settings().cmw_ops_email},
        ).one()
        counts.add_breaches(kind, row)


def record_due_breaches(
    session: Session, kind: str, *, as_of: dt.datetime, limit: int, counts: Counts
) -> int:
    """One batch of up to `limit` pending tickets past their `kind` deadline; returns how many."""
    row = session.execute(
        SWEEP_BREACH[kind],
        {"as_of": as_of, "limit": limit, "ops_recipient": get_settings().cmw_ops_email},
    ).one()
    return counts.add_breaches(kind, row)


def record_due_warnings(session: Session, *, as_of: dt.datetime, limit: int, counts: Counts) -> int:
    row = session.execute(
        SWEEP_WARNING,
        {"as_of": as_of, "limit": limit, "ops_recipient": get_settings().cmw_ops_email},
    ).one()
    _check("warning", row)
    counts.warnings += row.warnings
    counts.events += row.events
    counts.messages += row.messages
    return row.warnings
