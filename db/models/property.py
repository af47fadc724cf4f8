"""Schema property: resorts, properties, rooms and inspections."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, business_id, check_in, created_at, updated_at, uuid_pk

PROPERTY_STATUSES = ("onboarding", "active", "inactive", "offboarded")


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
