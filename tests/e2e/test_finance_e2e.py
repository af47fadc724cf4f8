"""The finance tasks end to end: sent by name, as beat or the payment service would, run by a
real worker on the `finance` queue; effects in the database once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from tests.support import factories as f
from tests.support.money import assert_every_transaction_balances, balance, guest_payment
from tests.support.runs import column, run_on_worker, scalar, wait_for

pytestmark = pytest.mark.e2e
D = Decimal


def test_payments_a_statement_a_payout_and_the_reconciliation_on_a_worker(
    worker, celery_app, engine, session
):
    pid = f.property_(session, timezone="America/Chicago")
    hid = f.homeowner(session, statement_email="owner@example.com")
    f.ownership(session, hid, pid, commission_pct="25", cleaning_fee_to_owner=True)
    stay = f.reservation(session, pid, dt.date(2026, 2, 3), dt.date(2026, 2, 7),
                         gross_rent="800.00", cleaning_fee="120.00",
                         taxes="92.00")  # fmt: skip
    guest_payment(session, stay, "1012.00", dt.datetime(2026, 1, 20, 16, tzinfo=dt.UTC))
    guest_payment(session, uuid.uuid4(), "50.00", dt.datetime(2026, 1, 21, tzinfo=dt.UTC))
    session.commit()

    posted = run_on_worker(celery_app, engine, "finance.post_payments")
    again = run_on_worker(celery_app, engine, "finance.post_payments")
    assert (posted["posted"], posted["errors"], again["posted"]) == (1, 1, 0)

    run_on_worker(celery_app, engine, "statements.generate", period="2026-02")
    sid = scalar(engine, "SELECT id FROM finance.owner_statements")
    done = run_on_worker(celery_app, engine, "statements.finalize", statement_id=str(sid))
    assert (done["finalized"], done["email_queued"]) == (1, 1)
    assert balance(engine, "2100", reservation_id=stay) == 0  # paid and stated

    payout = scalar(engine, "SELECT id FROM finance.owner_payouts")
    sent = run_on_worker(celery_app, engine, "finance.record_payout", payout_id=str(payout),
                          status="sent", reference="ACH-1",
                          as_of="2026-02-27T18:00:00+00:00")  # fmt: skip
    assert (sent["changed"], sent["amount"]) == (1, "720.00")  # 800 - 200 + 120

    # The bank shows a cent less than the books: one notice, however often it is run.
    f.insert(session, "finance.bank_balances", balance_date=dt.date(2026, 2, 28),
             balance=D("1012.00") - D("720.00") - D("0.01"))  # fmt: skip
    session.commit()
    first = run_on_worker(celery_app, engine, "finance.reconcile_trust", month="2026-02")
    second = run_on_worker(celery_app, engine, "finance.reconcile_trust", month="2026-02")
    assert (first["status"], first["bank_difference"], first["notified"]) == (
        "difference",
        "-0.01",
        1,
    )
    assert second["notified"] == 0
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM comms.messages WHERE related_type = 'trust_reconciliation'",
        )
        == 1
    )
    assert_every_transaction_balances(engine)


def test_an_unknown_payout_sent_to_the_worker_is_dead_lettered(worker, celery_app, engine):
    result = celery_app.send_task(
        "finance.record_payout", kwargs={"payout_id": str(uuid.uuid4()), "status": "sent"}
    )
    with pytest.raises(Exception, match="unknown payout_id"):
        result.get(timeout=60)
    kinds = wait_for(
        lambda: column(
            engine, "SELECT error_kind FROM ops.dead_letters WHERE task_id = :t", t=result.id
        ),
        timeout=30,
    )
    assert kinds == ["validation"]
