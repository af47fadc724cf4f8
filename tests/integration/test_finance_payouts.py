"""finance.record_payout: the payment service marks a payout sent or failed; a sent payout moves
the cash out of the trust account once; illegal transitions are payload errors."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.integration.test_statements_generate import (
    finalize,
    generate,
    owned_property,
    run_task,
    statement,
)
from tests.support import factories as f
from tests.support.cli import cmw_run_at_once
from tests.support.money import assert_every_transaction_balances, balance, lines_of_transaction
from tests.support.runs import one_row

D = Decimal
MAR = dt.date(2026, 3, 1)


@pytest.fixture
def payout(engine, session, celery_app):
    """A March statement of 800.00 rent, 20% commission: a pending payout of 640.00."""
    pid, (hid,) = owned_property(session)
    f.reservation(session, pid, dt.date(2026, 3, 2), dt.date(2026, 3, 6), gross_rent="800.00")
    session.commit()
    generate(celery_app, "2026-03")
    finalize(celery_app, statement(engine, hid, pid, MAR)["id"])
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM finance.owner_payouts")).mappings().one()
    assert (row["amount"], row["status"]) == (D("640.00"), "pending")
    return {**row, "property_id": pid}


def record(celery_app, payout_id, status: str, **payload) -> dict:
    return run_task(
        celery_app, "finance.record_payout", payout_id=str(payout_id), status=status, **payload
    )


def refused(engine, celery_app, payout_id, status: str, **payload) -> str:
    result = celery_app.tasks["finance.record_payout"].apply(
        kwargs={"payout_id": str(payout_id), "status": status, **payload}
    )
    assert result.failed()
    with engine.connect() as conn:
        kind = conn.execute(
            text(
                "SELECT error_kind FROM ops.dead_letters WHERE task_name = 'finance.record_payout'"
                " ORDER BY failed_at DESC LIMIT 1"
            )
        ).scalar_one()
    assert kind == "validation"
    return str(result.result)


def payout_row(engine, payout_id) -> dict:
    return one_row(engine, "SELECT * FROM finance.owner_payouts WHERE id = :id", id=payout_id)


def payout_transactions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM finance.transactions WHERE reference_type = 'owner_payout'")
        ).scalar_one()


def test_a_sent_payout_moves_the_cash_out_of_trust_once(engine, celery_app, payout):
    sent_at = "2026-04-10T15:00:00+00:00"
    result = record(celery_app, payout["id"], "sent", reference="ACH-991", as_of=sent_at)
    again = record(celery_app, payout["id"], "sent", reference="ACH-991", as_of=sent_at)

    assert (result["changed"], again["changed"]) == (1, 0)
    row = payout_row(engine, payout["id"])
    assert (row["status"], row["reference"]) == ("sent", "ACH-991")
    assert row["sent_at"] == dt.datetime(2026, 4, 10, 15, tzinfo=dt.UTC)
    assert payout_transactions(engine) == 1
    hid, pid = payout["homeowner_id"], payout["property_id"]
    assert lines_of_transaction(engine, row["transaction_id"]) == sorted(
        [("1010", D("0"), D("640.00"), None, hid, pid),
         ("2000", D("640.00"), D("0"), None, hid, pid)],
        key=str,
    )  # fmt: skip
    # Owner payable: 640 credited by the statement, 640 paid: nothing owed.
    assert balance(engine, "2000", homeowner_id=hid) == 0
    assert balance(engine, "1010") == D("-640.00")  # no receipts in this test
    assert_every_transaction_balances(engine)


def test_a_failed_payout_posts_nothing_and_may_be_sent_later(engine, celery_app, payout):
    record(celery_app, payout["id"], "failed", reason="account closed")
    twice = record(celery_app, payout["id"], "failed", reason="account closed")

    row = payout_row(engine, payout["id"])
    assert twice["changed"] == 0
    assert (row["status"], row["failure_reason"]) == ("failed", "account closed")
    assert row["failed_at"] is not None and payout_transactions(engine) == 0

    record(celery_app, payout["id"], "sent", reference="ACH-2")

    assert payout_row(engine, payout["id"])["status"] == "sent"
    assert payout_transactions(engine) == 1


def test_illegal_transitions_are_refused_and_dead_lettered(engine, celery_app, payout):
    record(celery_app, payout["id"], "sent", reference="ACH-1")

    assert "cannot become failed" in refused(engine, celery_app, payout["id"], "failed")
    assert "pay the owner twice" in refused(
        engine, celery_app, payout["id"], "sent", reference="ACH-OTHER"
    )
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE finance.owner_payouts SET status = 'cancelled', transaction_id = NULL")
        )
    assert "is cancelled" in refused(engine, celery_app, payout["id"], "sent")
    assert payout_transactions(engine) == 1


def test_an_unknown_payout_or_a_bad_status_is_a_payload_error(engine, celery_app, payout):
    assert "unknown payout_id" in refused(engine, celery_app, uuid.uuid4(), "sent")
    assert "status" in refused(engine, celery_app, payout["id"], "paid")
    assert payout_row(engine, payout["id"])["status"] == "pending"


def test_two_reports_at_once_post_once(engine, payout):
    results = cmw_run_at_once(
        "finance.record_payout",
        {"payout_id": str(payout["id"]), "status": "sent", "reference": "ACH-7"},
    )

    assert sorted(r["changed"] for r in results) == [0, 1]
    assert payout_transactions(engine) == 1
    assert_every_transaction_balances(engine)
