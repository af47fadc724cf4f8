"""Schema directory: people and companies, owners and their properties, vendor assignments."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, check_in, created_at, updated_at, uuid_pk


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_email", "email"), {"schema": "directory"})

    id: Mapped[uuid.UUID] = uuid_pk()
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Company(Base):
    __tablename__ = "companies"
    __table_args__ = {"schema": "directory"}

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    # vendor, linen_service, supplier, management, channel, ... (free text: kinds grow).
    company_type: Mapped[str | None]
    email: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Homeowner(Base):
    __tablename__ = "homeowners"
    __table_args__ = (Index("ix_homeowners_contact_id", "contact_id"), {"schema": "directory"})

    id: Mapped[uuid.UUID] = uuid_pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.contacts.id", ondelete="RESTRICT")
    )
    statement_email: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class HomeownerPropertyRelationship(Base):
    __tablename__ = "homeowner_property_relationship"
    __table_args__ = (
        check_in("commission_base", ("gross_rent", "net_rent")),
        check_in("revenue_recognition", ("by_night", "by_checkout")),
        CheckConstraint("ownership_pct > 0 AND ownership_pct <= 100", name="ownership_pct_range"),
        CheckConstraint(
            "commission_pct >= 0 AND commission_pct <= 100", name="commission_pct_range"
        ),
        CheckConstraint("end_date IS NULL OR end_date > start_date", name="dates_ordered"),
        CheckConstraint("commission_flat_per_stay >= 0", name="flat_fee_nonnegative"),
        CheckConstraint("minimum_monthly_fee >= 0", name="minimum_fee_nonnegative"),
        Index("ix_homeowner_property_relationship_property_id", "property_id"),
        Index("ix_homeowner_property_relationship_homeowner_id", "homeowner_id"),
        {"schema": "directory"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    homeowner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="RESTRICT")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    # The owners of one property sum to 100 (checked by the statements job, which reports it).
    ownership_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), server_default=text("100"))
    commission_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), server_default=text("0"))
    commission_base: Mapped[str] = mapped_column(server_default="gross_rent")
    revenue_recognition: Mapped[str] = mapped_column(server_default="by_night")
    reserve_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), server_default=text("0"))
    start_date: Mapped[dt.date] = mapped_column(server_default=text("CURRENT_DATE"))
    end_date: Mapped[dt.date | None]
    # SPEC 7.5. Whether the stay's cleaning fee / other fees are the owner's (a statement line
    # each, + to the owner) or the manager's (the default); a flat commission per stay on top
    # of commission_pct; the monthly minimum the management fee is raised to in a month with
    # revenue (per relationship: co-owners each carry their part).
    cleaning_fee_to_owner: Mapped[bool] = mapped_column(server_default=text("false"))
    other_fees_to_owner: Mapped[bool] = mapped_column(server_default=text("false"))
    commission_flat_per_stay: Mapped[Decimal] = mapped_column(
        Numeric(12, 2), server_default=text("0")
    )
    minimum_monthly_fee: Mapped[Decimal] = mapped_column(Numeric(12, 2), server_default=text("0"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class VendorAssignment(Base):
    __tablename__ = "vendor_assignments"
    __table_args__ = (
        # The reorder job looks up "the active vendor for this category at this property".
        Index("ix_vendor_assignments_category_property", "service_category", "property_id"),
        Index("ix_vendor_assignments_company_id", "company_id"),
        {"schema": "directory"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("directory.companies.id", ondelete="CASCADE")
    )
    # NULL means every property (company-wide).
    property_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    service_category: Mapped[str]
    priority: Mapped[int] = mapped_column(server_default=text("100"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
