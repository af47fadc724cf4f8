"""Money from guest to owner (SPEC 7.5; docs/MONEY.md): the tasks.

- `finance.post_payments` (beat, every 5 minutes): posts the guest payments and refunds the
  payment service recorded to the ledger, once each (tasks.finance.payments);
- `finance.reconcile_trust` (beat, monthly; or by hand with `month`): the three-way
  reconciliation of the trust account at a month end, recorded, a difference notified
  (tasks.finance.reconcile);
- `finance.record_payout` (enqueued by the payment service): a payout sent or failed, the
  cash movement posted when sent (tasks.finance.payouts).

The adapters are named after their tasks, so none hides a module of this package; the work
is in plain functions that take a session and plain values, all their SQL in queries.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field, field_validator

from db.settings import get_settings
from tasks.finance.payments import post_payments
from tasks.finance.payouts import record_payout
from tasks.finance.reconcile import reconcile_trust
from tasks.statements.money import parse_period, previous_period
from workers.base import JobContext, PeriodicPayload, job, year_month


class PostPaymentsPayload(PeriodicPayload):
    pass


class ReconcileTrustPayload(PeriodicPayload):
    # 'YYYY-MM'. Omitted (the beat's payload): the calendar month before as_of's month (UTC).
    month: str | None = None

    @field_validator("month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        return year_month(value, "month")


class RecordPayoutPayload(PeriodicPayload):
    """`as_of`: when the payout was sent or failed (default: when the task runs)."""

    payout_id: uuid.UUID
    status: Literal["sent", "failed"]
    # The bank transfer's reference.
    reference: str | None = Field(default=None, min_length=1, max_length=200)
    # Why it failed, as the bank said.
    reason: str | None = Field(default=None, max_length=2000)


@job("finance.post_payments", payload=PostPaymentsPayload, singleton=True)
def finance_post_payments(ctx: JobContext, payload: PostPaymentsPayload) -> dict:
    result = post_payments(ctx.session, as_of=ctx.as_of)
    if result["more"]:
        # A full batch: the next one at once rather than in five minutes.
        ctx.enqueue_after_commit("finance.post_payments")
    return result


@job("finance.reconcile_trust", payload=ReconcileTrustPayload, singleton=True)
def finance_reconcile_trust(ctx: JobContext, payload: ReconcileTrustPayload) -> dict:
    month = payload.month or previous_period(ctx.as_of)
    return reconcile_trust(
        ctx.session,
        parse_period(month)[0],
        as_of=ctx.as_of,
        ops_recipient=get_settings().cmw_ops_email,
    )


@job("finance.record_payout", payload=RecordPayoutPayload)
def finance_record_payout(ctx: JobContext, payload: RecordPayoutPayload) -> dict:
    return record_payout(
        ctx.session,
        payload.payout_id,
        payload.status,
        at=ctx.as_of,
        reference=payload.reference,
        reason=payload.reason,
    )
