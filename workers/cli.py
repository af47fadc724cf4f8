"""`cmw`: the operator's command line (typer + rich).

cmw dev                      the whole system on this machine (embedded Postgres/Redis if needed)
cmw migrate                  alembic upgrade head on DATABASE_URL
cmw seed demo | bench        demo data, or a bulk data set for benchmarks (COPY)
cmw run TASK [--payload J]   run a task in-process through the task base; JSON result last
cmw enqueue TASK [--payload J]
cmw schedule                 the beat table with each job's next run time
cmw runs                     recent job runs
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from workers.settings import get_settings

cli = typer.Typer(help="Central Memory Workers: operate the job backend.", no_args_is_help=True)
seed_cli = typer.Typer(help="Load data sets.", no_args_is_help=True)
cli.add_typer(seed_cli, name="seed")

out = Console()
err = Console(stderr=True)


def _payload(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        err.print(f"[red]--payload is not valid JSON:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(value, dict):
        err.print("[red]--payload must be a JSON object[/red]")
        raise typer.Exit(2)
    return value


def _app():
    from workers.app import app

    app.loader.import_default_modules()
    return app


def _known_task(app, name: str):  # noqa: ANN001, ANN202
    if name not in app.tasks or name.startswith("celery."):
        known = ", ".join(sorted(t for t in app.tasks if not t.startswith("celery.")))
        err.print(f"[red]unknown task {name!r}[/red]; known: {known}")
        raise typer.Exit(2)
    return app.tasks[name]


@cli.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="Where embedded Postgres/Redis keep data.")] = Path(
        ".cmw-dev"
    ),
    flower_port: int = 5555,
    flower_address: Annotated[
        str, typer.Option(help="Non-loopback requires FLOWER_BASIC_AUTH.")
    ] = "127.0.0.1",
    concurrency: int = 2,
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

    url = get_settings().database_url
    (down if downgrade_base else upgrade_head)(url)
    out.print(
        "[green]schema removed[/green]" if downgrade_base else "[green]schema at head[/green]"
    )


@seed_cli.command("demo")
def seed_demo_cmd() -> None:
    """Deterministic demo data: three resorts, ~40 properties, 18 months of activity."""
    from db.seeds.demo import seed_demo

    counts = seed_demo(get_settings().database_url)
    out.print_json(data=counts)


@seed_cli.command("bench")
def seed_bench_cmd(
    scale: Annotated[
        int, typer.Option(help="1 = 1,000 properties, ~100k stays, ~150k tickets.")
    ] = 1,
) -> None:
    """Bulk data for benchmarks, loaded with COPY."""
    from db.seeds.bench import seed_bench

    counts = seed_bench(get_settings().database_url, scale=scale, console=err)
    out.print_json(data=counts)


@cli.command()
def run(
    task: str,
    payload: Annotated[str | None, typer.Option(help="Keyword arguments as a JSON object.")] = None,
) -> None:
    """Run TASK in-process through the task base; print its JSON result as the last line."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from workers.logs import apply_format

    apply_format(logging.getLogger(), get_settings().log_format)
    app = _app()
    result = _known_task(app, task).apply(kwargs=_payload(payload))
    if result.successful():
        print(json.dumps(result.result, default=str))
        return
    err.print(f"[red]{task} failed:[/red] {result.result!r}")
    print(json.dumps({"error": str(result.result), "task": task}))
    raise typer.Exit(1)


@cli.command()
def enqueue(
    task: str,
    payload: Annotated[str | None, typer.Option(help="Keyword arguments as a JSON object.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the result (0: don't).")] = 0,
) -> None:
    """Send TASK to its queue for a worker; print the task id (and the result with --wait)."""
    app = _app()
    _known_task(app, task)
    result = app.send_task(task, kwargs=_payload(payload))
    out.print(f"enqueued {task} as [bold]{result.id}[/bold]")
    if wait:
        value = result.get(timeout=wait, propagate=False)
        if result.failed():
            err.print(f"[red]{task} failed:[/red] {value!r}")
            raise typer.Exit(1)
        print(json.dumps(value, default=str))


@cli.command()
def schedule() -> None:
    """The beat table: each periodic job, its crontab, queue and next run time (UTC)."""
    import beat_schedule

    now = dt.datetime.now(dt.UTC)
    table = Table("key", "task", "schedule", "queue", "expires (s)", "next run (UTC)")
    for key, entry in beat_schedule.BEAT_SCHEDULE.items():
        sched = entry["schedule"]
        # remaining_estimate lands a few seconds before the slot; round to the minute.
        nxt = (now + sched.remaining_estimate(now) + dt.timedelta(seconds=30)).replace(
            second=0, microsecond=0
        )
        options = entry.get("options", {})
        table.add_row(
            key,
            entry["task"],
            str(sched),
            options.get("queue", ""),
            str(options.get("expires", "")),
            nxt.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(table)


@cli.command()
def runs(
    task: Annotated[str | None, typer.Option(help="Only this task name.")] = None,
    status: Annotated[
        str | None, typer.Option(help="running, succeeded, failed or skipped.")
    ] = None,
    limit: int = 20,
) -> None:
    """Recent job runs, newest first."""
    from sqlalchemy import text

    from db.session import session_scope

    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT started_at, task_name, status, duration_ms, run_key, task_id,"
                " coalesce(error, result::text) AS outcome FROM ops.job_runs"
                " WHERE (CAST(:task AS text) IS NULL OR task_name = :task)"
                " AND (CAST(:status AS text) IS NULL OR status = :status)"
                " ORDER BY started_at DESC LIMIT :limit"
            ),
            {"task": task, "status": status, "limit": limit},
        ).all()
    table = Table("started (UTC)", "task", "status", "ms", "run key", "task id", "result / error")
    colours = {"succeeded": "green", "failed": "red", "skipped": "yellow", "running": "cyan"}
    for r in rows:
        table.add_row(
            r.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            r.task_name,
            f"[{colours.get(r.status, 'white')}]{r.status}[/]",
            "" if r.duration_ms is None else str(r.duration_ms),
            r.run_key or "",
            r.task_id or "",
            (r.outcome or "")[:80],
        )
    out.print(table)


def _register_job_commands() -> None:
    """Commands that belong to one job live in its package; they are mounted here."""
    from tasks.channel.cli import channels_cli
    from tasks.statements.cli import statements_cli

    cli.add_typer(channels_cli, name="channels")
    cli.add_typer(statements_cli, name="statements")


_register_job_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
