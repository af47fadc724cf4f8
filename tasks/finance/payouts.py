"""finance.record_payout: the payment service reports a payout sent or failed.

Payouts are scheduled by statements.finalize (finance.owner_payouts, `pending`); sending the
money is the payment service's work, which reports the outcome by enqueueing
`finance.record_payout` with `{"payout_id": …, "status": "sent" | "failed", "reference": …,
"reason": …, "as_of": when it happened}`.

- pending or failed -> sent: the cash leaves the trust account, one journal entry
  Dr 2000 Owner payable / Cr 1010 Trust cash for the owner and property, dated the day it was
  sent in the property's zone (reference 'owner_payout', posted once); `sent_at`, `reference`
  and `transaction_id` are recorded. A failed payout sent again later is the usual retry.
- pending -> failed: `failed_at` and `failure_reason`; no money moved, nothing is posted, and
  the owner's balance still holds the amount.
- the same report again (sent with the same or no reference, failed again) changes nothing;
- anything else is refused as a payload error (dead letter, no retry): sent -> failed (a
  transfer that came back is a new receipt for ops to book, not a failure), sent again with a
  different reference (a second transfer would pay the owner twice), any change to a cancelled
  payout.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from tasks.finance import queries as q
from tasks.statements.money import OWNER_PAYABLE, TRUST_CASH
from workers.base import NotFound, PayloadError


class IllegalPayoutTransition(PayloadError):
    """The report contradicts what the payout already is."""


def record_payout(
    session: Session,
    payout_id: uuid.UUID,
    status: str,
    *,
    at: dt.datetime,
    reference: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Record that payout `payout_id` was sent or failed at `at` (see the module docstring)."""
    payout = session.execute(q.LOCK_PAYOUT, {"id": payout_id}).mappings().one_or_none()
    if payout is None:
        raise NotFound(f"unknown payout_id {payout_id}")
    number, current = payout["payout_number"], payout["status"]
    result: dict[str, Any] = {"payout_number": number, "status": status, "changed": 0}
    if current == status:
        if status == "sent" and reference and payout["reference"] not in (None, reference):
            raise IllegalPayoutTransition(
                f"payout {number} was sent with reference {payout['reference']}; a second"
                f" transfer ({reference}) would pay the owner twice"
            )
        return result
    if current == "cancelled" or (current == "sent" and status == "failed"):
        raise IllegalPayoutTransition(
            f"payout {number} is {current}: it cannot become {status}"
            + (
                "; a transfer that came back is a new receipt for ops to book"
                if current == "sent"
                else ""
            )
        )
    if status == "failed":
        result["changed"] = session.execute(
            q.MARK_PAYOUT_FAILED,
            {"id": payout_id, "failed_at": at, "reason": reason, "reference": reference},
        ).rowcount
        return result
    description = f"Owner payout {number} sent" + (f", reference {reference}" if reference else "")
    txn = session.execute(
        q.POST_PAYOUT,
        {
            "id": payout_id,
            "sent_at": at,
            "timezone": payout["timezone"],
            "description": description,
            "hid": payout["homeowner_id"],
            "pid": payout["property_id"],
            "amount": payout["amount"],
            "payable": OWNER_PAYABLE,
            "trust_cash": TRUST_CASH,
        },
    ).scalar_one_or_none()
    if txn is None:  # posted already: only a row changed by hand could get here
        raise IllegalPayoutTransition(f"payout {number} already has its ledger entry")
    result["changed"] = session.execute(
        q.MARK_PAYOUT_SENT, {"id": payout_id, "sent_at": at, "reference": reference, "txn": txn}
    ).rowcount
    result["amount"] = str(payout["amount"])
    return result
