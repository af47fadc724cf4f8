"""Schema property: resorts, properties, rooms, inspections and door codes."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, func, literal_column, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, business_id, check_in, created_at, updated_at, uuid_pk

PROPERTY_STATUSES = ("onboarding", "active", "inactive", "offboarded")
ACCESS_CODE_STATUSES = ("scheduled", "active", "revoked", "expired")
# A code that opens (or will open) the door: the ones that must not collide.
LIVE_CODE_SQL = "status IN ('scheduled', 'active')"
# One hash of (property, code): the exclusion constraint compares it with `=` as a one-point
# int8range, which the core GiST range opclass supports, so no btree_gist is needed (the
# embedded PostgreSQL of `cmw dev` ships without contrib). A hash collision between two
# different codes can only make the planner draw another code, never let two equal codes
# overlap.
CODE_KEY_SQL = "hashtextextended(property_id::text || ':' || code, 0)"


class Resort(Base):
    __tablename__ = "resorts"
    __table_args__ = {"schema": "property"}

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    timezone: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Property(Base):
    __tablename__ = "properties"
    __table_args__ = (
        check_in("status", PROPERTY_STATUSES),
        Index("ix_properties_resort_id", "resort_id"),
        {"schema": "property"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    property_code: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    resort_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("property.resorts.id", ondelete="SET NULL")
    )
    # IANA zone: every local date and wall-clock time of the property is read in it.
    timezone: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="active")
    bedrooms: Mapped[int | None]
    # Local check-in / check-out times; null: the defaults in settings (CMW_CHECK_IN_TIME,
    # CMW_CHECK_OUT_TIME). Journey messages without a local_time and door codes use them.
    check_in_time: Mapped[dt.time | None]
    check_out_time: Mapped[dt.time | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Room(Base):
    __tablename__ = "rooms"
    __table_args__ = (Index("ix_rooms_property_id", "property_id"), {"schema": "property"})

    id: Mapped[uuid.UUID] = uuid_pk()
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    name: Mapped[str]
    room_type: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Inspection(Base):
    __tablename__ = "inspections"
    __table_args__ = (Index("ix_inspections_property_id", "property_id"), {"schema": "property"})

    id: Mapped[uuid.UUID] = uuid_pk()
    inspection_number: Mapped[str] = business_id(
        "property", "inspections", "inspection_number", "INSP"
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    inspected_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(server_default="scheduled")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class AccessCode(Base):
    """A stay's door code (SPEC 7.6): valid from a set time before check-in to a set time after
    check-out. `scheduled` until valid_from, `active` until valid_until, then `expired`;
    `revoked` when the stay is cancelled. `version` counts the code's changes: each one sends
    the lock service one command (comms.messages, related_type 'access_code')."""

    __tablename__ = "access_codes"
    __table_args__ = (
        check_in("status", ACCESS_CODE_STATUSES),
        CheckConstraint("valid_until > valid_from", name="window_ordered"),
        CheckConstraint("code ~ '^[0-9]{4,10}$'", name="code_digits"),
        # Unique per property among the codes valid at the same time (see CODE_KEY_SQL).
        ExcludeConstraint(
            (func.int8range(literal_column(CODE_KEY_SQL), literal_column(CODE_KEY_SQL), "[]"), "="),
            (func.tstzrange(literal_column("valid_from"), literal_column("valid_until")), "&&"),
            name="access_codes_no_overlap",
            using="gist",
            where=text(LIVE_CODE_SQL),
        ),
        # A stay has one code that is not revoked (a stay confirmed again gets a new one).
        Index(
            "uq_access_codes_reservation_id",
            "reservation_id",
            unique=True,
            postgresql_where=text("status <> 'revoked'"),
        ),
        # release_due's sweeps: codes to activate, codes to expire.
        Index(
            "ix_access_codes_scheduled_valid_from",
            "valid_from",
            postgresql_where=text("status = 'scheduled'"),
        ),
        Index(
            "ix_access_codes_live_valid_until", "valid_until", postgresql_where=text(LIVE_CODE_SQL)
        ),
        Index("ix_access_codes_property_id", "property_id"),
        {"schema": "property"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.reservations.id", ondelete="CASCADE")
    )
    code: Mapped[str]
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(server_default="scheduled")
    version: Mapped[int] = mapped_column(server_default=text("1"))
    revoked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
