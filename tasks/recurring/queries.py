"""Every SQL statement of the recurring rules (SPEC 6.1), one named constant each.

- shared by both halves: the status lists, the rule targets (TARGETS_SQL), how a ticket
  template is filled in, the activity-log events (db.fragments.ticket_events_cte, at the
  statement's time: the column's default), and the removal of orphaned tickets;
- calendar rules (tasks.recurring.calendar_rules): the rules, their zones, and the one
  statement that inserts a run's tickets (GENERATE_SQL), with the settings it runs with;
- reservation rules (tasks.recurring.reservation_rules): one stay, its rules, and the
  statements that create, move, cancel, reopen and (un)mark its tickets.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from db.fragments import sql_list, ticket_events_cte
from db.models.service import TICKET_OPEN_SQL
from tasks.recurring.common import (
    ACTOR_TAG,
    FINISHED_TICKET_STATUSES,
    LIVE_STAY_STATUSES,
    NOT_STARTED_TICKET_STATUSES,
    OCCUPYING_STAY_TYPES,
    STARTED_TICKET_STATUSES,
    TURNOVER_PRIORITY,
)

# -- shared ------------------------------------------------------------------------------------

# The statuses and stay types of common.py as SQL lists, for IN.
LIVE_STAYS_SQL = sql_list(LIVE_STAY_STATUSES)
OCCUPYING_TYPES_SQL = sql_list(OCCUPYING_STAY_TYPES)
NOT_STARTED_SQL = sql_list(NOT_STARTED_TICKET_STATUSES)
STARTED_SQL = sql_list(STARTED_TICKET_STATUSES)
FINISHED_SQL = sql_list(FINISHED_TICKET_STATUSES)


def fill_template_sql(template: str, property_name: str, local_date: str, code: str) -> str:
    """SQL filling {property_name}, {date} (ISO local date) and {reservation_code} into the
    column `template`; the arguments are column expressions. Plain replace(), not format():
    any other braces in a template are left as written."""
    return (
        f"replace(replace(replace({template}, '{{property_name}}', {property_name}),"
        f" '{{date}}', to_char({local_date}, 'YYYY-MM-DD')),"
        f" '{{reservation_code}}', coalesce({code}, ''))"
    )


# Every property, or only :property_id when given.
ONE_PROPERTY = "(CAST(:property_id AS uuid) IS NULL OR p.id = CAST(:property_id AS uuid))"

# The properties a rule applies to, as (rule_id, property_id, timezone, property_name), for the
# rules in the CTE `rules` (which must expose id and scope_type): every active property for
# all_properties; otherwise the rule's property targets plus the active properties of its
# resort targets. A target row means what it says whatever the scope_type of a property or
# resort rule, so a resort rule may name one extra property. UNION ALL without duplicates: a
# property named directly is left out of its resort's branch, a property has one resort, and
# (rule, property) / (rule, resort) targets are unique. Three branches, not one join with
# ORs: each is driven by its own index.
TARGETS_SQL = f"""
    SELECT r.id AS rule_id, p.id AS property_id, p.timezone, p.name AS property_name
    FROM rules r
    JOIN property.properties p ON p.status = 'active'
    WHERE r.scope_type = 'all_properties'
      AND {ONE_PROPERTY}
    UNION ALL
    SELECT r.id, p.id, p.timezone, p.name
    FROM rules r
    JOIN service.recurring_rule_targets t ON t.recurring_rule_id = r.id
    JOIN property.properties p ON p.id = t.property_id
    WHERE r.scope_type <> 'all_properties' AND p.status = 'active'
      AND {ONE_PROPERTY}
    UNION ALL
    SELECT r.id, p.id, p.timezone, p.name
    FROM rules r
    JOIN service.recurring_rule_targets t ON t.recurring_rule_id = r.id
    JOIN property.properties p ON p.resort_id = t.resort_id
    WHERE r.scope_type <> 'all_properties' AND p.status = 'active'
      AND {ONE_PROPERTY}
      AND NOT EXISTS (
          SELECT 1 FROM service.recurring_rule_targets d
          WHERE d.recurring_rule_id = r.id AND d.property_id = p.id
      )
"""


def raise_to_turnover_priority_sql(priority: str) -> str:
    """`priority` raised to 'high' unless it is already as urgent (ref sort_order)."""
    return (
        f"CASE WHEN (SELECT sort_order FROM ref.ticket_priority_key WHERE code = {priority})"
        f" > (SELECT sort_order FROM ref.ticket_priority_key WHERE code = '{TURNOVER_PRIORITY}')"
        f" THEN '{TURNOVER_PRIORITY}' ELSE {priority} END"
    )


def _events(
    name: str,
    source: str,
    event_type: str,
    data: str,
    *,
    ticket_id: str = "id",
    where: str | None = None,
) -> str:
    """The events CTE of these statements: written at the statement's time (the column's
    default), by 'system' (db.fragments.ticket_events_cte)."""
    return ticket_events_cte(
        name,
        source,
        data,
        ticket_id=ticket_id,
        event_type=event_type,
        occurred_at=None,
        where=where,
    )


# Tickets inserted by a statement whose links lost a race with a concurrent run (its
# `orphans`): deleted again in the same transaction.
DELETE_ORPHANS_SQL = text("DELETE FROM service.tickets WHERE id = ANY(CAST(:ids AS uuid[]))")

# -- calendar rules ------------------------------------------------------------------------------

# The active calendar rules (all, or :rule_id only).
CALENDAR_RULES_SQL = text(
    "SELECT id, rule_code, rrule, dtstart, until, lead_minutes FROM service.recurring_rules"
    " WHERE is_active AND trigger_type = 'calendar'"
    " AND (CAST(:rule_id AS uuid) IS NULL OR id = CAST(:rule_id AS uuid))"
    " ORDER BY rule_code"
)

# The distinct time zones of each rule's target properties (:rule_ids, :property_id).
ZONES_SQL = text(
    f"""
    WITH rules AS (
        SELECT id, scope_type FROM service.recurring_rules
        WHERE id = ANY(CAST(:rule_ids AS uuid[]))
    )
    SELECT DISTINCT rule_id, timezone FROM ({TARGETS_SQL}) AS tg
    """
)

# The `created` event of each ticket GENERATE_SQL inserts.
CALENDAR_EVENTS = _events(
    "events",
    "links l JOIN rules r ON r.id = l.recurring_rule_id",
    "'created'",
    """jsonb_build_object(
                   'source', 'recurring',
                   'recurring_rule_id', l.recurring_rule_id,
                   'rule_code', r.rule_code,
                   'occurrence_at', l.occurrence_at,
                   'caught_up', l.occurrence_at < CAST(:missed_before AS timestamptz),
                   'as_of', CAST(:as_of AS timestamptz))""",
    ticket_id="l.ticket_id",
    where="l.ticket_id IS NOT NULL",
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
    {CALENDAR_EVENTS}
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

# Planner settings for GENERATE_SQL alone (db.session.local_settings, put back right after it):
# - enable_seqscan off: the statement probes ticket_recurring for every candidate while it is
#   inserting into that same table. Whenever the statistics call the table empty (a fresh
#   install, or straight after a VACUUM that truncated it) a sequential scan looks free, and
#   each one would also read every row the statement has inserted so far (quadratic; see
#   `fresh` in GENERATE_SQL). No other table of the statement is worth a sequential scan
#   either (properties has no index on status and is still scanned whole, the only path);
# - jit off: at volume the estimated cost passes jit_above_cost, and compiling expressions
#   does not pay off for an INSERT bound by index and foreign-key work.
GENERATE_SETTINGS = {"enable_seqscan": "off", "jit": "off"}

# The trigger type of a rule by id (None: no such rule).
RULE_TRIGGER_TYPE_SQL = text("SELECT trigger_type FROM service.recurring_rules WHERE id = :id")

# Does the property a payload names exist (any status)?
PROPERTY_EXISTS_SQL = text("SELECT 1 FROM property.properties WHERE id = :id")

# -- reservation rules ---------------------------------------------------------------------------

# One stay with its property's zone, name, status and resort (None: no such stay).
STAY_SQL = text(
    "SELECT s.id, s.property_id, s.check_in, s.check_out, s.booked_at, s.status,"
    " s.reservation_type, s.source, s.nights, s.confirmation_code, p.timezone,"
    " p.name AS property_name,"
    " p.status AS property_status, p.resort_id"
    " FROM reservations.reservations s JOIN property.properties p ON p.id = s.property_id"
    " WHERE s.id = :id"
)

# The properties a stay's tickets are linked to (a moved stay's old one among them).
LINKED_PROPERTIES_SQL = text(
    "SELECT DISTINCT property_id FROM service.ticket_recurring WHERE reservation_id = :id"
)

# Serialises the syncs of one property's stays (:key names the property).
LOCK_PROPERTY_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")

# The active reservation rules whose targets cover the property (rule index on trigger_type).
RESERVATION_RULES_SQL = text(
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
                AND o.{TICKET_OPEN_SQL}),
             m.created_at, m.id
    LIMIT 1
)"""

# The occurrences a stay should have, one per applicable rule, from parallel arrays.
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


def _set_rule_tickets_status(
    name: str, status: str, condition: str, events: str, *, returning: str = "t.id"
) -> TextClause:
    """The stay's tickets of the rules :rule_ids that meet `condition` (over the ticket t and
    its link l) set to `status`, each with its event (`events`, a CTE over `name`); returns
    how many (as `name`) and their ids."""
    return text(
        f"""
    WITH {name} AS (
        UPDATE service.tickets t SET status = '{status}'
        FROM service.ticket_recurring l
        WHERE l.reservation_id = :reservation_id AND t.id = l.ticket_id
          AND l.recurring_rule_id = ANY(CAST(:rule_ids AS uuid[]))
          AND {condition}
        RETURNING {returning}
    ),
    {events}
    SELECT count(*) AS {name}, array_agg(id) AS ticket_ids FROM {name}
    """
    )


# The `reopened` event of each ticket REOPEN_SQL reopens.
REOPEN_EVENTS = _events(
    "events",
    "reopened",
    "'reopened'",
    f"""jsonb_build_object('reason', 'reservation_reconfirmed', 'by', '{ACTOR_TAG}',
                           'reservation_id', CAST(:reservation_id AS uuid))""",
)

# A re-confirmed stay's tickets that this job cancelled (their last event says so) reopen, for
# the applicable rules (:rule_ids).
REOPEN_SQL = _set_rule_tickets_status(
    "reopened",
    "open",
    """t.status = 'cancelled'
          AND (SELECT e.event_type || ':' || coalesce(e.data ->> 'by', '')
               FROM service.ticket_events e WHERE e.ticket_id = t.id
               ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) = :cancelled_by_us""",
    REOPEN_EVENTS,
)

# The `moved` event of each ticket MOVE_SQL moves: from where to where.
MOVE_EVENTS = _events(
    "events",
    "moving m",
    "'moved'",
    f"""jsonb_build_object(
                   'reason', 'reservation_changed', 'by', '{ACTOR_TAG}',
                   'reservation_id', CAST(:reservation_id AS uuid),
                   'from', m.old_at, 'to', m.new_at,
                   'from_property_id', m.old_property_id,
                   'to_property_id', CAST(:property_id AS uuid),
                   'check_in', CAST(:check_in AS date), 'check_out', CAST(:check_out AS date))""",
    ticket_id="m.ticket_id",
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
    {MOVE_EVENTS}
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

# The `created` event of each ticket CREATE_SQL inserts.
CREATE_EVENTS = _events(
    "events",
    "links l JOIN planned p ON p.ticket_id = l.ticket_id",
    "'created'",
    f"""jsonb_build_object(
                   'source', 'recurring', 'by', '{ACTOR_TAG}',
                   'recurring_rule_id', p.rule_id, 'rule_code', p.rule_code,
                   'reservation_id', CAST(:reservation_id AS uuid),
                   'occurrence_at', p.occurrence_at,
                   'caught_up', p.occurrence_at < CAST(:missed_before AS timestamptz),
                   'turnover', p.turnover)""",
    ticket_id="l.ticket_id",
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
    {CREATE_EVENTS}
    SELECT count(*) FILTER (WHERE outcome = 'created') AS created,
           count(*) FILTER (WHERE outcome = 'missed') AS missed,
           array_agg(ticket_id) FILTER (WHERE ticket_id IS NOT NULL) AS ticket_ids,
           ARRAY(SELECT id FROM new_tickets
                 EXCEPT ALL
                 SELECT ticket_id FROM links WHERE ticket_id IS NOT NULL) AS orphans
    FROM links
    """
)

# The `cancelled` event of each ticket CANCEL_SQL cancels with its stay.
STAY_CANCELLED_EVENTS = _events(
    "cancel_events",
    "cancelled",
    "'cancelled'",
    f"""jsonb_build_object('reason', 'reservation_cancelled', 'by', '{ACTOR_TAG}',
                           'reservation_id', CAST(:reservation_id AS uuid),
                           'reservation_status', CAST(:status AS text),
                           'reservation_type', CAST(:reservation_type AS text))""",
)

# The note in the history of each started ticket whose team CANCEL_SQL tells.
TEAM_NOTIFIED_EVENTS = _events(
    "note_events",
    "messages",
    "'reservation_cancelled'",
    f"""jsonb_build_object('by', '{ACTOR_TAG}',
                           'reservation_id', CAST(:reservation_id AS uuid),
                           'reservation_status', CAST(:status AS text),
                           'team_notified', true)""",
    ticket_id="related_id",
)

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
    {STAY_CANCELLED_EVENTS},
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
    {TEAM_NOTIFIED_EVENTS}
    SELECT (SELECT count(*) FROM cancelled) AS cancelled,
           (SELECT array_agg(id) FROM cancelled) AS ticket_ids,
           (SELECT count(*) FROM messages) AS notified
    """
)

# The `cancelled` event of each ticket CANCEL_RULES_SQL cancels.
RULE_CANCELLED_EVENTS = _events(
    "events",
    "cancelled",
    "'cancelled'",
    f"""jsonb_build_object('reason', 'rule_no_longer_applies', 'by', '{ACTOR_TAG}',
                           'reservation_id', CAST(:reservation_id AS uuid),
                           'recurring_rule_id', recurring_rule_id)""",
)

# A live stay that no longer meets these rules' conditions: their tickets nobody has started
# are cancelled with an event (the stay still happens, so started work is left to its team).
CANCEL_RULES_SQL = _set_rule_tickets_status(
    "cancelled",
    "cancelled",
    f"t.status IN {NOT_STARTED_SQL}",
    RULE_CANCELLED_EVENTS,
    returning="t.id, l.recurring_rule_id",
)

# The `turnover_marked` / `turnover_cleared` event of each ticket TURNOVER_SQL changes.
TURNOVER_EVENTS = _events(
    "events",
    "changed",
    "CASE WHEN turnover THEN 'turnover_marked' ELSE 'turnover_cleared' END",
    f"""jsonb_build_object('by', '{ACTOR_TAG}', 'reservation_id', reservation_id,
                           'priority', priority)""",
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
    {TURNOVER_EVENTS}
    SELECT count(*) FILTER (WHERE turnover) AS marked,
           count(*) FILTER (WHERE NOT turnover) AS cleared,
           array_agg(id) AS ticket_ids
    FROM changed
    """
)
