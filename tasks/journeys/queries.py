"""Every SQL statement of the journeys package (SPEC 7.6), one named constant each.

The planning statements start from the same `stays` CTE: the stays being planned (an array of
ids: one for `journeys.plan_stay`, tens of thousands for a bulk plan), with their property's
zone, check-in and check-out times, and whether they are live. They are set-based: one
statement plans the messages of every stay in the array, one revokes, one moves and one
creates door codes, whatever the number of stays.

Wall-clock arithmetic happens on `timestamp` values in the property's zone and becomes an
instant through `ops.local_to_utc` (migration 0012: SPEC 6.1's rule for gaps and repeated
hours); the planning statements convert each distinct (zone, wall-clock time) once, since
thousands of stays share their check-in dates and rules.
"""

from __future__ import annotations

from sqlalchemy import text

from db.fragments import sql_list
from db.models.comms import SCHEDULED_SQL
from db.models.property import LIVE_CODE_SQL
from tasks.recurring.common import LIVE_STAY_STATUSES

# A fresh door code of :digits digits from 48 bits of gen_random_uuid(), which PostgreSQL
# draws from its strong random source (random() is predictable); the modulo bias is < 1e-8.
FRESH_CODE_SQL = (
    "lpad(CAST(CAST(CAST('x' || substr(replace(CAST(gen_random_uuid() AS text), '-', ''), 1, 12)"
    " AS bit(48)) AS bigint) % CAST(10 ^ CAST(:digits AS int) AS bigint) AS text),"
    " CAST(:digits AS int), '0')"
)

# Stay statuses that keep a stay's journey (checked_in / checked_out are the same stay later).
LIVE_STAY_SQL = f"s.status IN {sql_list(LIVE_STAY_STATUSES)}"

STAYS_CTE = f"""
    stays AS MATERIALIZED (
        SELECT s.id, s.property_id, s.source, s.reservation_type, s.nights, s.booked_at,
               s.check_in, s.check_out, s.guest_contact_id, p.timezone AS tz,
               p.status = 'active' AS property_active, {LIVE_STAY_SQL} AS live,
               coalesce(p.check_in_time, CAST(:check_in_time AS time)) AS check_in_time,
               coalesce(p.check_out_time, CAST(:check_out_time AS time)) AS check_out_time
        FROM unnest(CAST(:ids AS uuid[])) AS i(id)
        JOIN reservations.reservations s ON s.id = i.id
        JOIN property.properties p ON p.id = s.property_id
        WHERE p.timezone = ANY(CAST(:zones AS text[]))
    )
"""

# A bulk plan (thousands of stays) joins its CTEs by hash: the planner cannot estimate what
# the array of ids turns into (stays x rules after the conditions), takes it for a few rows
# and would nest loops over tens of thousands (seconds instead of a tenth of one); jit does
# not pay off for statements bound by index and constraint work. One stay keeps the defaults,
# whose index nested loops are what it wants.
BULK_SETTINGS = {"enable_nestloop": "off", "jit": "off"}

# Every zone properties use, for the caller to validate first (a few distinct names: cheaper
# than the zones of the stays at hand, which would mean a pass over them).
PROPERTY_ZONES = text("SELECT DISTINCT timezone FROM property.properties")

# How many of the stays sit at properties whose zone is not valid (only asked when one is not).
STAYS_IN_ZONES = text(
    """
    SELECT count(*)
    FROM unnest(CAST(:ids AS uuid[])) AS i(id)
    JOIN reservations.reservations s ON s.id = i.id
    JOIN property.properties p ON p.id = s.property_id
    WHERE p.timezone = ANY(CAST(:zones AS text[]))
    """
)

# Which of the ids name a stay (plan_stay's unknown-id check).
STAY_EXISTS = text("SELECT EXISTS (SELECT 1 FROM reservations.reservations WHERE id = :id)")

# Serialises plans of one stay (a redelivery racing its first run): transaction-scoped.
LOCK_STAY = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")

# The stays arriving in [check_in_from, check_in_to), optionally at one property (bulk plan).
ARRIVALS = text(
    """
    SELECT id FROM reservations.reservations
    WHERE check_in >= :check_in_from AND check_in < :check_in_to
      AND (CAST(:property_id AS uuid) IS NULL OR property_id = CAST(:property_id AS uuid))
    ORDER BY property_id, check_in
    """
)

# Recipient, subject and body are filled when the message is released (the guest's address and
# the template as they are then), so a scheduled row carries neither.

# Reasons the planner cancels a message for, which it may undo when the stay comes back;
# a person's cancellation (no reason) is never undone.
REVIVABLE_REASONS_SQL = "('stay_cancelled', 'no_longer_applies', 'late_skipped')"

# The messages of the stays, brought to where the rules want them: each live stay that meets a
# rule's conditions gets one message per rule (dedupe_key journey:<rule>:<stay>), scheduled at
# the rule's instant moved out of quiet hours; a stay booked (or planned) after that instant is
# late: sent at once (send_now) or never (skip). Only `scheduled` rows are moved or cancelled,
# and only if still scheduled when written (a release racing the plan wins); cancelled ones
# the planner cancelled come back when wanted again.
PLAN_MESSAGES = text(
    f"""
    WITH {STAYS_CTE},
    rules AS MATERIALIZED (
        SELECT r.id, r.anchor, r.offset_minutes, r.local_time, r.channels,
               r.reservation_types, r.min_nights, r.max_nights, r.quiet_start, r.quiet_end,
               r.late_policy, t.channel
        FROM comms.message_rules r
        JOIN comms.message_templates t ON t.id = r.template_id
        WHERE r.is_active AND t.is_active
    ),
    wall AS MATERIALIZED (
        SELECT s.id AS reservation_id, s.tz, s.booked_at, s.guest_contact_id, r.id AS rule_id,
               r.channel, r.late_policy, r.quiet_start, r.quiet_end,
               CASE r.anchor
                   WHEN 'check_in' THEN s.check_in + coalesce(r.local_time, s.check_in_time)
                   WHEN 'check_out' THEN s.check_out + coalesce(r.local_time, s.check_out_time)
                   WHEN 'booked' THEN
                       CASE WHEN r.local_time IS NULL THEN s.booked_at AT TIME ZONE s.tz
                            ELSE CAST(s.booked_at AT TIME ZONE s.tz AS date) + r.local_time END
               END + make_interval(mins => r.offset_minutes) AS wall_at,
               -- a booking-relative message never falls before the booking it follows (the
               -- repeated hour of an autumn night could put it an hour early)
               r.anchor = 'booked' AND r.offset_minutes >= 0 AS not_before_booking
        FROM stays s
        JOIN rules r
          ON s.live AND s.property_active
         AND s.reservation_type = ANY(r.reservation_types)
         AND (r.channels IS NULL OR s.source = ANY(r.channels))
         AND (r.min_nights IS NULL OR s.nights >= r.min_nights)
         AND (r.max_nights IS NULL OR s.nights <= r.max_nights)
    ),
    instants AS MATERIALIZED (
        SELECT d.tz, d.wall_at, ops.local_to_utc(d.wall_at, d.tz) AS at
        FROM (SELECT DISTINCT tz, wall_at FROM wall) d
    ),
    want AS MATERIALIZED (
        SELECT w.reservation_id, w.rule_id, w.channel, w.late_policy, w.guest_contact_id,
               due.at < w.booked_at
                 OR due.at < CAST(:as_of AS timestamptz) - CAST(:grace AS interval) AS late,
               comms.after_quiet_hours(due.at, w.tz, w.quiet_start, w.quiet_end) AS on_time_at,
               comms.after_quiet_hours(CAST(:as_of AS timestamptz), w.tz, w.quiet_start,
                                       w.quiet_end) AS now_at
        FROM wall w
        JOIN instants i ON i.tz = w.tz AND i.wall_at = w.wall_at
        CROSS JOIN LATERAL (
            SELECT CASE WHEN w.not_before_booking THEN greatest(i.at, w.booked_at)
                        ELSE i.at END AS at
        ) due
    ),
    current AS MATERIALIZED (
        SELECT m.id, m.related_id AS reservation_id, m.message_rule_id AS rule_id, m.status,
               m.status_reason, m.scheduled_for, s.live, s.property_active
        FROM stays s
        JOIN comms.messages m ON m.related_type = 'reservation' AND m.related_id = s.id
        WHERE m.message_rule_id IS NOT NULL
    ),
    decided AS MATERIALIZED (
        SELECT coalesce(w.reservation_id, c.reservation_id) AS reservation_id,
               coalesce(w.rule_id, c.rule_id) AS rule_id, w.channel, w.guest_contact_id,
               w.on_time_at, w.now_at, c.id AS message_id, c.status,
               CASE
                   WHEN c.id IS NULL THEN
                       CASE WHEN NOT w.late THEN 'create'
                            WHEN w.late_policy = 'send_now' THEN 'create_late'
                            ELSE 'skip_late' END
                   WHEN w.rule_id IS NULL THEN
                       CASE WHEN c.status <> 'scheduled' THEN 'keep'
                            WHEN NOT c.live THEN 'cancel_stay'
                            -- an inactive property keeps what it has (as its tickets do)
                            WHEN c.property_active THEN 'cancel_rule'
                            ELSE 'keep' END
                   WHEN c.status = 'scheduled' THEN
                       CASE WHEN c.scheduled_for = w.on_time_at THEN 'keep'
                            WHEN NOT w.late THEN 'move'
                            WHEN w.late_policy = 'skip' THEN 'cancel_late'
                            WHEN c.scheduled_for <= w.now_at THEN 'keep'
                            ELSE 'move_late' END
                   WHEN c.status = 'cancelled' AND c.status_reason IN {REVIVABLE_REASONS_SQL} THEN
                       CASE WHEN NOT w.late THEN 'revive'
                            WHEN w.late_policy = 'send_now' THEN 'revive_late'
                            ELSE 'keep' END
                   ELSE 'keep'
               END AS action
        FROM want w
        FULL JOIN current c ON c.reservation_id = w.reservation_id AND c.rule_id = w.rule_id
    ),
    created AS (
        INSERT INTO comms.messages (channel, recipient, subject, body, related_type, related_id,
                                    status, dedupe_key, scheduled_for, message_rule_id,
                                    status_reason)
        SELECT d.channel, '', NULL, '', 'reservation', d.reservation_id, 'scheduled',
               'journey:' || d.rule_id || ':' || d.reservation_id,
               CASE d.action WHEN 'create' THEN d.on_time_at ELSE d.now_at END, d.rule_id,
               CASE d.action WHEN 'create_late' THEN 'late_send_now' END
        FROM decided d
        WHERE d.action IN ('create', 'create_late')
        -- in key order: the unique index takes them page by page, not at random
        ORDER BY d.rule_id, d.reservation_id
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING status_reason
    ),
    updated AS (
        UPDATE comms.messages m
        SET status = CASE WHEN d.action LIKE 'cancel%' THEN 'cancelled' ELSE 'scheduled' END,
            scheduled_for = CASE WHEN d.action IN ('move', 'revive') THEN d.on_time_at
                                 WHEN d.action IN ('move_late', 'revive_late') THEN d.now_at
                                 ELSE m.scheduled_for END,
            status_reason = CASE d.action
                                WHEN 'cancel_stay' THEN 'stay_cancelled'
                                WHEN 'cancel_rule' THEN 'no_longer_applies'
                                WHEN 'cancel_late' THEN 'late_skipped'
                                WHEN 'move_late' THEN 'late_send_now'
                                WHEN 'revive_late' THEN 'late_send_now'
                            END
        FROM decided d
        WHERE m.id = d.message_id AND m.status = d.status
          AND d.action IN ('move', 'move_late', 'revive', 'revive_late', 'cancel_stay',
                           'cancel_rule', 'cancel_late')
        RETURNING d.action
    )
    SELECT (SELECT count(*) FROM created WHERE status_reason IS NULL) AS created,
           (SELECT count(*) FROM created WHERE status_reason IS NOT NULL) AS created_late,
           (SELECT count(*) FROM decided WHERE action = 'skip_late') AS skipped_late,
           (SELECT count(*) FROM updated WHERE action IN ('move', 'move_late')) AS moved,
           (SELECT count(*) FROM updated WHERE action IN ('revive', 'revive_late')) AS revived,
           (SELECT count(*) FROM updated WHERE action LIKE 'cancel%') AS cancelled
    """
)

# The door-code window each live guest stay wants: from its check-in time less :code_before
# to its check-out time plus :code_after, on the property's wall clock.
CODE_WANT_CTE = """
    code_walls AS MATERIALIZED (
        SELECT s.id AS reservation_id, s.property_id, s.property_active, s.tz,
               s.check_in + s.check_in_time AS from_wall,
               s.check_out + s.check_out_time AS until_wall
        FROM stays s
        WHERE s.live AND s.reservation_type = 'guest'
    ),
    code_instants AS MATERIALIZED (
        SELECT d.tz, d.wall, ops.local_to_utc(d.wall, d.tz) AS at
        FROM (SELECT tz, from_wall AS wall FROM code_walls
              UNION SELECT tz, until_wall FROM code_walls) d
    ),
    want AS MATERIALIZED (
        SELECT c.reservation_id, c.property_id, c.property_active,
               f.at - CAST(:code_before AS interval) AS valid_from,
               u.at + CAST(:code_after AS interval) AS valid_until
        FROM code_walls c
        JOIN code_instants f ON f.tz = c.tz AND f.wall = c.from_wall
        JOIN code_instants u ON u.tz = c.tz AND u.wall = c.until_wall
    )
"""

# The lock service's command for a code (an upsert keyed by the code's id, or a revoke), one
# per change: dedupe_key lock:<code>:v<version> / lock:<code>:revoke (the ':' || 'v' spelling
# keeps text() from reading ":v" as a bind parameter).
LOCK_COMMAND_COLUMNS = (
    "channel, recipient, subject, body, related_type, related_id, status, dedupe_key"
)


def lock_set_command_sql(source: str) -> str:
    """The SELECT list of one `set` command per row of `source` (access_codes columns)."""
    return f"""
        SELECT 'webhook', CAST(:lock_url AS text), 'set door code',
               jsonb_build_object('command', 'set', 'access_code_id', {source}.id,
                                  'property_id', {source}.property_id,
                                  'reservation_id', {source}.reservation_id,
                                  'code', {source}.code, 'valid_from', {source}.valid_from,
                                  'valid_until', {source}.valid_until,
                                  'version', {source}.version)::text,
               'access_code', {source}.id, 'queued',
               'lock:' || {source}.id || ':' || 'v' || {source}.version
        FROM {source}
    """


# Codes of stays that are no longer live guest stays (cancelled, back to inquiry, turned
# into a block): revoked, with a revoke command to the lock.
REVOKE_CODES = text(
    f"""
    WITH {STAYS_CTE},
    revoked AS (
        UPDATE property.access_codes a
        SET status = 'revoked', revoked_at = CAST(:as_of AS timestamptz)
        FROM stays s
        WHERE a.reservation_id = s.id AND a.{LIVE_CODE_SQL}
          AND NOT (s.live AND s.reservation_type = 'guest')
        RETURNING a.id, a.property_id, a.reservation_id, a.code, a.version
    ),
    commands AS (
        INSERT INTO comms.messages ({LOCK_COMMAND_COLUMNS})
        SELECT 'webhook', CAST(:lock_url AS text), 'revoke door code',
               jsonb_build_object('command', 'revoke', 'access_code_id', r.id,
                                  'property_id', r.property_id,
                                  'reservation_id', r.reservation_id, 'code', r.code,
                                  'version', r.version)::text,
               'access_code', r.id, 'queued', 'lock:' || r.id || ':' || 'revoke'
        FROM revoked r
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM revoked) AS revoked, (SELECT count(*) FROM commands) AS commands
    """
)

# Codes whose stay moved, shrank or grew: the window follows the stay (status from the new
# window), version + 1 and a `set` command. A code that would now overlap an equal live code
# of the property gets a fresh one (the exclusion constraint is the guarantee; a fresh code
# that collides too makes the statement fail and the caller retry it).
MOVE_CODES = text(
    f"""
    WITH {STAYS_CTE}, {CODE_WANT_CTE},
    moving AS MATERIALIZED (
        SELECT a.id, w.valid_from, w.valid_until,
               EXISTS (
                   SELECT 1 FROM property.access_codes o
                   WHERE o.property_id = a.property_id AND o.code = a.code AND o.id <> a.id
                     AND o.{LIVE_CODE_SQL}
                     AND tstzrange(o.valid_from, o.valid_until)
                         && tstzrange(w.valid_from, w.valid_until)
               ) AS clash
        FROM want w
        JOIN property.access_codes a ON a.reservation_id = w.reservation_id
        WHERE a.status <> 'revoked'
          AND (a.valid_from <> w.valid_from OR a.valid_until <> w.valid_until)
          -- a code long expired stays as it was unless the stay now reaches past as_of
          AND (a.{LIVE_CODE_SQL} OR w.valid_until > CAST(:as_of AS timestamptz))
    ),
    moved AS (
        UPDATE property.access_codes a
        SET valid_from = m.valid_from, valid_until = m.valid_until, version = a.version + 1,
            code = CASE WHEN m.clash THEN {FRESH_CODE_SQL} ELSE a.code END,
            status = CASE WHEN m.valid_until <= CAST(:as_of AS timestamptz) THEN 'expired'
                          WHEN m.valid_from <= CAST(:as_of AS timestamptz) THEN 'active'
                          ELSE 'scheduled' END
        FROM moving m
        WHERE a.id = m.id AND a.status <> 'revoked'
        RETURNING a.id, a.property_id, a.reservation_id, a.code, a.valid_from, a.valid_until,
                  a.version, m.clash
    ),
    commands AS (
        INSERT INTO comms.messages ({LOCK_COMMAND_COLUMNS})
        {lock_set_command_sql("moved")}
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved) AS moved,
           (SELECT count(*) FROM moved WHERE clash) AS recoded,
           (SELECT count(*) FROM commands) AS commands
    """
)


def insert_codes_sql(on_conflict: bool) -> str:
    """Live guest stays at active properties without a code (whose window has not ended) get
    one: a fresh code per stay, with a `set` command. `on_conflict`: a code that collides with
    a live code of the property (or another new one), or a stay a concurrent plan gave a code
    meanwhile, is left out (ON CONFLICT DO NOTHING covers the exclusion constraint) and drawn
    again by the caller's next round; without it the statement is cheaper (one exclusion check
    per row instead of two) and fails whole on a collision. `missing` says how many wanted
    one."""
    conflict = "ON CONFLICT DO NOTHING" if on_conflict else ""
    return f"""
    WITH {STAYS_CTE}, {CODE_WANT_CTE},
    missing AS MATERIALIZED (
        SELECT w.* FROM want w
        WHERE w.property_active AND w.valid_until > CAST(:as_of AS timestamptz)
          AND NOT EXISTS (
              SELECT 1 FROM property.access_codes a
              WHERE a.reservation_id = w.reservation_id AND a.status <> 'revoked'
          )
    ),
    inserted AS (
        INSERT INTO property.access_codes (property_id, reservation_id, code, valid_from,
                                           valid_until, status)
        SELECT m.property_id, m.reservation_id, {FRESH_CODE_SQL}, m.valid_from, m.valid_until,
               CASE WHEN m.valid_from <= CAST(:as_of AS timestamptz) THEN 'active'
                    ELSE 'scheduled' END
        FROM missing m
        ORDER BY m.property_id, m.valid_from
        {conflict}
        RETURNING id, property_id, reservation_id, code, valid_from, valid_until, version
    ),
    commands AS (
        INSERT INTO comms.messages ({LOCK_COMMAND_COLUMNS})
        {lock_set_command_sql("inserted")}
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM missing) AS missing,
           (SELECT count(*) FROM inserted) AS inserted,
           (SELECT count(*) FROM commands) AS commands
    """


# A first draw for every stay without a code, failing whole on any collision (a bulk plan's
# common case: none), then rounds that leave collisions out for the next one.
DRAW_CODES = text(insert_codes_sql(on_conflict=False))
INSERT_CODES = text(insert_codes_sql(on_conflict=True))

# -- the release sweep -------------------------------------------------------------------------

# Door codes whose window has ended become expired, those whose window has opened active:
# two disjoint sets (an opened window has not ended), each through its partial index
# (ix_access_codes_live_valid_until, ix_access_codes_scheduled_valid_from), in one round trip.
SWEEP_CODES = text(
    f"""
    WITH expired AS (
        UPDATE property.access_codes SET status = 'expired'
        WHERE {LIVE_CODE_SQL} AND valid_until <= :as_of
        RETURNING 1
    ),
    activated AS (
        UPDATE property.access_codes SET status = 'active'
        WHERE status = 'scheduled' AND valid_from <= :as_of AND valid_until > :as_of
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM expired) AS expired,
           (SELECT count(*) FROM activated) AS activated
    """
)

# The next due scheduled messages (index ix_messages_scheduled_for), locked so that a second
# sweep skips them, with what rendering needs: rule, template, stay, guest, property, the
# stay's live door code, and when the rule's quiet hours let the message go.
CLAIM_DUE = text(
    f"""
    WITH due AS (
        SELECT m.id FROM comms.messages m
        WHERE m.{SCHEDULED_SQL} AND m.scheduled_for <= :as_of
        ORDER BY m.scheduled_for
        LIMIT :batch
        FOR UPDATE OF m SKIP LOCKED
    )
    SELECT m.id, m.channel AS message_channel, m.recipient, m.body AS message_body,
           m.related_type, m.dedupe_key LIKE 'journey:%' AS is_journey,
           m.scheduled_for, r.id AS rule_id, r.is_active AS rule_active, r.late_policy,
           t.code AS template_code, t.channel, t.subject AS subject_template,
           t.body AS body_template, t.is_active AS template_active,
           s.id AS stay_id, {LIVE_STAY_SQL} AS stay_live, s.check_in, s.check_out, s.nights,
           s.confirmation_code, p.name AS property_name, p.property_code, p.timezone,
           coalesce(p.check_in_time, CAST(:check_in_time AS time)) AS check_in_time,
           coalesce(p.check_out_time, CAST(:check_out_time AS time)) AS check_out_time,
           g.first_name, g.last_name, g.email, g.phone,
           a.code AS door_code, a.valid_from AS door_code_valid_from,
           a.valid_until AS door_code_valid_until,
           CASE WHEN r.id IS NULL OR p.id IS NULL THEN CAST(:as_of AS timestamptz)
                ELSE comms.after_quiet_hours(CAST(:as_of AS timestamptz), p.timezone,
                                             r.quiet_start, r.quiet_end) END AS release_at
    FROM due
    JOIN comms.messages m ON m.id = due.id
    LEFT JOIN comms.message_rules r ON r.id = m.message_rule_id
    LEFT JOIN comms.message_templates t ON t.id = r.template_id
    LEFT JOIN reservations.reservations s
      ON m.related_type = 'reservation' AND s.id = m.related_id
    LEFT JOIN property.properties p ON p.id = s.property_id
    LEFT JOIN directory.contacts g ON g.id = s.guest_contact_id
    LEFT JOIN property.access_codes a ON a.reservation_id = s.id AND a.{LIVE_CODE_SQL}
    ORDER BY m.scheduled_for, m.id
    """
)

# What the sweep decided for each claimed message, written only while it is still scheduled:
# queued with its rendered text, failed or cancelled with the reason, or deferred (still
# scheduled, later) past quiet hours.
APPLY_RELEASE = text(
    f"""
    UPDATE comms.messages m
    SET status = u.status,
        channel = coalesce(u.channel, m.channel),
        recipient = coalesce(u.recipient, m.recipient),
        subject = CASE WHEN u.status = 'queued' THEN u.subject ELSE m.subject END,
        body = coalesce(u.body, m.body),
        error = u.error,
        -- a deferred or released message keeps why it was scheduled (late_send_now)
        status_reason = coalesce(u.reason, m.status_reason),
        scheduled_for = coalesce(u.scheduled_for, m.scheduled_for)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:channels AS text[]),
                CAST(:recipients AS text[]), CAST(:subjects AS text[]),
                CAST(:bodies AS text[]), CAST(:errors AS text[]), CAST(:reasons AS text[]),
                CAST(:scheduled_for AS timestamptz[]))
         AS u(id, status, channel, recipient, subject, body, error, reason, scheduled_for)
    WHERE m.id = u.id AND m.{SCHEDULED_SQL}
    RETURNING m.status
    """
)
