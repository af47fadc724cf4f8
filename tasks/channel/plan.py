"""channel.sync: which mappings are due (SPEC 6.4, 7.1).

The sweep claims the connections whose round is due by moving their round one interval
ahead (a conditional UPDATE: two sweeps cannot both claim one round) and marks their active
mappings that are not backing off on their own as requested (`sync_requested_at`). The task
then enqueues enough `channel.sync_mapping` batches to import them; each batch claims its share
of the requested mappings when it starts. A mapping stays requested until an import of it ends,
so a batch lost with its worker leaves nothing behind: the next batch claims what it left.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.channel.bookkeeping import clock_anchor, queue_feed_health_notices
from workers.base import NotFound


class UnknownConnection(NotFound):
    """No channel connection with this id."""


REQUEST_DUE = text(
    """
    WITH claimed AS (
        UPDATE channel.channel_connections c
        SET next_sync_at = :anchor + make_interval(mins => c.sync_interval_minutes)
        WHERE c.status = 'active'
          AND (CAST(:connection_id AS uuid) IS NULL
               AND (c.next_sync_at IS NULL OR c.next_sync_at <= :as_of)
               OR c.id = :connection_id)
        RETURNING c.id
    )
    UPDATE channel.channel_mappings m
    SET sync_requested_at = coalesce(m.sync_requested_at, :as_of)
    FROM claimed
    WHERE claimed.id = m.connection_id AND m.is_active AND m.import_url IS NOT NULL
      AND (CAST(:connection_id AS uuid) IS NOT NULL
           OR m.next_sync_at IS NULL OR m.next_sync_at <= :as_of)
    RETURNING m.id, m.connection_id
    """
)


def plan_sync(
    session: Session, *, as_of: dt.datetime, connection_id: uuid.UUID | None = None
) -> tuple[dict[str, Any], list[uuid.UUID]]:
    """Claim the due connections, request their mappings, sweep feed health; returns the
    summary and the mappings requested.

    With `connection_id` (by hand) that connection's active mappings are all requested now,
    whether due or backing off; a paused connection still requests nothing.
    """
    if connection_id is not None:
        found = session.execute(
            text("SELECT 1 FROM channel.channel_connections WHERE id = :id"), {"id": connection_id}
        ).first()
        if found is None:
            raise UnknownConnection(f"unknown connection_id {connection_id}")
    rows = session.execute(
        REQUEST_DUE,
        {"as_of": as_of, "anchor": clock_anchor(as_of), "connection_id": connection_id},
    ).all()
    notices = queue_feed_health_notices(session, as_of=as_of)
    result = {
        "connections": len({r.connection_id for r in rows}),
        "mappings_enqueued": len(rows),
        "health_notices": notices,
    }
    return result, sorted(r.id for r in rows)
