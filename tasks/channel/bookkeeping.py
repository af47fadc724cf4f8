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

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from db.settings import get_settings
from tasks.channel import queries as q

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
        q.RECORD_SUCCESS,
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
        q.MAPPING_FAILED,
        {"id": mapping.id, "as_of": as_of, "error": error, "next_sync_at": next_sync_at},
    )
    log_id = session.execute(
        q.INSERT_ERROR_LOG,
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


def update_connection(
    session: Session, mapping: Row, as_of: dt.datetime, *, failed: bool, error: str | None
) -> None:
    if not failed and mapping.consecutive_failures == 0 and mapping.connection_failures == 0:
        # A healthy mapping of a healthy connection stayed healthy: the aggregate cannot have
        # changed but for the last success (the common case: no scan of the connection's
        # mappings).
        session.execute(
            q.CONNECTION_SUCCEEDED, {"connection_id": mapping.connection_id, "as_of": as_of}
        )
        return
    session.execute(
        q.CONNECTION_AGGREGATE,
        {
            "connection_id": mapping.connection_id,
            "failed": failed,
            "error": error,
            "as_of": as_of,
            "next_round": clock_anchor(as_of) + dt.timedelta(minutes=mapping.sync_interval_minutes),
        },
    )


# -- notices ---------------------------------------------------------------------------------


def queue_feed_health_notices(
    session: Session, *, as_of: dt.datetime, mapping_id: uuid.UUID | None = None
) -> int:
    """Queue one ops notice per mapping with no successful sync for HEALTH_AFTER, whatever
    the reason (failing, or not run at all); paused connections and inactive mappings are
    someone's decision and are left alone."""
    rows = session.execute(
        q.FEED_HEALTH_NOTICES,
        {
            "ops_channel": OPS_CHANNEL,
            "ops_recipient": get_settings().cmw_channel_ops_recipient,
            "stale_before": as_of - HEALTH_AFTER,
            "mapping_id": mapping_id,
        },
    ).all()
    return len(rows)


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
        q.HOLD_NOTICE,
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
