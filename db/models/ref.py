"""Schema ref: reference codes other tables point at. The migrations seed their rows."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class TicketTypeKey(Base):
    __tablename__ = "ticket_type_key"
    __table_args__ = {"schema": "ref"}

    code: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]


class TicketPriorityKey(Base):
    __tablename__ = "ticket_priority_key"
    __table_args__ = {"schema": "ref"}

    code: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    sort_order: Mapped[int]
    # The SLA defaults when no policy matches (SPEC 6.2), in minutes, 24x7.
    response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]


class InventoryItemType(Base):
    __tablename__ = "inventory_item_types"
    __table_args__ = {"schema": "ref"}

    type_code: Mapped[str] = mapped_column(primary_key=True)
    type_name: Mapped[str]
    category: Mapped[str]
    description: Mapped[str | None]
    is_consumable: Mapped[bool] = mapped_column(server_default=text("false"))
    typical_lifespan_months: Mapped[int | None]
    sort_order: Mapped[int | None]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
