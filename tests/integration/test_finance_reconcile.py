"""finance.reconcile_trust: the three-way reconciliation at a month end, recorded once per month
and brought up to date by each run; a difference queues one ops notification, however many
runs (or runs at once) see it."""

from __future__ import annotations

import datetime as dt
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
from tests.support.money import guest_payment
from tests.support.runs import one_row

D = Decimal
UTC = dt.UTC
MAR = dt.date(2026, 3, 1)
MAR_END = dt.date(2026, 3, 31)


@pytest.fixture
def books(engine, session, celery_app):
    """March: a stay paid in full (1,000 rent + 100 cleaning + 110 taxes), stated and paid
    out; a future May stay with a 300.00 deposit; a payment received on 1 April (after the
    month end). Trust cash at 31 March: 1,210 + 300 - payout."""
    pid, (hid,) = owned_property(session, commission_pct="20")
    march = f.reservation(session, pid, dt.date(2026, 3, 5), dt.date(2026, 3, 9),
                          gross_rent="1000.00", cleaning_fee="100.00",
                          taxes="110.00")  # fmt: skip
    may = f.reservation(session, pid, dt.date(2026, 5, 1), dt.date(2026, 5, 4), gross_rent="600")
    guest_payment(session, march, "1210.00", dt.datetime(2026, 2, 20, 15, tzinfo=UTC))
    guest_payment(session, may, "300.00", dt.datetime(2026, 3, 15, 15, tzinfo=UTC))
    guest_payment(session, may, "300.00", dt.datetime(2026, 4, 1, 15, tzinfo=UTC))
    session.commit()
    run_task(celery_app, "finance.post_payments")
    generate(celery_app, "2026-03")
    finalize(celery_app, statement(engine, hid, pid, MAR)["id"])
    with engine.connect() as conn:
        payout = conn.execute(text("SELECT id, amount FROM finance.owner_payouts")).one()
    run_task(celery_app, "finance.record_payout", payout_id=str(payout.id), status="sent",
             as_of="2026-03-31T16:00:00+00:00")  # fmt: skip
    # 1000 rent - 200 commission = 800 to the owner, all paid out; the cleaning fee (100) is
    # the manager's, not yet transferred; taxes 110 payable; 300 held for May.
    assert payout.amount == D("800.00")
    return {"ledger": D("1210.00") + D("300.00") - D("800.00")}


def reconcile(celery_app, month: str = "2026-03", **payload) -> dict:
    return run_task(celery_app, "finance.reconcile_trust", month=month, **payload)


def enter_bank_balance(session, day: dt.date, amount: Decimal | str) -> None:
    f.insert(session, "finance.bank_balances", balance_date=day, balance=Decimal(amount))
    session.commit()


def reconciliation(engine, month: dt.date = MAR) -> dict:
    return one_row(engine, "SELECT * FROM finance.trust_reconciliations WHERE month = :m", m=month)


def notices(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT recipient, subject, body, related_type, related_id, dedupe_key"
                " FROM comms.messages WHERE related_type = 'trust_reconciliation'"
            )
        ).all()


def test_a_balanced_month_is_recorded_with_what_is_owed_and_notifies_nobody(
    engine, session, celery_app, books
):
    enter_bank_balance(session, MAR_END, books["ledger"])

    result = reconcile(celery_app)

    assert (result["status"], result["notified"]) == ("balanced", 0)
    r = reconciliation(engine)
    assert (r["ledger_balance"], r["bank_balance"]) == (D("710.00"), D("710.00"))
    assert (r["owner_balances"], r["taxes_payable"], r["fees_held"]) == (
        D("0.00"),
        D("110.00"),
        D("300.00"),  # the cleaning fee kept (100) and the commission (200)
    )
    assert (r["guest_funds_future"], r["guest_funds_current"]) == (D("300.00"), D("0.00"))
    assert (r["owed_total"], r["book_difference"], r["bank_difference"]) == (
        D("710.00"),
        D("0.00"),
        D("0.00"),
    )
    assert r["month_end"] == MAR_END and notices(engine) == []


def test_a_bank_balance_off_by_a_cent_is_recorded_and_notified_once(
    engine, session, celery_app, books
):
    enter_bank_balance(session, MAR_END, books["ledger"] - D("0.01"))

    first = reconcile(celery_app)
    second = reconcile(celery_app)

    assert (first["status"], first["notified"], first["bank_difference"]) == (
        "difference",
        1,
        "-0.01",
    )
    assert (second["notified"], second["runs"]) == (0, 2)
    r = reconciliation(engine)
    assert (r["status"], r["bank_difference"], r["book_difference"], r["runs"]) == (
        "difference",
        D("-0.01"),
        D("0.00"),
        2,
    )
    (notice,) = notices(engine)
    assert notice.related_id == r["id"] and notice.recipient == "ops@localhost"
    assert "2026-03-31" in notice.subject and "-0.01" in notice.body
    assert notice.dedupe_key == "trust_reconciliation:1010:2026-03:bank:-0.01:book:0.00"

    # Ops find the typo: the next run records the month balanced and notifies nobody.
    session.execute(text("UPDATE finance.bank_balances SET balance = balance + 0.01"))
    session.commit()
    assert reconcile(celery_app)["status"] == "balanced"
    assert len(notices(engine)) == 1


def test_two_reconciliations_at_once_record_one_result_and_one_notice(
    engine, session, celery_app, books
):
    enter_bank_balance(session, MAR_END, books["ledger"] + D("0.01"))

    results = cmw_run_at_once("finance.reconcile_trust", {"month": "2026-03"})

    assert sum(r.get("notified", 0) for r in results) == 1
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM finance.trust_reconciliations")).scalar()
    assert rows == 1 and len(notices(engine)) == 1


def test_no_bank_balance_yet_is_recorded_not_notified(engine, celery_app, books):
    result = reconcile(celery_app)

    assert (result["status"], result["bank_balance"], result["notified"]) == (
        "no_bank_balance",
        None,
        0,
    )
    assert reconciliation(engine)["bank_difference"] is None and notices(engine) == []


def test_an_entry_made_around_the_trust_rule_is_a_book_difference(
    engine, session, celery_app, books
):
    enter_bank_balance(session, MAR_END, books["ledger"] + D("5.00"))
    # Bank interest booked straight to revenue: trust cash rises, nothing owed does.
    txn = session.execute(
        text(
            "INSERT INTO finance.transactions (txn_date, description)"
            " VALUES ('2026-03-31', 'Bank interest') RETURNING id"
        )
    ).scalar_one()
    session.execute(
        text(
            "INSERT INTO finance.transaction_lines (transaction_id, account_id, debit, credit)"
            " SELECT :t, id, CASE code WHEN '1010' THEN 5 ELSE 0 END,"
            " CASE code WHEN '4000' THEN 5 ELSE 0 END"
            " FROM finance.accounts WHERE code IN ('1010', '4000')"
        ),
        {"t": txn},
    )
    session.commit()

    result = reconcile(celery_app)

    assert (result["status"], result["bank_difference"], result["book_difference"]) == (
        "difference",
        "0.00",
        "5.00",
    )
    assert len(notices(engine)) == 1


def test_the_beat_payload_reconciles_the_previous_month(engine, session, celery_app, books):
    enter_bank_balance(session, MAR_END, books["ledger"])

    result = run_task(celery_app, "finance.reconcile_trust", as_of="2026-04-05T07:00:00+00:00")

    assert (result["month"], result["status"]) == ("2026-03", "balanced")
    assert reconciliation(engine)["reconciled_at"] == dt.datetime(2026, 4, 5, 7, tzinfo=UTC)


def test_a_bad_month_is_dead_lettered(engine, celery_app):
    months = ["2026-13", "2026-3", "2026-03\n", "March", "2026-03-31"]
    for month in months:
        result = celery_app.tasks["finance.reconcile_trust"].apply(kwargs={"month": month})
        assert result.failed() and "month must be 'YYYY-MM'" in str(result.result), month
    with engine.connect() as conn:
        dead = conn.execute(
            text("SELECT payload, error_kind FROM ops.dead_letters WHERE task_name = :t"),
            {"t": "finance.reconcile_trust"},
        ).all()
        recorded = conn.execute(text("SELECT count(*) FROM finance.trust_reconciliations"))
        assert recorded.scalar_one() == 0
    assert sorted(d.payload["month"] for d in dead) == sorted(months)
    assert {d.error_kind for d in dead} == {"validation"}
