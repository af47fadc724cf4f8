"""Owner statements and the double-entry ledger (SPEC 6.5): the tasks.

- `statements.generate` (beat, the 1st of each month, for the previous month; or by hand for
  one homeowner or property): builds or rebuilds the month's draft statements, set-based
  (tasks.statements.build); with `revise`, a finalized month gets a new version carrying only
  the difference.
- `statements.finalize` (by hand / other services): locks one draft, posts it to the ledger,
  schedules the payout, marks what it billed and delivers the statement: its PDF stored and an
  email queued to the owner (tasks.statements.finalize, tasks.statements.deliver).

The money math is tasks.statements.money; what an owner reads is tasks.statements.render
(`cmw statements render ID --format html|csv|pdf`, tasks.statements.cli).
"""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import field_validator

from tasks.statements.build import generate_statements
from tasks.statements.finalize import finalize_statement
from tasks.statements.money import parse_period, previous_period
from workers.base import JobContext, Payload, PeriodicPayload, job, year_month


class GeneratePayload(PeriodicPayload):
    # 'YYYY-MM'. Omitted (the beat's payload): the calendar month before as_of's month in UTC,
    # so the run on the 1st builds the month that just ended.
    period: str | None = None
    homeowner_id: uuid.UUID | None = None
    property_id: uuid.UUID | None = None
    # A finalized month is left alone unless revise: then a new version carries the difference.
    revise: bool = False

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        return year_month(value, "period")


class FinalizePayload(Payload):
    statement_id: uuid.UUID


@job("statements.generate", payload=GeneratePayload, singleton=True)
def statements_generate(ctx: JobContext, payload: GeneratePayload) -> dict:
    period = payload.period or previous_period(ctx.as_of)
    period_start: dt.date = parse_period(period)[0]
    return generate_statements(
        ctx.session,
        period_start=period_start,
        as_of=ctx.as_of,
        homeowner_id=payload.homeowner_id,
        property_id=payload.property_id,
        revise=payload.revise,
    )


@job("statements.finalize", payload=FinalizePayload)
def statements_finalize(ctx: JobContext, payload: FinalizePayload) -> dict:
    return finalize_statement(ctx.session, payload.statement_id, as_of=ctx.as_of)
