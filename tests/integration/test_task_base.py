"""The task base, exercised through ops.purge in-process (the path `cmw run` takes).

Task.apply() runs the task in this process through the same JobTask class a worker uses:
validation, job_runs, singleton lock, dead letters. End-to-end behaviour through a real worker
is in tests/e2e.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import text

from tests.support.cli import cmw_run_at_once
from tests.support.services import ROOT

AS_OF = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)


def _old_rows(session, *, runs_old: int, runs_new: int, messages_old: int) -> None:
    """Job runs and messages either 40 days or 1 day before AS_OF."""
    for n, age in ((runs_old, 40), (runs_new, 1)):
        session.execute(
            text(
                "INSERT INTO ops.job_runs (task_name, status, started_at)"
                " SELECT 'x.y', 'succeeded', :at FROM generate_series(1, :n)"
            ),
            {"n": n, "at": AS_OF - dt.timedelta(days=age)},
        )
    session.execute(
        text(
            "INSERT INTO ops.job_runs (task_name, status, started_at)"
            " VALUES ('x.y', 'running', :at)"
        ),
        {"at": AS_OF - dt.timedelta(days=90)},
    )
    session.execute(
        text(
            "INSERT INTO comms.messages (channel, recipient, body, dedupe_key, status, created_at)"
            " SELECT 'email', 'ops@example.com', 'b', 'm' || s || g, s, :at"
            " FROM generate_series(1, :n) g, unnest(ARRAY['sent', 'queued']) s"
        ),
        {"n": messages_old, "at": AS_OF - dt.timedelta(days=40)},
    )
    session.commit()


def _runs(session, task_name: str = "ops.purge"):
    return session.execute(
        text(
            "SELECT status, as_of, payload, result, error, retries, finished_at FROM ops.job_runs"
            " WHERE task_name = :t ORDER BY started_at"
        ),
        {"t": task_name},
    ).all()


def test_purge_deletes_only_old_finished_rows_and_records_its_run(celery_app, session):
    _old_rows(session, runs_old=5, runs_new=3, messages_old=4)
    result = celery_app.tasks["ops.purge"].apply(
        kwargs={"as_of": AS_OF.isoformat(), "keep_days": 30}
    )
    assert result.successful(), result.result
    assert result.result == {
        "job_runs_deleted": 5,
        "messages_deleted": 4,
        "sync_log_deleted": 0,
        "incidents_deleted": 0,
        "keep_days": 30,
    }
    left = session.execute(
        text("SELECT status, count(*) FROM ops.job_runs WHERE task_name = 'x.y' GROUP BY status")
    ).all()
    assert dict(left) == {"succeeded": 3, "running": 1}
    queued = session.execute(text("SELECT count(*) FROM comms.messages WHERE status = 'queued'"))
    assert queued.scalar() == 4  # a message not yet delivered is never purged
    [run] = _runs(session)
    assert run.status == "succeeded"
    assert run.as_of == AS_OF
    assert run.payload == {"as_of": AS_OF.isoformat(), "keep_days": 30}
    assert run.result == result.result
    assert run.finished_at is not None


def test_purge_twice_deletes_once(celery_app, session):
    _old_rows(session, runs_old=7, runs_new=0, messages_old=2)
    task = celery_app.tasks["ops.purge"]
    first = task.apply(kwargs={"as_of": AS_OF.isoformat()}).result
    second = task.apply(kwargs={"as_of": AS_OF.isoformat()}).result
    assert (first["job_runs_deleted"], first["messages_deleted"]) == (7, 2)
    assert (second["job_runs_deleted"], second["messages_deleted"]) == (0, 0)


def test_purge_twice_at_once_from_two_processes_deletes_each_row_once(engine, session):
    _old_rows(session, runs_old=2000, runs_new=0, messages_old=500)
    results = cmw_run_at_once("ops.purge", {"as_of": AS_OF.isoformat()}, timeout=60)
    deleted = sum(r.get("job_runs_deleted", 0) for r in results)
    assert deleted == 2000
    assert sum(r.get("messages_deleted", 0) for r in results) == 500
    statuses = sorted(r.status for r in _runs(session))
    assert statuses in (["skipped", "succeeded"], ["succeeded", "succeeded"])
    assert (
        session.execute(text("SELECT count(*) FROM ops.job_runs WHERE task_name = 'x.y'")).scalar()
        == 1
    )


def test_a_second_copy_of_a_singleton_records_skipped(celery_app, engine, session):
    """While one run holds the job's advisory lock, another records `skipped` and succeeds."""
    _old_rows(session, runs_old=3, runs_new=0, messages_old=0)
    holder = engine.connect()
    trans = holder.begin()
    holder.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('cmw.job:ops.purge', 0))"))
    try:
        result = celery_app.tasks["ops.purge"].apply(kwargs={"as_of": AS_OF.isoformat()})
    finally:
        trans.rollback()
        holder.close()
    assert result.successful()
    assert "skipped" in result.result
    [run] = _runs(session)
    assert run.status == "skipped"
    assert (
        session.execute(text("SELECT count(*) FROM ops.job_runs WHERE task_name = 'x.y'")).scalar()
        == 4
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"keep_days": "abc"}, "keep_days"),
        ({"keep_days": "5"}, "keep_days"),  # strict: a string is not an int
        ({"keep_days": 0}, "greater than or equal to 1"),
        ({"keepdays": 5}, "Extra inputs are not permitted"),
        ({"as_of": "2026-06-30T12:00:00"}, "timezone"),  # as_of needs an offset
        ({"as_of": "yesterday"}, "as_of"),
    ],
)
def test_a_bad_payload_fails_once_without_retry_and_is_dead_lettered(
    celery_app, session, payload, message
):
    result = celery_app.tasks["ops.purge"].apply(kwargs=payload)
    assert result.failed()
    assert message in str(result.result)
    [dead] = session.execute(
        text("SELECT task_name, payload, error, error_kind, retries FROM ops.dead_letters")
    ).all()
    assert dead.task_name == "ops.purge"
    assert dead.payload == payload
    assert message in dead.error
    assert dead.error_kind == "validation"
    assert dead.retries == 0
    [run] = _runs(session)
    assert run.status == "failed" and message in run.error


def test_cmw_run_prints_the_result_last_and_exits_non_zero_on_failure(engine):
    ok = subprocess.run(
        [sys.executable, "-m", "workers.cli", "run", "ops.purge", "--payload", '{"keep_days": 10}'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1]) == {
        "job_runs_deleted": 0,
        "messages_deleted": 0,
        "sync_log_deleted": 0,
        "incidents_deleted": 0,
        "keep_days": 10,
    }
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "run",
            "ops.purge",
            "--payload",
            '{"keep_days": "abc"}',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "keep_days" in json.loads(bad.stdout.strip().splitlines()[-1])["error"]
    unknown = subprocess.run(
        [sys.executable, "-m", "workers.cli", "run", "no.such_task"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "unknown task" in unknown.stderr


def test_beat_schedule_names_only_registered_tasks_with_expiry(celery_app):
    """A schedule entry naming a missing task would fail silently at every slot."""
    import beat_schedule

    for key, entry in beat_schedule.BEAT_SCHEDULE.items():
        assert entry["task"] in celery_app.tasks, key
        assert 0 < entry["options"]["expires"], key
        routed = celery_app.amqp.router.route({}, entry["task"])["queue"].name
        assert entry["options"]["queue"] == routed, key


def test_app_refuses_pickle_and_acks_late(celery_app):
    conf = celery_app.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.result_accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit


def test_threads_share_nothing_unsafe_when_running_jobs(celery_app, session):
    """Two in-process runs on two threads (each its own session) both finish."""
    results = []

    def run() -> None:
        results.append(celery_app.tasks["ops.purge"].apply(kwargs={"keep_days": 5}))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and all(r.successful() for r in results)
