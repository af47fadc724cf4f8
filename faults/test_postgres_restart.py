"""Scenario 3, second half: PostgreSQL restarted while a job is in the middle of its transaction.

The machine's server is not ours to restart, so this scenario runs on a private one (pgserver,
as `cmw dev` uses), migrated by the real Alembic history. The job is stopped inside its
transaction (a table lock), the server is stopped (fast shutdown: every backend terminated) and
started again on the same data. The task retries on the database errors with backoff until the
server is back, and finishes; nothing of the interrupted transaction remains, its effect exists
once, and the worker's pool hands out working connections afterwards.
"""

from __future__ import annotations

import contextlib
import time

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from faults import support as s
from faults.jobs import sync_reservation
from workers.dev.system import start_embedded_postgres
from workers.migrate import upgrade_head

DATABASE = "cmw_faults_restart"


def test_a_postgres_restart_mid_job_is_retried_and_the_pool_recovers(
    celery_app, make_worker, tmp_path
):
    data_dir = tmp_path / "pg"
    pg = start_embedded_postgres(data_dir, database=DATABASE)
    try:
        upgrade_head(pg.url)
        engine = create_engine(pg.url, pool_pre_ping=True)
        make_worker(queues=("recurring",), concurrency=1, extra_env={"DATABASE_URL": pg.url})
        outcomes, downtimes = [], []
        ctx: dict = {}
        for _ in range(s.N):
            with Session(engine) as session:
                prepared = sync_reservation(session, ctx)
                session.commit()
            locker = engine.connect()
            locker.begin()
            locker.execute(text(f"LOCK TABLE {prepared.lock_table} IN SHARE MODE"))
            result = celery_app.send_task(prepared.task, kwargs=prepared.kwargs)
            task_id = result.id
            s.wait_for(lambda t=task_id: s.running(engine, t) and s.waiting_on_lock(engine), 30)
            stopped = time.monotonic()
            pg.stop()  # fast shutdown: the job's backend and the lock holder's go with it
            with contextlib.suppress(Exception):
                locker.close()
            time.sleep(2)
            pg = start_embedded_postgres(data_dir, database=DATABASE)
            downtimes.append(time.monotonic() - stopped)
            engine.dispose()  # the test's own pool: its connections died with the server
            try:
                s.wait_for(
                    lambda t=task_id: any(r.status == "succeeded" for r in s.runs_of(engine, t)),
                    120,
                )
            except TimeoutError:
                pass
            outcomes.append(prepared.outcome(engine))
        # The pool recovered: a fresh task runs at once on the same worker.
        with Session(engine) as session:
            after = sync_reservation(session, ctx)
            session.commit()
        assert celery_app.send_task(after.task, kwargs=after.kwargs).get(timeout=60)["created"] == 1
        engine.dispose()
    finally:
        pg.stop()
    s.record(
        s.Outcome(
            scenario="3. PostgreSQL restarted mid-job", case="recurring.sync_reservation",
            runs=s.N, lost=outcomes.count("lost"), duplicated=outcomes.count("duplicated"),
            figures={"server down (s)": round(max(downtimes), 1)},
        )
    )  # fmt: skip
    assert outcomes == ["exact"] * s.N
