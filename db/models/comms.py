"""Schema comms: the notification outbox (SPEC 4 "Communications outbox").

Jobs write messages here in the same transaction as the change they report; delivering them
is another service's work, which moves them from 'queued' to 'sent' or 'failed'. dedupe_key
makes "notify once" an INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, however many sweeps
or retries see the same event.

No business ID: messages are found by what they relate to, not quoted by people.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, created_at, updated_at, uuid_pk

MESSAGE_CHANNELS = ("email", "sms", "slack", "webhook")
MESSAGE_STATUSES = ("queued", "sent", "failed")


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
    error: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
