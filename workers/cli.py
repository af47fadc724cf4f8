"""`cmw`: the operator's command line (typer + rich).

cmw dev                        the whole system on this machine (embedded Postgres/Redis if needed)
cmw migrate                    alembic upgrade head on DATABASE_URL
cmw seed demo | bench          demo data, or a bulk data set for benchmarks (COPY)
cmw run TASK [--payload J]     run a task in-process through the task base; JSON result last
cmw enqueue TASK [--payload J] send a task to a worker
cmw schedule                   the beat table with each job's next run time
cmw runs                       recent job runs
cmw dead-letters ...           list, show, replay or discard the tasks that failed for good
cmw channels                   the health of every channel feed (tasks/channel/cli.py)
cmw statements render ID       an owner statement as HTML, CSV or PDF (tasks/statements/cli.py)

House rules (SPEC 7.3):
- every listing takes `--json` and prints through workers.output.emit (JSON lines; tab-separated
  lines when piped; a table that never cuts an id, a name or a status on a terminal);
- a server that cannot be reached is one line on standard error naming it and the variable to
  set, exit status 2 (workers.servers); any other error is one line too, exit status 1; `cmw
  --debug ...` or CMW_DEBUG=1 adds the traceback;
- with no DATABASE_URL / REDIS_URL set, the URLs `cmw dev` wrote to `.cmw-dev/env` are used
  (workers.settings), so a second terminal reaches the system `make dev` runs.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from workers.output import Column, emit

cli = typer.Typer(
    help="Central Memory Workers: operate the job backend.",
    no_args_is_help=True,
    # Errors are reported by main(): one line, a traceback only with --debug. Rich's own
    # tracebacks (hundreds of lines, with local variables that may hold passwords) are off.
    pretty_exceptions_enable=False,
)
seed_cli = typer.Typer(help="Load data sets.", no_args_is_help=True)
cli.add_typer(seed_cli, name="seed")
letters_cli = typer.Typer(
    help="The tasks that failed for good (ops.dead_letters): list, show, replay, discard.",
    no_args_is_help=True,
)
cli.add_typer(letters_cli, name="dead-letters")

_state: dict[str, bool] = {"debug": False}

STATUS_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "skipped": "yellow",
    "running": "cyan",
    "open": "red",
    "replayed": "green",
    "discarded": "yellow",
}
JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON object per line, every value whole.")
]


def say(line: str) -> None:
    """One line on standard error, as is (no markup, no wrapping at the terminal's width)."""
    sys.stderr.write(line.rstrip("\n") + "\n")
    sys.stderr.flush()


def fail(line: str, code: int = 2) -> typer.Exit:
    say(line)
    return typer.Exit(code)


def _settings():  # noqa: ANN202
    from workers.settings import get_settings

    return get_settings()


def _payload(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise fail(f"--payload is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise fail("--payload must be a JSON object")
    return value


def _app():  # noqa: ANN202
    from workers.app import app

    app.loader.import_default_modules()
    return app


def _is_task(app, name: str) -> bool:  # noqa: ANN001
    return name in app.tasks and not name.startswith("celery.")


def _known_task(app, name: str):  # noqa: ANN001, ANN202
    if not _is_task(app, name):
        known = ", ".join(sorted(t for t in app.tasks if not t.startswith("celery.")))
        raise fail(f"unknown task {name!r}; known: {known}")
    return app.tasks[name]


def _check_database() -> None:
    """One round trip, so a database that is not there is reported before any work starts."""
    from sqlalchemy import text

    from db.session import get_engine

    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1 FROM ops.job_runs LIMIT 0"))


@cli.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback of an error (or CMW_DEBUG=1).")
    ] = False,
) -> None:
    """Central Memory Workers: operate the job backend."""
    _state["debug"] = debug


# -- the system ------------------------------------------------------------------------------


@cli.command()
def dev(
    data_dir: Annotated[
        Path, typer.Option(help="Where embedded Postgres/Redis keep data, and the env file.")
    ] = Path(".cmw-dev"),
    flower_port: Annotated[int, typer.Option(min=1, max=65535)] = 5555,
    flower_address: Annotated[
        str, typer.Option(help="Non-loopback requires FLOWER_BASIC_AUTH.")
    ] = "127.0.0.1",
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    reset: Annotated[bool, typer.Option(help="Start from an empty embedded database.")] = False,
) -> None:
    """Run worker, beat and Flower with demo data; Ctrl-C stops everything."""
    from workers.dev import run_dev

    raise typer.Exit(
        run_dev(
            data_dir=data_dir,
            flower_port=flower_port,
            flower_address=flower_address,
            reset=reset,
            worker_concurrency=concurrency,
        )
    )


@cli.command()
def migrate(
    downgrade_base: Annotated[
        bool, typer.Option("--downgrade-base", help="Remove the schema.")
    ] = False,
) -> None:
    """Bring DATABASE_URL's schema to the newest migration (alembic upgrade head)."""
    from workers.migrate import downgrade_base as down
    from workers.migrate import upgrade_head

    url = _settings().database_url
    (down if downgrade_base else upgrade_head)(url)
    print("schema removed" if downgrade_base else "schema at head")


@seed_cli.command("demo")
def seed_demo_cmd() -> None:
    """Deterministic demo data: three resorts, ~40 properties, 18 months of activity, and last
    month's draft owner statements."""
    from db.seeds.demo import seed_demo

    print(json.dumps(seed_demo(_settings().database_url), indent=2))


@seed_cli.command("bench")
def seed_bench_cmd(
    scale: Annotated[
        int, typer.Option(min=1, help="1 = 1,000 properties, ~100k stays, ~150k tickets.")
    ] = 1,
) -> None:
    """Bulk data for benchmarks, loaded with COPY."""
    from rich.console import Console

    from db.seeds.bench import seed_bench

    counts = seed_bench(_settings().database_url, scale=scale, console=Console(stderr=True))
    print(json.dumps(counts, indent=2))


# -- tasks -----------------------------------------------------------------------------------


@cli.command()
def run(
    task: str,
    payload: Annotated[str | None, typer.Option(help="Keyword arguments as a JSON object.")] = None,
) -> None:
    """Run TASK in-process through the task base; print its JSON result as the last line."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from workers.logs import apply_format

    apply_format(logging.getLogger(), _settings().log_format)
    app = _app()
    job = _known_task(app, task)
    kwargs = _payload(payload)
    _check_database()
    result = job.apply(kwargs=kwargs)
    if result.successful():
        print(json.dumps(result.result, default=str))
        return
    # The task base has logged the failure (one WARNING line for a refused payload).
    print(json.dumps({"error": str(result.result), "task": task}))
    raise typer.Exit(1)


def run_task_here(task: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run a task in this process through the task base (as `cmw run`), for commands that act
    through one (`cmw channels release`): its result, or one line on stderr and exit 1 (the
    task base's own log line about it would say the same again, so only errors are logged)."""
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    from workers.logs import apply_format

    apply_format(logging.getLogger(), _settings().log_format)
    app = _app()
    job = _known_task(app, task)
    _check_database()
    result = job.apply(kwargs=kwargs)
    if not result.successful():
        raise fail(f"{task} failed: {result.result}", code=1)
    return result.result


@cli.command()
def enqueue(
    task: str,
    payload: Annotated[str | None, typer.Option(help="Keyword arguments as a JSON object.")] = None,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the result (0: don't).")
    ] = 0,
) -> None:
    """Send TASK to its queue for a worker; print the task id (and the result with --wait)."""
    from workers.servers import check_broker, check_result_backend

    app = _app()
    _known_task(app, task)
    kwargs = _payload(payload)
    settings = _settings()
    # Both servers up front, so an unreachable one fails the command at once and by name.
    check_broker(app, settings)
    check_result_backend(settings)
    result = app.send_task(task, kwargs=kwargs)
    print(f"enqueued {task} as {result.id}", flush=True)
    if wait:
        value = result.get(timeout=wait, propagate=False)
        if result.failed():
            say(f"{task} failed: {value}")
            raise typer.Exit(1)
        print(json.dumps(value, default=str))


# -- listings --------------------------------------------------------------------------------

SCHEDULE_COLUMNS = [
    Column("key", "key"),
    Column("task", "task"),
    Column("schedule", "cron (UTC)"),
    Column("queue", "queue"),
    Column("expires_s", "expires (s)", optional=True),
    Column("next_run", "next run (UTC)", text=lambda v: v.strftime("%Y-%m-%d %H:%M")),
]


@cli.command()
def schedule(json_: JsonOption = False) -> None:
    """The beat table: each periodic job, its crontab, queue and next run time (UTC)."""
    import datetime as dt

    import beat_schedule
    from workers.beat import next_run, schedule_text

    now = dt.datetime.now(dt.UTC)
    rows = []
    for key, entry in beat_schedule.BEAT_SCHEDULE.items():
        options = entry.get("options", {})
        rows.append(
            {
                "key": key,
                "task": entry["task"],
                "schedule": schedule_text(entry["schedule"]),
                "queue": options.get("queue"),
                "expires_s": options.get("expires"),
                "next_run": next_run(entry["schedule"], now),
            }
        )
    emit(rows, SCHEDULE_COLUMNS, as_json=json_)


class RunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"


RUNS_COLUMNS = [
    Column("started_at", "started (UTC)"),
    Column("task_name", "task"),
    Column("status", "status", styles=STATUS_STYLES),
    Column("duration_ms", "ms", optional=True),
    Column("task_id", "task id"),
    Column("run_key", "run key", whole=False, max_chars=60, optional=True),
    Column("outcome", "result / error", whole=False, max_chars=80),
]


@cli.command()
def runs(
    task: Annotated[str | None, typer.Option(help="Only this task name.")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    json_: JsonOption = False,
) -> None:
    """Recent job runs, newest first."""
    from sqlalchemy import text

    from db.session import session_scope

    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT started_at, finished_at, task_name, status, duration_ms, task_id,"
                " run_key, as_of, retries, worker, error, result,"
                " coalesce(error, result::text) AS outcome FROM ops.job_runs"
                " WHERE (CAST(:task AS text) IS NULL OR task_name = :task)"
                " AND (CAST(:status AS text) IS NULL OR status = :status)"
                " ORDER BY started_at DESC LIMIT :limit"
            ),
            {"task": task, "status": status and status.value, "limit": limit},
        ).mappings()
        found = [dict(r) for r in rows]
    emit(found, RUNS_COLUMNS, as_json=json_)


# -- dead letters ----------------------------------------------------------------------------


class LetterStatus(StrEnum):
    open = "open"
    replayed = "replayed"
    discarded = "discarded"
    all = "all"


LETTER_COLUMNS = [
    Column("failed_at", "failed (UTC)"),
    Column("id", "id"),
    Column("task_name", "task"),
    Column("status", "status", styles=STATUS_STYLES),
    Column("error_kind", "kind", optional=True),
    Column("retries", "retries", optional=True),
    Column("error", "error", whole=False, max_chars=80),
]


@letters_cli.command("list")
def letters_list(
    task: Annotated[str | None, typer.Option(help="Only this task name.")] = None,
    status: Annotated[
        LetterStatus, typer.Option(help="Only letters in this status (all: every status).")
    ] = LetterStatus.open,
    limit: Annotated[int, typer.Option(min=1, help="At most this many letters.")] = 100,
    json_: JsonOption = False,
) -> None:
    """Dead letters, newest first: the open ones unless --status says otherwise."""
    from db.session import session_scope
    from workers.dead_letters import list_letters

    with session_scope() as session:
        rows = list_letters(
            session,
            task=task,
            status=None if status is LetterStatus.all else status.value,
            limit=limit,
        )
    emit(rows, LETTER_COLUMNS, as_json=json_)


@letters_cli.command("show")
def letters_show(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="The letter's id.")],
    json_: JsonOption = False,
) -> None:
    """One letter whole: its task, payload, error and what was done with it."""
    from db.session import session_scope
    from workers.dead_letters import LetterError, get_letter, parse_id
    from workers.output import display, json_line

    try:
        with session_scope() as session:
            letter = get_letter(session, parse_id(letter_id))
    except LetterError as exc:
        raise fail(str(exc), 1) from exc
    if json_:
        print(json_line(letter))
        return
    width = max(len(k) for k in letter)
    for key, value in letter.items():
        if key in ("payload", "error"):
            continue
        print(f"{key:<{width}}  {display(value)}")
    print(f"{'payload':<{width}}  {json.dumps(letter['payload'], indent=2, ensure_ascii=False)}")
    print(f"{'error':<{width}}  {letter['error']}")


@letters_cli.command("replay")
def letters_replay(
    letter_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Letters to replay.")],
    payload: Annotated[
        str | None,
        typer.Option(help="A corrected payload (JSON object) instead of the stored one."),
    ] = None,
) -> None:
    """Send each letter's task again (stored payload, or --payload) and record the new task id.

    Only an open letter is replayed, once, even when two replays race. Exit status 1 when any
    letter was refused.
    """
    from db.session import session_scope
    from workers.dead_letters import LetterError, parse_id, replay
    from workers.servers import check_broker

    corrected = _payload(payload) if payload is not None else None
    app = _app()
    settings = _settings()
    check_broker(app, settings)

    def send(task_name: str, kwargs: dict[str, Any], task_id: str) -> None:
        # No result stored: the replay's ops.job_runs row is its record.
        app.send_task(task_name, kwargs=kwargs, task_id=task_id, ignore_result=True)

    refused = 0
    for raw in letter_ids:
        try:
            done = replay(
                session_scope,
                parse_id(raw),
                send=send,
                payload=corrected,
                known_task=lambda name: _is_task(app, name),
            )
        except LetterError as exc:
            say(str(exc))
            refused += 1
            continue
        how = "a corrected payload" if done.corrected else "its stored payload"
        print(f"replayed {done.letter_id} ({done.task_name}) as {done.task_id} with {how}")
    if refused:
        raise typer.Exit(1)


@letters_cli.command("discard")
def letters_discard(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="The letter's id.")],
    reason: Annotated[str, typer.Option(help="Why it is not replayed (recorded on the row).")],
) -> None:
    """Close an open letter without running its task again, recording why."""
    from db.session import session_scope
    from workers.dead_letters import LetterError, discard, parse_id

    try:
        with session_scope() as session:
            discard(session, parse_id(letter_id), reason=reason)
    except LetterError as exc:
        raise fail(str(exc), 1) from exc
    print(f"discarded {letter_id.strip()}")


# -- mounting and running --------------------------------------------------------------------


def _register_job_commands() -> None:
    """Commands that belong to one job live in its package; they are mounted here."""
    from tasks.channel.cli import channels_cli
    from tasks.ops.cli import health, metrics_cli
    from tasks.statements.cli import statements_cli

    cli.add_typer(channels_cli, name="channels")
    cli.add_typer(statements_cli, name="statements")
    cli.command("health")(health)
    cli.add_typer(metrics_cli, name="metrics")


_register_job_commands()


def _report(exc: BaseException) -> int:
    """Print an error as one line (plus its traceback with --debug); the exit status."""
    from pydantic import ValidationError

    from workers.base import one_line
    from workers.servers import explain

    try:
        settings = _settings()
    except ValidationError as bad:
        if _state["debug"]:
            traceback.print_exception(exc)
        from workers.base import validation_message

        say(f"invalid configuration: {validation_message(bad)}")
        return 2
    if _state["debug"] or settings.cmw_debug:
        traceback.print_exception(exc)
        hint = ""
    else:
        hint = " (cmw --debug shows the traceback)"
    known = explain(exc, settings)
    if known is not None:
        say(str(known))
        return 2
    say(f"error: {type(exc).__name__}: {one_line(str(exc))}{hint}")
    return 1


def main(argv: list[str] | None = None) -> None:
    try:
        cli(args=argv, prog_name="cmw")
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    except Exception as exc:
        sys.exit(_report(exc))


if __name__ == "__main__":
    main()
