"""Channel sync (SPEC 6.4, 7.1): iCal import from Airbnb, Vrbo, Booking.com and generic feeds,
and our own calendar export.

- `channel.sync` (beat, every 5 minutes): claims the connections that are due, requests an
  import of each of their active mappings not backing off on its own, and enqueues enough
  `channel.sync_mapping` batches to import them; also queues feed-health notices.
- `channel.sync_mapping`: `{"mapping_id": …}` imports one feed (by hand); `{"batch_size": N}`
  (what channel.sync sends) imports up to N requested feeds, many in flight at once. A feed
  that fails is that feed's result (a sync_log error and a backoff), not a task failure.
- `channel.release_held` (`cmw channels release MAPPING_ID`): applies a mapping's held
  cancellations now.
- `channel.export_calendars` (beat, every 15 minutes): rebuilds `channel.calendar_exports`.

The tasks are thin adapters, named after their tasks so that none hides a module of this
package (`tasks.channel.sync` is the import, not the task); the work is in plan (the sweep),
sync (claim, fetch, apply), fetch (HTTP, concurrency and the SSRF guard), ical (parsing,
channel rules), apply (bookings, reservations, held cancellations), overlaps (double-booking
tickets), bookkeeping (sync_log, backoff, notices) and export.
"""

from __future__ import annotations

import math
import uuid

from pydantic import Field, model_validator

from db.settings import get_settings
from tasks.channel.export import export_calendars
from tasks.channel.plan import plan_sync
from tasks.channel.sync import import_mappings, release_held
from workers.base import JobContext, Payload, PeriodicPayload, job

MAX_BATCH = 5000


class SyncPayload(PeriodicPayload):
    connection_id: uuid.UUID | None = None


class SyncMappingPayload(PeriodicPayload):
    """One mapping by id, or a batch of the requested ones (exactly one of the two)."""

    mapping_id: uuid.UUID | None = None
    batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH)

    @model_validator(mode="after")
    def _one_of(self) -> SyncMappingPayload:
        if (self.mapping_id is None) == (self.batch_size is None):
            raise ValueError("give exactly one of mapping_id and batch_size")
        return self


class ReleaseHeldPayload(Payload):
    mapping_id: uuid.UUID


class ExportPayload(PeriodicPayload):
    property_id: uuid.UUID | None = None


@job("channel.sync", payload=SyncPayload, singleton=True)
def channel_sync(ctx: JobContext, payload: SyncPayload) -> dict:
    result, mapping_ids = plan_sync(
        ctx.session, as_of=ctx.as_of, connection_id=payload.connection_id
    )
    batch_size = get_settings().cmw_channel_batch_size
    batches = math.ceil(len(mapping_ids) / batch_size)
    for _ in range(batches):
        ctx.enqueue_after_commit("channel.sync_mapping", batch_size=batch_size)
    return {**result, "batches_enqueued": batches}


@job("channel.sync_mapping", payload=SyncMappingPayload, own_transactions=True)
def channel_sync_mapping(ctx: JobContext, payload: SyncMappingPayload) -> dict:
    batch = import_mappings(ctx, mapping_id=payload.mapping_id, batch_size=payload.batch_size)
    if payload.mapping_id is not None:
        return batch.outcomes[payload.mapping_id].result
    if batch.deferred:
        # Out of time with feeds not started (a slow host): they are still requested; another
        # batch takes them, behind whatever is queued now.
        ctx.enqueue_after_commit("channel.sync_mapping", batch_size=payload.batch_size)
    return batch.summary()


@job("channel.release_held", payload=ReleaseHeldPayload, own_transactions=True)
def channel_release_held(ctx: JobContext, payload: ReleaseHeldPayload) -> dict:
    return release_held(ctx, payload.mapping_id)


@job("channel.export_calendars", payload=ExportPayload, singleton=True)
def channel_export_calendars(ctx: JobContext, payload: ExportPayload) -> dict:
    return export_calendars(ctx.session, as_of=ctx.as_of, property_id=payload.property_id)
