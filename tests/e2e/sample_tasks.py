"""Tasks that exist only for the end-to-end tests (loaded with `celery worker -I`)."""

from __future__ import annotations

import time

from pydantic import Field
from sqlalchemy import text

from workers.base import JobContext, Payload, job


class SlowInsertPayload(Payload):
    key: str
    seconds: float = Field(ge=0, le=60)


@job("e2e.slow_insert", payload=SlowInsertPayload)
def slow_insert(ctx: JobContext, payload: SlowInsertPayload) -> dict:
    """Write one outbox row keyed by `key`, slowly: long enough to be killed in the middle."""
    ctx.session.execute(
        text(
            "INSERT INTO comms.messages (channel, recipient, subject, body, dedupe_key)"
            " VALUES ('webhook', 'e2e', 'slow insert', :key, :key)"
            " ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {"key": payload.key},
    )
    time.sleep(payload.seconds)
    return {"key": payload.key}


class FlakyPayload(Payload):
    key: str
    fail_times: int = Field(ge=0, le=5)


@job("e2e.flaky", payload=FlakyPayload)
def flaky(ctx: JobContext, payload: FlakyPayload) -> dict:
    """Meet a real transient fault (a database that refuses connections) `fail_times` times."""
    if ctx.attempt < payload.fail_times:
        from sqlalchemy import create_engine

        # Port 9 (discard) is closed here: psycopg raises OperationalError, as for a DB restart.
        create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none").connect()
    ctx.session.execute(
        text(
            "INSERT INTO comms.messages (channel, recipient, body, dedupe_key)"
            " VALUES ('webhook', 'e2e', 'flaky', :key) ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {"key": payload.key},
    )
    return {"attempt": ctx.attempt}
