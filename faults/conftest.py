"""The fault-injection suite (`make faults`; issue 9): real workers, a real Redis of the suite's
own that it restarts, the real PostgreSQL; invariants asserted in the database.

Not part of `make test`: these scenarios kill and restart processes on purpose and take minutes.
Each scenario runs `FAULTS_N` times (default 3; the figures in docs/RELIABILITY.md say which N
they came from) and records its outcome in faults/results.json and docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from faults.support import RedisServer
from tests.support.services import choose_services

SERVICES = choose_services()
REDIS = RedisServer(Path(tempfile.mkdtemp(prefix="cmw-faults-redis-"))).start()
os.environ["DATABASE_URL"] = SERVICES.database_url
os.environ["REDIS_URL"] = REDIS.url
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("CELERY_RESULT_BACKEND", None)
os.environ.setdefault("CMW_CHANNEL_ALLOWED_HOSTS", "127.0.0.1")

from tests.support.fixtures import engine, make_worker, migrated_db, session  # noqa: E402,F401  (fixtures)


def pytest_sessionfinish(session, exitstatus) -> None:
    REDIS.stop()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    return REDIS


@pytest.fixture(scope="session")
def services():
    return SERVICES


@pytest.fixture(scope="session")
def worker_env(migrated_db) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.fixture(scope="session")
def celery_app(migrated_db):
    from workers.app import app

    app.loader.import_default_modules()
    return app
