"""The SLA engine (SPEC 6.2): the two task adapters.

- `sla.apply` (enqueued on ticket create and on priority, type or status change;
  payload `ticket_id`, `as_of?`): apply.apply_sla;
- `sla.check_breaches` (beat, every minute, singleton; payload `as_of?`):
  sweep.check_breaches.

The work is in plain functions that take a Session: business_time (pure business-minute
arithmetic), policy (which terms a ticket gets, its deadlines), breaches (the exactly-once
breach and warning statements), apply and sweep; the SQL is in queries.py.
"""

from __future__ import annotations

import uuid

from tasks.sla.apply import apply_sla
from tasks.sla.sweep import check_breaches
from workers.base import JobContext, PeriodicPayload, job


class ApplyPayload(PeriodicPayload):
    ticket_id: uuid.UUID


class CheckBreachesPayload(PeriodicPayload):
    pass


@job("sla.apply", payload=ApplyPayload)
def sla_apply(ctx: JobContext, payload: ApplyPayload) -> dict:
    """(Re)compute one ticket's SLA terms and deadlines; start or stop its pause clock."""
    return apply_sla(ctx.session, payload.ticket_id, as_of=ctx.as_of)


# A singleton: two copies at once would each do half the work and report half; the statements
# are exactly-once without the lock too (tasks.sla.breaches).
@job("sla.check_breaches", payload=CheckBreachesPayload, singleton=True)
def sla_check_breaches(ctx: JobContext, payload: CheckBreachesPayload) -> dict:
    """Give deadlines to tickets that have none; record the breaches and warnings due."""
    return check_breaches(ctx.session, as_of=ctx.as_of)


__all__ = ["sla_apply", "sla_check_breaches"]
