"""finance.post_payments: guest payments into the ledger, set-based and exactly once.

The payment service records each payment (or refund: a negative amount) in
finance.guest_payments, keyed by its own `external_ref`. Every five minutes this posts the ones
received by `as_of` that are neither posted nor in error, oldest first, in batches of
BATCH_SIZE, each by three set-based statements (STEPS): one journal entry per payment,
Dr 1010 Trust cash / Cr 2100 Guest rent clearing (reversed for a refund), dated the day it was
received in the property's zone, the clearing line naming the stay so the clearing account is
a ledger per stay that finalize draws from (docs/MONEY.md).

Exactly once: a batch is claimed by the UPDATE that marks each payment with the id of its
journal entry (its row lock holds off any other run until the commit, which then finds it
posted), the journal entry's (reference_type, reference_id) is unique, and the job is a
singleton. A payment naming a reservation we do not know is not posted: it gets `error`
('unknown reservation <id>') and is left alone from then on, never retried by itself; once
the reservation exists (or reservation_id is corrected), clearing `error` puts it back in the
queue. A posted payment never changes (a trigger refuses it): corrections are refunds.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy.orm import Session

from db.session import local_settings
from tasks.finance import queries as q
from tasks.statements.money import GUEST_CLEARING, TRUST_CASH

# Payments per batch: about a second of work at 10,000 (a journal entry and two ledger lines
# each, their foreign-key and balance checks), so the job's transaction and locks stay short
# however far behind it is; a full batch enqueues the next one at once instead of waiting five
# minutes.
BATCH_SIZE = 10_000

# The statements of one batch, in order (queries has what each is for), each with the ANALYZE
# of the temporary table it fills; `timings` of post_payments is keyed by these names.
STEPS = (
    ("claim", q.CLAIM_PAYMENTS, q.ANALYZE_BATCH),
    ("transactions", q.INSERT_PAYMENT_TRANSACTIONS, None),
    ("lines", q.INSERT_PAYMENT_LINES, None),
)


def post_payments(
    session: Session,
    *,
    as_of: dt.datetime,
    batch_size: int | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Post one batch (default BATCH_SIZE) of payments received by `as_of`; returns its counts
    and whether more are waiting (`more`). `timings`, when given, gets each step's seconds."""
    params = {
        "as_of": as_of,
        "batch": batch_size or BATCH_SIZE,
        "trust_cash": TRUST_CASH,
        "clearing": GUEST_CLEARING,
    }
    session.execute(q.DROP_BATCH_TABLE)
    rowcounts: dict[str, int] = {}
    with local_settings(session, **q.PLANNER_SETTINGS):
        for name, statement, analyze in STEPS:
            started = time.perf_counter()
            rowcounts[name] = session.execute(statement, params).rowcount
            if analyze is not None:
                session.execute(analyze)
            if timings is not None:
                timings[name] = time.perf_counter() - started
    row = session.execute(q.BATCH_COUNTS).mappings().one()
    more = row["claimed"] == params["batch"] and bool(
        session.execute(q.MORE_PAYMENTS, {"as_of": as_of}).scalar_one()
    )
    return {
        "posted": row["posted"],
        "refunds": row["refunds"],
        "net_amount": str(row["net_amount"]),
        "errors": row["errors"],
        "ledger_lines": rowcounts["lines"],
        "more": more,
    }
