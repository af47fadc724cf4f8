"""The SLA engine (SPEC 6.2): the two tasks, thin adapters over plain functions.

- `sla.apply` (enqueued on ticket create and on priority, type or status change;
  payload `ticket_id`, `as_of?`): tasks.sla.apply.apply_sla;
- `sla.check_breaches` (beat, every minute, singleton; payload `as_of?`):
  tasks.sla.sweep.check_breaches.

The pieces: business_time (pure business-minute arithmetic), policy (which terms a ticket
gets, its deadlines), breaches (the exactly-once breach and warning statements).
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
def apply_task(ctx: JobContext, payload: ApplyPayload) -> dict:
    return apply_sla(ctx.session, payload.ticket_id, as_of=ctx.as_of)


# A singleton: two copies at once would each do half the work and report half; the statements
# are exactly-once without the lock too (tasks.sla.breaches).
@job("sla.check_breaches", payload=CheckBreachesPayload, singleton=True)
def check_breaches_task(ctx: JobContext, payload: CheckBreachesPayload) -> dict:
    return check_breaches(ctx.session, as_of=ctx.as_of)
