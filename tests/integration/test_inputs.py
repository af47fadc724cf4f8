"""Inputs and the clock (SPEC 7.2), through the task base in-process (`Task.apply`, the path
`cmw run` takes) and through `cmw run` itself: a value the database cannot store is a payload
error that leaves its failed run and exactly one dead letter; `as_of` stays within 5 years of
the real clock; purge never deletes what is newer than keep_days before the real now; `period`
is exactly YYYY-MM; a refused payload is one WARNING line."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from tests.support.cli import cmw

NOW = dt.datetime.now(dt.UTC)


def _failures(session, task_name: str):
    runs = session.execute(
        text("SELECT status, payload, error FROM ops.job_runs WHERE task_name = :t"),
        {"t": task_name},
    ).all()
    letters = session.execute(
        text(
            "SELECT payload, error, error_kind, status FROM ops.dead_letters WHERE task_name = :t"
        ),
        {"t": task_name},
    ).all()
    return runs, letters


@pytest.mark.parametrize(
    ("payload", "stored", "where"),
    [
        (
            {"keep_days": 5, "note": "a\u0000b"},
            {"keep_days": 5, "note": "a\ufffdb"},
            "note: contains a NUL character",
        ),
        (
            {"as_of": f"{NOW.date().isoformat()}T00:00:00+00:00\u0000"},
            {"as_of": f"{NOW.date().isoformat()}T00:00:00+00:00\ufffd"},
            "as_of: contains a NUL character",
        ),
        ({"a\u0000": 1}, {"a\ufffd": 1}, "a key contains a NUL character"),
        ({"x": ["ok", {"y": "\ud800"}]}, {"x": ["ok", {"y": "\ufffd"}]}, "x[1].y: contains a lone"),
        (
            {"keep_days": float("nan")},
            {"keep_days": "nan"},
            "keep_days: nan is not a JSON number, which the database cannot store",
        ),
    ],
)
def test_an_unstorable_value_is_a_payload_error_with_one_dead_letter(
    celery_app, session, payload, stored, where
):
    result = celery_app.tasks["ops.purge"].apply(kwargs=payload)
    assert result.failed()
    assert where in str(result.result)
    runs, letters = _failures(session, "ops.purge")
    assert [(r.status, r.payload) for r in runs] == [("failed", stored)]
    assert where in runs[0].error
    [letter] = letters
    assert letter.payload == stored  # the value made storable: NUL -> U+FFFD
    assert where in letter.error and "\x00" not in letter.error
    assert (letter.error_kind, letter.status) == ("validation", "open")


def test_a_nul_in_a_string_field_the_model_accepts_is_refused_too(celery_app, session):
    """statements.generate's period is a string: the NUL is refused before the model sees it,
    and nothing was built."""
    result = celery_app.tasks["statements.generate"].apply(kwargs={"period": "2026-01\u0000"})
    assert result.failed() and "period: contains a NUL character" in str(result.result)
    assert session.execute(text("SELECT count(*) FROM finance.owner_statements")).scalar() == 0
    _, letters = _failures(session, "statements.generate")
    assert [letter.payload for letter in letters] == [{"period": "2026-01\ufffd"}]


def _years(years: int, days: int = 0) -> str:
    moved = NOW.replace(year=NOW.year + years) + dt.timedelta(days=days)
    return moved.isoformat()


@pytest.mark.parametrize(
    "as_of",
    [
        "9999-12-31T00:00:00+00:00",
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        _years(5, days=2),
        _years(-5, days=-2),
    ],
)
@pytest.mark.parametrize(
    "task", ["ops.purge", "sla.check_breaches", "inventory.reorder_stock", "channel.sync"]
)
def test_as_of_more_than_5_years_from_the_real_clock_is_a_payload_error(
    celery_app, session, task, as_of
):
    result = celery_app.tasks[task].apply(kwargs={"as_of": as_of})
    assert result.failed()
    assert "as_of must lie within 5 years of the real clock" in str(result.result)
    runs, letters = _failures(session, task)
    assert [r.status for r in runs] == ["failed"] and len(letters) == 1
    assert session.execute(text("SELECT count(*) FROM comms.messages")).scalar() == 0


def test_as_of_within_5_years_is_accepted(celery_app):
    for as_of in (_years(4), _years(-4)):
        result = celery_app.tasks["ops.purge"].apply(kwargs={"as_of": as_of})
        assert result.successful(), result.result


def test_purge_with_a_future_as_of_never_deletes_rows_newer_than_keep_days_before_now(
    celery_app, session
):
    for age_days in (0, 2, 40):
        session.execute(
            text(
                "INSERT INTO ops.job_runs (task_name, status, started_at)"
                " VALUES ('x.y', 'succeeded', now() - make_interval(days => :d))"
            ),
            {"d": age_days},
        )
    session.commit()
    result = celery_app.tasks["ops.purge"].apply(kwargs={"as_of": _years(4), "keep_days": 1})
    assert result.successful(), result.result
    # Only the 2- and 40-day-old runs are more than a day older than the real now; a day-1
    # cutoff from as_of (4 years ahead) would have deleted all three.
    assert result.result["job_runs_deleted"] == 2
    left = session.execute(
        text("SELECT count(*) FROM ops.job_runs WHERE task_name = 'x.y'")
    ).scalar()
    assert left == 1


def test_purge_with_a_past_as_of_keeps_what_is_newer_than_keep_days_before_it(celery_app, session):
    for age_days in (5, 40):
        session.execute(
            text(
                "INSERT INTO ops.job_runs (task_name, status, started_at)"
                " VALUES ('x.y', 'succeeded', now() - make_interval(days => :d))"
            ),
            {"d": age_days},
        )
    session.commit()
    as_of = (NOW - dt.timedelta(days=20)).isoformat()
    result = celery_app.tasks["ops.purge"].apply(kwargs={"as_of": as_of, "keep_days": 10})
    assert result.result["job_runs_deleted"] == 1  # only the 40-day-old run is 10 days before


@pytest.mark.parametrize(
    "period", ["2026-01\n", "2026-01 ", " 2026-01", "2026-1", "2026-13", "٢٠٢٦-01", "2026-01-01"]
)
def test_period_must_be_exactly_yyyy_mm(celery_app, session, period):
    result = celery_app.tasks["statements.generate"].apply(kwargs={"period": period})
    assert result.failed()
    assert "period must be 'YYYY-MM'" in str(result.result)
    runs, letters = _failures(session, "statements.generate")
    assert [r.status for r in runs] == ["failed"] and len(letters) == 1


def test_a_well_formed_period_is_accepted(celery_app):
    result = celery_app.tasks["statements.generate"].apply(kwargs={"period": "2026-01"})
    assert result.successful(), result.result
    assert result.result["period"] == "2026-01"


def test_cmw_run_of_a_refused_payload_logs_one_warning_line_and_no_traceback(engine):
    payload = {"keep_days": "Ada Lovelace", "n": "a\u0000"}
    done = cmw("run", "ops.purge", "--payload", json.dumps(payload))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "WARNING" in lines[0] and "payload refused" in lines[0]
    assert "keep_days: Input should be a valid integer" in lines[0]
    assert "n: contains a NUL character" in lines[0]
    assert "raised unexpected" not in done.stderr and "Traceback" not in done.stderr
    # The payload itself is never logged (it may name guests).
    assert "Lovelace" not in done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["task"] == "ops.purge"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ops.dead_letters")).scalar() == 1


def test_an_unknown_id_raised_by_a_job_is_one_warning_line_too(engine):
    done = cmw(
        "run", "sla.apply", "--payload", '{"ticket_id": "01890000-0000-7000-8000-000000000000"}'
    )
    assert done.returncode == 1
    loud = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert len(loud) == 1 and "WARNING" in loud[0] and "unknown ticket_id" in loud[0]
    assert "Traceback" not in done.stderr and "raised unexpected" not in done.stderr
