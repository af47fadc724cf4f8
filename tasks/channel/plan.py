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

from sqlalchemy.orm import Session

from tasks.channel import queries as q
from tasks.channel.bookkeeping import clock_anchor, queue_feed_health_notices
from workers.base import NotFound


class UnknownConnection(NotFound):
    """No channel connection with this id."""


def plan_sync(
    session: Session, *, as_of: dt.datetime, connection_id: uuid.UUID | None = None
) -> tuple[dict[str, Any], list[uuid.UUID]]:
    """Claim the due connections, request their mappings, sweep feed health; returns the
    summary and the mappings requested.

    With `connection_id` (by hand) that connection's active mappings are all requested now,
    whether due or backing off; a paused connection still requests nothing.
    """
    if connection_id is not None:
        found = session.execute(q.CONNECTION_EXISTS, {"id": connection_id}).first()
        if found is None:
            raise UnknownConnection(f"unknown connection_id {connection_id}")
    rows = session.execute(
        q.REQUEST_DUE,
        {"as_of": as_of, "anchor": clock_anchor(as_of), "connection_id": connection_id},
    ).all()
    notices = queue_feed_health_notices(session, as_of=as_of)
    result = {
        "connections": len({r.connection_id for r in rows}),
        "mappings_enqueued": len(rows),
        "health_notices": notices,
    }
    return result, sorted(r.id for r in rows)
