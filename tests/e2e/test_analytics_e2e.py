"""analytics.refresh end to end: sent by name, as beat or an operator would, run by a real worker
on the `analytics` queue; the views hold the new figures once it has committed."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from tasks.analytics.refresh import VIEWS
from tests.support import factories as f
from tests.support.runs import scalar

pytestmark = pytest.mark.e2e


def test_refresh_on_a_worker_populates_then_refreshes_the_views(
    worker, celery_app, engine, session
):
    with engine.begin() as conn:  # as right after the migration: never populated
        for view in VIEWS:
            conn.execute(text(f"REFRESH MATERIALIZED VIEW analytics.{view} WITH NO DATA"))
    prop = f.property_(session)
    guest = f.contact(session)
    f.reservation(
        session,
        prop,
        dt.date(2026, 6, 10),
        dt.date(2026, 6, 15),
        gross_rent="1250.00",
        guest_contact_id=guest,
    )
    session.commit()

    result = celery_app.send_task("analytics.refresh", kwargs={})
    summary = result.get(timeout=180)
    assert summary["order"] == list(VIEWS)
    assert {v["status"] for v in summary["views"].values()} == {"populated"}
    run = scalar(
        engine,
        "SELECT json_build_object('worker', worker, 'status', status, 'result', result)"
        " FROM ops.job_runs WHERE task_id = :t",
        t=result.id,
    )
    assert run["worker"].startswith("test-")  # it ran on the worker, not in this process
    assert run["status"] == "succeeded"
    assert all(o["duration_ms"] >= 0 for o in run["result"]["views"].values())
    # June: 5 of 30 nights, 1250 of rent: occupancy 0.1667, ADR 250, RevPAR 41.67.
    row = session.execute(
        text(
            "SELECT booked_nights, available_nights, occupancy, revenue, adr, revpar"
            " FROM analytics.property_performance_mv WHERE property_id = :p"
        ),
        {"p": prop},
    ).one()
    assert tuple(row) == (5, 30, Decimal("0.1667"), Decimal("1250.00"), Decimal("250.00"),
                          Decimal("41.67"))  # fmt: skip
    ltv = "SELECT revenue FROM analytics.guest_lifetime_value_mv WHERE guest_contact_id = :g"
    assert scalar(engine, ltv, g=guest) == Decimal("1250.00")

    # A second run, forced, refreshes concurrently and sees the new stay.
    f.reservation(
        session,
        prop,
        dt.date(2026, 6, 20),
        dt.date(2026, 6, 22),
        gross_rent="500.00",
        guest_contact_id=guest,
    )
    session.commit()
    again = celery_app.send_task("analytics.refresh", kwargs={"force": True}).get(timeout=180)
    assert {v["status"] for v in again["views"].values()} == {"refreshed"}
    assert scalar(engine, ltv, g=guest) == Decimal("1750.00")


def test_an_unknown_view_fails_on_the_worker_without_retry_and_is_dead_lettered(
    worker, celery_app, engine
):
    result = celery_app.send_task("analytics.refresh", kwargs={"views": ["nope_mv"]})
    with pytest.raises(Exception, match="unknown view"):
        result.get(timeout=60)
    time.sleep(2)  # room for a retry, which must not come
    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT status FROM ops.job_runs WHERE task_id = :t"), {"t": result.id}
        ).scalars()
        assert list(statuses) == ["failed"]
    dead = scalar(
        engine,
        "SELECT json_build_object('payload', payload, 'kind', error_kind, 'retries', retries)"
        " FROM ops.dead_letters WHERE task_id = :t",
        t=result.id,
    )
    assert dead == {"payload": {"views": ["nope_mv"]}, "kind": "validation", "retries": 0}
