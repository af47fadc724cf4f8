"""Test fixtures: a fresh database migrated by the real Alembic history, real Redis, real workers.

The environment is set here, before anything reads Settings, so every process the tests start
(workers, `cmw` subprocesses) sees the suite's own database and Redis database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import choose_services

SERVICES = choose_services()
os.environ["DATABASE_URL"] = SERVICES.database_url
os.environ["REDIS_URL"] = SERVICES.redis_url
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("CELERY_RESULT_BACKEND", None)
os.environ.setdefault("CMW_CHANNEL_ALLOWED_HOSTS", "127.0.0.1")


from tests.support.fixtures import engine, make_worker, migrated_db, session  # noqa: E402,F401  (fixtures)
from tests.support.worker import WorkerProcess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def services():
    return SERVICES


@pytest.fixture(scope="session")
def redis_client(services):
    import redis

    from tests.support.services import CLAIM_KEY

    client = redis.Redis.from_url(services.redis_url)
    # Empty the session's own database, keeping its claim.
    for key in client.scan_iter():
        if key != CLAIM_KEY.encode():
            client.delete(key)
    yield client


@pytest.fixture(scope="session")
def worker_env(migrated_db, redis_client) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def worker(worker_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    """A real worker draining every queue, shared by one end-to-end module.

    Module-scoped on purpose: a worker left running for the whole session would execute the
    follow-up tasks that later integration tests enqueue after commit (e.g. sla.apply) and
    change their rows under them.
    """
    proc = WorkerProcess(worker_env, log_dir=tmp_path_factory.mktemp("worker")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def celery_app(migrated_db, redis_client):
    from workers.app import app

    app.loader.import_default_modules()
    return app
