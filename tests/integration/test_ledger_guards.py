"""The database itself keeps the ledger honest: balanced transactions, immutable posted lines."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from sqlalchemy import text


def _account(session, code: str):
    return session.execute(
        text("SELECT id FROM finance.accounts WHERE code = :c"), {"c": code}
    ).scalar_one()


def _post(session, lines: list[tuple[str, str, str]]):
    txn = session.execute(
        text(
            "INSERT INTO finance.transactions (txn_date, description) VALUES (CURRENT_DATE, 't')"
            " RETURNING id"
        )
    ).scalar_one()
    for code, debit, credit in lines:
        session.execute(
            text(
                "INSERT INTO finance.transaction_lines (transaction_id, account_id, debit, credit)"
                " VALUES (:t, :a, :d, :c)"
            ),
            {"t": txn, "a": _account(session, code), "d": debit, "c": credit},
        )
    return txn


def test_an_unbalanced_transaction_is_refused_at_commit(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        _post(session, [("1010", "100.00", "0"), ("2000", "0", "99.99")])
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="does not balance"):
            session.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM finance.transaction_lines")).scalar() == 0


def test_a_balanced_transaction_commits(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        _post(session, [("1010", "100.00", "0"), ("2000", "0", "85.00"), ("4000", "0", "15.00")])
        session.commit()
    with engine.connect() as conn:
        debit, credit = conn.execute(
            text("SELECT sum(debit), sum(credit) FROM finance.transaction_lines")
        ).one()
    assert debit == credit == 100


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE finance.transaction_lines SET memo = 'edited'",
        "UPDATE finance.transaction_lines SET debit = debit + 1 WHERE debit > 0",
        "DELETE FROM finance.transaction_lines",
        "DELETE FROM finance.transactions",
        "UPDATE finance.transactions SET description = 'edited'",
    ],
)
def test_posted_lines_and_transactions_cannot_change(engine, statement):
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        _post(session, [("1010", "50.00", "0"), ("2000", "0", "50.00")])
        session.commit()
    with Session(engine) as session:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="post a reversing transaction"):
            session.execute(text(statement))
        session.rollback()
    with engine.connect() as conn:
        memo, total = conn.execute(
            text("SELECT max(memo), sum(debit) FROM finance.transaction_lines")
        ).one()
    assert memo is None and total == 50


def test_a_line_must_be_a_debit_or_a_credit_not_both(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            _post(session, [("1010", "10.00", "10.00")])
            session.flush()
        session.rollback()
