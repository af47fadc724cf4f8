"""Reading the ledger back in tests: balances by account, per stay and per transaction, and the
checks every money test repeats (each transaction balances, and so do its trust lines)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tasks.statements.money import TRUST_ACCOUNTS
from tests.support import factories as f
from tests.support.runs import one_row

D = Decimal


def balance(engine: Engine, code: str, *, upto: dt.date | None = None, **where) -> Decimal:
    """Debits - credits on account `code` (by transaction date up to `upto`), optionally for
    one reservation_id / homeowner_id / property_id."""
    filters = "".join(f" AND l.{column} = :{column}" for column in where)
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT coalesce(sum(l.debit - l.credit), 0) FROM finance.transaction_lines l"
                " JOIN finance.transactions t ON t.id = l.transaction_id"
                " JOIN finance.accounts a ON a.id = l.account_id"
                " WHERE a.code = :code AND (CAST(:upto AS date) IS NULL OR t.txn_date <= :upto)"
                + filters
            ),
            {"code": code, "upto": upto, **where},
        ).scalar_one()


def lines_of_transaction(engine: Engine, transaction_id) -> list[tuple]:
    """(code, debit, credit, reservation_id, homeowner_id, property_id), sorted."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.code, l.debit, l.credit, l.reservation_id, l.homeowner_id,"
                " l.property_id FROM finance.transaction_lines l"
                " JOIN finance.accounts a ON a.id = l.account_id WHERE l.transaction_id = :t"
            ),
            {"t": transaction_id},
        ).all()
    return sorted((tuple(r) for r in rows), key=str)


def assert_every_transaction_balances(engine: Engine) -> None:
    """Every journal entry balances, and so do its lines on the trust accounts by themselves
    (which is what keeps trust cash equal to what is owed from it)."""
    with engine.connect() as conn:
        unbalanced = conn.execute(
            text(
                "SELECT l.transaction_id,"
                " sum(l.debit - l.credit) AS all_lines,"
                " sum(l.debit - l.credit) FILTER (WHERE a.code = ANY (:trust)) AS trust_lines"
                " FROM finance.transaction_lines l"
                " JOIN finance.accounts a ON a.id = l.account_id"
                " GROUP BY l.transaction_id"
                " HAVING sum(l.debit - l.credit) <> 0"
                " OR coalesce(sum(l.debit - l.credit) FILTER (WHERE a.code = ANY (:trust)), 0)"
                " <> 0"
            ),
            {"trust": list(TRUST_ACCOUNTS)},
        ).all()
    assert unbalanced == []


def guest_payment(
    session,
    reservation_id: uuid.UUID,
    amount: str | Decimal,
    received_at: dt.datetime,
    ref: str | None = None,
) -> uuid.UUID:
    return f.insert(
        session,
        "finance.guest_payments",
        reservation_id=reservation_id,
        amount=Decimal(amount),
        received_at=received_at,
        external_ref=ref or f"pay_{uuid.uuid4().hex[:12]}",
    ).id


def payment_row(engine: Engine, payment_id) -> dict:
    return one_row(engine, "SELECT * FROM finance.guest_payments WHERE id = :id", id=payment_id)
