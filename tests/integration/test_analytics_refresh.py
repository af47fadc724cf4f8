"""analytics.refresh through the real task base: populate, refresh concurrently, singleton,
minimum interval, readers never blocked, bad payloads.

The materialized views outlive the per-test truncation of the tables, so every test sets the
state it starts from: `unpopulated` resets the views WITH NO DATA, otherwise a forced refresh.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from tasks.analytics.refresh import DEPENDS_ON, VIEWS, refresh_views
from tests.support import factories as f
from tests.support.cli import start_cmw_run

TASK = "analytics.refresh"


def refresh(celery_app, **payload):
    result = celery_app.tasks[TASK].apply(kwargs=payload)
    assert result.successful(), result.result
    return result.result


def runs(session):
    return session.execute(
        text(
            "SELECT status, payload, result, error FROM ops.job_runs WHERE task_name = :t"
            " ORDER BY started_at, created_at"
        ),
        {"t": TASK},
    ).all()


def populated(session) -> dict[str, bool]:
    return dict(
        session.execute(
            text("SELECT matviewname, ispopulated FROM pg_matviews WHERE schemaname = 'analytics'")
        ).all()
    )


def contents(session) -> dict[str, list]:
    """Every row of every view, in a stable order."""
    out = {}
    for view in VIEWS:
        out[view] = [
            tuple(r)
            for r in session.execute(text(f"SELECT * FROM analytics.{view} ORDER BY 1, 2, 3"))
        ]
    return out


def stay(session, prop, check_in: dt.date, nights: int, rent: str = "700.00", **extra):
    return f.reservation(
        session,
        prop,
        check_in,
        check_in + dt.timedelta(days=nights),
        gross_rent=rent,
        guest_contact_id=f.contact(session),
        **extra,
    )


@pytest.fixture
def unpopulated(engine):
    """Every view reset to never populated, as right after the migration."""
    with engine.begin() as conn:
        for view in VIEWS:
            conn.execute(text(f"REFRESH MATERIALIZED VIEW analytics.{view} WITH NO DATA"))


@pytest.fixture
def one_stay(session):
    prop = f.property_(session)
    stay(session, prop, dt.date(2026, 3, 2), 7)
    f.ticket(session, created_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    session.commit()
    return prop


def test_views_are_populated_plainly_first_then_refreshed_concurrently(
    celery_app, session, unpopulated, one_stay
):
    assert not any(populated(session).values())
    first = refresh(celery_app)
    assert all(populated(session).values())
    assert list(first["views"]) == list(VIEWS)  # all of them, in dependency order
    assert {v["status"] for v in first["views"].values()} == {"populated"}
    assert (first["populated"], first["refreshed"], first["fresh"]) == (5, 0, 0)
    second = refresh(celery_app, force=True)
    assert {v["status"] for v in second["views"].values()} == {"refreshed"}
    assert (second["populated"], second["refreshed"], second["fresh"]) == (0, 5, 0)
    # Each view's duration is in the run's own job_runs row.
    [run1, run2] = runs(session)
    assert run1.status == run2.status == "succeeded"
    for run, status in ((run1, "populated"), (run2, "refreshed")):
        assert run.result["order"] == list(VIEWS)
        for outcome in run.result["views"].values():
            assert outcome["status"] == status
            assert isinstance(outcome["duration_ms"], int) and outcome["duration_ms"] >= 0
    row = session.execute(
        text("SELECT booked_nights, revenue FROM analytics.property_performance_mv")
    ).one()
    assert tuple(row) == (7, Decimal("700.00"))


def test_refresh_order_respects_dependencies_and_is_the_order_run(celery_app, session, one_stay):
    result = refresh(celery_app, force=True)
    assert result["order"] == list(VIEWS)
    [run] = runs(session)
    assert run.result["order"] == list(VIEWS)  # the order survives in the job run's result
    done = [
        (v, dt.datetime.fromisoformat(run.result["views"][v]["refreshed_at"]))
        for v in run.result["order"]
    ]
    assert [v for v, _ in done] == list(VIEWS)
    assert [t for _, t in done] == sorted(t for _, t in done)
    for i, view in enumerate(VIEWS):
        assert set(DEPENDS_ON[view]) <= set(VIEWS[:i])


def test_a_view_refreshed_recently_is_left_alone_unless_forced(celery_app, session, one_stay):
    refresh(celery_app, force=True)
    stay(session, one_stay, dt.date(2026, 3, 20), 3, rent="300.00")
    session.commit()
    # Within the minimum interval (30 minutes by default): nothing is refreshed.
    again = refresh(celery_app)
    assert {v["status"] for v in again["views"].values()} == {"fresh"}
    assert again["fresh"] == 5
    month = "SELECT booked_nights FROM analytics.property_performance_mv"
    assert session.execute(text(month)).scalar_one() == 7
    # Once the interval has passed (the plain function, with the clock moved on) it is.
    later = refresh_views(
        session,
        views=["property_performance_mv"],
        now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31),
        min_interval=dt.timedelta(minutes=30),
    )
    session.commit()
    assert later["views"]["property_performance_mv"]["status"] == "refreshed"
    assert session.execute(text(month)).scalar_one() == 10
    # `force` refreshes whatever the interval.
    forced = refresh(celery_app, force=True)
    assert forced["refreshed"] == 5
    ltv = "SELECT count(*) FROM analytics.guest_lifetime_value_mv"
    assert session.execute(text(ltv)).scalar_one() == 2


def test_only_the_views_asked_for_are_refreshed(celery_app, session, one_stay):
    refresh(celery_app, force=True)
    stay(session, one_stay, dt.date(2026, 3, 20), 3)
    session.commit()
    result = refresh(
        celery_app, views=["analytics.guest_lifetime_value_mv", "occupancy_trends_mv"], force=True
    )
    assert result["order"] == ["guest_lifetime_value_mv", "occupancy_trends_mv"]
    assert set(result["views"]) == {"guest_lifetime_value_mv", "occupancy_trends_mv"}
    count = "SELECT count(*) FROM analytics.{}"
    assert session.execute(text(count.format("guest_lifetime_value_mv"))).scalar_one() == 2
    booked = "SELECT booked_nights FROM analytics.property_performance_mv"
    assert session.execute(text(booked)).scalar_one() == 7  # not asked for: unchanged


@pytest.mark.parametrize("asked", ["property_performance_mv", "revenue_summary_mv"])
def test_a_view_comes_with_the_view_it_reads_and_the_view_that_reads_it(
    celery_app, session, one_stay, asked
):
    """property_performance_mv's revenue is revenue_summary_mv's: they are refreshed together,
    the source first, so they never disagree."""
    refresh(celery_app, force=True)
    stay(session, one_stay, dt.date(2026, 3, 20), 3, rent="300.00")
    session.commit()
    result = refresh(celery_app, views=[asked], force=True)
    assert result["order"] == ["revenue_summary_mv", "property_performance_mv"]
    assert session.execute(
        text("SELECT revenue FROM analytics.property_performance_mv")
    ).scalar_one() == Decimal("1000.00")
    assert session.execute(
        text("SELECT sum(gross_rent) FROM analytics.revenue_summary_mv")
    ).scalar_one() == Decimal("1000.00")


def test_a_view_is_refreshed_when_its_source_was_even_if_it_is_fresh(
    celery_app, engine, session, one_stay
):
    refresh(celery_app, force=True)
    stay(session, one_stay, dt.date(2026, 3, 20), 3, rent="300.00")
    session.commit()
    with engine.begin() as conn:  # the source reset, as a restore or a migration might
        conn.execute(text("REFRESH MATERIALIZED VIEW analytics.revenue_summary_mv WITH NO DATA"))
    result = refresh(celery_app)  # not forced: everything was refreshed moments ago
    statuses = {v: o["status"] for v, o in result["views"].items()}
    assert statuses == {
        "revenue_summary_mv": "populated",
        "property_performance_mv": "refreshed",  # fresh by age, but its source changed
        "guest_lifetime_value_mv": "fresh",
        "occupancy_trends_mv": "fresh",
        "operational_kpis_mv": "fresh",
    }
    assert session.execute(
        text("SELECT revenue FROM analytics.property_performance_mv")
    ).scalar_one() == Decimal("1000.00")


def test_running_twice_leaves_the_same_rows(celery_app, session, one_stay):
    refresh(celery_app, force=True)
    once = contents(session)
    refresh(celery_app, force=True)
    assert contents(session) == once
    assert [r.status for r in runs(session)] == ["succeeded", "succeeded"]


def _wait(predicate, timeout: float = 60, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met in {timeout}s")


def _waiting_on(engine, table: str) -> bool:
    """Whether some backend waits for a lock on `table` (the refresh, held up by the test)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks l"
                    " WHERE NOT l.granted AND l.relation = CAST(:t AS regclass)"
                    " AND l.database = (SELECT oid FROM pg_database"
                    "                   WHERE datname = current_database())"
                ),
                {"t": table},
            ).scalar_one()
        )


def test_two_refreshes_at_once_one_runs_the_other_records_skipped(
    celery_app, engine, session, one_stay
):
    refresh(celery_app, force=True)
    session.execute(text("DELETE FROM ops.job_runs"))
    session.commit()
    # Hold the reservations table so whichever copy wins the job's lock stays inside its
    # refresh (it reads reservations first) while the other one starts.
    holder = engine.connect()
    trans = holder.begin()
    holder.execute(text("LOCK TABLE reservations.reservations IN ACCESS EXCLUSIVE MODE"))
    procs = [start_cmw_run(TASK, {"force": True}) for _ in range(2)]
    try:
        finished = _wait(lambda: [p for p in procs if p.poll() is not None])
        assert len(finished) == 1  # one is done (skipped) while the other is still refreshing
        assert _waiting_on(engine, "reservations.reservations")
    finally:
        trans.rollback()
        holder.close()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r.status for r in runs(session)) == ["skipped", "succeeded"]
    [skipped] = [r for r in results if "skipped" in r]
    [ran] = [r for r in results if "views" in r]
    assert "lock" in skipped["skipped"]
    assert ran["refreshed"] == 5


def test_readers_get_answers_while_a_refresh_is_running(celery_app, engine, session, one_stay):
    refresh(celery_app, force=True)
    before = contents(session)
    session.commit()
    stay(session, one_stay, dt.date(2026, 3, 20), 3, rent="300.00")
    session.commit()
    # operational_kpis_mv is refreshed last; with the tickets table held, the refresh stops
    # there, after refreshing the four others, inside its one open transaction.
    holder = engine.connect()
    trans = holder.begin()
    holder.execute(text("LOCK TABLE service.tickets IN ACCESS EXCLUSIVE MODE"))
    outcome: dict = {}

    def run() -> None:
        outcome["result"] = celery_app.tasks[TASK].apply(kwargs={"force": True})

    thread = threading.Thread(target=run)
    thread.start()
    try:
        _wait(lambda: _waiting_on(engine, "service.tickets"))
        # The refresh holds its lock on every view it has refreshed (or is refreshing) ...
        with engine.connect() as conn:
            locked = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                        " WHERE l.granted AND l.mode = 'ExclusiveLock' AND c.relkind = 'm'"
                        " AND l.database = (SELECT oid FROM pg_database"
                        "                   WHERE datname = current_database())"
                    )
                ).scalars()
            )
        assert locked == set(VIEWS)
        # ... and a reader still gets its answer, at once: the contents from before the refresh.
        with engine.connect() as reader:
            reader.execute(text("SET statement_timeout = '2s'"))
            seen = {}
            for view in VIEWS:
                started = time.monotonic()
                seen[view] = [
                    tuple(r)
                    for r in reader.execute(
                        text(f"SELECT * FROM analytics.{view} ORDER BY 1, 2, 3")
                    )
                ]
                assert time.monotonic() - started < 2
            reader.rollback()
        assert seen == before
        assert thread.is_alive()  # the refresh was running all along
    finally:
        trans.rollback()
        holder.close()
        thread.join(timeout=120)
    assert outcome["result"].successful(), outcome["result"].result
    booked = "SELECT booked_nights FROM analytics.property_performance_mv"
    assert session.execute(text(booked)).scalar_one() == 10


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"views": ["no_such_mv"]}, "unknown view"),
        ({"views": []}, "at least one view"),
        ({"views": "property_performance_mv"}, "views"),  # a list, not a string
        ({"force": "yes"}, "force"),
        ({"as_of": "2026-06-30T12:00:00+00:00"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_payload_fails_once_and_is_dead_lettered(celery_app, session, payload, message):
    result = celery_app.tasks[TASK].apply(kwargs=payload)
    assert result.failed()
    assert message in str(result.result)
    [dead] = session.execute(
        text("SELECT task_name, payload, error, error_kind, retries FROM ops.dead_letters")
    ).all()
    assert (dead.task_name, dead.payload, dead.error_kind, dead.retries) == (
        TASK,
        payload,
        "validation",
        0,
    )
    assert message in dead.error
    [run] = runs(session)
    assert run.status == "failed" and message in run.error
