"""Scenarios 2 and 3: the broker restarted under load; the database connection cut mid-job.

2. Redis (the suite's own, with the compose file's append-only persistence) is stopped cleanly
   and started again while tasks are queued and in flight. The workers reconnect by
   themselves; every task's effect must exist once. A task in flight when the broker went away
   may run a second time (its acknowledgement had nowhere to go); its effect is keyed
   (`ON CONFLICT DO NOTHING`), so it still exists once; the report counts those executions.
3. The job's PostgreSQL backend is terminated (`pg_terminate_backend`) while the job is in the
   middle of its transaction: the transaction is gone, the task retries on the database error
   with backoff and finishes; its effect exists once and the pool hands out live connections.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text

from faults import support as s
from faults.jobs import sync_reservation

QUEUE = "faults"
TASKS = 40


def _messages(engine, keys: list[str]) -> int:
    return s.scalar(
        engine, "SELECT count(*) FROM comms.messages WHERE dedupe_key = ANY(:k)", k=keys
    )


def test_a_redis_restart_with_tasks_queued_and_in_flight_loses_nothing(
    engine, celery_app, make_worker, redis_server
):
    make_worker(queues=(QUEUE,), concurrency=2, extra_env=s.FAST_REDELIVERY)
    lost = duplicated = 0
    reconnects, executions = [], 0
    diagnostics: list[dict] = []
    for _ in range(s.N):
        keys = [f"redis-{uuid.uuid4().hex[:10]}" for _ in range(TASKS)]
        ids = [
            celery_app.send_task(
                "e2e.slow_insert", kwargs={"key": k, "seconds": 0.3}, queue=QUEUE
            ).id
            for k in keys
        ]
        s.wait_for(lambda keys=keys: _messages(engine, keys) >= 5, 60)
        redis_server.restart(down_seconds=2)
        restarted = time.monotonic()
        before = _messages(engine, keys)
        s.wait_for(lambda keys=keys, before=before: _messages(engine, keys) > before, 60)
        reconnects.append(time.monotonic() - restarted)
        try:
            s.wait_for(lambda keys=keys: _messages(engine, keys) == TASKS, 60)
        except TimeoutError:
            pass
        done = _messages(engine, keys)
        lost += TASKS - done
        if done < TASKS:
            import redis as redis_lib

            client = redis_lib.Redis.from_url(redis_server.url)
            missing = [i for k, i in zip(keys, ids, strict=True)
                       if not _messages(engine, [k])]  # fmt: skip
            diagnostics.append({
                "unacked": client.hlen("unacked"), "queued": client.llen(QUEUE),
                "missing": [(i, [r.status for r in s.runs_of(engine, i)]) for i in missing],
            })  # fmt: skip
        with engine.connect() as conn:
            executions += conn.execute(
                text(
                    "SELECT count(*) FROM ops.job_runs WHERE task_id = ANY(:ids)"
                    " AND status = 'succeeded'"
                ),
                {"ids": ids},
            ).scalar_one()
    s.record(
        s.Outcome(
            scenario="2. Redis restarted under load", case=f"{TASKS} tasks queued and in flight",
            runs=s.N, lost=lost, duplicated=duplicated,
            figures={"consuming again after (max s)": round(max(reconnects), 1),
                     "extra executions": executions - TASKS * s.N},
        )
    )  # fmt: skip
    assert lost == 0, diagnostics
    assert max(reconnects) < 30


def test_a_terminated_backend_mid_job_is_retried_and_takes_effect_once(
    session, engine, celery_app, make_worker
):
    # Only the job's own queue: the sla.apply follow-ups it enqueues also write tickets, and
    # one of them waiting on the lock must not be the backend the test terminates.
    make_worker(queues=("recurring",), concurrency=1)
    ctx: dict = {}
    outcomes, retried = [], 0
    for _ in range(s.N):
        prepared = sync_reservation(session, ctx)
        session.commit()
        with s.table_locked(engine, prepared.lock_table):
            result = celery_app.send_task(prepared.task, kwargs=prepared.kwargs)
            task_id = result.id
            s.wait_for(lambda t=task_id: s.running(engine, t) and s.waiting_on_lock(engine), 30)
            with engine.connect() as conn:
                terminated = conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                        " FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'cmw' AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
            assert terminated == 1
        try:
            result.get(timeout=90)
        except Exception:
            pass
        runs = s.runs_of(engine, result.id)
        retried += any("will retry" in (r.error or "") for r in runs)
        outcomes.append(prepared.outcome(engine))
    s.record(
        s.Outcome(
            scenario="3. backend terminated mid-job", case="recurring.sync_reservation",
            runs=s.N, lost=outcomes.count("lost"), duplicated=outcomes.count("duplicated"),
            figures={"runs retried after the error": retried},
        )
    )  # fmt: skip
    assert outcomes == ["exact"] * s.N
    assert retried == s.N
