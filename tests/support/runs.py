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


def run_on_worker(celery_app, engine: Engine, task: str, timeout: float = 120, **kwargs):
    """Send `task` by name, wait for its result, and check a test worker ran it (not this
    process); the result."""
    result = celery_app.send_task(task, kwargs=kwargs)
    summary = result.get(timeout=timeout)
    worker = scalar(engine, "SELECT worker FROM ops.job_runs WHERE task_id = :t", t=result.id)
    assert worker.startswith("test-")  # it ran on the worker, not in this process
    return summary


def column(engine: Engine, sql: str, **params) -> list:
    """The first column of every row."""
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).scalars())


def one_row(engine: Engine, sql: str, **params) -> dict:
    """The one row the query returns, as a dict of its columns."""
    with engine.connect() as conn:
        return dict(conn.execute(text(sql), params).mappings().one())
