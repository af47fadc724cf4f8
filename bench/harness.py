"""What every benchmark does the same way: its command-line options, its database (created,
pointed at, seeded, dropped), the machine it ran on, and the timed and explained statements.

A benchmark keeps only what it measures and how it reports it; bench/report.py writes the
report into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from db.session import dispose_engine, get_engine, local_settings
from db.settings import get_settings
from db.urls import libpq_kwargs
from workers.dev.databases import create_database, database_url, drop_database
from workers.dev.seeds.bench import seed_bench

ROOT = Path(__file__).resolve().parents[1]

# Results on stdout, progress on stderr: `python -m bench.bench_x > out` keeps the results.
console = Console()
err = Console(stderr=True)

# -- the options every benchmark takes ---------------------------------------------------------

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

Scales = Annotated[
    list[int], typer.Option(help="Scale(s) to run, 1 = 1,000 properties; repeat for several.")
]
Scale = Annotated[int, typer.Option(help="seed_bench scale (1 = 1,000 properties).")]
WriteDoc = Annotated[bool, typer.Option(help="Record the figures in docs/PERFORMANCE.md.")]
Keep = Annotated[bool, typer.Option(help="Keep the database(s) afterwards.")]
AdminUrl = Annotated[
    str, typer.Option(envvar="CMW_BENCH_ADMIN_URL", help="libpq URL to create databases from.")
]


# -- the database ------------------------------------------------------------------------------


@contextmanager
def bench_database(
    admin_url: str,
    name: str,
    *,
    keep: bool = False,
    create: bool = True,
    environment: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Database `name`, created and migrated (or, `create=False`, one an earlier `--keep` run
    left), with the product's settings pointed at it; yields its URL. Afterwards the engine's
    connections are closed and the database dropped, or kept with `keep`."""
    if create:
        url = create_database(admin_url, name, migrate=True)
    else:
        url = database_url(admin_url, name)
    use_database(url, **(environment or {}))
    try:
        yield url
    finally:
        get_engine().dispose()
        dispose_engine()
        if keep:
            console.print(f"Kept database [bold]{name}[/]")
        else:
            drop_database(admin_url, name)


def given_or_bench_database(
    given: str | None, admin_url: str, name: str, *, keep: bool
) -> AbstractContextManager[str]:
    """The database `--database-url` names, used as it is (neither created nor dropped), or
    else bench_database `name`."""
    return nullcontext(given) if given else bench_database(admin_url, name, keep=keep)


def use_database(url: str, **environment: str) -> None:
    """Point the product (db.session's engine, the tasks) at this database and at whatever else
    `environment` names (REDIS_URL=...). Settings are read once, from the environment: the
    cached ones and their engine are dropped."""
    os.environ["DATABASE_URL"] = url
    os.environ.update(environment)
    get_settings.cache_clear()
    dispose_engine()


def reset_kept_database(
    admin_url: str, name: str, reset: Sequence[str], vacuum: Sequence[str] = ()
) -> bool:
    """For `--reuse`: whether `name` is a seeded database an earlier `--keep` run left. If it
    is, the `reset` statements (one transaction) put the job's own tables back to the seeded
    state, and the `vacuum` tables are vacuumed."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if not found:
        return False
    engine = create_engine(database_url(admin_url, name))
    try:
        with engine.begin() as conn:
            if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM property.properties)")).scalar():
                return False
            for statement in reset:
                conn.execute(text(statement))
        if vacuum:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in vacuum:
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
    finally:
        engine.dispose()
    err.print(f"Reusing the seeded database [bold]{name}[/]")
    return True


def seed(url: str, scale: int) -> dict[str, int]:
    """The benchmark data set at `scale`; the rows per table."""
    err.print(f"Seeding scale {scale} ...")
    return seed_bench(url, scale=scale, console=err)


def bench_redis_url() -> str:
    """A Redis database of the local server claimed as a test session claims one, so that the
    tasks the benchmark sends meet no other session's worker."""
    from tests.support.services import claim_redis_database

    return f"redis://127.0.0.1:6379/{claim_redis_database('redis://127.0.0.1:6379')}"


# -- the machine -------------------------------------------------------------------------------


def server_version(url: str) -> str:
    with psycopg.connect(**libpq_kwargs(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return row[0].split()[0] if row else "?"


def hardware(url: str) -> str:
    """Cores, memory and the PostgreSQL version the figures were measured on."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, PostgreSQL {server_version(url)}"


def machine(url: str, load: float | None = None) -> str:
    """The hardware and the 1-minute load average (now, unless given): other work on the
    machine slows a run down."""
    load = os.getloadavg()[0] if load is None else load
    return f"{hardware(url)}, load {load:.1f}"


def cores_and_python() -> str:
    """The machine line of the task-path benchmark, where Python does the work measured."""
    return f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


# -- timed and explained statements ------------------------------------------------------------

FLOOR_REPEATS = 3

# The plans in docs/PERFORMANCE.md: actual rows and buffers; no costs, and no per-node timing
# (reading the clock at every row slows some plans down).
PLAN_OPTIONS = "ANALYZE, BUFFERS, COSTS OFF, TIMING OFF"


def timed_floor(
    engine: Engine,
    statement: Any,
    params: dict[str, Any],
    settings: Mapping[str, str] | None = None,
    repeats: int = FLOOR_REPEATS,
) -> list[float]:
    """A job's statement run bare `repeats` times, each in a transaction rolled back (with the
    job's own transaction-local `settings`): seconds of each run."""
    seconds = []
    for _ in range(repeats):
        with Session(engine) as session:  # closed without a commit: rolled back
            with local_settings(session, **(settings or {})):
                started = time.perf_counter()
                session.execute(statement, params).all()
                seconds.append(time.perf_counter() - started)
    return seconds


def explain(
    engine: Engine,
    statement: Any,
    params: dict[str, Any],
    *,
    settings: Mapping[str, str] | None = None,
    options: str = PLAN_OPTIONS,
) -> str:
    """EXPLAIN (`options`) of a statement, in a transaction rolled back after, with the job's
    transaction-local planner `settings`."""
    with Session(engine) as session:  # closed without a commit: rolled back
        with local_settings(session, **(settings or {})):
            rows = session.execute(text(f"EXPLAIN ({options}) " + statement.text), params)
            return "\n".join(rows.scalars())


def explain_each(
    engine: Engine, statements: Mapping[str, tuple[Any, dict[str, Any]]]
) -> dict[str, str]:
    """The plan of each named (statement, params), each rolled back."""
    return {name: explain(engine, st, params) for name, (st, params) in statements.items()}


def details(summary: str, plan: str) -> list[str]:
    """A plan as the report's lines: a collapsed block headed `summary`, after a blank line."""
    return ["", f"<details><summary>{summary}</summary>", "", "```", plan, "```", "", "</details>"]


def plans(heading: str, named_plans: Mapping[str, str], when: str = "rolled back") -> list[str]:
    """Plans as the report's lines: `heading`, how they were taken, then one block each."""
    lines = [f"{heading} (`EXPLAIN ({PLAN_OPTIONS})`, {when}):"]
    for name, plan in named_plans.items():
        lines += details(name, plan)
    return lines


def timed_task(name: str, **kwargs: Any) -> tuple[float, Any]:
    """One run of a task through the task base (`Task.apply`, the path `cmw run` takes:
    validation, the job_runs record, the singleton lock, commit): (seconds, its result)."""
    # Imported here, not above: the app takes its broker from the settings when imported, and
    # the benchmark points them at its own Redis first (bench_database's environment).
    from workers.app import app

    app.loader.import_default_modules()
    started = time.perf_counter()
    result = app.tasks[name].apply(kwargs=kwargs)
    seconds = time.perf_counter() - started
    if not result.successful():
        raise RuntimeError(f"{name} failed: {result.result!r}")
    return seconds, result.result
