"""Test data builders: insert rows through the real tables and return their ids.

`insert(session, "schema.table", **values)` is the generic one (it returns the whole row, so
defaults such as business IDs can be asserted); the named builders add the defaults a test
usually does not care about. Every builder flushes, none commits: the test decides.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

import db.models  # noqa: F401
from db.base import Base

_seq = itertools.count(1)


def insert(session: Session, table: str, **values: Any) -> Row:
    t = Base.metadata.tables[table]
    return session.execute(sa_insert(t).values(**values).returning(*t.c)).one()


def resort(
    session: Session, *, name: str | None = None, timezone: str = "America/New_York"
) -> uuid.UUID:
    return insert(
        session, "property.resorts", name=name or f"Resort {next(_seq)}", timezone=timezone
    ).id


def property_(
    session: Session,
    *,
    code: str | None = None,
    name: str | None = None,
    timezone: str = "America/New_York",
    resort_id: uuid.UUID | None = None,
    status: str = "active",
    bedrooms: int = 2,
) -> uuid.UUID:
    n = next(_seq)
    return insert(
        session,
        "property.properties",
        property_code=code or f"P{n:05d}",
        name=name or f"Property {n}",
        timezone=timezone,
        resort_id=resort_id,
        status=status,
        bedrooms=bedrooms,
    ).id


def room(
    session: Session, property_id: uuid.UUID, *, name: str = "Bedroom 1", room_type: str = "bedroom"
) -> uuid.UUID:
    return insert(
        session, "property.rooms", property_id=property_id, name=name, room_type=room_type
    ).id


def contact(
    session: Session,
    *,
    first_name: str = "Ada",
    last_name: str | None = None,
    email: str | None = None,
) -> uuid.UUID:
    n = next(_seq)
    return insert(
        session,
        "directory.contacts",
        first_name=first_name,
        last_name=last_name or f"Guest{n}",
        email=email or f"person{n}@example.com",
    ).id


def company(
    session: Session, *, name: str | None = None, company_type: str = "vendor"
) -> uuid.UUID:
    return insert(
        session,
        "directory.companies",
        name=name or f"Company {next(_seq)}",
        company_type=company_type,
    ).id


def team(session: Session, *, code: str | None = None, name: str | None = None) -> uuid.UUID:
    n = next(_seq)
    return insert(session, "team.teams", code=code or f"T{n}", name=name or f"Team {n}").id


def team_member(
    session: Session, team_id: uuid.UUID | None = None, *, manager_id: uuid.UUID | None = None
) -> uuid.UUID:
    return insert(
        session,
        "team.team_directory",
        contact_id=contact(session),
        team_id=team_id,
        manager_id=manager_id,
    ).id


def homeowner(session: Session, *, statement_email: str | None = None) -> uuid.UUID:
    return insert(
        session,
        "directory.homeowners",
        contact_id=contact(session),
        statement_email=statement_email,
    ).id


def ownership(
    session: Session,
    homeowner_id: uuid.UUID,
    property_id: uuid.UUID,
    *,
    ownership_pct: Decimal | str = "100",
    commission_pct: Decimal | str = "20",
    commission_base: str = "gross_rent",
    revenue_recognition: str = "by_night",
    reserve_amount: Decimal | str = "0",
    start_date: dt.date = dt.date(2020, 1, 1),
    end_date: dt.date | None = None,
    **extra: Any,
) -> uuid.UUID:
    """`extra`: further relationship columns (SPEC 7.5's fee flags and commission terms)."""
    return insert(
        session,
        "directory.homeowner_property_relationship",
        homeowner_id=homeowner_id,
        property_id=property_id,
        ownership_pct=Decimal(ownership_pct),
        commission_pct=Decimal(commission_pct),
        commission_base=commission_base,
        revenue_recognition=revenue_recognition,
        reserve_amount=Decimal(reserve_amount),
        start_date=start_date,
        end_date=end_date,
        **extra,
    ).id


def reservation(
    session: Session,
    property_id: uuid.UUID,
    check_in: dt.date,
    check_out: dt.date,
    *,
    status: str = "confirmed",
    reservation_type: str = "guest",
    source: str = "direct",
    gross_rent: Decimal | str = "1000.00",
    booked_at: dt.datetime | None = None,
    confirmation_code: str | None = None,
    guest_contact_id: uuid.UUID | None = None,
    **extra: Any,
) -> uuid.UUID:
    return insert(
        session,
        "reservations.reservations",
        property_id=property_id,
        check_in=check_in,
        check_out=check_out,
        status=status,
        reservation_type=reservation_type,
        source=source,
        gross_rent=Decimal(gross_rent),
        booked_at=booked_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        confirmation_code=confirmation_code or f"CONF{next(_seq):06d}",
        guest_contact_id=guest_contact_id,
        **extra,
    ).id


def ticket(
    session: Session,
    *,
    ticket_type: str = "PC",
    title: str = "Test ticket",
    priority: str = "normal",
    status: str = "open",
    source: str = "agent",
    **extra: Any,
) -> uuid.UUID:
    return insert(
        session,
        "service.tickets",
        ticket_type=ticket_type,
        title=title,
        priority=priority,
        status=status,
        source=source,
        **extra,
    ).id
