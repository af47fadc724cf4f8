"""statements.generate and statements.finalize end to end: sent by name, as beat or another
service would, run by a real worker on the `finance` queue; effects in the database once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.support import factories as f
from tests.support.runs import column, run_on_worker, scalar, wait_for

pytestmark = pytest.mark.e2e


def test_the_monthly_run_and_a_finalization_on_a_worker(worker, celery_app, engine, session):
    pid = f.property_(session, code="E2E-1", timezone="Pacific/Honolulu")
    owners = [f.homeowner(session) for _ in range(3)]
    for hid, pct in zip(owners, ("33.33", "33.33", "33.34"), strict=True):
        f.ownership(session, hid, pid, ownership_pct=pct, commission_pct="20",
                    reserve_amount="100")  # fmt: skip
    # A stay across the month end: two of its three nights in February.
    f.reservation(session, pid, dt.date(2026, 2, 27), dt.date(2026, 3, 2), gross_rent="900.00",
                  channel_commission="27.00", source="airbnb")  # fmt: skip
    f.insert(session, "service.ticket_costs", property_id=pid, cost_date=dt.date(2026, 2, 10),
             amount=Decimal("150.00"), markup_pct=Decimal("10"), billable_to="owner",
             description="Pool pump")  # fmt: skip
    session.commit()

    # The beat's payload: no period, the month before as_of's month.
    first = run_on_worker(
        celery_app, engine, "statements.generate", as_of="2026-03-01T06:00:00+00:00"
    )
    again = run_on_worker(
        celery_app, engine, "statements.generate", as_of="2026-03-01T06:00:00+00:00"
    )

    assert (first["period"], first["created"], again["created"], again["rebuilt"]) == (
        "2026-02", 3, 0, 3,
    )  # fmt: skip
    assert again["lines_written"] == 0
    with engine.connect() as conn:
        statements = conn.execute(
            text(
                "SELECT id, gross_revenue, expenses, payout_amount FROM finance.owner_statements"
                " WHERE period_start = '2026-02-01' ORDER BY statement_number"
            )
        ).all()
    assert sum(s.gross_revenue for s in statements) == Decimal("600.00")
    assert sum(s.expenses for s in statements) == Decimal("-165.00")

    done = [run_on_worker(celery_app, engine, "statements.finalize", statement_id=str(s.id))
            for s in statements]  # fmt: skip
    twice = run_on_worker(
        celery_app, engine, "statements.finalize", statement_id=str(statements[0].id)
    )

    assert [d["finalized"] for d in done] == [1, 1, 1] and twice["already_final"] == 1
    assert scalar(engine, "SELECT count(*) FROM finance.transactions") == 3
    assert scalar(
        engine, "SELECT sum(debit) - sum(credit) FROM finance.transaction_lines"
    ) == Decimal("0")
    assert scalar(engine, "SELECT count(*) FROM finance.owner_payouts") == sum(
        1 for s in statements if s.payout_amount > 0
    )
    assert (
        scalar(
            engine, "SELECT count(*) FROM service.ticket_costs WHERE statement_line_id IS NOT NULL"
        )
        == 1
    )
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM ops.job_runs WHERE task_name LIKE 'statements.%'"
            " AND status = 'succeeded'",
        )
        == 6
    )


def test_a_bad_payload_sent_to_the_worker_is_dead_lettered(worker, celery_app, engine):
    result = celery_app.send_task("statements.generate", kwargs={"period": "March"})
    with pytest.raises(Exception, match="period must be"):
        result.get(timeout=60)
    # The worker stores the result before its failure handler records the dead letter.
    kinds = wait_for(
        lambda: column(
            engine, "SELECT error_kind FROM ops.dead_letters WHERE task_id = :t", t=result.id
        ),
        timeout=30,
    )
    assert kinds == ["validation"]
