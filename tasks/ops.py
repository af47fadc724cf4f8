"""ops.purge: trim old job runs, finished outbox rows and channel sync logs (daily).

Dead letters are kept: each one is a task that needs a person, and they are few. Each channel
mapping's newest sync_log row is kept whatever its age: it is what `cmw channels` and the next
unchanged run (which folds into it) read.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from workers.base import JobContext, PeriodicPayload, job, utcnow
from workers.settings import get_settings


class PurgePayload(PeriodicPayload):
    keep_days: int | None = Field(default=None, ge=1, le=3650)


def purge_old_rows(
    session: Session, *, as_of: dt.datetime, keep_days: int, now: dt.datetime | None = None
) -> dict[str, int]:
    """Delete finished job runs and sent/failed messages older than `keep_days` before as_of,
    and never one newer than `keep_days` before the real clock (`now`): an `as_of` in the future
    may not widen what a purge deletes (SPEC 7.2), while one in the past narrows it as asked."""
    cutoff = min(as_of, now or utcnow()) - dt.timedelta(days=keep_days)
    # A `running` row is left alone whatever its age: it is either running or evidence of a
    # lost worker that ops should see.
    job_runs = session.execute(
        text("DELETE FROM ops.job_runs WHERE started_at < :cutoff AND status <> 'running'"),
        {"cutoff": cutoff},
    ).rowcount
    messages = session.execute(
        text(
            "DELETE FROM comms.messages WHERE created_at < :cutoff AND status IN ('sent', 'failed')"
        ),
        {"cutoff": cutoff},
    ).rowcount
    sync_log = session.execute(PURGE_SYNC_LOG, {"cutoff": cutoff}).rowcount
    return {
        "job_runs_deleted": job_runs,
        "messages_deleted": messages,
        "sync_log_deleted": sync_log,
        "keep_days": keep_days,
    }


# A folded row's age is its last run's (finished_at); the hashed NOT IN keeps every mapping's
# newest row without a lookup per deleted row.
PURGE_SYNC_LOG = text(
    """
    DELETE FROM channel.sync_log s
    WHERE (s.finished_at < :cutoff OR (s.finished_at IS NULL AND s.started_at < :cutoff))
      AND s.id NOT IN (
          SELECT last_sync_log_id FROM channel.channel_mappings
          WHERE last_sync_log_id IS NOT NULL
      )
    """
)


@job("ops.purge", payload=PurgePayload, singleton=True)
def purge(ctx: JobContext, payload: PurgePayload) -> dict:
    keep_days = payload.keep_days or get_settings().job_runs_keep_days
    return purge_old_rows(ctx.session, as_of=ctx.as_of, keep_days=keep_days)
