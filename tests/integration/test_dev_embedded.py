"""`cmw dev`'s embedded default: the private PostgreSQL and Redis really start, answer and stop,
and the choice between environment, local server and embedded server follows SPEC 2.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from workers.dev import (
    EmbeddedPostgres,
    EmbeddedRedis,
    Plan,
    Source,
    alive,
    plan_sources,
    psycopg_kwargs,
    sqlalchemy_url_from_pgserver,
    start_embedded_postgres,
    start_embedded_redis,
)
from workers.settings import EnvironmentSettings, Settings


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaps (the servers daemonize, so PID 1 is their
    parent, and in some containers PID 1 never reaps)."""
    try:
        return not alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound but never listening, so nobody can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_embedded_postgres_starts_answers_stops_and_keeps_its_data(tmp_path: Path) -> None:
    embedded: EmbeddedPostgres = start_embedded_postgres(tmp_path)
    try:
        assert embedded.url.startswith("postgresql+psycopg://postgres@/cmw?host=/")
        with psycopg.connect(**psycopg_kwargs(embedded.url)) as conn:
            assert conn.execute("select 1, current_database()").fetchone() == (1, "cmw")
            conn.execute("create table kept (n int)")
            conn.execute("insert into kept values (7)")
        pid = embedded.server.get_pid()
    finally:
        embedded.stop()
    assert gone(pid)

    # A second `cmw dev` finds the same data.
    again = start_embedded_postgres(tmp_path)
    try:
        with psycopg.connect(**psycopg_kwargs(again.url)) as conn:
            assert conn.execute("select n from kept").fetchone() == (7,)
    finally:
        again.stop()


def test_embedded_redis_starts_answers_stops_and_keeps_its_data(tmp_path: Path) -> None:
    embedded: EmbeddedRedis = start_embedded_redis(tmp_path)
    try:
        assert embedded.url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(embedded.url)
        assert client.ping()
        client.set("cmw:dev:probe", "42")
        assert client.get("cmw:dev:probe") == b"42"
        client.close()
        pid = embedded.server.pid
    finally:
        embedded.stop()
    assert gone(pid)

    # A second `cmw dev` finds the same keys (queued tasks survive a restart).
    again = start_embedded_redis(tmp_path)
    try:
        client = redis.Redis.from_url(again.url)
        assert client.get("cmw:dev:probe") == b"42"
        client.close()
    finally:
        again.stop()


def test_pgserver_uri_becomes_a_psycopg_url_without_percent_signs() -> None:
    url = sqlalchemy_url_from_pgserver("postgresql://postgres:@/postgres?host=/tmp/x/pg", "cmw")
    assert url == "postgresql+psycopg://postgres@/cmw?host=/tmp/x/pg"


def test_environment_wins_over_anything_listening(closed_port: int) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://u:p@db.example:5432/cmw",
        redis_url="redis://cache.example:6379/0",
    )
    plan = plan_sources(settings, postgres_at=("127.0.0.1", closed_port))
    assert (plan.database, plan.redis) == (Source.ENVIRONMENT, Source.ENVIRONMENT)


def test_broker_and_backend_from_environment_need_no_redis(closed_port: int) -> None:
    settings = Settings(
        celery_broker_url="amqp://guest:guest@127.0.0.1:5672//",
        celery_result_backend="db+postgresql://u:p@db.example/cmw",
    )
    plan = plan_sources(
        settings,
        postgres_at=("127.0.0.1", closed_port),
        redis_at=("127.0.0.1", closed_port),
    )
    assert plan.redis is Source.ENVIRONMENT


def test_nothing_listening_and_nothing_set_means_embedded(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    at = ("127.0.0.1", closed_port)
    plan = plan_sources(EnvironmentSettings(), postgres_at=at, redis_at=at)
    assert plan == Plan(Source.EMBEDDED, Source.EMBEDDED, postgres_at=at, redis_at=at)


def test_a_listening_server_is_used_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        at = ("127.0.0.1", listener.getsockname()[1])
        plan = plan_sources(EnvironmentSettings(), postgres_at=at, redis_at=at)
    assert (plan.database, plan.redis) == (Source.LOCAL, Source.LOCAL)
