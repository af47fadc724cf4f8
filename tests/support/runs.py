"""Waiting on, and reading back, what real workers did: shared by the end-to-end tests and the
fault suite."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.engine import Engine


def wait_for(predicate, timeout: float = 60, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy (returned); TimeoutError after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met in {timeout}s")


def runs_of(engine: Engine, task_id: str) -> list:
    """A task's ops.job_runs rows, oldest first."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT status, error, retries, worker FROM ops.job_runs WHERE task_id = :t"
                " ORDER BY started_at, created_at"
            ),
            {"t": task_id},
        ).all()


def running(engine: Engine, task_id: str) -> bool:
    return any(r.status == "running" for r in runs_of(engine, task_id))


def scalar(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()
