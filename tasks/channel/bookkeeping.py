"""What an import records about itself: the sync_log row (folded when nothing changed), the
mapping's and the connection's state and backoff, and the ops notices (SPEC 6.4, 7.1).

- A run that changed nothing (a 304, the same body, or a body whose events are all unchanged)
  folds into the mapping's newest sync_log row when that row is of the same kind: the row
  counts the runs (`runs`) and keeps the last one's times (`last_started_at`, `finished_at`).
  At 20,000 feeds on a 15-minute interval, unchanged feeds then add no rows at all.
- Backoff is per mapping (a dead listing backs off alone); the connection aggregates its
  mappings. Times count from the earlier of `as_of` and the real clock (SPEC 7.2): a replay
  with a far-future `as_of` cannot push a feed's next sync out of reach.
- Notices (comms.messages, channel 'slack', to CMW_CHANNEL_OPS_RECIPIENT): a feed with no
  successful sync for 24 hours, once per failing episode; cancellations held, once per episode.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db.settings import get_settings

# Backoff: the interval doubles per consecutive failure, up to this; a Retry-After longer than
# this is clipped to it too, so a feed is never silently dropped for longer than the cap.
MAX_BACKOFF = dt.timedelta(hours=6)
# Feed health: no successful sync for this long queues one ops notification.
HEALTH_AFTER = dt.timedelta(hours=24)
OPS_CHANNEL = "slack"
ERROR_MAX = 500


def clock_anchor(as_of: dt.datetime) -> dt.datetime:
    """What future work is scheduled from: the earlier of as_of and now (SPEC 7.2)."""
    return min(as_of, dt.datetime.now(dt.UTC))


def backoff_delay(
    interval_minutes: int, failures: int, retry_after: float | None = None
) -> dt.timedelta:
    """interval x 2^failures, at most MAX_BACKOFF; at least Retry-After (also capped)."""
    delay = min(dt.timedelta(minutes=interval_minutes) * (2 ** min(failures, 20)), MAX_BACKOFF)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(dt.timedelta(seconds=retry_after), MAX_BACKOFF))
    return delay


# -- a successful run ------------------------------------------------------------------------

# The run's sync_log row (a fold into the newest one when both changed nothing) and the
# mapping's bookkeeping, in one round trip. The claim is released here too.
RECORD_SUCCESS = text(
    """
    WITH folded AS (
        UPDATE channel.sync_log s SET
            runs = s.runs + 1, last_started_at = :started_at, finished_at = :finished_at,
            http_status = :http_status, events_seen = :events_seen
        WHERE :foldable AND s.id = CAST(:last_log_id AS uuid) AND s.mapping_id = :mapping_id
          AND s.status = :status AND s.error IS NULL
          AND s.created = 0 AND s.updated = 0 AND s.cancelled = 0
          AND s.held = :held AND s.rejected = :rejected AND s.conflicts = :conflicts
        RETURNING s.id
    ),
    inserted AS (
        INSERT INTO channel.sync_log
            (connection_id, mapping_id, started_at, finished_at, status, http_status,
             events_seen, created, updated, cancelled, conflicts, held, rejected, error)
        SELECT :connection_id, :mapping_id, :started_at, :finished_at, :status, :http_status,
               :events_seen, :created, :updated, :cancelled, :conflicts, :held, :rejected, NULL
        WHERE NOT EXISTS (SELECT 1 FROM folded)
        RETURNING id
    ),
    logged AS (SELECT id FROM folded UNION ALL SELECT id FROM inserted)
    UPDATE channel.channel_mappings SET
        last_etag = :etag, last_modified = :last_modified, last_feed_hash = :feed_hash,
        last_synced_at = :as_of,
        last_changed_at = CASE WHEN :changed THEN :as_of ELSE last_changed_at END,
        next_sync_at = NULL, consecutive_failures = 0, failing_since = NULL, last_error = NULL,
        hold_started_at = :hold_started_at,
        last_sync_log_id = (SELECT id FROM logged),
        claimed_by = NULL, claimed_until = NULL, sync_requested_at = NULL
    WHERE id = :mapping_id
    RETURNING last_sync_log_id AS log_id, (SELECT count(*) FROM folded) AS folded
    """
)


def record_success(
    session: Session,
    mapping: Row,
    *,
    as_of: dt.datetime,
    finished_at: dt.datetime,
    status: str,
    http_status: int | None,
    etag: str | None,
    last_modified: str | None,
    feed_hash: str | None,
    counts: dict[str, int],
    hold_started_at: dt.datetime | None,
) -> tuple[uuid.UUID, bool]:
    """The run's sync_log row (or the fold) and the mapping's state; (log id, folded)."""
    changed = bool(counts["created"] or counts["updated"] or counts["cancelled"])
    row = session.execute(
        RECORD_SUCCESS,
        {
            "mapping_id": mapping.id,
            "connection_id": mapping.connection_id,
            "last_log_id": mapping.last_sync_log_id,
            "foldable": not changed and not counts.get("tickets", 0),
            "etag": etag,
            "last_modified": last_modified,
            "feed_hash": feed_hash,
            "as_of": as_of,
            "changed": changed,
            "started_at": as_of,
            "finished_at": finished_at,
            "status": status,
            "http_status": http_status,
            "events_seen": counts["events_seen"],
            "created": counts["created"],
            "updated": counts["updated"],
            "cancelled": counts["cancelled"],
            "conflicts": counts["conflicts"],
            "held": counts["held"],
            "rejected": counts["rejected"],
            "hold_started_at": hold_started_at,
        },
    ).one()
    # Last: the connection row is shared by every import of the connection, so its lock is
    # held only from here to the commit.
    update_connection(session, mapping, as_of, failed=False, error=None)
    return row.log_id, bool(row.folded)


# -- a failed run ----------------------------------------------------------------------------

MAPPING_FAILED = text(
    """
    UPDATE channel.channel_mappings SET
        consecutive_failures = consecutive_failures + 1,
        failing_since = coalesce(failing_since, :as_of),
        last_error = :error,
        next_sync_at = :next_sync_at,
        claimed_by = NULL, claimed_until = NULL, sync_requested_at = NULL
    WHERE id = :id
    """
)
INSERT_ERROR_LOG = text(
    """
    WITH logged AS (
        INSERT INTO channel.sync_log
            (connection_id, mapping_id, started_at, finished_at, status, http_status, error)
        VALUES (:connection_id, :mapping_id, :started_at, :finished_at, 'error', :http_status,
                :error)
        RETURNING id
    )
    UPDATE channel.channel_mappings SET last_sync_log_id = (SELECT id FROM logged)
    WHERE id = :mapping_id
    RETURNING last_sync_log_id AS id
    """
)


def record_failure(
    session: Session,
    mapping: Row,
    *,
    as_of: dt.datetime,
    finished_at: dt.datetime,
    error: str,
    http_status: int | None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """A sync_log error, the mapping's backoff, the connection's aggregate and, after a day of
    failure, one notice. Returns the run's result."""
    error = error[:ERROR_MAX]
    failures = mapping.consecutive_failures + 1
    next_sync_at = clock_anchor(as_of) + backoff_delay(
        mapping.sync_interval_minutes, failures, retry_after
    )
    session.execute(
        MAPPING_FAILED,
        {"id": mapping.id, "as_of": as_of, "error": error, "next_sync_at": next_sync_at},
    )
    log_id = session.execute(
        INSERT_ERROR_LOG,
        {
            "connection_id": mapping.connection_id,
            "mapping_id": mapping.id,
            "started_at": as_of,
            "finished_at": finished_at,
            "http_status": http_status,
            "error": error,
        },
    ).scalar_one()
    notices = queue_feed_health_notices(session, as_of=as_of, mapping_id=mapping.id)
    update_connection(session, mapping, as_of, failed=True, error=error)
    return {
        "status": "error",
        "http_status": http_status,
        "sync_log_id": str(log_id),
        "error": error,
        "consecutive_failures": failures,
        "next_sync_at": next_sync_at.isoformat(),
        "health_notices": notices,
    }


# -- the connection --------------------------------------------------------------------------

# The connection aggregates its active mappings: failing (and backing off as a whole, to the
# earliest retry any of them wants) only while every one of them is failing.
CONNECTION_AGGREGATE = text(
    """
    UPDATE channel.channel_connections c SET
        consecutive_failures = a.min_failures,
        failing_since = CASE WHEN a.min_failures > 0 THEN a.failing_since END,
        last_error = CASE WHEN :failed THEN :error
                          WHEN a.max_failures = 0 THEN NULL
                          ELSE c.last_error END,
        last_success_at = CASE WHEN :failed THEN c.last_success_at
                               ELSE greatest(c.last_success_at, :as_of) END,
        next_sync_at = CASE WHEN a.min_failures > 0 THEN greatest(c.next_sync_at, a.retry_at)
                            WHEN :failed THEN c.next_sync_at
                            ELSE least(coalesce(c.next_sync_at, :next_round), :next_round) END
    FROM (
        SELECT coalesce(min(consecutive_failures), 0) AS min_failures,
               coalesce(max(consecutive_failures), 0) AS max_failures,
               max(failing_since) AS failing_since,
               min(next_sync_at) AS retry_at
        FROM channel.channel_mappings
        WHERE connection_id = :connection_id AND is_active AND import_url IS NOT NULL
    ) a
    WHERE c.id = :connection_id
    """
)
CONNECTION_SUCCEEDED = text(
    """
    UPDATE channel.channel_connections SET last_success_at = :as_of
    WHERE id = :connection_id AND (last_success_at IS NULL OR last_success_at < :as_of)
    """
)


def update_connection(
    session: Session, mapping: Row, as_of: dt.datetime, *, failed: bool, error: str | None
) -> None:
    if not failed and mapping.consecutive_failures == 0 and mapping.connection_failures == 0:
        # A healthy mapping of a healthy connection stayed healthy: the aggregate cannot have
        # changed but for the last success (the common case: no scan of the connection's
        # mappings).
        session.execute(
            CONNECTION_SUCCEEDED, {"connection_id": mapping.connection_id, "as_of": as_of}
        )
        return
    session.execute(
        CONNECTION_AGGREGATE,
        {
            "connection_id": mapping.connection_id,
            "failed": failed,
            "error": error,
            "as_of": as_of,
            "next_round": clock_anchor(as_of) + dt.timedelta(minutes=mapping.sync_interval_minutes),
        },
    )


# -- notices ---------------------------------------------------------------------------------

# One notice per mapping and episode: the key carries the last success (or the mapping's
# creation when it never succeeded), so a feed that recovers and fails again is reported
# again, while every sweep of one episode finds the notice already queued.
FEED_HEALTH_NOTICES = text(
    """
    INSERT INTO comms.messages
        (channel, recipient, subject, body, related_type, related_id, dedupe_key)
    SELECT :ops_channel, :ops_recipient,
           format('Channel feed unhealthy: %s on %s', p.property_code, c.name),
           format('No successful sync of the %s feed of %s (%s) since %s.%s Check the listing'
                  ' and its feed URL at the channel (mapping %s).',
                  c.name, p.property_code, p.name,
                  CASE WHEN m.last_synced_at IS NULL THEN 'it was set up'
                       ELSE to_char(m.last_synced_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI "UTC"') END,
                  CASE WHEN m.consecutive_failures > 0
                       THEN format(' %s failures in a row, the last: %s.',
                                   m.consecutive_failures, m.last_error)
                       ELSE ' It has not been synced (is the worker or beat running?).' END,
                  m.id),
           'channel_mapping', m.id,
           'channel:feed_health:' || m.id::text || ':'
               || to_char(coalesce(m.last_synced_at, m.created_at) AT TIME ZONE 'UTC',
                          'YYYYMMDD"T"HH24MISS.US')
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.is_active AND m.import_url IS NOT NULL AND c.status <> 'paused'
      AND coalesce(m.last_synced_at, m.created_at) < :stale_before
      AND (CAST(:mapping_id AS uuid) IS NULL OR m.id = :mapping_id)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


def queue_feed_health_notices(
    session: Session, *, as_of: dt.datetime, mapping_id: uuid.UUID | None = None
) -> int:
    """Queue one ops notice per mapping with no successful sync for HEALTH_AFTER, whatever
    the reason (failing, or not run at all); paused connections and inactive mappings are
    someone's decision and are left alone."""
    rows = session.execute(
        FEED_HEALTH_NOTICES,
        {
            "ops_channel": OPS_CHANNEL,
            "ops_recipient": get_settings().cmw_channel_ops_recipient,
            "stale_before": as_of - HEALTH_AFTER,
            "mapping_id": mapping_id,
        },
    ).all()
    return len(rows)


# One notice per held episode: the key carries the episode's start.
HOLD_NOTICE = text(
    """
    INSERT INTO comms.messages
        (channel, recipient, subject, body, related_type, related_id, dedupe_key)
    SELECT :ops_channel, :ops_recipient,
           format('Channel cancellations held: %s on %s', p.property_code, c.name),
           format('The %s feed of %s (%s) suddenly lists %s of its %s upcoming bookings no'
                  ' more. Channels glitch, so these cancellations are held, not applied: if'
                  ' the events come back nothing is cancelled; if they are still missing'
                  ' after %s hours they are cancelled then. If the bookings really are gone,'
                  ' apply the cancellations now: cmw channels release %s',
                  c.name, p.property_code, p.name, CAST(:held AS int), CAST(:live AS int),
                  CAST(:hold_hours AS numeric), m.id),
           'channel_mapping', m.id,
           'channel:held:' || m.id::text || ':'
               || to_char(CAST(:episode AS timestamptz) AT TIME ZONE 'UTC',
                          'YYYYMMDD"T"HH24MISS.US')
    FROM channel.channel_mappings m
    JOIN channel.channel_connections c ON c.id = m.connection_id
    JOIN property.properties p ON p.id = m.property_id
    WHERE m.id = :mapping_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


def queue_hold_notice(
    session: Session,
    *,
    mapping_id: uuid.UUID,
    episode: dt.datetime,
    held: int,
    live: int,
    hold_hours: float,
) -> int:
    rows = session.execute(
        HOLD_NOTICE,
        {
            "ops_channel": OPS_CHANNEL,
            "ops_recipient": get_settings().cmw_channel_ops_recipient,
            "mapping_id": mapping_id,
            "episode": episode,
            "held": held,
            "live": live,
            "hold_hours": hold_hours,
        },
    ).all()
    return len(rows)
