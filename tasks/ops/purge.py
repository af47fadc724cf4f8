"""ops.purge: trim old job runs, finished outbox rows, channel sync logs and resolved
incidents (daily).

Dead letters are kept: each one is a task that needs a person, and they are few. Each channel
mapping's newest sync_log row is kept whatever its age: it is what `cmw channels` and the next
unchanged run (which folds into it) read. Open incidents are kept whatever their age.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from tasks.ops import queries as q
from workers.base import utcnow


def purge_old_rows(
    session: Session, *, as_of: dt.datetime, keep_days: int, now: dt.datetime | None = None
) -> dict[str, int]:
    """Delete finished job runs and sent/failed messages older than `keep_days` before as_of,
    and never one newer than `keep_days` before the real clock (`now`): an `as_of` in the future
    may not widen what a purge deletes (SPEC 7.2), while one in the past narrows it as asked."""
    cutoff = min(as_of, now or utcnow()) - dt.timedelta(days=keep_days)
    params = {"cutoff": cutoff}
    job_runs = session.execute(q.PURGE_JOB_RUNS, params).rowcount
    messages = session.execute(q.PURGE_MESSAGES, params).rowcount
    sync_log = session.execute(q.PURGE_SYNC_LOG, params).rowcount
    incidents = session.execute(q.PURGE_INCIDENTS, params).rowcount
    return {
        "job_runs_deleted": job_runs,
        "messages_deleted": messages,
        "sync_log_deleted": sync_log,
        "incidents_deleted": incidents,
        "keep_days": keep_days,
    }
