"""statements.finalize: lock a draft owner statement, post it to the ledger and deliver it.

In one transaction: the draft becomes final (never to change again: a later correction is a
revision, a new version), one balanced ledger transaction is posted, the payout is scheduled
when there is one, the costs and adjustments it bills are marked so nothing is billed twice,
and the statement is delivered: its PDF stored (finance.owner_statement_documents) and one
email queued to the owner (tasks.statements.deliver). Finalizing a final statement again
changes nothing.

The journal entry (docs/MONEY.md; `money.ledger_postings` computes the same in Python, balanced
by construction) draws each stay's guest money from the clearing account it was received into
(Dr 2100 per stay: the statement's rent, fees and taxes of the stay, less the channel's
commission), so that the clearing nets to zero for every stay that is paid and stated; the
taxes become taxes payable (Cr 2200), the owner's net income owner payable (Cr 2000), and the
manager's part - the guest fees it keeps and what the statement charges the owner
(commission, costs, recurring charges, less credits) - is due to operating (Cr 2300) on the
trust side and due from trust (Dr 1300) against revenue (4020, 4000, 4010, 4030) on the
operating side. The trust lines balance by themselves, so trust cash always equals what is
owed from it. The payout itself moves cash (Dr 2000 / Cr 1010) when the payment service
reports it sent (finance.record_payout); the reserve stays in the owner's payable balance.

A draft is refused as stale — the task fails without retrying and asks for a rebuild — when
the owner's balance moved since it was built (another statement was finalized), when one of its
costs or adjustments was billed on another month's final statement meanwhile, or when its
month was finalized by another version. Statements of one owner and property are finalized one
at a time (an advisory lock), so the balance chain cannot fork.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from tasks.statements import money
from tasks.statements import queries as q
from tasks.statements.deliver import deliver_statement
from workers.base import NotFound, PayloadError

# The payout is sent on this day of the month after the statement's month (or today, when a
# statement is finalized later than that).
PAYOUT_DAY = 10


class StaleStatementError(PayloadError):
    """The draft no longer matches the books: rebuild it (statements.generate) and retry."""


def finalize_statement(
    session: Session, statement_id: uuid.UUID, *, as_of: dt.datetime
) -> dict[str, Any]:
    """Finalize one draft statement (see the module docstring); returns what it did."""
    row = session.execute(q.LOCK_STATEMENT, {"id": statement_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"unknown statement_id {statement_id}")
    number = row["statement_number"]
    if row["status"] == "final":
        return {"statement_number": number, "finalized": 0, "already_final": 1}
    if row["status"] != "draft":
        raise PayloadError(f"statement {number} is {row['status']}: only a draft is finalized")
    owner = {"hid": row["homeowner_id"], "pid": row["property_id"]}
    session.execute(q.LOCK_OWNER_BALANCE, owner)
    _refuse_if_stale(session, row)

    period = f"{row['period_start']:%Y-%m}"
    txn_id, txn_number = session.execute(
        q.INSERT_TRANSACTION,
        {
            "id": statement_id,
            # The statement's month, so the ledger by date follows the months it reports.
            "txn_date": row["period_end"] - dt.timedelta(days=1),
            "description": f"Owner statement {number} v{row['version']}, {period}",
        },
    ).one()
    posted = session.execute(
        q.POST_STATEMENT,
        {
            **owner,
            "id": statement_id,
            "txn": txn_id,
            "income_types": list(money.INCOME_TYPES),
            "charge_types": list(money.REVENUE_ACCOUNT_FOR_LINE),
            "charge_codes": list(money.REVENUE_ACCOUNT_FOR_LINE.values()),
            "clearing": money.GUEST_CLEARING,
            "taxes_payable": money.TAXES_PAYABLE,
            "fee_revenue": money.GUEST_FEE_REVENUE,
            "channel_expense": money.CHANNEL_EXPENSE,
            "payable": money.OWNER_PAYABLE,
            "due_to_operating": money.DUE_TO_OPERATING,
            "due_from_trust": money.DUE_FROM_TRUST,
            "payable_memo": f"Net income, owner statement {number}",
            "manager_memo": f"Manager fees and charges, owner statement {number}",
        },
    ).rowcount
    session.execute(q.MARK_FINAL, {"id": statement_id, "txn": txn_id})

    payout = row["payout_amount"]
    scheduled = 0
    if payout > 0:
        next_month = row["period_end"]
        scheduled_for = max(next_month.replace(day=PAYOUT_DAY), as_of.astimezone(dt.UTC).date())
        scheduled = session.execute(
            q.SCHEDULE_PAYOUT,
            {
                "id": statement_id,
                "hid": row["homeowner_id"],
                "amount": payout,
                "scheduled_for": scheduled_for,
            },  # fmt: skip
        ).rowcount
    costs = session.execute(q.MARK_COSTS, {"id": statement_id}).rowcount
    adjustments = session.execute(q.MARK_ADJUSTMENTS, {"id": statement_id}).rowcount
    delivery = deliver_statement(session, statement_id)
    return {
        "statement_number": number,
        "finalized": 1,
        "transaction": txn_number,
        "ledger_lines": posted,
        "payout": str(payout) if scheduled else None,
        "costs_marked_billed": costs,
        "adjustments_applied": adjustments,
        **delivery,
    }


def _refuse_if_stale(session: Session, row: Any) -> None:
    number = row["statement_number"]
    period = f"{row['period_start']:%Y-%m}"
    rebuild = f"; run statements.generate for {period} again, then finalize the rebuilt draft"
    owner = {"hid": row["homeowner_id"], "pid": row["property_id"]}

    closing = session.execute(q.LAST_CLOSING, owner).scalar_one_or_none() or 0
    if row["opening_balance"] != closing:
        raise StaleStatementError(
            f"statement {number} is stale: it opens at {row['opening_balance']} but the owner's"
            f" balance is now {closing}{rebuild}"
        )
    latest_final = session.execute(
        q.LATEST_FINAL_OF_MONTH, {**owner, "ps": row["period_start"]}
    ).scalar_one_or_none()
    if latest_final != row["supersedes_id"]:
        raise StaleStatementError(
            f"statement {number} is stale: its month has another final version{rebuild}"
        )
    billed = (
        session.execute(q.BILLED_ELSEWHERE, {**owner, "id": row["id"], "ps": row["period_start"]})
        .scalars()
        .all()
    )
    if billed:
        raise StaleStatementError(
            f"statement {number} is stale: already billed on another statement:"
            f" {'; '.join(billed)}{rebuild}"
        )
