"""Engine and session_scope(): one unit of work per task.

The engine is created lazily per process and disposed in worker_process_init, so no
connection crosses a fork (SQLAlchemy's "using connection pools with multiprocessing").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from db.settings import get_settings

_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    global _engine, _sessionmaker
    if _engine is None:
        settings = get_settings()
        _engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            # A connection killed by a Postgres restart is noticed before it is used.
            pool_pre_ping=True,
            # A failed statement's parameters stay out of its exception message, which ends up
            # in logs, job runs and dead letters: they can hold a feed's secret URL or a
            # guest's name.
            hide_parameters=True,
            connect_args={
                "application_name": "cmw",
                # A worker killed mid-task leaves its backend running the statement (or waiting
                # on a lock) with the job's locks held until it next talks to the client; with
                # this check (PostgreSQL 14+) the backend notices the dead client within 2 s,
                # aborts, and the redelivered task finds the locks free.
                "options": "-c client_connection_check_interval=2000",
            },
        )
        _sessionmaker = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def dispose_engine() -> None:
    """Forget the pool inherited from a parent process (close=False keeps the parent's sockets)."""
    global _engine, _sessionmaker
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _sessionmaker = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """Commit on success, roll back on error, always close."""
    get_engine()
    assert _sessionmaker is not None
    session = _sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def local_settings(session: Session, **settings: Any) -> Iterator[None]:
    """PostgreSQL settings (`work_mem="64MB"`, `enable_nestloop="off"`, ...) for the statements
    inside the block, in this transaction only, put back as they were after it: what a job's
    heavy statement wants (measured in its benchmark) does not leak into the next one.

    When the block raises, nothing is put back: the error goes on as it is, and the rollback
    that follows undoes the settings. (Putting them back would run a statement in a failed
    transaction, whose error would replace the real one: a dropped connection would become a
    PendingRollbackError, which the task base does not retry.)"""
    names = list(settings)
    values = [str(v) for v in settings.values()]
    before = session.execute(
        text("SELECT n, current_setting(n) FROM unnest(CAST(:names AS text[])) AS n"),
        {"names": names},
    ).all()
    session.execute(_SET_LOCAL, {"names": names, "values": values})
    yield
    session.execute(_SET_LOCAL, {"names": [n for n, _ in before], "values": [v for _, v in before]})


_SET_LOCAL = text(
    "SELECT set_config(n, v, true)"
    " FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(n, v)"
)
