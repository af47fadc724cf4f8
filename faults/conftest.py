"""The fault-injection suite (`make faults`; issue 9): real workers, a real Redis of the suite's
own that it restarts, the real PostgreSQL; invariants asserted in the database.

Not part of `make test`: these scenarios kill and restart processes on purpose and take minutes.
Each scenario runs `FAULTS_N` times (default 3; the figures in docs/RELIABILITY.md say which N
they came from) and records its outcome in faults/results.json and docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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

from sqlalchemy import Engine  # noqa: E402

from tests.support import db as dbsupport  # noqa: E402
from tests.support.worker import WorkerProcess  # noqa: E402


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001
    REDIS.stop()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    return REDIS


@pytest.fixture(scope="session")
def migrated_db() -> Iterator[str]:
    from workers.migrate import upgrade_head

    dbsupport.create_database(SERVICES.admin_url, SERVICES.database_name)
    upgrade_head(SERVICES.database_url)
    yield SERVICES.database_url
    from db.session import dispose_engine

    dispose_engine()
    dbsupport.drop_database(SERVICES.admin_url, SERVICES.database_name)


@pytest.fixture
def engine(migrated_db) -> Iterator[Engine]:
    from db.session import get_engine

    eng = get_engine()
    dbsupport.clean(eng)
    yield eng


@pytest.fixture
def session(engine):
    from db.session import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture(scope="session")
def celery_app(migrated_db):
    from workers.app import app

    app.loader.import_default_modules()
    return app


@pytest.fixture
def make_worker(migrated_db, tmp_path) -> Iterator:
    """Start workers (own queues, own settings); all are stopped after the test."""
    started: list[WorkerProcess] = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def start(**kwargs) -> WorkerProcess:
        proc = WorkerProcess(env, log_dir=tmp_path, **kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
