"""Data sets that fill an empty, migrated database: `demo` (small, hand-shaped, for people and
the integration tests) and `bench` (bulk, COPY-loaded, for the benchmarks).

Both generate primary keys client-side as UUIDv7, so a child row can name its parent without a
round trip, and both leave business IDs (`TKT-010001`, ...) to the column defaults, so the
sequences stay the one source of those numbers.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "LINEN_TYPES",
    "LinenTypeSpec",
    "SeedError",
    "Uuid7",
    "add_months",
    "month_anchor",
]


class SeedError(RuntimeError):
    """A data set cannot be loaded as asked (e.g. the database already holds data)."""


class Uuid7:
    """UUIDv7 factory (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit counter in
    rand_a, variant 0b10, 62 random bits in rand_b.

    The counter (RFC 9562 section 6.2, method 1) makes the ids of one factory strictly
    increasing, so bulk loads append to the primary-key index instead of splitting its pages;
    after 4096 ids the millisecond advances, which only drifts the timestamp by about 0.25 ms
    per thousand ids. The random bits come from a seeded generator, so a data set's ids differ
    between runs only by the time it was loaded.
    """

    def __init__(self, seed: int | str, now: dt.datetime | None = None) -> None:
        self._random_bits = random.Random(f"uuid7:{seed}").getrandbits
        self._ms = int(now.timestamp() * 1000) if now else time.time_ns() // 1_000_000
        self._fixed = self._fixed_bits()
        self._counter = 0

    def _fixed_bits(self) -> int:
        """Timestamp, version and variant: the bits that change only with the millisecond."""
        return (self._ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0b10 << 62

    def next_int(self) -> int:
        if self._counter == 4096:
            self._ms += 1
            self._fixed = self._fixed_bits()
            self._counter = 0
        value = self._fixed | self._counter << 64 | self._random_bits(62)
        self._counter += 1
        return value

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.next_int())

    def hex(self) -> str:
        """The id as 32 hex digits: PostgreSQL's uuid input accepts it, and it is about three
        times cheaper to make and to COPY than a uuid.UUID, which matters at millions of rows."""
        return f"{self.next_int():032x}"


def month_anchor(today: dt.date) -> dt.date:
    """The first day of today's month: the fixed point both data sets place their dates around,
    so a data set loaded twice in one month is the same data set."""
    return today.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months; only used on first-of-month dates, so no day overflows."""
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


@dataclass(frozen=True)
class LinenTypeSpec:
    """One linen type both data sets load; type_code is the key of the counts/deliveries jsonb."""

    type_code: str
    type_name: str
    category: str
    size: str
    standard_cost: Decimal


LINEN_TYPES: tuple[LinenTypeSpec, ...] = (
    LinenTypeSpec("BATH_TOWEL", "Bath towel", "towels", "30x56", Decimal("12.50")),
    LinenTypeSpec("HAND_TOWEL", "Hand towel", "towels", "16x30", Decimal("6.75")),
    LinenTypeSpec("WASHCLOTH", "Washcloth", "towels", "13x13", Decimal("2.90")),
    LinenTypeSpec("SHEET_SET_KING", "Sheet set, king", "sheets", "king", Decimal("64.00")),
    LinenTypeSpec("SHEET_SET_QUEEN", "Sheet set, queen", "sheets", "queen", Decimal("54.00")),
    LinenTypeSpec("PILLOW_CASE", "Pillow case", "pillows", "standard", Decimal("7.25")),
)
