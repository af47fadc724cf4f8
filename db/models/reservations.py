"""Schema reservations: guest stays, owner stays and blocks.

Overlapping reservations are stored, never rejected: a double booking is data to act on
(channel sync raises a ticket for it), so there is deliberately no exclusion constraint.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, Computed, ForeignKey, Index, Numeric, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, created_at, updated_at, uuid_pk

SOURCES = ("direct", "airbnb", "vrbo", "booking_com", "ical", "owner")
RESERVATION_TYPES = ("guest", "owner_stay", "block")
STATUSES = ("inquiry", "confirmed", "checked_in", "checked_out", "cancelled")


def _money() -> Mapped[Decimal]:
    return mapped_column(Numeric(12, 2), server_default=text("0"))


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        check_in("source", SOURCES),
        check_in("reservation_type", RESERVATION_TYPES),
        check_in("status", STATUSES),
        CheckConstraint("check_out > check_in", name="dates_ordered"),
        # Occupancy, turnovers and overlaps all ask "which stays of this property cover D".
        Index("ix_reservations_property_dates", "property_id", "check_in", "check_out"),
        Index("ix_reservations_guest_contact_id", "guest_contact_id"),
        Index("ix_reservations_confirmation_code", "confirmation_code"),
        {"schema": "reservations"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    confirmation_code: Mapped[str | None]
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    guest_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("directory.contacts.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(server_default="direct")
    reservation_type: Mapped[str] = mapped_column(server_default="guest")
    status: Mapped[str] = mapped_column(server_default="confirmed")
    check_in: Mapped[dt.date]
    check_out: Mapped[dt.date]
    nights: Mapped[int] = mapped_column(Computed("check_out - check_in", persisted=True))
    booked_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    cancelled_at: Mapped[dt.datetime | None]
    # Accommodation only, excluding fees and taxes.
    gross_rent: Mapped[Decimal] = _money()
    cleaning_fee: Mapped[Decimal] = _money()
    other_fees: Mapped[Decimal] = _money()
    taxes: Mapped[Decimal] = _money()
    channel_commission: Mapped[Decimal] = _money()
    currency: Mapped[str] = mapped_column(server_default="USD")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
