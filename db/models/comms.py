"""Schema comms: the notification outbox (SPEC 4 "Communications outbox") and the guest
journeys that schedule messages into it (SPEC 7.6).

Jobs write messages here in the same transaction as the change they report; delivering them
is another service's work, which moves them from 'queued' to 'sent' or 'failed'. dedupe_key
makes "notify once" an INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, however many sweeps
or retries see the same event.

A journey message (related_type 'reservation') starts `scheduled`, with `scheduled_for` the
instant `journeys.release_due` may release it; it is rendered and moved to `queued` then, or
to `cancelled` / `failed` with `status_reason` (and `error`) saying why. The delivery service
only ever reads `queued`, so scheduled and cancelled rows are invisible to it.

No business ID: messages are found by what they relate to, not quoted by people.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, created_at, updated_at, uuid_pk

MESSAGE_CHANNELS = ("email", "sms", "slack", "webhook")
# scheduled and cancelled are journey states (SPEC 7.6); the sender only reads queued.
MESSAGE_STATUSES = ("scheduled", "queued", "sent", "failed", "cancelled")
MESSAGE_ANCHORS = ("booked", "check_in", "check_out")
LATE_POLICIES = ("send_now", "skip")
# reservations.reservations source and reservation_type values, for the rule conditions.
STAY_SOURCES = ("direct", "airbnb", "vrbo", "booking_com", "ical", "owner")
STAY_TYPES = ("guest", "owner_stay", "block")
# release_due's sweep: the scheduled messages by the instant they may go.
SCHEDULED_SQL = "status = 'scheduled'"


def _array_literal(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


class MessageTemplate(Base):
    """A Jinja2 template (rendered in the sandbox) of one channel's message."""

    __tablename__ = "message_templates"
    __table_args__ = (check_in("channel", MESSAGE_CHANNELS), {"schema": "comms"})

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str | None]
    channel: Mapped[str] = mapped_column(server_default="email")
    # Null for channels without one (sms).
    subject: Mapped[str | None]
    body: Mapped[str]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class MessageRule(Base):
    """When a template is sent to a stay's guest: the anchor's local date at local_time (or
    the anchor's own instant) plus offset_minutes of wall-clock time, in the property's zone;
    only to stays that meet the conditions; never inside quiet hours."""

    __tablename__ = "message_rules"
    __table_args__ = (
        check_in("anchor", MESSAGE_ANCHORS),
        check_in("late_policy", LATE_POLICIES),
        CheckConstraint(
            f"channels IS NULL OR channels <@ {_array_literal(STAY_SOURCES)}",
            name="channels_known",
        ),
        CheckConstraint(
            f"reservation_types <@ {_array_literal(STAY_TYPES)}", name="reservation_types_known"
        ),
        CheckConstraint("min_nights IS NULL OR min_nights >= 0", name="min_nights_nonnegative"),
        CheckConstraint(
            "max_nights IS NULL OR min_nights IS NULL OR max_nights >= min_nights",
            name="nights_ordered",
        ),
        # Quiet hours are a window: both ends or neither.
        CheckConstraint("(quiet_start IS NULL) = (quiet_end IS NULL)", name="quiet_both_or_none"),
        Index("ix_message_rules_template_id", "template_id"),
        {"schema": "comms"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("comms.message_templates.id", ondelete="RESTRICT")
    )
    anchor: Mapped[str]
    offset_minutes: Mapped[int] = mapped_column(server_default=text("0"))
    # Null: the anchor's own time (booked_at; the property's check-in / check-out time).
    local_time: Mapped[dt.time | None]
    # Conditions. channels: the stay's source (null = every channel).
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text()))
    reservation_types: Mapped[list[str]] = mapped_column(
        ARRAY(Text()), server_default=text("'{guest}'::text[]")
    )
    min_nights: Mapped[int | None]
    max_nights: Mapped[int | None]
    # Local times in the property's zone; a window may wrap midnight (22:00-08:00).
    quiet_start: Mapped[dt.time | None]
    quiet_end: Mapped[dt.time | None]
    # A stay booked after the message's time: send it at once, or never.
    late_policy: Mapped[str] = mapped_column(server_default="send_now")
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        check_in("channel", MESSAGE_CHANNELS),
        check_in("status", MESSAGE_STATUSES),
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        # The sender drains queued messages oldest first; ops.purge trims old finished ones.
        Index("ix_messages_status_created_at", "status", "created_at"),
        # "The notifications about ticket X".
        Index("ix_messages_related", "related_type", "related_id"),
        # journeys.release_due: the scheduled messages by the instant they may go. Partial, so
        # a sweep with nothing due reads one index page.
        Index(
            "ix_messages_scheduled_for",
            "scheduled_for",
            postgresql_where=text(SCHEDULED_SQL),
        ),
        {"schema": "comms"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    channel: Mapped[str]
    # An address, a phone number, a Slack channel or a URL, as the channel needs.
    recipient: Mapped[str]
    subject: Mapped[str | None]
    body: Mapped[str]
    # 'ticket', 'reservation', 'channel_mapping', 'channel_connection', ... + that row's id.
    related_type: Mapped[str | None]
    related_id: Mapped[uuid.UUID | None]
    # Status changes as the sender works, hence updated_at below.
    status: Mapped[str] = mapped_column(server_default="queued")
    # e.g. 'sla_breached:response:<ticket id>'; required, so every writer says what "the
    # same notification" means.
    dedupe_key: Mapped[str] = mapped_column(unique=True)
    # Delivery bookkeeping, written by the sender.
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    sent_at: Mapped[dt.datetime | None]
    # The sender's delivery error, or why journeys.release_due failed it (a template error).
    error: Mapped[str | None]
    # Journeys (SPEC 7.6): when a scheduled message may be released (quiet hours applied),
    # the rule it comes from, and why the job put it in its status (e.g. 'stay_cancelled',
    # 'late_skipped', 'render_failed'); a person's cancellation has none.
    scheduled_for: Mapped[dt.datetime | None]
    # Not a foreign key on purpose: its per-row check was 0.7 s of planning a month of stays
    # at scale 10 (200,000 messages). A deleted rule's scheduled messages are cancelled by the
    # next plan or sweep ('rule_deleted'); its sent ones keep the id as history.
    message_rule_id: Mapped[uuid.UUID | None]
    status_reason: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
