"""Running a task in this process, through the same task base a worker uses: what `cmw run`
does, and the commands that act through a task (`cmw channels release`). Errors are one line on
standard error (`say`, `fail`)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer


def say(line: str) -> None:
    """One line on standard error, as is (no markup, no wrapping at the terminal's width)."""
    sys.stderr.write(line.rstrip("\n") + "\n")
    sys.stderr.flush()


def fail(line: str, code: int = 2) -> typer.Exit:
    say(line)
    return typer.Exit(code)


def load_app():
    from workers.app import app

    app.loader.import_default_modules()
    return app


def is_task(app, name: str) -> bool:
    return name in app.tasks and not name.startswith("celery.")


def known_task(app, name: str):
    if not is_task(app, name):
        known = ", ".join(sorted(t for t in app.tasks if not t.startswith("celery.")))
        raise fail(f"unknown task {name!r}; known: {known}")
    return app.tasks[name]


def check_database() -> None:
    """One round trip, so a database that is not there is reported before any work starts."""
    from sqlalchemy import text

    from db.session import get_engine

    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1 FROM ops.job_runs LIMIT 0"))


def run_task_here(task: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run a task in this process through the task base (as `cmw run`), for commands that act
    through one (`cmw channels release`): its result, or one line on stderr and exit 1 (the
    task base's own log line about it would say the same again, so only errors are logged)."""
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    from db.settings import get_settings
    from workers.logs import apply_format

    apply_format(logging.getLogger(), get_settings().log_format)
    job = known_task(load_app(), task)
    check_database()
    result = job.apply(kwargs=kwargs)
    if not result.successful():
        raise fail(f"{task} failed: {result.result}", code=1)
    return result.result
