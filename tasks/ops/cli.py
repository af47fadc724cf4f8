"""`cmw health` and `cmw metrics serve` (SPEC 7.4). Mounted by workers/cli.py.

`cmw health` evaluates now what ops.watch evaluates every minute (read only), so it tells the
truth even when beat, and with it ops.watch, has stopped: a row per periodic job (its
schedule, last run, last success, next due time, problems) and one per other task with an open
incident (dead letters). Exit status 0 when nothing is wrong, 1 otherwise; `--kind missed`
limits the verdict to missed jobs (beat's container health check: beat is what sends them).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

import typer

from workers.output import Column, emit


class Kind(StrEnum):
    missed = "missed"
    failing = "failing"
    overrunning = "overrunning"
    dead_letters = "dead_letters"


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


HEALTH_COLUMNS = [
    Column("task", "task"),
    Column("problems", "problems", styles={"ok": "green"}),
    Column("schedule", "cron (UTC)", optional=True),
    Column("last_run_at", "last run", text=_when),
    Column("last_status", "status", optional=True),
    Column("last_success_at", "last success", text=_when),
    Column("next_due_at", "next due", text=_when, optional=True),
    Column("open_incidents", "incidents open since", whole=False, max_chars=60, optional=True),
]


def health_rows(now: dt.datetime, kinds: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per periodic job, then one per other task with a problem; `problems` lists the
    kinds wrong now (ops.watch's evaluation) or open in ops.incidents."""
    from db.session import session_scope
    from tasks.ops.watch import evaluate

    with session_scope() as session:
        evaluation = evaluate(session, now=now)
        session.rollback()  # read only
    wanted = kinds or set(Kind)
    problems: dict[str, set[str]] = {}
    for task, kind in evaluation.conditions:
        problems.setdefault(task, set()).add(kind)
    opened: dict[str, list[str]] = {}
    for incident in evaluation.open_incidents:
        problems.setdefault(incident.task_name, set()).add(incident.kind)
        opened.setdefault(incident.task_name, []).append(
            f"{incident.kind} {_when(incident.opened_at)}"
        )
    rows = []
    seen = set()
    for state in evaluation.jobs:
        seen.add(state.job.task)
        found = sorted(problems.get(state.job.task, set()) & wanted)
        rows.append(
            {
                "task": state.job.task,
                "problems": ", ".join(found) or "ok",
                "schedule": state.job.describe(),
                "last_run_at": state.last_started_at,
                "last_status": state.last_status,
                "last_success_at": state.last_success_at,
                "next_due_at": state.next_due_at,
                "open_incidents": "; ".join(opened.get(state.job.task, [])) or None,
            }
        )
    for task in sorted(set(problems) - seen):
        found = sorted(problems[task] & wanted)
        if found:
            rows.append(
                {
                    "task": task,
                    "problems": ", ".join(found),
                    "schedule": None,
                    "last_run_at": None,
                    "last_status": None,
                    "last_success_at": None,
                    "next_due_at": None,
                    "open_incidents": "; ".join(opened.get(task, [])) or None,
                }
            )
    return rows


def health(
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object per line, every value whole.")
    ] = False,
    kind: Annotated[
        list[Kind] | None,
        typer.Option("--kind", help="Judge only these kinds of problem (repeatable)."),
    ] = None,
) -> None:
    """Each periodic job's last run, last success, next due time and open incidents; exit 1
    when anything is wrong."""
    kinds = {k.value for k in kind} if kind else None
    rows = health_rows(dt.datetime.now(dt.UTC), kinds)
    bad = [r for r in rows if r["problems"] != "ok"]
    note = f"{len(bad)} with problems" if bad else "all periodic jobs healthy"
    emit(rows, HEALTH_COLUMNS, as_json=json_, note=note)
    if bad:
        raise typer.Exit(1)


metrics_cli = typer.Typer(help="Prometheus metrics, computed at scrape time.", no_args_is_help=True)


@metrics_cli.command("serve")
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of /metrics.")] = 9808,
    address: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 in a container).")
    ] = "127.0.0.1",
) -> None:
    """Serve /metrics for Prometheus (text format) until Ctrl-C."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app

    from tasks.ops.metrics import CmwCollector

    registry = CollectorRegistry()
    registry.register(CmwCollector())

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per scrape would drown the log

    server = make_server(address, port, make_wsgi_app(registry), handler_class=QuietHandler)
    typer.echo(f"serving metrics on http://{address}:{port}/metrics (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
