"""Bulk data for the benchmarks, loaded with COPY.

Scale 1 is 1,000 properties (about 3 rooms each), about 100,000 reservations over 24 months
around today and about 150,000 tickets; scale N is N times that. Everything the jobs read at
volume is here: owners and their relationships, six linen types with property-level pars and
one count per property (so `linen.reorder` sees 6 x properties requirements), a linen supplier
for most properties, channel mappings for about half, storage stock, and tickets that are
mostly finished with about 3% still open across every priority.

How it stays fast (scale 10 under three minutes on two cores): rows are produced by generators
and streamed into `COPY ... FROM STDIN`, one table after another, never held in lists; ids are
UUIDv7 made client-side, so a child row names its parent without a round trip; business IDs
are left out of the COPY column lists so their sequences fill them (COPY applies column
defaults to omitted columns); nothing is computed per row in SQL; the loaded tables' foreign
keys are taken off for the load and put back, identical and validated in one pass each, before
the commit (see drop_foreign_keys). It all runs in one transaction with synchronous_commit off
(losing the load to a crash only means loading again), then ANALYZE gives the planner real
statistics before anyone benchmarks a query.

Deterministic for a given scale: one seeded `random.Random` drives every choice; only the ids
(UUIDv7 carry the load time) and dates (placed around the first day of the current month)
move with the calendar.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from db.models.channel import ChannelConnection, ChannelMapping
from db.models.directory import (
    Company,
    Contact,
    Homeowner,
    HomeownerPropertyRelationship,
    VendorAssignment,
)
from db.models.inventory import (
    InventoryItem,
    LinenCount,
    LinenPar,
    LinenType,
    StorageInventory,
    StorageLocation,
)
from db.models.property import Property, Resort, Room
from db.models.reservations import Reservation
from db.models.service import Ticket, TicketCost
from db.models.team import Team, TeamDirectory
from db.urls import libpq_kwargs
from workers.dev.seeds import LINEN_TYPES, SeedError, Uuid7, add_months, month_anchor

UTC = dt.UTC
T = TypeVar("T")
# Made once: building a timedelta costs more than multiplying one, in loops of millions.
ONE_DAY = dt.timedelta(days=1)
ONE_MINUTE = dt.timedelta(minutes=1)
CENT = Decimal("0.01")
PROGRESS_EVERY = 10_000

# Per property (so every volume scales with the property count).
GUESTS_PER_PROPERTY = 40  # ~100 stays per property: a guest comes back now and then
TICKETS_PER_PROPERTY = (100, 200)  # uniform, mean 150
STAFF_PER_SCALE = 20
PROPERTIES_PER_RESORT = 100
# Shares of properties.
LINEN_SUPPLIER_SHARE = 0.92  # the rest exercise linen.reorder's "no supplier" ticket
CHANNEL_MAPPED_SHARE = 0.5
SHORT_OF_LINEN_SHARE = 0.3
SECOND_OWNER_SHARE = 0.15
SHARED_OWNER_SHARE = 0.1  # owned by the owner of the property before it
# Shares of tickets: ~3% unfinished (scale 10: ~50k of 1.5M), the rest resolved, closed or
# cancelled; owner-billable costs on some finished property-care tickets.
OPEN_TICKET_SHARE = 0.033
CANCELLED_TICKET_SHARE = 0.03
RESOLVED_TICKET_SHARE = 0.25
TICKET_COST_SHARE = 0.02
STORAGE_LOCATIONS = 10
STORAGE_ITEMS = 30

TIMEZONES = (
    "America/New_York",
    "America/Denver",
    "America/Phoenix",  # no DST
    "America/Los_Angeles",
    "Pacific/Honolulu",  # no DST
    "Europe/Lisbon",
    "America/Chicago",
)
FIRST_NAMES = tuple(
    "Ava Liam Noah Emma Mia Lucas Kai Leilani Mateo Sofia Ines Tiago Grace Henry Olivia James "
    "Chloe Daniel Maya Ethan Isla Keanu Nalani Joao Beatriz Rui Hannah Samuel Zoe Owen".split()
)
LAST_NAMES = tuple(
    "Kahananui Silva Santos Ferreira Smith Johnson Nguyen Garcia Miller Davis Kealoha Akana "
    "Costa Pereira Walker Brooks Kim Chen Patel Tanaka".split()
)
TEAMS = (("PC", "Property Care"), ("RSV", "Reservations"), ("FIN", "Finance"),
         ("HK", "Housekeeping"), ("ADM", "Administration"))  # fmt: skip
TEAM_FOR_TICKET_TYPE = {"PC": "PC", "RSV": "RSV", "ACCT": "FIN", "ADM": "ADM"}
INVENTORY_TYPE_CODES = ("SMOK", "CMON", "FEXT", "COFF", "VACU", "DISH", "TWLB", "POOL", "TLET")


def weighted(*pairs: tuple[Any, int]) -> tuple[Any, ...]:
    """A lookup table for weighted draws: picking from it with BenchData.choice is several
    times cheaper than `rng.choices`, which matters in loops of millions."""
    return tuple(value for value, weight in pairs for _ in range(weight))


SOURCES = weighted(("direct", 25), ("airbnb", 40), ("vrbo", 20), ("booking_com", 15))
STAY_KINDS = weighted(("guest", 95), ("owner_stay", 3), ("block", 2))
NIGHTS = tuple(range(2, 11))  # 2-10, mean 6
GAPS = (0, 0, 1, 1, 1, 2, 2, 3)  # mean 1.25 days: ~100 stays per property in 730 days
LEAD_DAYS = (1, 3, 7, 14, 21, 30, 45, 60, 90, 120)
CHANNEL_RATES = {"airbnb": Decimal("0.03"), "vrbo": Decimal("0.08"), "booking_com": Decimal("0.15")}
TAX_RATE = Decimal("0.12")
CODE_PREFIX = {"direct": "CM", "airbnb": "HM", "vrbo": "HA", "booking_com": "BK"}

TICKET_TYPES = weighted(("PC", 50), ("RSV", 25), ("ADM", 10), ("ACCT", 15))
PRIORITIES = weighted(("urgent", 8), ("high", 22), ("normal", 50), ("low", 20))
OPEN_STATUSES = weighted(
    ("open", 30), ("acknowledged", 15), ("in_progress", 25),
    ("pending_guest", 10), ("pending_vendor", 10), ("on_hold", 10),
)  # fmt: skip
TICKET_SOURCES = weighted(("portal", 35), ("agent", 25), ("email", 20), ("system", 12),
                          ("recurring", 8))  # fmt: skip
CATEGORIES = {
    "PC": (("maintenance", "Repair request"), ("plumbing", "Plumbing problem"),
           ("hvac", "AC not cooling"), ("cleaning", "Cleaning issue"), ("pool", "Pool service")),
    "RSV": (("guest_request", "Guest request"), ("modification", "Change of dates"),
            ("complaint", "Guest complaint")),
    "ADM": (("access", "Door code reset"), ("compliance", "Permit renewal")),
    "ACCT": (("statement_question", "Statement question"), ("refund", "Refund request")),
}  # fmt: skip
# Minutes to first response and to resolution (low, high) by priority.
RESPONSE_MINUTES = {"urgent": (3, 30), "high": (15, 120), "normal": (45, 600), "low": (240, 2880)}
RESOLUTION_MINUTES = {"urgent": (60, 480), "high": (240, 2880), "normal": (600, 7200),
                      "low": (1440, 14400)}  # fmt: skip


@dataclass(slots=True)
class BenchProperty:
    """What later tables need to know about a property; kept for every property (10k at
    scale 10), unlike stays and tickets, which are never kept."""

    id: str
    code: str
    bedrooms: int
    status: str
    nightly_rate: int  # whole dollars
    cleaning_fee: Decimal
    owners: list[tuple[str, str]]  # (homeowner id, contact id); first is the main owner
    linen_vendor: str | None = None
    # A few guest stays (id, guest contact id) for tickets to point at.
    stay_sample: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One table's COPY: the columns written (business IDs and defaults left out) and the row
    generator, called only when its turn comes, since it reads what earlier steps made."""

    model: Any
    columns: tuple[str, ...]
    rows: Callable[[], Iterator[tuple[Any, ...]]]
    estimate: int

    @property
    def name(self) -> str:
        return self.model.__table__.fullname


# --------------------------------------------------------------------------------------------
# Entry point


def seed_bench(
    database_url: str,
    scale: int = 1,
    console: Console | None = None,
    *,
    properties_per_scale: int = 1000,
) -> dict[str, int]:
    """Load the benchmark data set into an empty, migrated database; returns rows per table.

    `properties_per_scale` exists for tests (a tiny but proportionate data set). A database
    that already has properties is refused: benchmark figures are only comparable on a data
    set of known size. With `console`, a progress bar per table is drawn on it.
    """
    if scale < 1 or properties_per_scale < 1:
        raise ValueError("scale and properties_per_scale must be at least 1")
    data = BenchData(scale * properties_per_scale, seed=f"cmw-bench:{scale}:{properties_per_scale}")
    steps = data.steps()
    with psycopg.connect(**libpq_kwargs(database_url)) as conn:
        refuse_unless_empty(conn)
        conn.execute("SET LOCAL synchronous_commit = off")
        keys = drop_foreign_keys(conn, [step.model for step in steps])
        with progress_bars(console) as progress:
            tasks = {step.name: progress.add_task(step.name, total=step.estimate) for step in steps}
            counts = {
                step.name: copy_rows(conn, step, progress, tasks[step.name]) for step in steps
            }
            checking = progress.add_task("foreign keys, checked", total=len(keys))
            restore_foreign_keys(conn, keys, lambda: progress.advance(checking))
        conn.commit()
        for step in steps:
            conn.execute(sql.SQL("ANALYZE {}").format(table_identifier(step.model)))
        conn.commit()
    return counts


def refuse_unless_empty(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('cmw.seed_bench'))")
    row = conn.execute("SELECT count(*) FROM property.properties").fetchone()
    if row and row[0]:
        raise SeedError(
            f"property.properties already has {row[0]} rows: seed_bench loads only into an empty,"
            " migrated database (bench/seed_bench.py creates a fresh one)"
        )


@dataclass(frozen=True)
class ForeignKey:
    table: sql.Composable
    name: str
    definition: str  # as pg_get_constraintdef() gives it: FOREIGN KEY (...) REFERENCES ...


def drop_foreign_keys(conn: psycopg.Connection, models: list[Any]) -> list[ForeignKey]:
    """Take the foreign keys off the tables about to be loaded (restore_foreign_keys puts
    them back, identical, before the commit).

    PostgreSQL's own bulk-load advice ("Populating a Database": remove foreign key
    constraints): checked during COPY, every key costs one lookup per row, and a ticket has up
    to seven (measured: 70% of the time it took to load tickets). Added back, each key is
    validated by one join over the whole table. Same names, same definitions, same transaction:
    no other session ever sees the schema without them, and every row is still checked.
    """
    keys = []
    for model in models:
        table = model.__table__
        rows = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid = %s::regclass ORDER BY conname",
            (table.fullname,),
        ).fetchall()
        keys += [ForeignKey(table_identifier(model), name, definition) for name, definition in rows]
    for key in keys:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(key.table, sql.Identifier(key.name))
        )
    return keys


def restore_foreign_keys(
    conn: psycopg.Connection, keys: list[ForeignKey], done: Callable[[], None]
) -> None:
    for key in keys:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                key.table, sql.Identifier(key.name), sql.SQL(key.definition)
            )
        )
        done()


def progress_bars(console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description:<45}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )


def table_identifier(model: Any) -> sql.Identifier:
    return sql.Identifier(model.__table__.schema, model.__table__.name)


def copy_rows(conn: psycopg.Connection, step: Step, progress: Progress, task: Any) -> int:
    """Stream one step's rows through COPY; returns how many were written."""
    unknown = set(step.columns) - set(step.model.__table__.c.keys())
    if unknown:
        raise SeedError(f"{step.name} has no column(s) {sorted(unknown)}")
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table_identifier(step.model), sql.SQL(", ").join(map(sql.Identifier, step.columns))
    )
    written = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in step.rows():
            copy.write_row(row)
            written += 1
            if written % PROGRESS_EVERY == 0:
                progress.update(task, completed=written)
    progress.update(task, completed=written, total=written)
    return written


# --------------------------------------------------------------------------------------------
# The data


class BenchData:
    """The row generators, in foreign-key order, and the little state they share."""

    def __init__(self, properties: int, seed: str) -> None:
        self.n_properties = properties
        self.scale_factor = properties / 1000
        self.rng = random.Random(seed)
        self.random = self.rng.random
        self.now = dt.datetime.now(UTC).replace(microsecond=0)
        self.ids = Uuid7(seed, self.now)
        self.anchor = month_anchor(self.now.date())
        self.start = add_months(self.anchor, -18)
        self.end = add_months(self.anchor, 6)
        self.today = self.now.date()
        self.properties: list[BenchProperty] = []
        self.resort_ids: list[str] = []
        self.team_ids: dict[str, str] = {}
        self.staff: dict[str, list[str]] = {code: [] for code, _ in TEAMS}
        self.staff_contacts: list[str] = []
        self.guests: list[str] = []
        self.linen_companies: list[str] = []
        self.other_companies: dict[str, str] = {}
        self.linen_type_ids: list[str] = []
        self.connection_ids: list[str] = []
        self.location_ids: list[str] = []
        self.item_ids: list[tuple[str, int]] = []  # (id, reorder point)
        self.costs: list[tuple[Any, ...]] = []  # ticket costs, collected while tickets stream

    # rng.choice and rng.randint go through random.randrange, which is pure Python; these go
    # straight to the C random(), about eight times cheaper, and run millions of times.
    def choice(self, options: Sequence[T]) -> T:
        return options[int(self.random() * len(options))]

    def between(self, low: int, high: int) -> int:
        """An int in [low, high], like rng.randint."""
        return low + int(self.random() * (high - low + 1))

    def steps(self) -> list[Step]:
        p = self.n_properties
        n_resorts = max(3, p // PROPERTIES_PER_RESORT)
        n_staff = max(len(TEAMS) * 3, round(STAFF_PER_SCALE * self.scale_factor))
        return [
            Step(Resort, ("id", "name", "timezone"), lambda: self.resorts(n_resorts), n_resorts),
            Step(Property, ("id", "property_code", "name", "resort_id", "timezone", "status",
                            "bedrooms"), self.property_rows, p),
            Step(Room, ("id", "property_id", "name", "room_type"), self.rooms, p * 4),
            Step(Contact, ("id", "first_name", "last_name", "email", "phone"),
                 lambda: self.contacts(n_staff), n_staff + p * (1 + GUESTS_PER_PROPERTY)),
            Step(Company, ("id", "name", "company_type", "email"), self.companies, n_resorts + 4),
            Step(Team, ("id", "code", "name", "notify_email"), self.teams, len(TEAMS)),
            Step(TeamDirectory, ("id", "contact_id", "team_id", "manager_id", "status"),
                 self.team_directory, n_staff),
            Step(Homeowner, ("id", "contact_id", "statement_email"), self.homeowners, p),
            Step(HomeownerPropertyRelationship,
                 ("id", "homeowner_id", "property_id", "ownership_pct", "commission_pct",
                  "commission_base", "revenue_recognition", "reserve_amount", "start_date"),
                 self.relationships, round(p * 1.15)),
            Step(VendorAssignment,
                 ("id", "company_id", "property_id", "service_category", "priority", "is_active"),
                 self.vendor_assignments, p),
            Step(LinenType, ("id", "type_code", "type_name", "category", "size", "standard_cost",
                             "sort_order"), self.linen_types, len(LINEN_TYPES)),
            Step(LinenPar, ("id", "property_id", "linen_type_id", "par_quantity", "min_quantity",
                            "max_quantity"), self.linen_pars, p * len(LINEN_TYPES)),
            Step(LinenCount, ("id", "property_id", "counted_by_id", "count_date", "count_type",
                              "counts", "total_items_counted", "total_discrepancies", "status"),
                 self.linen_counts, p),
            Step(ChannelConnection, ("id", "channel", "name", "status"), self.connections, 3),
            Step(ChannelMapping, ("id", "connection_id", "property_id", "external_listing_id",
                                  "import_url"), self.mappings, p // 2),
            Step(StorageLocation, ("id", "location_code", "location_name", "location_type"),
                 self.storage_locations, STORAGE_LOCATIONS),
            Step(InventoryItem, ("id", "type_code", "supplier_company_id", "item_name", "sku",
                                 "standard_cost", "reorder_point", "reorder_quantity"),
                 self.inventory_items, STORAGE_ITEMS),
            Step(StorageInventory, ("id", "item_id", "location_id", "quantity_on_hand",
                                    "quantity_reserved", "reorder_point", "unit_cost"),
                 self.storage_inventory, STORAGE_LOCATIONS * STORAGE_ITEMS),
            Step(Reservation, RESERVATION_COLUMNS, self.reservations, p * 100),
            Step(Ticket, TICKET_COLUMNS, self.tickets, p * 150),
            Step(TicketCost, ("id", "ticket_id", "property_id", "cost_date", "description",
                              "amount", "billable_to", "markup_pct"),
                 lambda: iter(self.costs), round(p * 150 * 0.35 * TICKET_COST_SHARE)),
        ]  # fmt: skip

    # -- places and people ---------------------------------------------------------------------

    def resorts(self, count: int) -> Iterator[tuple[Any, ...]]:
        for r in range(count):
            self.resort_ids.append(self.ids.hex())
            yield self.resort_ids[-1], f"Resort {r + 1:03d}", TIMEZONES[r % len(TIMEZONES)]

    def property_rows(self) -> Iterator[tuple[Any, ...]]:
        for i in range(self.n_properties):
            prop = self.new_property(i)
            resort = i % len(self.resort_ids)
            yield (prop.id, prop.code, f"Bench property {i + 1}", self.resort_ids[resort],
                   TIMEZONES[resort % len(TIMEZONES)], prop.status, prop.bedrooms)  # fmt: skip

    def new_property(self, i: int) -> BenchProperty:
        bedrooms = self.choice((1, 2, 2, 2, 3, 3, 4))
        draw = self.random()
        status = "onboarding" if draw < 0.02 else "inactive" if draw < 0.03 else "active"
        prop = BenchProperty(
            id=self.ids.hex(),
            code=f"BP-{i + 1:06d}",
            bedrooms=bedrooms,
            status=status,
            nightly_rate=120 + 60 * bedrooms + self.between(0, 149),
            cleaning_fee=Decimal(95 + 35 * bedrooms),
            owners=[],
        )
        self.properties.append(prop)
        return prop

    def rooms(self) -> Iterator[tuple[Any, ...]]:
        ids = self.ids
        for prop in self.properties:
            for b in range(prop.bedrooms):
                yield ids.hex(), prop.id, f"Bedroom {b + 1}", "bedroom"
            yield ids.hex(), prop.id, "Living room", "living_room"

    def contacts(self, n_staff: int) -> Iterator[tuple[Any, ...]]:
        """Staff, then each property's owners (deciding who owns what), then the guests."""
        for k in range(n_staff):
            self.staff_contacts.append(self.ids.hex())
            yield self.contact_row(self.staff_contacts[-1], f"staff{k}")
        for index, prop in enumerate(self.properties):
            yield from self.owner_contacts(index, prop)
        for k in range(self.n_properties * GUESTS_PER_PROPERTY):
            self.guests.append(self.ids.hex())
            yield self.contact_row(self.guests[-1], f"guest{k}")

    def owner_contacts(self, index: int, prop: BenchProperty) -> Iterator[tuple[Any, ...]]:
        if index and self.random() < SHARED_OWNER_SHARE:
            prop.owners = [self.properties[index - 1].owners[0]]
            return
        for _ in range(2 if self.random() < SECOND_OWNER_SHARE else 1):
            contact_id = self.ids.hex()
            prop.owners.append((self.ids.hex(), contact_id))
            yield self.contact_row(contact_id, f"owner{index}.{len(prop.owners)}")

    def contact_row(self, contact_id: str, handle: str) -> tuple[Any, ...]:
        first = self.choice(FIRST_NAMES)
        last = self.choice(LAST_NAMES)
        # 555-0100..0199 are reserved for fiction.
        return (
            contact_id,
            first,
            last,
            f"{handle}@example.com",
            f"+1-555-01{self.between(0, 99):02d}",
        )

    def companies(self) -> Iterator[tuple[Any, ...]]:
        for r in range(len(self.resort_ids)):
            self.linen_companies.append(self.ids.hex())
            yield self.linen_companies[-1], f"Linen service {r + 1}", "linen_service", None
        for kind, name, company_type in (
            ("cleaning", "Bench Cleaning Co.", "vendor"),
            ("hvac", "Bench HVAC", "vendor"),
            ("pool", "Bench Pools", "vendor"),
            ("supplier", "Bench Supply Co.", "supplier"),
        ):
            self.other_companies[kind] = self.ids.hex()
            yield self.other_companies[kind], name, company_type, f"orders@{kind}.example.com"

    def teams(self) -> Iterator[tuple[Any, ...]]:
        for code, name in TEAMS:
            self.team_ids[code] = self.ids.hex()
            yield self.team_ids[code], code, name, f"{code.lower()}@ops.example.com"

    def team_directory(self) -> Iterator[tuple[Any, ...]]:
        """Staff dealt round-robin to the teams; the first of each team manages the rest."""
        managers: dict[str, str] = {}
        for k, contact_id in enumerate(self.staff_contacts):
            code = TEAMS[k % len(TEAMS)][0]
            member_id = self.ids.hex()
            yield member_id, contact_id, self.team_ids[code], managers.get(code), "active"
            managers.setdefault(code, member_id)
            self.staff[code].append(member_id)

    def homeowners(self) -> Iterator[tuple[Any, ...]]:
        seen: set[str] = set()
        for prop in self.properties:
            for homeowner_id, contact_id in prop.owners:
                if homeowner_id not in seen:
                    seen.add(homeowner_id)
                    yield homeowner_id, contact_id, None

    def relationships(self) -> Iterator[tuple[Any, ...]]:
        """Shares sum to exactly 100 (50/50 when two owners); terms vary by property."""
        start = add_months(self.anchor, -24)
        for i, prop in enumerate(self.properties):
            shares = ("100.00",) if len(prop.owners) == 1 else ("50.00", "50.00")
            commission = Decimal(15 + i % 11)
            base = "net_rent" if i % 3 == 2 else "gross_rent"
            recognition = "by_checkout" if i % 5 == 4 else "by_night"
            reserve = Decimal("500.00") if i % 4 == 0 else Decimal("0.00")
            for (homeowner_id, _), share in zip(prop.owners, shares, strict=True):
                yield (self.ids.hex(), homeowner_id, prop.id, Decimal(share), commission, base,
                       recognition, reserve, start)  # fmt: skip

    def vendor_assignments(self) -> Iterator[tuple[Any, ...]]:
        """A linen supplier (its resort's) for most properties; cleaning and HVAC company-wide."""
        for i, prop in enumerate(self.properties):
            if self.random() < LINEN_SUPPLIER_SHARE:
                prop.linen_vendor = self.linen_companies[i % len(self.resort_ids)]
                yield self.ids.hex(), prop.linen_vendor, prop.id, "linen", 10, True
        for kind in ("cleaning", "hvac"):
            yield self.ids.hex(), self.other_companies[kind], None, kind, 100, True

    # -- linen ---------------------------------------------------------------------------------

    def linen_types(self) -> Iterator[tuple[Any, ...]]:
        for n, spec in enumerate(LINEN_TYPES, 1):
            self.linen_type_ids.append(self.ids.hex())
            yield (self.linen_type_ids[-1], spec.type_code, spec.type_name, spec.category,
                   spec.size, spec.standard_cost, n)  # fmt: skip

    def linen_pars(self) -> Iterator[tuple[Any, ...]]:
        for prop in self.properties:
            for type_id, par in zip(self.linen_type_ids, pars_for(prop.bedrooms), strict=True):
                yield self.ids.hex(), prop.id, type_id, par, par * 7 // 10, par + par // 4

    def linen_counts(self) -> Iterator[tuple[Any, ...]]:
        """One count per property, two weeks before the anchor; some properties short."""
        counters = self.staff["HK"]
        count_date = self.anchor - dt.timedelta(days=14)
        for prop in self.properties:
            short = self.random() < SHORT_OF_LINEN_SHARE
            counts = {}
            for spec, expected in zip(LINEN_TYPES, pars_for(prop.bedrooms), strict=True):
                counted = (
                    expected // 2
                    if short and self.random() < 0.5
                    else expected + self.between(-2, 3)
                )
                counts[spec.type_code] = {"counted": counted, "expected": expected,
                                          "variance": counted - expected}  # fmt: skip
            total = sum(c["counted"] for c in counts.values())
            off = sum(abs(c["variance"]) for c in counts.values())
            yield (self.ids.hex(), prop.id, self.choice(counters), count_date,
                   "routine", Jsonb(counts), total, off, "completed")  # fmt: skip

    # -- channels and storage ------------------------------------------------------------------

    def connections(self) -> Iterator[tuple[Any, ...]]:
        for channel, name in (
            ("airbnb", "Airbnb"),
            ("vrbo", "Vrbo"),
            ("booking_com", "Booking.com"),
        ):
            self.connection_ids.append(self.ids.hex())
            yield self.connection_ids[-1], channel, name, "active"

    def mappings(self) -> Iterator[tuple[Any, ...]]:
        for i, prop in enumerate(self.properties):
            if self.random() < CHANNEL_MAPPED_SHARE:
                connection = self.connection_ids[i % len(self.connection_ids)]
                url = f"http://127.0.0.1:8765/feeds/{prop.code}.ics"
                yield self.ids.hex(), connection, prop.id, str(10_000_000 + i), url

    def storage_locations(self) -> Iterator[tuple[Any, ...]]:
        for n in range(STORAGE_LOCATIONS):
            self.location_ids.append(self.ids.hex())
            yield self.location_ids[-1], f"BWH-{n + 1:02d}", f"Bench warehouse {n + 1}", "warehouse"

    def inventory_items(self) -> Iterator[tuple[Any, ...]]:
        for n in range(STORAGE_ITEMS):
            type_code = INVENTORY_TYPE_CODES[n % len(INVENTORY_TYPE_CODES)]
            point = 5 + n % 20
            cost = Decimal(10 + 7 * n).quantize(CENT)
            self.item_ids.append((self.ids.hex(), point))
            yield (self.item_ids[-1][0], type_code, self.other_companies["supplier"],
                   f"Bench item {n + 1} ({type_code})", f"B-{n + 1:04d}", cost, point,
                   point * 3)  # fmt: skip

    def storage_inventory(self) -> Iterator[tuple[Any, ...]]:
        """Every item at every location; about one row in ten at or below its reorder point."""
        for location in self.location_ids:
            for item_id, point in self.item_ids:
                low = self.random() < 0.1
                on_hand = self.between(0, point) if low else point + self.between(1, 50)
                yield self.ids.hex(), item_id, location, on_hand, 0, point, Decimal("10.00")

    # -- reservations --------------------------------------------------------------------------

    def reservations(self) -> Iterator[tuple[Any, ...]]:
        """Per property, stays one after another from 18 months back to 6 months ahead."""
        for prop in self.properties:
            yield from self.stays_of(prop)

    def stays_of(self, prop: BenchProperty) -> Iterator[tuple[Any, ...]]:
        ids, guests = self.ids, self.guests
        day = self.start + self.between(0, 4) * ONE_DAY
        while True:
            check_out = day + self.choice(NIGHTS) * ONE_DAY
            if check_out > self.end:
                return
            kind = self.choice(STAY_KINDS)
            stay_id = ids.hex()
            status, booked_at, cancelled_at = self.stay_state(day, check_out, kind)
            if kind == "guest":
                guest = self.choice(guests)
                source = self.choice(SOURCES)
                code = self.confirmation_code(source)
                money = self.stay_money(prop, (check_out - day).days, source)
                if self.random() < 0.08:
                    prop.stay_sample.append((stay_id, guest))
            else:
                guest = prop.owners[0][1] if kind == "owner_stay" else None
                source, code, money = "owner", None, NO_MONEY
            yield (stay_id, code, prop.id, guest, source, kind, status, day, check_out,
                   booked_at, cancelled_at, *money)  # fmt: skip
            day = check_out + self.choice(GAPS) * ONE_DAY

    def confirmation_code(self, source: str) -> str:
        return f"{CODE_PREFIX[source]}{self.rng.getrandbits(40):010X}"

    def stay_state(
        self, check_in: dt.date, check_out: dt.date, kind: str
    ) -> tuple[str, dt.datetime, dt.datetime | None]:
        """(status, booked_at, cancelled_at): booked ahead but never in the future; ~3% of
        guest stays cancelled a day after booking; otherwise the status follows today."""
        booked = min(check_in - self.choice(LEAD_DAYS) * ONE_DAY,
                     self.today - ONE_DAY)  # fmt: skip
        booked_at = dt.datetime(
            booked.year, booked.month, booked.day, self.between(0, 23), tzinfo=UTC
        )
        if kind == "guest" and self.random() < 0.03:
            return "cancelled", booked_at, min(booked_at + ONE_DAY, self.now)
        if kind == "block" or check_in > self.today:
            return "confirmed", booked_at, None
        return ("checked_out" if check_out <= self.today else "checked_in"), booked_at, None

    def stay_money(self, prop: BenchProperty, nights: int, source: str) -> tuple[Decimal, ...]:
        """(gross_rent, cleaning_fee, other_fees, taxes, channel_commission), Decimal only."""
        gross = Decimal(prop.nightly_rate * nights)
        cleaning = prop.cleaning_fee
        taxes = ((gross + cleaning) * TAX_RATE).quantize(CENT, ROUND_HALF_UP)
        rate = CHANNEL_RATES.get(source)
        if rate is None:
            commission = ZERO
        else:
            base = gross if source == "booking_com" else gross + cleaning
            commission = (base * rate).quantize(CENT, ROUND_HALF_UP)
        return gross, cleaning, ZERO, taxes, commission

    # -- tickets -------------------------------------------------------------------------------

    def tickets(self) -> Iterator[tuple[Any, ...]]:
        """Per property 100-200 tickets; ~3% unfinished (opened in the last two weeks), the
        rest finished at some point of the last 18 months."""
        for prop in self.properties:
            for _ in range(self.between(*TICKETS_PER_PROPERTY)):
                yield self.ticket(prop)

    def ticket(self, prop: BenchProperty) -> tuple[Any, ...]:
        ticket_type = self.choice(TICKET_TYPES)
        category, title = self.choice(CATEGORIES[ticket_type])
        priority = self.choice(PRIORITIES)
        status = self.ticket_status()
        created_at, first_response_at, resolved_at = self.ticket_times(status, priority)
        reservation_id = requestor = homeowner_id = None
        if ticket_type == "RSV" and prop.stay_sample:
            reservation_id, requestor = self.choice(prop.stay_sample)
        elif ticket_type == "ACCT":
            homeowner_id, requestor = prop.owners[0]
        ticket_id = self.ids.hex()
        if status == "closed" and ticket_type == "PC" and self.random() < TICKET_COST_SHARE:
            self.costs.append(self.ticket_cost(ticket_id, prop, resolved_at))
        due_at = created_at + 2 * ONE_DAY if category == "cleaning" else None
        return (ticket_id, ticket_type, category, title, status, priority,
                self.choice(TICKET_SOURCES), prop.id, reservation_id,
                homeowner_id, requestor, self.team_ids[TEAM_FOR_TICKET_TYPE[ticket_type]], due_at,
                created_at, resolved_at or first_response_at or created_at, first_response_at,
                resolved_at)  # fmt: skip

    def ticket_status(self) -> str:
        draw = self.random()
        if draw < OPEN_TICKET_SHARE:
            return self.choice(OPEN_STATUSES)
        if draw < OPEN_TICKET_SHARE + CANCELLED_TICKET_SHARE:
            return "cancelled"
        if draw < OPEN_TICKET_SHARE + CANCELLED_TICKET_SHARE + RESOLVED_TICKET_SHARE:
            return "resolved"
        return "closed"

    def ticket_times(
        self, status: str, priority: str
    ) -> tuple[dt.datetime, dt.datetime | None, dt.datetime | None]:
        """(created_at, first_response_at, resolved_at), all in the past."""
        response = ONE_MINUTE * self.between(*RESPONSE_MINUTES[priority])
        if status in ("resolved", "closed", "cancelled"):
            resolution = ONE_MINUTE * self.between(*RESOLUTION_MINUTES[priority])
            created_at = self.now - ONE_DAY * (11 + 529 * self.random())
            resolved_at = created_at + resolution if status != "cancelled" else None
            return created_at, created_at + response, resolved_at
        created_at = self.now - ONE_MINUTE * self.between(5, 14 * 24 * 60)
        answered = status != "open" and created_at + response < self.now
        return created_at, created_at + response if answered else None, None

    def ticket_cost(
        self, ticket_id: str, prop: BenchProperty, resolved_at: dt.datetime | None
    ) -> tuple[Any, ...]:
        """A repair billed to the owner with a 10% markup, dated when the ticket was resolved."""
        amount = Decimal(self.between(5_000, 60_000)) / 100
        cost_date = (resolved_at or self.now).date()
        return (self.ids.hex(), ticket_id, prop.id, cost_date, "Repair parts and labour", amount,
                "owner", Decimal("10.00"))  # fmt: skip


ZERO = Decimal("0.00")
NO_MONEY = (ZERO, ZERO, ZERO, ZERO, ZERO)
RESERVATION_COLUMNS = (
    "id", "confirmation_code", "property_id", "guest_contact_id", "source", "reservation_type",
    "status", "check_in", "check_out", "booked_at", "cancelled_at", "gross_rent",
    "cleaning_fee", "other_fees", "taxes", "channel_commission",
)  # fmt: skip
TICKET_COLUMNS = (
    "id", "ticket_type", "category", "title", "status", "priority", "source", "property_id",
    "reservation_id", "homeowner_id", "requestor_contact_id", "current_team_id", "due_at",
    "created_at", "updated_at", "first_response_at", "resolved_at",
)  # fmt: skip


def pars_for(bedrooms: int) -> tuple[int, ...]:
    """Property-level pars in LINEN_TYPES order: three sets of everything, two guests a
    bedroom, a king in the primary bedroom, queens (or a sofa bed's) elsewhere."""
    guests = 2 * bedrooms
    return (3 * guests, 3 * (bedrooms + 1), 3 * guests, 3, 3 * max(1, bedrooms - 1), 12 * bedrooms)
