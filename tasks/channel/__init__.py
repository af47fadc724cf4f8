"""Channel sync (SPEC 6.4): iCal import from Airbnb, Vrbo, Booking.com and generic feeds, and
our own calendar export.

- `channel.sync` (beat, every 5 minutes): claims the connections that are due and enqueues
  `channel.sync_mapping` for each of their active mappings not backing off on its own; also
  queues feed-health notices (no successful sync for 24 hours, for whatever reason).
- `channel.sync_mapping` (fan-out or by hand): imports one feed (tasks.channel.importer). A
  feed that fails is the run's result (a sync_log error and a backoff), not a task failure.
- `channel.export_calendars` (beat, every 15 minutes): rebuilds `channel.calendar_exports`.

The tasks are thin adapters; the work is in fetch (HTTP and the SSRF guard), ical (parsing,
channel rules), importer (writes, overlaps, backoff, health) and export.
"""

from __future__ import annotations

import uuid

from tasks.channel.export import UnknownProperty, export_calendars
from tasks.channel.importer import UnknownConnection, UnknownMapping, import_mapping, plan_sync
from workers.base import JobContext, PayloadError, PeriodicPayload, job


class SyncPayload(PeriodicPayload):
    connection_id: uuid.UUID | None = None


class SyncMappingPayload(PeriodicPayload):
    mapping_id: uuid.UUID


class ExportPayload(PeriodicPayload):
    property_id: uuid.UUID | None = None


@job("channel.sync", payload=SyncPayload, singleton=True)
def sync(ctx: JobContext, payload: SyncPayload) -> dict:
    try:
        result, mapping_ids = plan_sync(
            ctx.session, as_of=ctx.as_of, connection_id=payload.connection_id
        )
    except UnknownConnection as exc:
        raise PayloadError(str(exc)) from None
    # The imports run as of the sweep's as_of only when one was given (tests, replays); in
    # production each runs as of the moment it executes.
    extra = {"as_of": payload.as_of.isoformat()} if payload.as_of else {}
    for mapping_id in mapping_ids:
        ctx.enqueue_after_commit("channel.sync_mapping", mapping_id=str(mapping_id), **extra)
    return result


@job("channel.sync_mapping", payload=SyncMappingPayload)
def sync_mapping(ctx: JobContext, payload: SyncMappingPayload) -> dict:
    try:
        outcome = import_mapping(ctx.session, payload.mapping_id, as_of=ctx.as_of)
    except UnknownMapping as exc:
        raise PayloadError(str(exc)) from None
    # Follow-ups carry the import's as_of only when it was given (see channel.sync).
    extra = {"as_of": payload.as_of.isoformat()} if payload.as_of else {}
    for reservation_id in outcome.reservations_to_sync:
        ctx.enqueue_after_commit(
            "recurring.sync_reservation", reservation_id=str(reservation_id), **extra
        )
    for ticket_id in outcome.tickets_created:
        ctx.enqueue_after_commit("sla.apply", ticket_id=str(ticket_id), **extra)
    return outcome.result


@job("channel.export_calendars", payload=ExportPayload, singleton=True)
def export(ctx: JobContext, payload: ExportPayload) -> dict:
    try:
        return export_calendars(ctx.session, as_of=ctx.as_of, property_id=payload.property_id)
    except UnknownProperty as exc:
        raise PayloadError(str(exc)) from None
