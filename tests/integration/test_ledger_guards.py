"""The database itself keeps the ledger honest: balanced transactions, immutable posted lines,
nothing added to a posted transaction, no TRUNCATE of the books (SPEC 7.2)."""

from __future__ import annotations

import psycopg
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


# -- SPEC 7.2: nothing added to a posted transaction, no TRUNCATE of the books ---------------


def _lines(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM finance.transaction_lines")).scalar()


def _add_line(session, txn, code: str, debit: str, credit: str) -> None:
    session.execute(
        text(
            "INSERT INTO finance.transaction_lines (transaction_id, account_id, debit, credit)"
            " VALUES (:t, :a, :d, :c)"
        ),
        {"t": txn, "a": _account(session, code), "d": debit, "c": credit},
    )


def test_a_balanced_pair_cannot_be_added_to_a_posted_transaction(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        txn = _post(session, [("1010", "50.00", "0"), ("2000", "0", "50.00")])
        session.commit()
    with Session(engine) as session:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="is posted: no line can be added"):
            _add_line(session, txn, "1010", "20.00", "0")
            _add_line(session, txn, "2000", "0", "20.00")
        session.rollback()
    assert _lines(engine) == 2


def test_lines_are_added_in_the_transaction_that_writes_them_even_from_a_savepoint(engine):
    """statements.finalize's shape (a ledger transaction and its lines in one database
    transaction) still works, also when the ledger transaction is written in a savepoint."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        with session.begin_nested():
            txn = _post(session, [("1010", "30.00", "0")])
        _add_line(session, txn, "2000", "0", "30.00")
        session.commit()
    assert _lines(engine) == 2


def test_another_session_cannot_add_lines_to_a_transaction_being_written(engine):
    """Session B inserts into the ledger transaction session A is writing: refused (B cannot
    see it, so it is not B's), and A's own lines commit."""
    from sqlalchemy.orm import Session

    with Session(engine) as a, Session(engine) as b:
        txn = _post(a, [("1010", "40.00", "0"), ("2000", "0", "40.00")])
        a.flush()
        with pytest.raises(sqlalchemy.exc.DBAPIError) as refused:
            _add_line(b, txn, "1010", "5.00", "0")
            _add_line(b, txn, "2000", "0", "5.00")
            b.commit()
        assert isinstance(
            refused.value.orig,
            psycopg.errors.ForeignKeyViolation | psycopg.errors.RestrictViolation,
        )
        b.rollback()
        a.commit()
    assert _lines(engine) == 2


@pytest.mark.parametrize(
    "table",
    [
        "finance.transactions",
        "finance.transaction_lines",
        "finance.owner_statements",
        "finance.owner_statement_lines",
    ],
)
def test_the_books_cannot_be_truncated(engine, table):
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        _post(session, [("1010", "10.00", "0"), ("2000", "0", "10.00")])
        session.commit()
    with engine.connect() as conn:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="cannot be truncated"):
            conn.execute(text(f"TRUNCATE {table} CASCADE"))
        conn.rollback()
    assert _lines(engine) == 2
