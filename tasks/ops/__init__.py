"""Operations jobs: housekeeping and job health.

- `ops.purge` (beat, daily): trims old job runs, delivered notifications, channel sync logs and
  resolved incidents (tasks.ops.purge);
- `ops.watch` (beat, every minute): opens and resolves incidents for missed, failing and
  overrunning periodic jobs and for open dead letters, and folds finished runs into the totals
  the metrics read (tasks.ops.watch; SPEC 7.4).

The adapters are named after their tasks, so that none hides a module of this package.
"""

from __future__ import annotations

from pydantic import Field

from tasks.ops.purge import purge_old_rows
from tasks.ops.watch import watch
from workers.base import JobContext, PeriodicPayload, job
from workers.settings import get_settings


class PurgePayload(PeriodicPayload):
    keep_days: int | None = Field(default=None, ge=1, le=3650)


class WatchPayload(PeriodicPayload):
    pass


@job("ops.purge", payload=PurgePayload, singleton=True)
def ops_purge(ctx: JobContext, payload: PurgePayload) -> dict:
    keep_days = payload.keep_days or get_settings().job_runs_keep_days
    return purge_old_rows(ctx.session, as_of=ctx.as_of, keep_days=keep_days)


@job("ops.watch", payload=WatchPayload, singleton=True)
def ops_watch(ctx: JobContext, payload: WatchPayload) -> dict:
    return watch(ctx.session, as_of=ctx.as_of)
