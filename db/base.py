"""The one declarative Base and the column helpers every model uses.

Conventions (SPEC section 3):
- primary keys are UUIDv7 from the SQL function ops.uuid_generate_v7(), so rows that other
  services insert get v7 keys too;
- business IDs ("LNPO-010001") come from one sequence per table, starting at 10001, and are the
  column's server default so an insert may omit them; the sequences are created by the
  migrations and listed in BUSINESS_IDS;
- status and kind columns are text with a CHECK (no Postgres enums);
- created_at everywhere, updated_at where rows change (kept current by a trigger, so updates
  made by other services count too).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import CheckConstraint, MetaData, Numeric, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every Postgres schema the project owns, in creation order. Alembic sees only these.
SCHEMAS = (
    "ops",
    "ref",
    "directory",
    "team",
    "property",
    "reservations",
    "service",
    "inventory",
    "channel",
    "finance",
    "comms",
    "analytics",
)


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's filter: only our schemas, never public or another service's schema."""
    if type_ == "schema":
        return name in SCHEMAS
    return True


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        dt.datetime: TIMESTAMP(timezone=True),
        Decimal: Numeric(12, 2),
        dict: JSONB,
        str: Text(),
    }


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("ops.uuid_generate_v7()")
    )


def created_at() -> Mapped[dt.datetime]:
    return mapped_column(TIMESTAMP(timezone=True), nullable=False, server_default=text("now()"))


def updated_at() -> Mapped[dt.datetime]:
    return mapped_column(TIMESTAMP(timezone=True), nullable=False, server_default=text("now()"))


@dataclass(frozen=True)
class BusinessId:
    """One business-ID column: '<prefix>-' + the zero-padded next value of its own sequence."""

    schema: str
    table: str
    column: str
    prefix: str
    width: int = 6
    start: int = 10001

    @property
    def sequence(self) -> str:
        return f"{self.schema}.{self.table}_{self.column}_seq"

    @property
    def default_sql(self) -> str:
        # Zero-padded to `width` digits but never cut: lpad() would truncate 1000000 to 100000.
        return (
            f"'{self.prefix}-' || regexp_replace(to_char(nextval('{self.sequence}'),"
            f" 'FM0000000000000000000'), '^0{{0,{19 - self.width}}}', '')"
        )


BUSINESS_IDS: list[BusinessId] = []


def business_id(
    schema: str, table: str, column: str, prefix: str, width: int = 6, start: int = 10001
) -> Mapped[str]:
    """A NOT NULL UNIQUE text business ID defaulting to the next value of its sequence."""
    bid = BusinessId(schema, table, column, prefix, width, start)
    BUSINESS_IDS.append(bid)
    return mapped_column(nullable=False, unique=True, server_default=text(bid.default_sql))


def check_in(
    column: str, values: tuple[str, ...] | list[str], name: str | None = None
) -> CheckConstraint:
    """CHECK (column IN (...)) named after the column, the project's stand-in for enums."""
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or f"{column}_allowed")


def money(precision: int = 12, scale: int = 2) -> Numeric:
    return Numeric(precision, scale, asdecimal=True)
