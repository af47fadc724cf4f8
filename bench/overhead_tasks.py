"""The two no-op tasks the task-path benchmark compares (loaded with `celery worker -I`).

`bench.noop_bare` is a plain Celery task on the same app (same broker, serializer, acks and
prefetch settings); `bench.noop_base` is the same nothing through our task base: payload
validation, the job_runs row written as `running` and then `succeeded`, the start and end log
lines.
"""

from __future__ import annotations

from workers.app import app
from workers.base import JobContext, Payload, job


@app.task(name="bench.noop_bare")
def noop_bare() -> dict:
    return {}


class NoopPayload(Payload):
    pass


@job("bench.noop_base", payload=NoopPayload)
def noop_base(ctx: JobContext, payload: NoopPayload) -> dict:
    return {}
