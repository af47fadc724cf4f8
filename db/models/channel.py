"""Schema channel: channel connections, their listing mappings, the bookings imported from
their iCal feeds, the sync log and our own calendar exports (SPEC 4 "Channel", 6.4).

No business IDs: nothing here is quoted by people; ids and external UIDs suffice.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, created_at, updated_at, uuid_pk

CHANNELS = ("airbnb", "vrbo", "booking_com", "ical", "custom_api")
CONNECTION_STATUSES = ("active", "paused", "error")
BOOKING_KINDS = ("reservation", "block")
BOOKING_STATUSES = ("active", "cancelled")
# held: the run applied its feed but held back the cancellations of a feed that suddenly
# emptied or shrank (SPEC 7.1).
SYNC_STATUSES = ("ok", "not_modified", "error", "held")

# 64 hex characters (244 random bits) from gen_random_uuid(), core since PostgreSQL 13, so
# the token needs no pgcrypto.
EXPORT_TOKEN_DEFAULT = "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"


class ChannelConnection(Base):
    """One account at a channel. Backoff keeps a failing connection 'active' with a later
    next_sync_at; 'paused' (by hand) and 'error' (cannot run until someone fixes it, e.g. a
    missing secret) are not synced.

    next_sync_at is the connection's round (claimed by channel.sync, one interval ahead). The
    failure columns aggregate its active mappings: the connection is failing, and backs off as
    a whole, when every one of them is failing; one bad listing backs off on its own."""

    __tablename__ = "channel_connections"
    __table_args__ = (
        check_in("channel", CHANNELS),
        check_in("status", CONNECTION_STATUSES),
        CheckConstraint("sync_interval_minutes > 0", name="sync_interval_positive"),
        CheckConstraint("consecutive_failures >= 0", name="consecutive_failures_nonnegative"),
        # channel.sync (every 5 min): the active connections that are due.
        Index(
            "ix_channel_connections_next_sync_at_active",
            "next_sync_at",
            postgresql_where=text("status = 'active'"),
        ),
        {"schema": "channel"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    channel: Mapped[str]
    name: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="active")
    sync_interval_minutes: Mapped[int] = mapped_column(server_default=text("15"))
    # NULL: due now (a new connection syncs on the next sweep).
    next_sync_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(server_default=text("0"))
    # Start of the current run of failures (NULL when the last sync succeeded): after 24 hours
    # of failure one ops notification is queued, even for a connection that never succeeded.
    failing_since: Mapped[dt.datetime | None]
    last_error: Mapped[str | None]
    # No secrets: a secret is named here and read from the environment.
    settings: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class ChannelMapping(Base):
    """One listing of a connection mapped to one of our properties (import and export).

    Feed health is kept per mapping (revision 0005): one listing whose feed fails (a deleted
    listing answering 404) backs off on its own instead of slowing every listing of its
    connection; the connection's own columns aggregate its mappings (see tasks.channel).
    """

    __tablename__ = "channel_mappings"
    __table_args__ = (
        CheckConstraint("consecutive_failures >= 0", name="consecutive_failures_nonnegative"),
        Index("ix_channel_mappings_connection_id", "connection_id"),
        Index("ix_channel_mappings_property_id", "property_id"),
        # The batches of channel.sync_mapping claim from the mappings a sweep requested.
        Index(
            "ix_channel_mappings_sync_requested_at",
            "sync_requested_at",
            postgresql_where=text("sync_requested_at IS NOT NULL"),
        ),
        {"schema": "channel"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channel.channel_connections.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    external_listing_id: Mapped[str | None]
    # The channel's iCal feed; NULL for an export-only mapping.
    import_url: Mapped[str | None]
    # Unguessable: it is the only credential of our public export URL.
    export_token: Mapped[str] = mapped_column(
        unique=True, server_default=text(EXPORT_TOKEN_DEFAULT)
    )
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    # Validators of the last 200 response, sent back as If-None-Match / If-Modified-Since.
    # last_modified is the header's exact text: servers compare it as a string.
    last_etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    # The last successful sync (a 200 imported, or a 304 / unchanged body): feed health is
    # "no successful sync for 24 hours".
    last_synced_at: Mapped[dt.datetime | None]
    # The last sync that created, changed or cancelled a booking (`cmw channels`).
    last_changed_at: Mapped[dt.datetime | None]
    # Hash of the last body imported and the settings that shape its parsing: a feed without
    # validators that answers the same bytes again is a cheap not_modified run.
    last_feed_hash: Mapped[str | None]
    # This mapping's own backoff: NULL follows its connection's schedule; after a failure, the
    # earliest time it is synced again (doubling, at most 6 hours, Retry-After honoured).
    next_sync_at: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(server_default=text("0"))
    # Start of the current run of failures, NULL once a sync succeeds.
    failing_since: Mapped[dt.datetime | None]
    last_error: Mapped[str | None]
    # Revision 0009 (SPEC 7.1). Set by channel.sync when the mapping is due; cleared when an
    # import of it ends: what the next channel.sync_mapping batch claims from.
    sync_requested_at: Mapped[dt.datetime | None]
    # The import that is fetching this mapping (its task id) and until when the claim holds:
    # a claim is taken in a short transaction before the fetch, so no transaction is open while
    # the feed is awaited; a claim whose worker died lapses at claimed_until.
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[dt.datetime | None]
    # Start of the current held-cancellations episode (a feed that suddenly emptied), NULL when
    # nothing is held: keys the episode's one notification.
    hold_started_at: Mapped[dt.datetime | None]
    # The mapping's newest sync_log row: unchanged runs fold into it; ops.purge keeps it.
    last_sync_log_id: Mapped[uuid.UUID | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class ChannelBooking(Base):
    """One VEVENT of a mapping's feed, by UID; the reservation it became, if any."""

    __tablename__ = "channel_bookings"
    __table_args__ = (
        check_in("kind", BOOKING_KINDS),
        check_in("status", BOOKING_STATUSES),
        UniqueConstraint("mapping_id", "external_uid", name="uq_channel_bookings_mapping_uid"),
        Index("ix_channel_bookings_reservation_id", "reservation_id"),
        # The import's cancellation and overlap steps: a mapping's live, not yet ended events
        # (its history of cancelled and past ones grows without bound).
        Index(
            "ix_channel_bookings_mapping_id_end_date_active",
            "mapping_id",
            "end_date",
            postgresql_where=text("status = 'active'"),
        ),
        # The held cancellations of a mapping (few, and only during an episode).
        Index(
            "ix_channel_bookings_mapping_id_held",
            "mapping_id",
            postgresql_where=text("held_since IS NOT NULL"),
        ),
        {"schema": "channel"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    mapping_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channel.channel_mappings.id", ondelete="CASCADE")
    )
    external_uid: Mapped[str]
    kind: Mapped[str]
    # Date-only DTSTART/DTEND: check-in and check-out (exclusive) dates.
    start_date: Mapped[dt.date]
    end_date: Mapped[dt.date]
    summary: Mapped[str | None]
    description: Mapped[str | None]
    # Hash of the event's meaningful fields: an unchanged event is not rewritten.
    payload_hash: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default="active")
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.reservations.id", ondelete="SET NULL")
    )
    first_seen_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    last_seen_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    cancelled_at: Mapped[dt.datetime | None]
    # Missing from the feed since, while its cancellation is held (SPEC 7.1); NULL otherwise.
    held_since: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class SyncLog(Base):
    """One row per sync run; counts are of channel_bookings rows. Consecutive runs that changed
    nothing fold into one row (`runs` counts them, `last_started_at` / `finished_at` are the
    last one's), so an unchanged feed adds no row per run (SPEC 7.1)."""

    __tablename__ = "sync_log"
    __table_args__ = (
        check_in("status", SYNC_STATUSES),
        Index("ix_sync_log_connection_id_started_at", "connection_id", "started_at"),
        Index("ix_sync_log_mapping_id_started_at", "mapping_id", "started_at"),
        # ops.purge trims by the time a row was last written.
        Index("ix_sync_log_finished_at", "finished_at"),
        {"schema": "channel"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channel.channel_connections.id", ondelete="CASCADE")
    )
    # NULL for a run that failed before reaching a mapping.
    mapping_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channel.channel_mappings.id", ondelete="CASCADE")
    )
    started_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    finished_at: Mapped[dt.datetime | None]
    # Written when the run ends, so it always has an outcome.
    status: Mapped[str]
    http_status: Mapped[int | None]
    events_seen: Mapped[int] = mapped_column(server_default=text("0"))
    created: Mapped[int] = mapped_column(server_default=text("0"))
    updated: Mapped[int] = mapped_column(server_default=text("0"))
    cancelled: Mapped[int] = mapped_column(server_default=text("0"))
    conflicts: Mapped[int] = mapped_column(server_default=text("0"))
    error: Mapped[str | None]
    # Revision 0009 (SPEC 7.1): cancellations held back, events rejected by the hostile-feed
    # bounds, and how many runs this row stands for.
    held: Mapped[int] = mapped_column(server_default=text("0"))
    rejected: Mapped[int] = mapped_column(server_default=text("0"))
    runs: Mapped[int] = mapped_column(server_default=text("1"))
    last_started_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()


class OverlapPair(Base):
    """A pair of overlapping live stays, recorded when first found, whether or not it got its
    own ticket: one import raises at most ten double-booking tickets for one property (SPEC
    7.1), and a recorded pair is never raised again. `lo` < `hi` (reservation ids)."""

    __tablename__ = "overlap_pairs"
    __table_args__ = (
        UniqueConstraint("lo", "hi", name="uq_overlap_pairs_lo_hi"),
        CheckConstraint("lo < hi", name="ordered"),
        Index("ix_overlap_pairs_property_id", "property_id"),
        {"schema": "channel"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # Reservation ids, not foreign keys: the record outlives a reservation deleted elsewhere.
    lo: Mapped[uuid.UUID]
    hi: Mapped[uuid.UUID]
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    # The import that found it (NULL once that mapping is gone) and its own ticket, if any.
    mapping_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channel.channel_mappings.id", ondelete="SET NULL")
    )
    ticket_id: Mapped[uuid.UUID | None]
    found_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = created_at()


class CalendarExport(Base):
    """The current iCal calendar of one property, rebuilt by channel.export_calendars."""

    __tablename__ = "calendar_exports"
    __table_args__ = {"schema": "channel"}

    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE"), primary_key=True
    )
    ics: Mapped[str]
    # Hash of ics, served as the HTTP ETag; unchanged content keeps its etag.
    etag: Mapped[str]
    generated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
