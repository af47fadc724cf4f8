"""Scale-out end to end: RabbitMQ as the broker, and two workers on separate queues.

The core of the end-to-end suite again with `CELERY_BROKER_URL=amqp://…` (SPEC 2): a job by
name, a bad payload dead-lettered without retry, a worker killed in the middle of a task (the
task redelivered and its effect there once). Results stay in Redis, as a deployment with
RabbitMQ would keep them. RabbitMQ cannot be started from a Python package the way the suite
starts an embedded PostgreSQL and Redis, so these tests need one on 127.0.0.1:5672 (CI has it)
and are skipped, saying so, where none listens.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid

import pytest
from celery import Celery
from sqlalchemy import text

from db.settings import Settings
from tests.support import factories as f
from tests.support.runs import runs_of, scalar, wait_for
from workers.queues import ALL_QUEUES

pytestmark = pytest.mark.e2e

AMQP_URL = os.environ.get("CMW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
KILL_QUEUE = "e2e_kill"


def _rabbitmq_listens() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbit_app(celery_app):
    """A client app like the services' own: the same configuration, RabbitMQ as its broker."""
    if not _rabbitmq_listens():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (CI has one)")
    from workers.app import build_config

    app = Celery("cmw-rabbitmq-client")
    app.config_from_object(build_config(Settings(celery_broker_url=AMQP_URL)))
    # Messages an aborted earlier run left behind would run against this session's database.
    with app.connection_for_write() as conn:
        for name in (*ALL_QUEUES, KILL_QUEUE):
            try:
                conn.default_channel.queue_purge(name)
            except Exception:
                conn.close()
                conn.connect()
    yield app
    app.close()


def _rabbit_worker(make_worker, **kwargs):
    return make_worker(extra_env={"CELERY_BROKER_URL": AMQP_URL}, **kwargs)


def test_core_jobs_run_through_rabbitmq(make_worker, rabbit_app, session, engine):
    worker = _rabbit_worker(make_worker)
    assert "amqp://guest:**@127.0.0.1:5672//" in worker.log()

    # A job by name: a new stay's reservation-rule tickets.
    prop = f.property_(session, name="Quay House", timezone="Europe/Dublin")
    f.insert(
        session,
        "service.recurring_rules",
        name="Departure clean",
        ticket_type="PC",
        title_template="Departure clean {property_name}",
        trigger_type="reservation",
        anchor="check_out",
        local_time=dt.time(11, 0),
        scope_type="all_properties",
    )
    check_in = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=20)
    stay = f.reservation(session, prop, check_in, check_in + dt.timedelta(days=3))
    session.commit()
    result = rabbit_app.send_task(
        "recurring.sync_reservation", kwargs={"reservation_id": str(stay)}
    )
    assert result.get(timeout=90)["created"] == 1
    session.commit()
    [title] = session.execute(
        text("SELECT title FROM service.tickets WHERE reservation_id = :r"), {"r": stay}
    ).scalars()
    assert title == "Departure clean Quay House"
    [run] = runs_of(engine, result.id)
    assert run.status == "succeeded" and run.worker.startswith("test-")

    # A bad payload: failed at once, dead-lettered, never retried.
    bad = rabbit_app.send_task("ops.purge", kwargs={"keep_days": "many"})
    with pytest.raises(Exception, match="keep_days"):
        bad.get(timeout=60)
    time.sleep(2)  # room for a retry, which must not come
    [run] = runs_of(engine, bad.id)
    assert run.status == "failed" and run.retries == 0
    assert scalar(engine, "SELECT count(*) FROM ops.dead_letters WHERE task_id = :t", t=bad.id) == 1


def test_a_worker_killed_mid_task_on_rabbitmq_is_redelivered_and_its_effect_exists_once(
    make_worker, rabbit_app, engine
):
    first = _rabbit_worker(make_worker, queues=(KILL_QUEUE,), concurrency=1)
    key = f"rabbit-{uuid.uuid4().hex[:8]}"
    result = rabbit_app.send_task(
        "e2e.slow_insert", kwargs={"key": key, "seconds": 4}, queue=KILL_QUEUE
    )
    wait_for(lambda: any(r.status == "running" for r in runs_of(engine, result.id)), timeout=30)
    first.kill()
    messages = "SELECT count(*) FROM comms.messages WHERE dedupe_key = :k"
    assert scalar(engine, messages, k=key) == 0  # the killed run never committed
    # RabbitMQ returns an unacknowledged message the moment its consumer's connection drops:
    # no visibility timeout to wait out, unlike Redis.
    _rabbit_worker(make_worker, queues=(KILL_QUEUE,), concurrency=1)
    assert result.get(timeout=60) == {"key": key}
    runs = runs_of(engine, result.id)
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert runs[0].worker != runs[1].worker
    assert scalar(engine, messages, k=key) == 1


def test_two_workers_on_separate_queues_each_run_their_own_job_families(
    make_worker, celery_app, engine
):
    housekeeping = make_worker(queues=("default", "recurring", "inventory"))
    service_desk = make_worker(queues=("sla", "channel", "finance", "analytics"))
    sent = {
        "ops.purge": celery_app.send_task("ops.purge", kwargs={}),
        "linen.reorder": celery_app.send_task("linen.reorder", kwargs={}),
        "sla.check_breaches": celery_app.send_task("sla.check_breaches", kwargs={}),
        "channel.export_calendars": celery_app.send_task("channel.export_calendars", kwargs={}),
    }
    for result in sent.values():
        result.get(timeout=90)
    ran_on = {name: runs_of(engine, r.id)[-1].worker for name, r in sent.items()}
    home = {w.name.split("@")[0] for w in (housekeeping, service_desk)}
    assert {w.split("@")[0] for w in ran_on.values()} == home
    assert ran_on["ops.purge"] == ran_on["linen.reorder"]
    assert ran_on["sla.check_breaches"] == ran_on["channel.export_calendars"]
    assert ran_on["ops.purge"].startswith(housekeeping.name.split("@")[0])
    assert ran_on["sla.check_breaches"].startswith(service_desk.name.split("@")[0])
