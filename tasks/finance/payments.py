"""finance.post_payments: guest payments into the ledger, set-based and exactly once.

The payment service records each payment (or refund: a negative amount) in
finance.guest_payments, keyed by its own `external_ref`. Every five minutes this posts the ones
received by `as_of` that are neither posted nor in error, oldest first, in batches of
BATCH_SIZE, each in one SQL statement (queries.POST_PAYMENTS): one journal entry per payment,
Dr 1010 Trust cash / Cr 2100 Guest rent clearing (reversed for a refund), dated the day it was
received in the property's zone, the clearing line naming the stay so the clearing account is
a ledger per stay that finalize draws from (docs/MONEY.md).

Exactly once: a payment is claimed with FOR UPDATE SKIP LOCKED and marked with its transaction
in the same statement, the journal entry's (reference_type, reference_id) is unique, and the
job is a singleton. A payment naming a reservation we do not know is not posted: it gets
`error` ('unknown reservation <id>') and is left alone from then on, never retried by itself;
once the reservation exists (or reservation_id is corrected), clearing `error` puts it back in
the queue. A posted payment never changes (a trigger refuses it): corrections are refunds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from tasks.finance.queries import MORE_PAYMENTS, POST_PAYMENTS
from tasks.statements.money import GUEST_CLEARING, TRUST_CASH

# Payments per statement: about a second of work at 10,000 (two ledger lines each, their
# foreign-key and balance checks), so the job's transaction and locks stay short however far
# behind it is; a full batch enqueues the next one at once instead of waiting five minutes.
BATCH_SIZE = 10_000


def post_payments(
    session: Session, *, as_of: dt.datetime, batch_size: int | None = None
) -> dict[str, Any]:
    """Post one batch (default BATCH_SIZE) of payments received by `as_of`; returns its counts
    and whether more are waiting (`more`)."""
    batch_size = batch_size or BATCH_SIZE
    row = (
        session.execute(
            POST_PAYMENTS,
            {
                "as_of": as_of,
                "batch": batch_size,
                "trust_cash": TRUST_CASH,
                "clearing": GUEST_CLEARING,
            },
        )
        .mappings()
        .one()
    )
    more = row["claimed"] == batch_size and bool(
        session.execute(MORE_PAYMENTS, {"as_of": as_of}).scalar_one()
    )
    return {
        "posted": row["posted"],
        "refunds": row["refunds"],
        "net_amount": str(row["net_amount"]),
        "errors": row["errors"],
        "ledger_lines": row["ledger_lines"],
        "more": more,
    }
