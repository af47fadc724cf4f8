"""Every SQL statement of the SLA engine (SPEC 6.2), one named constant each.

- sla.apply's (tasks.sla.apply): lock, read and update one ticket;
- the terms (tasks.sla.policy): `POLICY_MATCH_SQL`, the one fragment that chooses a ticket's
  policy, used both for one ticket and by the sweep's set-based fill, so the two never
  disagree; the priority's defaults; one policy by id; the business calendars;
- the breach and warning statements (tasks.sla.breaches explains how each records exactly
  once): per kind, the sweep's (`SWEEP_BREACH`, through the pending indexes) and the targeted
  one (`TARGETED_BREACH`, a few tickets by id), and `SWEEP_WARNING`;
- the sweep's (tasks.sla.sweep): the probe of what is due, the deadlines of tickets that have
  none, the pause clocks that disagree with their status.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import TextClause, text

from db.fragments import ticket_events_cte
from db.models.service import (
    NO_DEADLINES_SQL,
    PAUSE_CLOCK_STALE_SQL,
    PAUSED_SQL,
    RESOLUTION_PENDING_SQL,
    RESPONSE_PENDING_SQL,
    TICKET_OPEN_SQL,
    WARNING_PENDING_SQL,
)

# -- sla.apply ---------------------------------------------------------------------------------

# Lock one ticket for sla.apply (None: no such ticket).
LOCK_TICKET = text("SELECT id FROM service.tickets WHERE id = :ticket_id FOR UPDATE")
# The SLA columns of one ticket, as sla.apply reads them.
READ_TICKET = text(
    "SELECT id, status, created_at, resolved_at, sla_policy_id, response_due_at,"
    " resolution_due_at, resolution_warn_due_at, sla_paused_since, sla_paused_minutes,"
    " response_breached_at, resolution_breached_at"
    " FROM service.tickets WHERE id = :ticket_id"
)
# Write one ticket's terms, deadlines and pause clock.
UPDATE_TICKET_SLA = text(
    "UPDATE service.tickets SET sla_policy_id = :sla_policy_id,"
    " response_due_at = :response_due_at, resolution_due_at = :resolution_due_at,"
    " resolution_warn_due_at = :resolution_warn_due_at, sla_paused_since = :sla_paused_since,"
    " sla_paused_minutes = :sla_paused_minutes WHERE id = :id"
)

# -- the terms ----------------------------------------------------------------------------------

# The warning instant without a policy: 80% of the resolution time (SPEC 6.2).
DEFAULT_WARN_AT_PCT = Decimal("80")

# LATERAL subquery choosing a ticket's policy; the outer query names the ticket `t`.
POLICY_MATCH_SQL = """
    SELECT p.id, p.response_minutes, p.resolution_minutes, p.calendar_id, p.warn_at_pct
    FROM service.sla_policies p
    WHERE p.is_active AND p.priority = t.priority
      AND (p.ticket_type IS NULL OR p.ticket_type = t.ticket_type)
      AND (p.category IS NULL OR p.category = t.category)
    ORDER BY (p.ticket_type IS NOT NULL) DESC, (p.category IS NOT NULL) DESC,
             p.resolution_minutes, p.response_minutes, p.id
    LIMIT 1
"""

# The terms one ticket's type, category and priority select: its policy, else the defaults.
MATCH_TERMS = text(
    f"""
    SELECT pol.id AS policy_id,
           coalesce(pol.response_minutes, k.response_minutes) AS response_minutes,
           coalesce(pol.resolution_minutes, k.resolution_minutes) AS resolution_minutes,
           pol.calendar_id,
           coalesce(pol.warn_at_pct, {DEFAULT_WARN_AT_PCT}) AS warn_at_pct
    FROM service.tickets t
    JOIN ref.ticket_priority_key k ON k.code = t.priority
    LEFT JOIN LATERAL ({POLICY_MATCH_SQL}) pol ON true
    WHERE t.id = :ticket_id
    """
)
# The defaults of one ticket's priority (24x7, warning at 80%), whatever policies exist.
DEFAULT_TERMS = text(
    f"""
    SELECT NULL::uuid AS policy_id, k.response_minutes, k.resolution_minutes,
           NULL::uuid AS calendar_id, {DEFAULT_WARN_AT_PCT} AS warn_at_pct
    FROM service.tickets t JOIN ref.ticket_priority_key k ON k.code = t.priority
    WHERE t.id = :ticket_id
    """
)
# One policy's terms, active or not.
POLICY_TERMS = text(
    "SELECT id AS policy_id, response_minutes, resolution_minutes, calendar_id, warn_at_pct"
    " FROM service.sla_policies WHERE id = :policy_id"
)
# Business calendars by id (:ids), with their holidays.
CALENDARS = text(
    "SELECT c.id, c.timezone, c.weekly_hours,"
    " coalesce(array_agg(h.holiday_date) FILTER (WHERE h.holiday_date IS NOT NULL),"
    " '{}') AS holidays"
    " FROM service.business_calendars c"
    " LEFT JOIN service.business_calendar_holidays h ON h.calendar_id = c.id"
    " WHERE c.id = ANY(:ids) GROUP BY c.id"
)

# -- breaches and warnings ----------------------------------------------------------------------

# The two deadlines a ticket can breach.
KINDS = ("response", "resolution")

# Per kind, the predicate of its pending index (open, unbreached, with a deadline).
_PENDING = {"response": RESPONSE_PENDING_SQL, "resolution": RESOLUTION_PENDING_SQL}
# The instant the statements judge at.
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

# What the breach statements read of each due ticket.
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


def _team_email(
    name: str, source: str, *, team_id: str, about: str, subject: str, body: str, dedupe_key: str
) -> str:
    """`name AS (INSERT INTO comms.messages ...)`: one email per row of `source` about the
    ticket `about`.id, to the notify_email of team `team_id`, else to :ops_recipient; once per
    `dedupe_key` (ON CONFLICT DO NOTHING). RETURNING id."""
    return f"""{name} AS (
        INSERT INTO comms.messages
            (channel, recipient, subject, body, related_type, related_id, dedupe_key)
        SELECT 'email',
               coalesce((SELECT tm.notify_email FROM team.teams tm WHERE tm.id = {team_id}),
                        :ops_recipient),
               {subject},
               {body},
               'ticket', {about}.id, {dedupe_key}
        FROM {source}
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
    )"""


# The UPDATE finds its rows by primary key from the ids of `due` (see tasks.sla.breaches).
_BY_DUE_IDS = "t.id = ANY(ARRAY(SELECT id FROM due))"


def _breach_statement(kind: str, due: str) -> TextClause:
    """The statement recording the `kind` breaches of the tickets `due` selects (and locks)."""
    breach_event = f"""jsonb_build_object(
                   'sla_kind', '{kind}', 'due_at', due_at, 'sla_policy_id', sla_policy_id,
                   'detected_at', {_AS_OF}, 'escalated', escalated,
                   'team_id_before', current_team_id, 'team_id', new_team_id,
                   'priority_before', priority, 'priority', new_priority)"""
    breach_body = f"""format('Ticket %s "%s" missed its %s deadline of %s UTC.%s',
                      f.ticket_number, f.title, '{kind}',
                      to_char(f.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                      CASE WHEN f.escalated THEN format(
                          ' Escalated: priority %s -> %s, team %s.', f.priority, f.new_priority,
                          coalesce((SELECT tm.name FROM team.teams tm
                                    WHERE tm.id = f.new_team_id), 'none'))
                      ELSE '' END)"""
    events = ticket_events_cte(
        "events", "flagged", breach_event, event_type="'sla_breached'", occurred_at="due_at"
    )
    messages = _team_email(
        "messages",
        "flagged f",
        team_id="f.new_team_id",
        about="f",
        subject=f"format('SLA %s deadline missed: %s', '{kind}', f.ticket_number)",
        body=breach_body,
        dedupe_key=f"'sla:{kind}_breach:' || f.id",
    )
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
    ), {events},
    {messages}
    SELECT (SELECT count(*) FROM due) AS due,
           (SELECT count(*) FROM marked) AS breaches,
           (SELECT count(*) FROM flagged WHERE escalated) AS escalations,
           (SELECT count(*) FROM misses) AS misses,
           (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM messages) AS messages"""
    )


# Per kind: one batch of the sweep (up to :limit tickets past the deadline, oldest first), and
# the judgement of a few tickets by id (:ids), whose response or resolution may be late.
SWEEP_BREACH = {kind: _breach_statement(kind, _due_sweep(kind)) for kind in KINDS}
TARGETED_BREACH = {kind: _breach_statement(kind, _due_targeted(kind)) for kind in KINDS}

# The `sla_warning` event of each ticket warned, at the warning instant.
WARNING_EVENTS = ticket_events_cte(
    "events",
    "due",
    "jsonb_build_object('sla_kind', 'resolution', 'due_at', due_at, 'warn_at', warn_at,"
    f" 'sla_policy_id', sla_policy_id, 'detected_at', {_AS_OF})",
    event_type="'sla_warning'",
    occurred_at="warn_at",
)
# The warning's email to the ticket's team (else ops).
WARNING_MESSAGES = _team_email(
    "messages",
    "due d",
    team_id="d.team_id",
    about="d",
    subject="format('SLA resolution deadline approaching: %s', d.ticket_number)",
    body="""format('Ticket %s "%s" must be resolved by %s UTC.', d.ticket_number, d.title,
                      to_char(d.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))""",
    dedupe_key="'sla:resolution_warning:' || d.id",
)
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
    ), {WARNING_EVENTS},
    {WARNING_MESSAGES}
    SELECT (SELECT count(*) FROM due) AS due,
           (SELECT count(*) FROM marked) AS warnings,
           (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM messages) AS messages"""
)

# -- the sweep ----------------------------------------------------------------------------------

# Open tickets without deadlines whose matched policy counts business hours.
CALENDAR_CANDIDATES = text(
    f"""
    SELECT t.id, t.created_at, t.sla_paused_minutes, t.sla_paused_since,
           ({PAUSED_SQL}) AS paused,
           pol.id AS policy_id, pol.response_minutes, pol.resolution_minutes, pol.calendar_id,
           pol.warn_at_pct
    FROM service.tickets t
    CROSS JOIN LATERAL ({POLICY_MATCH_SQL}) pol
    WHERE {NO_DEADLINES_SQL} AND pol.calendar_id IS NOT NULL
    ORDER BY t.created_at
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
    """
)
# Written back without a join (see tasks.sla.breaches on why): each row finds its values by
# its position in the id array; 500 x 500 uuid comparisons at most, well under a millisecond.
CALENDAR_UPDATE = text(
    """
    UPDATE service.tickets t
    SET (sla_policy_id, response_due_at, resolution_due_at, resolution_warn_due_at,
         sla_paused_since) = (
        SELECT (CAST(:policy_ids AS uuid[]))[i], (CAST(:response AS timestamptz[]))[i],
               (CAST(:resolution AS timestamptz[]))[i], (CAST(:warn AS timestamptz[]))[i],
               (CAST(:paused_since AS timestamptz[]))[i]
        FROM (SELECT array_position(CAST(:ids AS uuid[]), t.id) AS i) position)
    WHERE t.id = ANY(CAST(:ids AS uuid[])) AND t.response_due_at IS NULL
    RETURNING t.id
    """
)
# Everything else, set-based: the same arithmetic as policy.compute_deadlines with no calendar,
# the policy matched again per row in the SET (the candidates are locked; a join back to them
# is what the breach statements avoid, see tasks.sla.breaches).
FILL_24X7 = text(
    f"""
    WITH cand AS (
        SELECT t.id
        FROM service.tickets t
        LEFT JOIN LATERAL ({POLICY_MATCH_SQL}) pol ON true
        WHERE {NO_DEADLINES_SQL} AND pol.calendar_id IS NULL
        ORDER BY t.created_at
        LIMIT :limit
        FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE service.tickets t
    SET (sla_policy_id, response_due_at, resolution_due_at, resolution_warn_due_at,
         sla_paused_since) = (
        SELECT pol.id,
               t.created_at + make_interval(mins => c.response_minutes),
               CASE WHEN NOT c.paused THEN t.created_at
                   + make_interval(mins => c.resolution_minutes + t.sla_paused_minutes) END,
               CASE WHEN NOT c.paused THEN t.created_at
                   + interval '1 second' * round(c.resolution_minutes * 60 * c.warn_at_pct / 100)
                   + make_interval(mins => t.sla_paused_minutes) END,
               CASE WHEN c.paused THEN coalesce(t.sla_paused_since,
                                                least(t.created_at, CAST(:as_of AS timestamptz)))
                    ELSE t.sla_paused_since END
        FROM ref.ticket_priority_key k
        LEFT JOIN LATERAL ({POLICY_MATCH_SQL}) pol ON true
        CROSS JOIN LATERAL (
            SELECT coalesce(pol.response_minutes, k.response_minutes) AS response_minutes,
                   coalesce(pol.resolution_minutes, k.resolution_minutes) AS resolution_minutes,
                   coalesce(pol.warn_at_pct, {DEFAULT_WARN_AT_PCT}) AS warn_at_pct,
                   t.{PAUSED_SQL} AS paused
        ) c
        WHERE k.code = t.priority)
    WHERE t.id = ANY(ARRAY(SELECT id FROM cand)) AND t.response_due_at IS NULL
    RETURNING t.id
    """
)


# Tickets whose pause clock disagrees with their status, with the instant of the change.
STALE_CLOCKS = text(
    f"""
    SELECT id, least(greatest(updated_at, coalesce(sla_paused_since, updated_at)),
                     CAST(:as_of AS timestamptz)) AS changed_at
    FROM service.tickets
    WHERE ({PAUSE_CLOCK_STALE_SQL}) AND updated_at <= :as_of
    ORDER BY updated_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

# Is anything due at all? Each EXISTS is one probe of its partial index.
PROBE = text(
    f"""
    SELECT EXISTS (SELECT FROM service.tickets WHERE {NO_DEADLINES_SQL}) AS no_deadlines,
           EXISTS (SELECT FROM service.tickets
                   WHERE ({PAUSE_CLOCK_STALE_SQL}) AND updated_at <= :as_of) AS stale_clocks,
           EXISTS (SELECT FROM service.tickets
                   WHERE {RESPONSE_PENDING_SQL} AND response_due_at < :as_of) AS response,
           EXISTS (SELECT FROM service.tickets
                   WHERE {RESOLUTION_PENDING_SQL} AND resolution_due_at < :as_of) AS resolution,
           EXISTS (SELECT FROM service.tickets
                   WHERE {WARNING_PENDING_SQL} AND resolution_warn_due_at < :as_of) AS warning
    """
)
