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
import re
import uuid

from pydantic import field_validator
from sqlalchemy import text

from tasks.statements.build import generate_statements
from tasks.statements.finalize import finalize_statement
from tasks.statements.money import parse_period, previous_period
from workers.base import JobContext, Payload, PayloadError, PeriodicPayload, job

# Matched whole (fullmatch), in ASCII digits: `$` would accept "2026-01\n" and `\d` any
# script's digits.
PERIOD_PATTERN = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


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
        if value is not None:
            match = PERIOD_PATTERN.fullmatch(value)
            if not match or not 1900 <= int(match.group(1)) <= 2999:
                raise ValueError("period must be 'YYYY-MM' (e.g. '2026-02')")
        return value


class FinalizePayload(Payload):
    statement_id: uuid.UUID


def _require(ctx: JobContext, sql: str, value: uuid.UUID | None, what: str) -> None:
    if value is not None and not ctx.session.execute(text(sql), {"id": value}).scalar():
        raise PayloadError(f"unknown {what} {value}")


@job("statements.generate", payload=GeneratePayload, singleton=True)
def generate(ctx: JobContext, payload: GeneratePayload) -> dict:
    _require(
        ctx,
        "SELECT EXISTS (SELECT 1 FROM directory.homeowners WHERE id = :id)",
        payload.homeowner_id,
        "homeowner_id",
    )
    _require(
        ctx,
        "SELECT EXISTS (SELECT 1 FROM property.properties WHERE id = :id)",
        payload.property_id,
        "property_id",
    )
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
def finalize(ctx: JobContext, payload: FinalizePayload) -> dict:
    return finalize_statement(ctx.session, payload.statement_id, as_of=ctx.as_of)
