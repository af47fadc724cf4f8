"""The fixtures the test suite and the fault suite share: a database migrated by the real
Alembic history, the application's engine and sessions on it, and real worker subprocesses.

Each conftest imports them and provides what differs: `services` (where PostgreSQL is) and
`worker_env` (the environment a worker starts with).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.support import db as dbsupport
from tests.support.worker import WorkerProcess
from workers.dev import databases


@pytest.fixture(scope="session")
def migrated_db(services) -> Iterator[str]:
    """Create the suite's database and run `alembic upgrade head` on it, once per session."""
    from workers.migrate import upgrade_head

    databases.create_database(services.admin_url, services.database_name)
    upgrade_head(services.database_url)
    yield services.database_url
    from db.session import dispose_engine

    dispose_engine()
    databases.drop_database(services.admin_url, services.database_name)


@pytest.fixture
def engine(migrated_db) -> Iterator[Engine]:
    """The application's own engine on a clean database (every non-reference table empty)."""
    from db.session import get_engine

    eng = get_engine()
    dbsupport.clean(eng)
    yield eng


@pytest.fixture
def session(engine):
    from db.session import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture
def make_worker(worker_env, tmp_path) -> Iterator:
    """Start extra workers (own queues, own settings); all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        proc = WorkerProcess(worker_env, log_dir=tmp_path, **kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
