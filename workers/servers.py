"""Saying, in one line, which server a `cmw` command could not reach (SPEC 7.3).

`explain(exc)` turns a driver's exception (psycopg / SQLAlchemy, redis, kombu) into a
`CommandError` naming what failed, where (scheme://host:port only: never a URL's user-info,
path or query, which may hold passwords), why, and which variable to set; the CLI prints it
on standard error and exits with status 2. `check_broker` and `check_result_backend` probe
the two Celery servers up front, so `cmw enqueue` fails at once instead of after Celery's own
reconnection loops (about 20 s, then blaming the "result store" for an unreachable Redis).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from workers.settings import Settings, origin_of

# How long a probe waits for a server that does not answer at all.
PROBE_TIMEOUT_S = 3.0


class CommandError(Exception):
    """An error a command reports as one line on standard error, exit status 2."""


class Unreachable(CommandError):
    """`cannot connect to <what> at <scheme://host:port> (<why>); set <VARIABLE>`, plus where
    the URL came from when not from the environment (`cmw dev`'s file, or the default)."""

    def __init__(self, what: str, url: str, variable: str, reason: str) -> None:
        self.what, self.url, self.variable = what, url, variable
        origin = origin_of(variable)
        source = "" if origin == "the environment" else f" (the URL now comes from {origin})"
        super().__init__(
            f"cannot connect to {what} at {server_address(url)} ({reason}); set {variable}{source}"
        )


def broker_variable(settings: Settings) -> str:
    return "CELERY_BROKER_URL" if settings.celery_broker_url else "REDIS_URL"


def backend_variable(settings: Settings) -> str:
    return "CELERY_RESULT_BACKEND" if settings.celery_result_backend else "REDIS_URL"


def server_address(url: str) -> str:
    """`scheme://host:port` of a URL, without its driver, user-info, path or query; a server
    reached through a unix socket is named by the socket's folder."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0] or "?"
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "an unparsable URL"
    if not host:
        socket_dir = parse_qs(parts.query).get("host")
        where = f"socket in {socket_dir[0]}" if socket_dir else "default socket"
        return f"{scheme}://localhost ({where})"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def one_line_reason(exc: BaseException) -> str:
    """A driver's message on one line, without what the caller already says (the server) and
    without libpq's second-line hints ("Is the server running on that host...?")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = " ".join((lines[0] if lines else "").split())
    message = re.sub(r"^connection failed: ", "", message)
    message = re.sub(r"connection to server (at|on) .*? failed: ", "", message)
    message = re.sub(r"^(FATAL|ERROR): +", "", message)
    return message.rstrip(".") or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def explain(exc: BaseException, settings: Settings) -> CommandError | None:
    """The one-line error for a server that failed under a command, or None (not one)."""
    import kombu.exceptions
    import psycopg
    import redis.exceptions
    import sqlalchemy.exc

    for err in _chain(exc):
        if isinstance(err, CommandError):
            return err
        if isinstance(err, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return Unreachable(
                "PostgreSQL", settings.database_url, "DATABASE_URL", one_line_reason(err.orig)
            )
        if isinstance(err, psycopg.OperationalError):
            return Unreachable(
                "PostgreSQL", settings.database_url, "DATABASE_URL", one_line_reason(err)
            )
        if isinstance(err, sqlalchemy.exc.ProgrammingError) and isinstance(
            err.orig, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName
        ):
            return CommandError(
                f"the database at {server_address(settings.database_url)} has no schema yet"
                f" ({one_line_reason(err.orig)}): run `cmw migrate`, or set DATABASE_URL"
            )
        if isinstance(
            err,
            kombu.exceptions.OperationalError
            | redis.exceptions.ConnectionError
            | redis.exceptions.TimeoutError,
        ):
            return Unreachable(
                "the broker", settings.broker_url, broker_variable(settings), one_line_reason(err)
            )
    return None


def check_broker(app: Any, settings: Settings) -> None:
    """Connect to the broker once, or raise Unreachable."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=PROBE_TIMEOUT_S
            )
    except Exception as exc:  # whatever the transport raises, the broker is what failed
        raise Unreachable(
            "the broker", settings.broker_url, broker_variable(settings), one_line_reason(exc)
        ) from exc


def check_result_backend(settings: Settings) -> None:
    """Ping a Redis result backend once, or raise Unreachable (other backends: not probed)."""
    url = settings.result_backend
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        return
    import redis

    try:
        # A client of its own, with timeouts and no retries: the backend's own client retries
        # for about 20 s, which is what a probe must not do.
        with redis.Redis.from_url(
            url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
        ) as probe:
            probe.ping()
    except Exception as exc:
        raise Unreachable(
            "the result store", url, backend_variable(settings), one_line_reason(exc)
        ) from exc
