"""Scenarios 1 and 6: workers killed (SIGKILL) or stopped (SIGTERM) in the middle of a job.

Each run stops a real job in the middle of its transaction (a SHARE lock on a table it writes:
reads go on, its first write waits), with its job_runs row committed, and then:

- **child**: SIGKILL of the pool process running it; the worker's main process sees the child
  die and, with late acks and `task_reject_on_worker_lost`, puts the message back at once;
- **whole**: SIGKILL of the whole worker (main process and pool); nothing acknowledged the
  message, so Redis hands it out again after the visibility timeout (10 s here) to a new worker;
- **sigterm**: SIGTERM (warm shutdown) while the job waits; the worker lets the job finish
  (the lock is released a second later) and then exits.

After each, the job's effect must exist exactly as often as one run makes it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import text

from faults import support as s
from faults.jobs import CASES, Case
from tests.support.feeds import FeedServer
from workers.queues import ALL_QUEUES


@pytest.fixture(scope="module")
def feed_server():
    server = FeedServer().start()
    yield server
    server.close()


def _run_once(mode: str, case: Case, ctx: dict, session, engine, celery_app, make_worker,
              worker) -> tuple[str, object]:  # fmt: skip
    """One run of the scenario; returns (outcome, the worker still running)."""
    prepared = case.prepare(session, ctx)
    session.commit()
    with s.table_locked(engine, prepared.lock_table):
        result = celery_app.send_task(prepared.task, kwargs=prepared.kwargs)
        s.wait_for(lambda: s.running(engine, result.id) and s.waiting_on_lock(engine), 30)
        if mode == "child":
            [child] = worker.children()
            os.kill(child, signal.SIGKILL)
        elif mode == "whole":
            worker.kill()
        else:
            worker.proc.send_signal(signal.SIGTERM)
            time.sleep(1)
    if mode == "whole":
        worker = make_worker(concurrency=1, extra_env=s.FAST_REDELIVERY)
    elif mode == "sigterm":
        worker.proc.wait(timeout=30)  # the warm shutdown finished the job first
        worker = make_worker(concurrency=1, extra_env=s.FAST_REDELIVERY)
    try:
        s.wait_for(lambda: any(r.status == "succeeded" for r in s.runs_of(engine, result.id)), 60)
    except TimeoutError:
        pass
    return prepared.outcome(engine), worker


@pytest.mark.parametrize("mode", ["child", "whole", "sigterm"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_job_interrupted_mid_transaction_takes_effect_exactly_once(
    mode, case, session, engine, celery_app, make_worker, feed_server
):
    ctx = {"feed_server": feed_server}
    worker = make_worker(queues=ALL_QUEUES, concurrency=1, extra_env=s.FAST_REDELIVERY)
    outcomes = []
    started = time.monotonic()
    for _ in range(s.N):
        outcome, worker = _run_once(
            mode, case, ctx, session, engine, celery_app, make_worker, worker
        )
        outcomes.append(outcome)
    per_run = (time.monotonic() - started) / s.N
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT status, count(*) FROM ops.job_runs WHERE task_name = :t GROUP BY 1"),
                {"t": case.name},
            ).all()
        )
    s.record(
        s.Outcome(
            scenario=f"1/6. {mode} mid-job", case=case.name, runs=s.N,
            lost=outcomes.count("lost"), duplicated=outcomes.count("duplicated"),
            figures={"s per run": round(per_run, 1),
                     "job runs": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))},
        )
    )  # fmt: skip
    assert outcomes == ["exact"] * s.N
