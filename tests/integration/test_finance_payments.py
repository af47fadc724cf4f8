"""finance.post_payments on a real database: guest payments and refunds reach the ledger once
each, set-based; a payment for an unknown reservation is an error on its row, not a crash."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from tests.integration.test_statements_generate import run_task
from tests.support import factories as f
from tests.support.cli import cmw_run_at_once
from tests.support.money import (
    assert_every_transaction_balances,
    balance,
    guest_payment,
    lines_of_transaction,
    payment_row,
)

D = Decimal
UTC = dt.UTC
AS_OF = "2026-04-01T12:00:00+00:00"


def post(celery_app, **payload) -> dict:
    return run_task(celery_app, "finance.post_payments", **{"as_of": AS_OF, **payload})


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


@pytest.fixture
def stay(session):
    pid = f.property_(session, timezone="America/New_York")
    rid = f.reservation(session, pid, dt.date(2026, 3, 10), dt.date(2026, 3, 14),
                        gross_rent="800.00", confirmation_code="HMPAID")  # fmt: skip
    session.commit()
    return pid, rid


def test_a_payment_is_posted_to_trust_cash_and_the_stays_clearing_account(
    engine, session, celery_app, stay
):
    pid, rid = stay
    # 03:00 UTC on 1 March is still 28 February in New York: the entry is dated then.
    pay = guest_payment(session, rid, "500.00", dt.datetime(2026, 3, 1, 3, tzinfo=UTC), "ch_1")
    session.commit()

    result = post(celery_app)

    assert (result["posted"], result["errors"], result["ledger_lines"]) == (1, 0, 2)
    assert result["net_amount"] == "500.00" and result["more"] is False
    row = payment_row(engine, pay)
    assert row["transaction_id"] is not None and row["error"] is None
    assert lines_of_transaction(engine, row["transaction_id"]) == sorted(
        [("1010", D("500.00"), D("0"), None, None, None),
         ("2100", D("0"), D("500.00"), rid, None, pid)],
        key=str,
    )  # fmt: skip
    with engine.connect() as conn:
        txn = (
            conn.execute(
                text("SELECT * FROM finance.transactions WHERE id = :t"),
                {"t": row["transaction_id"]},
            )
            .mappings()
            .one()
        )
    assert (txn["reference_type"], txn["reference_id"]) == ("guest_payment", pay)
    assert txn["txn_date"] == dt.date(2026, 2, 28)
    assert "ch_1" in txn["description"] and "HMPAID" in txn["description"]
    assert balance(engine, "2100", reservation_id=rid) == D("-500.00")  # 500 held for the stay
    assert_every_transaction_balances(engine)


def test_a_refund_is_a_negative_payment_posted_the_other_way(engine, session, celery_app, stay):
    pid, rid = stay
    guest_payment(session, rid, "800.00", dt.datetime(2026, 2, 1, tzinfo=UTC))
    refund = guest_payment(session, rid, "-120.50", dt.datetime(2026, 3, 20, tzinfo=UTC))
    session.commit()

    result = post(celery_app)

    assert (result["posted"], result["refunds"], result["net_amount"]) == (2, 1, "679.50")
    lines = lines_of_transaction(engine, payment_row(engine, refund)["transaction_id"])
    assert [(code, debit, credit) for code, debit, credit, *_ in lines] == [
        ("1010", D("0"), D("120.50")),
        ("2100", D("120.50"), D("0")),
    ]
    assert balance(engine, "1010") == D("679.50")
    assert balance(engine, "2100", reservation_id=rid) == D("-679.50")


def test_a_payment_for_an_unknown_reservation_is_an_error_on_its_row_and_left_alone(
    engine, session, celery_app, stay
):
    pid, rid = stay
    ghost = uuid.uuid4()
    bad = guest_payment(session, ghost, "300.00", dt.datetime(2026, 3, 2, tzinfo=UTC))
    good = guest_payment(session, rid, "200.00", dt.datetime(2026, 3, 2, tzinfo=UTC))
    session.commit()

    first = post(celery_app)
    again = post(celery_app)

    assert (first["posted"], first["errors"]) == (1, 1)
    assert (again["posted"], again["errors"]) == (0, 0)  # not retried by itself
    row = payment_row(engine, bad)
    assert row["transaction_id"] is None and row["error"] == f"unknown reservation {ghost}"
    assert payment_row(engine, good)["transaction_id"] is not None
    assert count(engine, "SELECT count(*) FROM finance.transactions") == 1
    assert count(engine, "SELECT count(*) FROM ops.dead_letters") == 0

    # Once the reservation exists (it was synced late), clearing the error posts it.
    f.reservation(session, pid, dt.date(2026, 5, 1), dt.date(2026, 5, 3), id=ghost)
    session.execute(
        text("UPDATE finance.guest_payments SET error = NULL WHERE id = :id"), {"id": bad}
    )
    session.commit()
    assert post(celery_app)["posted"] == 1
    assert balance(engine, "2100", reservation_id=ghost) == D("-300.00")
    assert_every_transaction_balances(engine)


def test_posting_twice_posts_once(engine, session, celery_app, stay):
    _, rid = stay
    for i in range(3):
        guest_payment(session, rid, "100.00", dt.datetime(2026, 3, 1 + i, tzinfo=UTC))
    session.commit()

    assert post(celery_app)["posted"] == 3
    assert post(celery_app)["posted"] == 0

    assert count(engine, "SELECT count(*) FROM finance.transactions") == 3
    assert balance(engine, "1010") == D("300.00")


def test_two_runs_at_once_from_two_processes_post_each_payment_once(engine, session, stay):
    _, rid = stay
    for i in range(40):
        guest_payment(session, rid, "10.00", dt.datetime(2026, 3, 1, i % 24, tzinfo=UTC))
    session.commit()

    results = cmw_run_at_once("finance.post_payments", {"as_of": AS_OF})

    assert sum(r.get("posted", 0) for r in results) == 40
    assert count(engine, "SELECT count(*) FROM finance.transactions") == 40
    assert count(engine, "SELECT count(*) FROM finance.transaction_lines") == 80
    assert (
        count(engine, "SELECT count(*) FROM finance.guest_payments WHERE transaction_id IS NULL")
        == 0
    )
    assert balance(engine, "1010") == D("400.00")


def test_a_backlog_is_posted_in_batches_that_enqueue_the_next(engine, session, stay, monkeypatch):
    import tasks.finance.payments as payments
    from db.session import session_scope
    from tasks.finance import finance_post_payments
    from tasks.finance.payments import post_payments
    from workers.base import JobContext

    _, rid = stay
    for i in range(5):
        guest_payment(session, rid, "1.00", dt.datetime(2026, 3, 1, i, tzinfo=UTC))
    session.commit()
    as_of = dt.datetime.fromisoformat(AS_OF)

    with session_scope() as s:
        first = post_payments(s, as_of=as_of, batch_size=2)
    monkeypatch.setattr(payments, "BATCH_SIZE", 2)
    with session_scope() as s:
        ctx = JobContext(s, as_of, "finance.post_payments", None, uuid.uuid4())
        second = finance_post_payments.job_fn(ctx, None)
    with session_scope() as s:
        last = post_payments(s, as_of=as_of, batch_size=2)

    assert (first["posted"], first["more"]) == (2, True)
    assert (second["posted"], second["more"]) == (2, True)
    assert ctx._after_commit == [("finance.post_payments", {})]
    assert (last["posted"], last["more"]) == (1, False)


def test_a_payment_received_after_as_of_waits(engine, session, celery_app, stay):
    _, rid = stay
    later = guest_payment(session, rid, "50.00", dt.datetime(2026, 4, 2, tzinfo=UTC))
    session.commit()

    assert post(celery_app)["posted"] == 0
    assert payment_row(engine, later)["transaction_id"] is None
    assert post(celery_app, as_of="2026-04-03T00:00:00+00:00")["posted"] == 1


def test_a_posted_payment_cannot_change(engine, session, celery_app, stay):
    _, rid = stay
    pay = guest_payment(session, rid, "75.00", dt.datetime(2026, 3, 1, tzinfo=UTC))
    session.commit()
    post(celery_app)
    before = payment_row(engine, pay)
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        for sql in (
            "UPDATE finance.guest_payments SET amount = 1",
            "UPDATE finance.guest_payments SET reservation_id = gen_random_uuid()",
            "UPDATE finance.guest_payments SET transaction_id = NULL",
            "DELETE FROM finance.guest_payments",
        ):
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="record a refund"):
                s.execute(text(sql))
            s.rollback()
        # Its error note is not the ledger's: ops may still write one.
        s.execute(text("UPDATE finance.guest_payments SET error = 'disputed by the guest'"))
        s.commit()
    after = payment_row(engine, pay)
    assert {k: v for k, v in after.items() if k not in ("error", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("error", "updated_at")
    }


def test_the_database_refuses_a_zero_or_duplicate_payment(session, stay):
    _, rid = stay
    guest_payment(session, rid, "10.00", dt.datetime(2026, 3, 1, tzinfo=UTC), "dup")
    session.commit()
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        guest_payment(session, rid, "10.00", dt.datetime(2026, 3, 1, tzinfo=UTC), "dup")
    session.rollback()
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        guest_payment(session, rid, "0", dt.datetime(2026, 3, 1, tzinfo=UTC))
    session.rollback()


@pytest.mark.parametrize(
    ("payload", "message"),
    [({"batch": 5}, "batch"), ({"as_of": "yesterday"}, "as_of")],
)
def test_a_bad_payload_is_dead_lettered(engine, celery_app, payload, message):
    result = celery_app.tasks["finance.post_payments"].apply(kwargs=payload)

    assert result.failed() and message in str(result.result)
    with engine.connect() as conn:
        dead = conn.execute(
            text("SELECT payload, error_kind FROM ops.dead_letters WHERE task_name = :t"),
            {"t": "finance.post_payments"},
        ).one()
    assert dead.payload == payload and dead.error_kind == "validation"
