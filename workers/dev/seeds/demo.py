"""Deterministic demo data: three resorts, about forty properties, eighteen months of activity.

What it is for: `cmw dev` loads it on first start so a person sees every job do something, and
the integration tests rely on it holding the cases the jobs must get right — time zones with and
without daylight saving, co-owned properties whose shares sum to 100, back-to-back turnovers,
double bookings, tickets in every status/priority/type, linen shortages at a property with no
linen supplier, stock at its reorder point, channel mappings, recurring rules and SLA policies.

The seed ends as the statements job would on the 1st: last month's draft owner statements are
generated (by `tasks.statements.build`), so `cmw statements render` works on the demo at once.

Deterministic: one `random.Random(20261122)` drives every choice, and every date is placed
around a fixed anchor, the first day of the current month (about 12 months before it and 6
after), so two loads in one month give the same business data. Exceptions, on purpose:
primary keys (UUIDv7 carry the load time), reservation statuses (checked_out / checked_in /
confirmed follow today's date) and unfinished tickets, which are created in the hours before
the load so that an SLA sweep right after seeding finds some breached, some warned and some in
time.

All rows are inserted in one transaction with SQLAlchemy Core; a database that already has
properties is left alone.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, create_engine, insert, text

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
    LinenDelivery,
    LinenIssue,
    LinenOrder,
    LinenPar,
    LinenType,
    StorageInventory,
    StorageLocation,
)
from db.models.property import Property, Resort, Room
from db.models.reservations import Reservation
from db.models.service import (
    TICKET_STATUSES,
    BusinessCalendar,
    BusinessCalendarHoliday,
    RecurringRule,
    RecurringRuleTarget,
    SlaPolicy,
    Ticket,
    TicketCost,
)
from db.models.team import Team, TeamDirectory
from workers.dev.seeds import LINEN_TYPES, Uuid7, add_months, month_anchor
from workers.dev.seeds.demo_journeys import seed_journeys
from workers.dev.seeds.demo_money import add_money

SEED = 20261122
UTC = dt.UTC
CENT = Decimal("0.01")
T = TypeVar("T")

# Parents before children: rows are inserted table by table in this order.
TABLE_ORDER: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[attr-defined]
    for model in (
        Resort,
        Property,
        Room,
        Contact,
        Company,
        Team,
        TeamDirectory,
        Homeowner,
        HomeownerPropertyRelationship,
        VendorAssignment,
        Reservation,
        BusinessCalendar,
        BusinessCalendarHoliday,
        SlaPolicy,
        Ticket,
        TicketCost,
        RecurringRule,
        RecurringRuleTarget,
        LinenType,
        LinenPar,
        LinenCount,
        LinenDelivery,
        LinenIssue,
        LinenOrder,
        StorageLocation,
        InventoryItem,
        StorageInventory,
        ChannelConnection,
        ChannelMapping,
    )
)


# --------------------------------------------------------------------------------------------
# The fixed shape of the demo


@dataclass(frozen=True)
class ResortSpec:
    code: str
    name: str
    # Honolulu has no daylight saving, New York and Lisbon do (on different dates): the
    # recurring and SLA jobs must keep local wall-clock times in all three.
    timezone: str
    property_names: tuple[str, ...]
    # Nightly rate: base + per_bedroom * bedrooms (whole USD), times the month's season factor.
    base_rate: int
    per_bedroom: int
    season_pct: dict[int, int]
    tax_rate: Decimal


# Property names are "|"-separated so each resort's list stays one readable block.
RESORTS: tuple[ResortSpec, ...] = (
    ResortSpec(
        code="KAI",
        name="Kailua Bay Resort",
        timezone="Pacific/Honolulu",
        property_names=tuple(
            "Hale Kai|Hale Makani|Hale Nalu|Hale Lani|Hale Hoku|Hale Pua|Hale Mahina|Hale Ola|"
            "Hale Moana|Hale Aloha|Hale Kilohana|Hale Pili|Hale Anuenue|Hale Kukui".split("|")
        ),
        base_rate=260,
        per_bedroom=90,
        season_pct={12: 130, 1: 125, 2: 125, 3: 115, 6: 115, 7: 120, 8: 115},
        tax_rate=Decimal("0.1796"),  # Hawaii GET + TAT + county TAT
    ),
    ResortSpec(
        code="BRL",
        name="Blue Ridge Lodges",
        timezone="America/New_York",
        property_names=tuple(
            "Laurel Cabin|Ridge Top Lodge|Hemlock Hollow|Bear Creek Cabin|Fox Run Chalet|"
            "Misty Pines|Sourwood Retreat|Trillium House|Falling Water Lodge|Owl's Nest|"
            "Chestnut Ridge|Blackberry Cottage|Summit View".split("|")
        ),
        base_rate=150,
        per_bedroom=60,
        season_pct={10: 135, 12: 120, 1: 110, 2: 110, 6: 105, 7: 115, 8: 115},
        tax_rate=Decimal("0.1200"),
    ),
    ResortSpec(
        code="ALF",
        name="Alfama Residences",
        timezone="Europe/Lisbon",
        property_names=tuple(
            "Casa do Fado|Miradouro Loft|Azulejo Suite|Rua da Saudade 12|Castelo View|"
            "Tejo Terrace|Se Apartment|Largo Flat|Chafariz Studio|Graca Penthouse|Beco Loft|"
            "Patio das Flores|Sardinha House".split("|")
        ),
        base_rate=90,
        per_bedroom=45,
        season_pct={4: 105, 5: 110, 6: 125, 7: 140, 8: 140, 9: 120, 12: 105},
        tax_rate=Decimal("0.0600"),  # Portuguese VAT on short stays
    ),
)
# Off-season months of every resort run at this share of the base rate.
OFF_SEASON_PCT = 90

# Properties that are not active, by "<resort code>-<index in resort>".
PROPERTY_STATUS = {"KAI-13": "inactive", "BRL-12": "onboarding", "ALF-12": "onboarding"}
# Active properties without any active linen supplier: linen.reorder's "no supplier" case.
# ALF-7 has an inactive linen assignment, so a job that forgets is_active gets it wrong.
NO_LINEN_SUPPLIER = ("BRL-5", "ALF-7")
# Properties counted short of par (plus every third property).
LINEN_SHORT = ("BRL-5", "ALF-7", "KAI-1")
# Room-level linen pars instead of property-level ones; KAI-8 has both for BATH_TOWEL (the
# property-level row must win).
ROOM_LEVEL_PARS = ("KAI-6", "BRL-2", "ALF-3", "KAI-8")

# Ownership, by global property index (KAI 0-13, BRL 14-26, ALF 27-39).
SAME_OWNER_AS = {1: 0, 2: 0, 15: 14, 28: 27}  # owners of several properties
CO_OWNED = {
    3: ("50.00", "50.00"),
    10: ("50.00", "50.00"),
    17: ("60.00", "40.00"),
    24: ("50.00", "50.00"),
    31: ("33.33", "33.33", "33.34"),
}
SOLD = 20  # changed hands four months before the anchor: one relationship ends, one starts

TEAMS = (
    ("PC", "Property Care", 3),
    ("RSV", "Reservations", 3),
    ("FIN", "Finance", 2),
    ("HK", "Housekeeping", 5),
    ("ADM", "Administration", 2),
)
TEAM_FOR_TICKET_TYPE = {"PC": "PC", "RSV": "RSV", "ACCT": "FIN", "ADM": "ADM"}

FIRST_NAMES = tuple(
    "Ava Liam Noah Emma Mia Lucas Kai Leilani Mateo Sofia Ines Tiago Grace Henry Olivia James "
    "Chloe Daniel Maya Ethan Isla Keanu Nalani Joao Beatriz Rui Hannah Samuel Zoe Owen Priya "
    "Arjun Mei Hiro Yuki Fatima Omar Lena Jonas Clara".split()
)
LAST_NAMES = tuple(
    "Kahananui Silva Santos Ferreira Smith Johnson Nguyen Garcia Miller Davis Kealoha Akana "
    "Costa Pereira Walker Brooks Kim Chen Patel Tanaka Okafor Muller Rossi Dubois Novak Larsen "
    "Hughes Reyes Morgan Fischer".split()
)

SOURCES = (("direct", 25), ("airbnb", 40), ("vrbo", 20), ("booking_com", 15))
STAY_KINDS = (("guest", 93), ("owner_stay", 4), ("block", 3))
NIGHTS = (2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 7, 7, 8, 10, 14)
# Days between one departure and the next arrival; 0 is a back-to-back turnover.
GAPS = (0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 7)
# The channel's cut, as a share of what it is charged on (see channel_commission).
CHANNEL_RATES = {"airbnb": Decimal("0.03"), "vrbo": Decimal("0.08"), "booking_com": Decimal("0.15")}

TICKET_TYPES = ("PC", "RSV", "ADM", "ACCT")
PRIORITIES = ("urgent", "high", "normal", "low")
FINISHED_STATUSES = ("resolved", "closed", "cancelled")
TICKET_TITLES = {
    "PC": {
        "maintenance": "Sliding door off its track",
        "plumbing": "Slow drain in primary bathroom",
        "hvac": "AC not cooling",
        "pool": "Pool water cloudy",
        "cleaning": "Deep clean after long stay",
        "linen": "Stained duvet cover replacement",
        "pest": "Ants in kitchen",
    },
    "RSV": {
        "guest_request": "Guest asks for extra towels",
        "modification": "Guest wants to extend stay",
        "early_check_in": "Early check-in request",
        "complaint": "Guest reports noise from neighbours",
    },
    "ADM": {
        "onboarding": "Onboarding checklist",
        "access": "Reset door lock codes",
        "compliance": "Renew short-term rental permit",
        "owner_request": "Owner asks for listing photo update",
    },
    "ACCT": {
        "statement_question": "Owner question about monthly statement",
        "reimbursement": "Reimburse owner for supplies",
        "refund": "Partial refund for guest",
        "invoice": "Vendor invoice mismatch",
    },
}
TICKET_STATUS_WEIGHTS = (
    *(("closed", 45), ("resolved", 20), ("cancelled", 5), ("open", 8), ("acknowledged", 5)),
    *(("in_progress", 7), ("pending_guest", 3), ("pending_vendor", 4), ("on_hold", 3)),
)
TICKET_TYPE_WEIGHTS = (("PC", 50), ("RSV", 25), ("ADM", 10), ("ACCT", 15))
PRIORITY_WEIGHTS = (("urgent", 8), ("high", 22), ("normal", 50), ("low", 20))
TICKET_SOURCE_WEIGHTS = (
    *(("portal", 30), ("agent", 25), ("email", 20), ("system", 10), ("channel", 8)),
    ("recurring", 7),
)
# Minutes to first response and to resolution, (low, high), by priority.
RESPONSE_MINUTES = {"urgent": (3, 30), "high": (15, 120), "normal": (45, 600), "low": (240, 2880)}
RESOLUTION_MINUTES = {
    "urgent": (60, 480),
    "high": (240, 2880),
    "normal": (600, 7200),
    "low": (1440, 14400),
}
RANDOM_TICKETS = 320

# (months before the anchor, property key, description, amount, billable_to, markup_pct)
TICKET_COSTS = (
    (1, "KAI-0", "AC capacitor replaced", "185.00", "owner", "10.00"),
    (1, "KAI-3", "Pool pump seal repair", "420.00", "owner", "15.00"),
    (1, "BRL-1", "Plumber call-out, kitchen drain", "240.00", "owner", "0.00"),
    (1, "ALF-0", "Replace broken floor lamp", "65.40", "owner", "10.00"),
    (1, "KAI-3", "Hot tub heater element", "310.75", "owner", "10.00"),
    (2, "BRL-3", "Gutter cleaning", "150.00", "owner", "0.00"),
    (2, "ALF-2", "Washing machine repair", "198.30", "owner", "12.50"),
    (3, "KAI-0", "Termite inspection", "95.00", "owner", "0.00"),
    (1, "BRL-0", "Staff training supplies", "48.00", "company", "0.00"),
    (2, "KAI-5", "Courier for lost key", "35.00", "company", "0.00"),
    (1, "ALF-1", "Damaged coffee table", "150.00", "guest", "0.00"),
    (2, "BRL-7", "Extra cleaning after party", "220.00", "guest", "0.00"),
)


@dataclass
class DemoProperty:
    """A property as the later builders need it."""

    id: uuid.UUID
    key: str  # "<resort code>-<index in resort>", how the tables above name it
    code: str
    name: str
    resort: ResortSpec
    tz: ZoneInfo
    bedrooms: int
    status: str
    index: int  # global index, 0..39
    bedroom_ids: list[uuid.UUID] = field(default_factory=list)
    owners: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # homeowner, contact
    linen_vendor: uuid.UUID | None = None


@dataclass
class DemoStay:
    id: uuid.UUID
    prop: DemoProperty
    kind: str
    status: str
    check_in: dt.date
    check_out: dt.date
    guest_contact_id: uuid.UUID | None


# --------------------------------------------------------------------------------------------
# Entry point


def seed_demo(database_url: str) -> dict[str, int]:
    """Load the demo data set into an empty, migrated database, in one transaction.

    Returns the rows inserted per table ("schema.table"), or {"skipped": 1} when the database
    already has properties (a second call, or a database someone filled) — the demo never mixes
    with other data. An advisory lock makes two concurrent first starts load it once.
    """
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('cmw.seed_demo'))"))
            if conn.execute(text("SELECT EXISTS (SELECT 1 FROM property.properties)")).scalar():
                return {"skipped": 1}
            builder = DemoBuilder(today=dt.date.today(), now=dt.datetime.now(UTC))
            builder.build()
            counts = insert_rows(conn, builder.rows)
            counts.update(seed_journeys(conn, builder))
            counts.update(add_draft_statements(conn, builder.today, builder.now))
            return counts
    finally:
        engine.dispose()


def add_draft_statements(conn: Connection, today: dt.date, now: dt.datetime) -> dict[str, int]:
    """Last month's draft owner statements, built by the statements job's own function (what
    `statements.generate` does on the 1st), so `cmw statements render` has something to show
    right after seeding. Drafts: a later `statements.generate` rebuilds them in place."""
    from sqlalchemy.orm import Session

    from tasks.statements.build import generate_statements

    session = Session(bind=conn)
    generate_statements(session, period_start=add_months(month_anchor(today), -1), as_of=now)
    session.flush()
    return {
        table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in ("finance.owner_statements", "finance.owner_statement_lines")
    }


def insert_rows(conn: Connection, rows: dict[Table, list[dict[str, Any]]]) -> dict[str, int]:
    """Insert table by table; consecutive rows with the same columns go in one executemany,
    so columns a row leaves out keep their server defaults instead of becoming NULL."""
    counts: dict[str, int] = {}
    for table, table_rows in rows.items():
        for _, group in itertools.groupby(table_rows, key=lambda row: tuple(sorted(row))):
            conn.execute(insert(table), list(group))
        counts[table.fullname] = len(table_rows)
    return counts


# --------------------------------------------------------------------------------------------
# The builder


class DemoBuilder:
    """Builds every row in memory (a few thousand), in foreign-key order, ids client-side."""

    def __init__(self, today: dt.date, now: dt.datetime) -> None:
        self.rng = random.Random(SEED)
        self.ids = Uuid7(SEED, now)
        self.today = today
        self.now = now
        self.anchor = month_anchor(today)
        self.start = add_months(self.anchor, -12)
        self.end = add_months(self.anchor, 6)
        self.rows: dict[Table, list[dict[str, Any]]] = {table: [] for table in TABLE_ORDER}
        self.properties: list[DemoProperty] = []
        self.resort_ids: dict[str, uuid.UUID] = {}
        self.team_ids: dict[str, uuid.UUID] = {}
        self.team_members: dict[str, list[uuid.UUID]] = {}
        self.companies: dict[str, uuid.UUID] = {}
        self.guests: list[uuid.UUID] = []
        self.stays: dict[str, list[DemoStay]] = {}
        self.linen_type_ids: dict[str, uuid.UUID] = {}
        self.calendar_id: uuid.UUID | None = None
        self.codes: set[str] = set()
        self.contact_count = 0

    # -- plumbing ------------------------------------------------------------------------------

    def add(self, model: Any, **values: Any) -> uuid.UUID:
        """Queue one row of `model`'s table; returns its id (made here when the table has one)."""
        table: Table = model.__table__
        if "id" in table.c and "id" not in values:
            values["id"] = self.ids.uuid()
        self.rows[table].append(values)
        return values.get("id")  # type: ignore[return-value]

    def pick(self, weighted: Sequence[tuple[T, int]]) -> T:
        values, weights = zip(*weighted, strict=True)
        return self.rng.choices(values, weights)[0]

    def prop(self, key: str) -> DemoProperty:
        return next(p for p in self.properties if p.key == key)

    @property
    def active_properties(self) -> list[DemoProperty]:
        return [p for p in self.properties if p.status == "active"]

    @staticmethod
    def local(tz: ZoneInfo, day: dt.date, at: dt.time) -> dt.datetime:
        """A local wall-clock time, as an aware UTC datetime."""
        return dt.datetime.combine(day, at, tzinfo=tz).astimezone(UTC)

    def contact(self, first: str | None = None, last: str | None = None) -> uuid.UUID:
        first = first or self.rng.choice(FIRST_NAMES)
        last = last or self.rng.choice(LAST_NAMES)
        self.contact_count += 1
        n = self.contact_count
        return self.add(
            Contact,
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{n}@example.com".lower(),
            # 555-0100..0199 are reserved for fiction, so no real person is ever called.
            phone=f"+1-555-01{n % 100:02d}",
        )

    def unique_code(self, make: Callable[[], str]) -> str:
        """Draw until the code is new: two stays sharing a confirmation code would look like
        one stay to channel sync."""
        while (code := make()) in self.codes:
            pass
        self.codes.add(code)
        return code

    # -- the sections, in dependency order -----------------------------------------------------

    def build(self) -> None:
        self.add_resorts_and_properties()
        self.add_teams()
        self.add_companies()
        self.add_owners()
        self.add_vendor_assignments()
        self.add_reservations()
        self.add_sla_setup()
        self.add_tickets()
        self.add_ticket_costs()
        self.add_recurring_rules()
        self.add_linen()
        self.add_storage()
        self.add_channels()
        add_money(self)  # SPEC 7.5: owner terms, recurring charges, guest payments

    def add_resorts_and_properties(self) -> None:
        for resort in RESORTS:
            self.resort_ids[resort.code] = self.add(
                Resort, name=resort.name, timezone=resort.timezone
            )
            for i, name in enumerate(resort.property_names):
                self.add_property(resort, i, name)

    def add_property(self, resort: ResortSpec, i: int, name: str) -> None:
        key = f"{resort.code}-{i}"
        prop = DemoProperty(
            id=self.ids.uuid(),
            key=key,
            code=f"{resort.code}-{101 + i}",
            name=name,
            resort=resort,
            tz=ZoneInfo(resort.timezone),
            bedrooms=self.rng.choice((1, 2, 2, 3, 3, 4, 5)),
            status=PROPERTY_STATUS.get(key, "active"),
            index=len(self.properties),
        )
        self.properties.append(prop)
        self.add(
            Property,
            id=prop.id,
            property_code=prop.code,
            name=name,
            resort_id=self.resort_ids[resort.code],
            timezone=resort.timezone,
            status=prop.status,
            bedrooms=prop.bedrooms,
        )
        self.add_rooms(prop)

    def add_rooms(self, prop: DemoProperty) -> None:
        for b in range(prop.bedrooms):
            name = "Primary bedroom" if b == 0 else f"Bedroom {b + 1}"
            prop.bedroom_ids.append(
                self.add(Room, property_id=prop.id, name=name, room_type="bedroom")
            )
        self.add(Room, property_id=prop.id, name="Living room", room_type="living_room")
        self.add(Room, property_id=prop.id, name="Kitchen", room_type="kitchen")
        if prop.resort.code == "KAI":
            self.add(Room, property_id=prop.id, name="Lanai", room_type="outdoor")

    def add_teams(self) -> None:
        """Each team: a manager (no manager of their own) and members reporting to them."""
        for code, name, members in TEAMS:
            team_id = self.add(
                Team, code=code, name=name, notify_email=f"{code.lower()}@ops.example.com"
            )
            self.team_ids[code] = team_id
            manager = self.add(
                TeamDirectory, contact_id=self.contact(), team_id=team_id, status="active"
            )
            self.team_members[code] = [manager]
            for m in range(members):
                status = "on_leave" if (code, m) == ("RSV", 2) else "active"
                member = self.add(
                    TeamDirectory,
                    contact_id=self.contact(),
                    team_id=team_id,
                    manager_id=manager,
                    status=status,
                )
                self.team_members[code].append(member)

    def add_companies(self) -> None:
        for key, name, kind, domain in (
            ("linen:KAI", "Island Linen Service", "linen_service", "islandlinen"),
            ("linen:KAI:backup", "Pacific Linen Supply", "linen_service", "pacificlinen"),
            ("linen:BRL", "Blue Ridge Linen Co.", "linen_service", "blueridgelinen"),
            ("linen:ALF", "Lavandaria Alfama", "linen_service", "lavandaria-alfama"),
            ("cleaning", "Sparkle Turnover Cleaning", "vendor", "sparkle"),
            ("hvac", "CoolAir HVAC", "vendor", "coolair"),
            ("pool", "Crystal Clear Pools", "vendor", "crystalclear"),
            ("supplier", "Hospitality Supply Co.", "supplier", "hospitalitysupply"),
        ):
            self.companies[key] = self.add(
                Company, name=name, company_type=kind, email=f"orders@{domain}.example.com"
            )

    # -- owners --------------------------------------------------------------------------------

    def new_owner(self) -> tuple[uuid.UUID, uuid.UUID]:
        contact_id = self.contact()
        row = self.rows[Contact.__table__][-1]
        # Some owners have their statements sent to their accountant.
        email = (
            row["email"]
            if self.rng.random() < 0.8
            else f"books+{self.contact_count}@cpa.example.com"
        )
        return self.add(Homeowner, contact_id=contact_id, statement_email=email), contact_id

    def add_owners(self) -> None:
        for prop in self.properties:
            if prop.index in SAME_OWNER_AS:
                owners = [self.properties[SAME_OWNER_AS[prop.index]].owners[0]]
                shares = ("100.00",)
            else:
                shares = CO_OWNED.get(prop.index, ("100.00",))
                owners = [self.new_owner() for _ in shares]
            prop.owners = owners
            if prop.index == SOLD:
                self.add_sale(prop)
                continue
            for (homeowner_id, _), share in zip(owners, shares, strict=True):
                self.add_relationship(
                    prop, homeowner_id, Decimal(share), add_months(self.anchor, -24), None
                )

    def add_sale(self, prop: DemoProperty) -> None:
        """The seller's relationship ends on the first of the month the buyer's starts, so the
        statements job meets an ownership change without having to split a month."""
        sold_on = add_months(self.anchor, -4)
        seller = prop.owners[0][0]
        buyer = self.new_owner()
        prop.owners = [buyer]
        self.add_relationship(
            prop, seller, Decimal("100.00"), add_months(self.anchor, -24), sold_on
        )
        self.add_relationship(prop, buyer[0], Decimal("100.00"), sold_on, None)

    def add_relationship(
        self,
        prop: DemoProperty,
        homeowner_id: uuid.UUID,
        share: Decimal,
        start: dt.date,
        end: dt.date | None,
    ) -> None:
        i = prop.index
        self.add(
            HomeownerPropertyRelationship,
            homeowner_id=homeowner_id,
            property_id=prop.id,
            ownership_pct=share,
            # Co-owners of one property share its management terms.
            commission_pct=Decimal(("15.00", "18.00", "20.00", "22.50", "25.00")[i % 5]),
            commission_base="net_rent" if i % 3 == 2 else "gross_rent",
            revenue_recognition="by_checkout" if i % 5 == 4 else "by_night",
            reserve_amount=reserve_for(i),
            start_date=start,
            end_date=end,
        )

    def add_vendor_assignments(self) -> None:
        """Linen per property (no company-wide one, so a property can lack a supplier);
        cleaning and HVAC company-wide; pool service where there are pools."""
        for prop in self.properties:
            if prop.key in NO_LINEN_SUPPLIER:
                if prop.key == "ALF-7":
                    self.add(
                        VendorAssignment,
                        company_id=self.companies["linen:ALF"],
                        property_id=prop.id,
                        service_category="linen",
                        priority=10,
                        is_active=False,
                    )
                continue
            prop.linen_vendor = self.companies[f"linen:{prop.resort.code}"]
            self.add(
                VendorAssignment,
                company_id=prop.linen_vendor,
                property_id=prop.id,
                service_category="linen",
                priority=10,
                is_active=True,
            )
            if prop.resort.code == "KAI" and prop.index % 3 == 0:
                self.add(
                    VendorAssignment,
                    company_id=self.companies["linen:KAI:backup"],
                    property_id=prop.id,
                    service_category="linen",
                    priority=20,
                    is_active=True,
                )
            if prop.resort.code == "KAI" or prop.index % 6 == 0:
                self.add(
                    VendorAssignment,
                    company_id=self.companies["pool"],
                    property_id=prop.id,
                    service_category="pool",
                    priority=10,
                    is_active=True,
                )
        for category in ("cleaning", "hvac"):
            self.add(
                VendorAssignment,
                company_id=self.companies[category],
                property_id=None,
                service_category=category,
                priority=100,
                is_active=True,
            )

    # -- reservations --------------------------------------------------------------------------

    def guest(self) -> uuid.UUID:
        """A new guest, or one in five times a returning one (the lifetime-value view needs
        repeat stays)."""
        if self.guests and self.rng.random() < 0.2:
            return self.rng.choice(self.guests)
        self.guests.append(self.contact())
        return self.guests[-1]

    def add_reservations(self) -> None:
        for prop in self.properties:
            self.stays[prop.key] = []
            self.add_stays(prop)
        self.add_double_bookings()

    def add_stays(self, prop: DemoProperty) -> None:
        """Stays one after another: a random gap (often none: a turnover), then 2-14 nights."""
        start, end = self.start, self.end
        if prop.status == "onboarding":
            start = add_months(self.anchor, 1)
        elif prop.status == "inactive":
            end = add_months(self.anchor, -4)
        day = start + dt.timedelta(days=self.rng.randint(0, 4))
        while True:
            nights = self.rng.choice(NIGHTS)
            check_out = day + dt.timedelta(days=nights)
            if check_out > end:
                return
            self.add_stay(prop, day, check_out, self.pick(STAY_KINDS))
            day = check_out + dt.timedelta(days=self.rng.choice(GAPS))

    def add_stay(
        self,
        prop: DemoProperty,
        check_in: dt.date,
        check_out: dt.date,
        kind: str,
        source: str | None = None,
        status: str | None = None,
    ) -> DemoStay:
        """One stay; `source` and `status` are drawn unless given."""
        booked_at = self.booked_at(prop, check_in)
        if kind == "guest":
            source = source or self.pick(SOURCES)
            guest = self.guest()
            money = self.stay_money(prop, check_in, (check_out - check_in).days, source)
            code = self.confirmation_code(source)
        else:
            source = "owner"
            guest = prop.owners[0][1] if kind == "owner_stay" else None
            money = {}
            code = (
                self.unique_code(lambda: f"OWN-{self.rng.randint(100000, 999999)}")
                if kind == "owner_stay"
                else None
            )
        cancelled_at = None
        if status is None:
            status, cancelled_at = self.stay_status(kind, check_in, check_out, booked_at)
        stay = DemoStay(self.ids.uuid(), prop, kind, status, check_in, check_out, guest)
        self.add(
            Reservation,
            id=stay.id,
            confirmation_code=code,
            property_id=prop.id,
            guest_contact_id=guest,
            source=source,
            reservation_type=kind,
            status=status,
            check_in=check_in,
            check_out=check_out,
            booked_at=booked_at,
            cancelled_at=cancelled_at,
            currency="USD",
            **money,
        )
        self.stays[prop.key].append(stay)
        return stay

    def booked_at(self, prop: DemoProperty, check_in: dt.date) -> dt.datetime:
        """Booked 1-120 days ahead, but never after the anchor (so it is in the past)."""
        lead = self.rng.choice((1, 3, 7, 14, 21, 30, 45, 60, 90, 120))
        day = min(
            check_in - dt.timedelta(days=lead),
            self.anchor - dt.timedelta(days=self.rng.randint(1, 20)),
        )
        return self.local(
            prop.tz, day, dt.time(self.rng.randint(7, 22), self.rng.randrange(0, 60, 5))
        )

    def stay_status(
        self, kind: str, check_in: dt.date, check_out: dt.date, booked_at: dt.datetime
    ) -> tuple[str, dt.datetime | None]:
        if kind == "guest" and self.rng.random() < 0.04:
            cancel_day = booked_at.date() + dt.timedelta(
                days=self.rng.randint(0, max(0, (check_in - booked_at.date()).days - 1))
            )
            cancelled_at = min(
                booked_at + dt.timedelta(days=(cancel_day - booked_at.date()).days, hours=3),
                self.now,
            )
            return "cancelled", cancelled_at
        if kind == "block":
            return "confirmed", None
        if check_out <= self.today:
            return "checked_out", None
        if check_in <= self.today:
            return "checked_in", None
        if kind == "guest" and self.rng.random() < 0.02:
            return "inquiry", None  # not booked yet: jobs must not treat it as a stay
        return "confirmed", None

    def confirmation_code(self, source: str) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

        def make() -> str:
            if source == "airbnb":
                return "HM" + "".join(self.rng.choices(alphabet, k=8))
            if source == "vrbo":
                return "HA-" + "".join(self.rng.choices(alphabet, k=6))
            if source == "booking_com":
                return str(self.rng.randint(10**9, 10**10 - 1))
            return f"CM-{self.rng.randint(100000, 999999)}"

        return self.unique_code(make)

    def stay_money(
        self, prop: DemoProperty, check_in: dt.date, nights: int, source: str
    ) -> dict[str, Decimal]:
        """Integer dollars and Decimal shares, so no float ever touches an amount."""
        resort = prop.resort
        season = resort.season_pct.get(check_in.month, OFF_SEASON_PCT)
        rate = (
            (resort.base_rate + resort.per_bedroom * prop.bedrooms)
            * season
            * (100 + self.rng.randint(-5, 8))
            // 10_000
        )
        gross_rent = Decimal(rate * nights)
        cleaning_fee = Decimal(95 + 35 * prop.bedrooms)
        other_fees = Decimal(self.rng.choice((75, 50))) if self.rng.random() < 0.1 else Decimal(0)
        taxes = ((gross_rent + cleaning_fee + other_fees) * resort.tax_rate).quantize(
            CENT, ROUND_HALF_UP
        )
        return {
            "gross_rent": gross_rent.quantize(CENT),
            "cleaning_fee": cleaning_fee.quantize(CENT),
            "other_fees": other_fees.quantize(CENT),
            "taxes": taxes,
            "channel_commission": channel_commission(source, gross_rent, cleaning_fee),
        }

    def add_double_bookings(self) -> None:
        """Three future double bookings: a second channel sells dates another already sold
        (both live rows; channel sync must raise one urgent RSV ticket per pair)."""
        for key, source in (("KAI-4", "booking_com"), ("BRL-8", "airbnb"), ("ALF-5", "vrbo")):
            future = [
                s
                for s in self.stays[key]
                if s.kind == "guest"
                and s.status == "confirmed"
                and s.check_in > self.today + dt.timedelta(days=14)
            ]
            first = future[0]
            shift = dt.timedelta(days=1)
            self.add_stay(
                first.prop,
                first.check_in + shift,
                first.check_out + shift,
                "guest",
                source=source,
                status="confirmed",
            )

    # -- service -------------------------------------------------------------------------------

    def add_sla_setup(self) -> None:
        """An office-hours calendar (New York, with holidays) and two policies: 24x7 for urgent
        property care, office hours for accounting questions."""
        tz = "America/New_York"
        week = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu")}
        week["fri"] = [["09:00", "12:00"], ["13:00", "17:00"]]  # two windows: lunch closes
        self.calendar_id = self.add(
            BusinessCalendar, name="Office hours (New York)", timezone=tz, weekly_hours=week
        )
        for year in (self.anchor.year - 1, self.anchor.year, self.anchor.year + 1):
            for day, name in us_holidays(year):
                self.add(
                    BusinessCalendarHoliday,
                    calendar_id=self.calendar_id,
                    holiday_date=day,
                    name=name,
                )
        self.add(
            SlaPolicy,
            name="Urgent property care, 24x7",
            ticket_type="PC",
            category=None,
            priority="urgent",
            response_minutes=15,
            resolution_minutes=240,
            calendar_id=None,
            warn_at_pct=Decimal("80"),
            escalate_to_team_id=self.team_ids["PC"],
            escalate_priority=None,
            is_active=True,
        )
        self.add(
            SlaPolicy,
            name="Accounting questions, office hours",
            ticket_type="ACCT",
            category=None,
            priority="normal",
            response_minutes=480,
            resolution_minutes=2400,
            calendar_id=self.calendar_id,
            warn_at_pct=Decimal("75"),
            escalate_to_team_id=self.team_ids["FIN"],
            escalate_priority="high",
            is_active=True,
        )

    def add_tickets(self) -> None:
        # Every status x type once, priorities rotating, so each status, type and priority
        # appears whatever the random draws; then a realistic mix.
        for s, status in enumerate(TICKET_STATUSES):
            for t, ticket_type in enumerate(TICKET_TYPES):
                self.add_ticket(ticket_type, status, PRIORITIES[(s + t) % len(PRIORITIES)])
        for _ in range(RANDOM_TICKETS):
            self.add_ticket(
                self.pick(TICKET_TYPE_WEIGHTS),
                self.pick(TICKET_STATUS_WEIGHTS),
                self.pick(PRIORITY_WEIGHTS),
            )

    def add_ticket(
        self,
        ticket_type: str,
        status: str,
        priority: str,
        prop: DemoProperty | None = None,
        category: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> tuple[uuid.UUID, dt.datetime]:
        """One ticket with coherent timestamps; returns its id and when its work ended."""
        prop = prop or self.rng.choice(self.active_properties)
        category = category or self.rng.choice(list(TICKET_TITLES[ticket_type]))
        times = self.ticket_times(status, priority, created_at)
        team = TEAM_FOR_TICKET_TYPE[ticket_type] if self.rng.random() < 0.85 else None
        agent = (
            self.rng.choice(self.team_members[team][1:])
            if team and status not in ("open", "acknowledged")
            else None
        )
        links = self.ticket_links(ticket_type, prop)
        ticket_id = self.add(
            Ticket,
            ticket_type=ticket_type,
            category=category,
            title=f"{TICKET_TITLES[ticket_type][category]} - {prop.name}",
            description=f"{category.replace('_', ' ').capitalize()} at {prop.name} ({prop.code}).",
            status=status,
            priority=priority,
            source=self.ticket_source(ticket_type),
            property_id=prop.id,
            current_team_id=self.team_ids[team] if team else None,
            current_agent_id=agent,
            due_at=self.ticket_due_at(ticket_type, category, times["created_at"]),
            estimated_minutes=self.rng.choice((30, 60, 90, 120, 240))
            if ticket_type == "PC"
            else None,
            **links,
            **times,
        )
        return ticket_id, times["resolved_at"] or times["updated_at"]

    def ticket_due_at(
        self, ticket_type: str, category: str, created_at: dt.datetime
    ) -> dt.datetime | None:
        """Scheduled work (cleans, repairs) is booked for a day or three after it is raised."""
        if ticket_type == "PC" and category in ("cleaning", "maintenance"):
            return created_at + dt.timedelta(days=self.rng.randint(1, 3))
        return None

    def ticket_source(self, ticket_type: str) -> str:
        source = self.pick(TICKET_SOURCE_WEIGHTS)
        if source == "channel" and ticket_type != "RSV":
            return "email"
        if source == "recurring" and ticket_type != "PC":
            return "agent"
        return source

    def ticket_links(self, ticket_type: str, prop: DemoProperty) -> dict[str, Any]:
        """Who asked and about what: guests ask about stays, owners about money and admin."""
        homeowner_id, owner_contact = prop.owners[0]
        if ticket_type == "RSV":
            stays = [s for s in self.stays[prop.key] if s.kind == "guest"]
            stay = self.rng.choice(stays) if stays else None
            return {
                "reservation_id": stay.id if stay else None,
                "requestor_contact_id": stay.guest_contact_id if stay else None,
                "homeowner_id": None,
            }
        if ticket_type in ("ACCT", "ADM"):
            return {
                "reservation_id": None,
                "requestor_contact_id": owner_contact,
                "homeowner_id": homeowner_id,
            }
        asked_by_owner = self.rng.random() < 0.3
        return {
            "reservation_id": None,
            "requestor_contact_id": owner_contact if asked_by_owner else None,
            "homeowner_id": homeowner_id if asked_by_owner else None,
        }

    def ticket_times(
        self, status: str, priority: str, created_at: dt.datetime | None
    ) -> dict[str, Any]:
        """created_at, first_response_at, resolved_at, updated_at, all in the past.

        Unfinished tickets were opened in the last four days (see the module docstring);
        finished ones any time in the past year, answered and resolved in a time typical of
        their priority."""
        latest = self.now - dt.timedelta(minutes=1)
        response = dt.timedelta(minutes=self.rng.randint(*RESPONSE_MINUTES[priority]))
        resolution = max(
            dt.timedelta(minutes=self.rng.randint(*RESOLUTION_MINUTES[priority])), response * 2
        )
        if created_at is None:
            if status in FINISHED_STATUSES:
                earliest = dt.datetime.combine(self.start, dt.time(), tzinfo=UTC)
                span = int((latest - resolution - earliest).total_seconds())
                created_at = (
                    latest - resolution - dt.timedelta(seconds=self.rng.randint(3600, span))
                )
            else:
                created_at = self.now - dt.timedelta(minutes=self.rng.randint(5, 4 * 24 * 60))
        answered = status != "open"
        first_response_at = min(created_at + response, latest) if answered else None
        resolved_at = (
            min(created_at + resolution, latest) if status in ("resolved", "closed") else None
        )
        if first_response_at and first_response_at < created_at:
            first_response_at = created_at
        return {
            "created_at": created_at,
            "first_response_at": first_response_at,
            "resolved_at": resolved_at,
            "updated_at": resolved_at or first_response_at or created_at,
        }

    def add_ticket_costs(self) -> None:
        """Costs in the last three months, most billable to the owner (with markup), so the
        previous month's owner statements have expense lines; one owner cost has no ticket."""
        for months_back, key, description, amount, billable_to, markup in TICKET_COSTS:
            prop = self.prop(key)
            month = add_months(self.anchor, -months_back)
            day = month + dt.timedelta(days=self.rng.randint(0, 20))
            created = self.local(prop.tz, day, dt.time(9, 30))
            ticket_id, done = self.add_ticket(
                "PC", "closed", "normal", prop=prop, category="maintenance", created_at=created
            )
            self.add(
                TicketCost,
                ticket_id=ticket_id,
                property_id=prop.id,
                cost_date=done.astimezone(prop.tz).date(),
                description=description,
                amount=Decimal(amount),
                billable_to=billable_to,
                markup_pct=Decimal(markup),
            )
        prop = self.prop("BRL-0")
        self.add(
            TicketCost,
            ticket_id=None,
            property_id=prop.id,
            cost_date=add_months(self.anchor, -1) + dt.timedelta(days=14),
            description="Annual smoke detector inspection",
            amount=Decimal("95.00"),
            billable_to="owner",
            markup_pct=Decimal("0.00"),
        )

    def add_recurring_rules(self) -> None:
        """One rule of each scope: a weekly calendar rule for two resorts (one with DST), a
        departure clean for every property, a pre-arrival inspection and a monthly filter
        change (skipped when occupied) for named properties."""
        dtstart = dt.datetime.combine(self.anchor, dt.time(9, 0))  # local wall clock, no zone
        weekly = self.add(
            RecurringRule,
            name="Weekly pool and hot tub check",
            ticket_type="PC",
            category="pool",
            priority="normal",
            title_template="Pool check - {property_name} - {date}",
            team_id=self.team_ids["PC"],
            estimated_minutes=45,
            trigger_type="calendar",
            rrule="FREQ=WEEKLY;BYDAY=MO",
            dtstart=dtstart,
            lead_minutes=24 * 60,
            scope_type="resort",
            skip_policy="none",
            missed_policy="skip",
        )
        for resort in ("KAI", "BRL"):
            self.add(
                RecurringRuleTarget, recurring_rule_id=weekly, resort_id=self.resort_ids[resort]
            )
        self.add(
            RecurringRule,
            name="Departure clean",
            ticket_type="PC",
            category="cleaning",
            priority="normal",
            title_template="Departure clean - {property_name} - {reservation_code}",
            team_id=self.team_ids["HK"],
            estimated_minutes=180,
            trigger_type="reservation",
            anchor="check_out",
            offset_minutes=0,
            local_time=dt.time(11, 0),
            scope_type="all_properties",
        )
        inspection = self.add(
            RecurringRule,
            name="Pre-arrival inspection",
            ticket_type="PC",
            category="maintenance",
            priority="low",
            title_template="Pre-arrival inspection - {property_name} - {reservation_code}",
            team_id=self.team_ids["PC"],
            estimated_minutes=30,
            trigger_type="reservation",
            anchor="check_in",
            offset_minutes=-24 * 60,
            local_time=dt.time(15, 0),
            scope_type="property",
        )
        filters = self.add(
            RecurringRule,
            name="HVAC filter change",
            ticket_type="PC",
            category="hvac",
            priority="low",
            title_template="Change HVAC filters - {property_name} - {date}",
            team_id=self.team_ids["PC"],
            estimated_minutes=30,
            trigger_type="calendar",
            rrule="FREQ=MONTHLY;BYDAY=1TU",
            dtstart=dtstart,
            lead_minutes=0,
            scope_type="property",
            skip_policy="skip_if_occupied",
            missed_policy="skip",
        )
        for rule, keys in (
            (inspection, ("KAI-0", "BRL-0", "ALF-0")),
            (filters, ("ALF-1", "ALF-2")),
        ):
            for key in keys:
                self.add(RecurringRuleTarget, recurring_rule_id=rule, property_id=self.prop(key).id)

    # -- linen ---------------------------------------------------------------------------------

    def add_linen(self) -> None:
        for spec in LINEN_TYPES:
            self.linen_type_ids[spec.type_code] = self.add(
                LinenType,
                type_code=spec.type_code,
                type_name=spec.type_name,
                category=spec.category,
                size=spec.size,
                standard_cost=spec.standard_cost,
                sort_order=len(self.linen_type_ids) + 1,
            )
        for prop in self.properties:
            requirement = self.add_pars(prop)
            if prop.status == "onboarding":
                continue  # not counted yet: linen.reorder has nothing to go on
            self.add_counts(prop, requirement)
            self.add_deliveries(prop)
        self.add_linen_issues()
        self.add_linen_orders()

    def add_pars(self, prop: DemoProperty) -> dict[str, int]:
        """Par rows; returns the property's requirement per type code (what counts expect)."""
        per_room = property_pars(prop.bedrooms)
        if prop.key not in ROOM_LEVEL_PARS:
            for code, par in per_room.items():
                self.add_par(prop, None, code, par)
            return per_room
        requirement: dict[str, int] = {}
        for b, room_id in enumerate(prop.bedroom_ids):
            for code, par in bedroom_pars(primary=b == 0).items():
                self.add_par(prop, room_id, code, par)
                requirement[code] = requirement.get(code, 0) + par
        for code in ("HAND_TOWEL", "WASHCLOTH"):
            self.add_par(prop, None, code, per_room[code])
            requirement[code] = per_room[code]
        if prop.key == "KAI-8":  # a property-level row beside room-level ones wins
            self.add_par(prop, None, "BATH_TOWEL", per_room["BATH_TOWEL"])
            requirement["BATH_TOWEL"] = per_room["BATH_TOWEL"]
        return requirement

    def add_par(self, prop: DemoProperty, room_id: uuid.UUID | None, code: str, par: int) -> None:
        # Lisbon leaves min/max empty, so par_quantity stands in for both.
        lisbon = prop.resort.code == "ALF"
        self.add(
            LinenPar,
            property_id=prop.id,
            room_id=room_id,
            linen_type_id=self.linen_type_ids[code],
            par_quantity=par,
            min_quantity=None if lisbon else max(1, par * 7 // 10),
            max_quantity=None if lisbon else par + par // 4,
        )

    def add_counts(self, prop: DemoProperty, requirement: dict[str, int]) -> None:
        """An older count and the latest one; the latest is short of par at some properties."""
        short = prop.key in LINEN_SHORT or prop.index % 3 == 0
        counter = self.rng.choice(self.team_members["HK"])
        for days_before, latest in ((45, False), (15, True)):
            counts = {}
            for code, expected in requirement.items():
                if (
                    latest
                    and short
                    and code in ("BATH_TOWEL", "PILLOW_CASE", "SHEET_SET_QUEEN", "SHEET_SET_KING")
                ):
                    counted = expected // 2
                else:
                    counted = max(0, expected + self.rng.randint(-2, 3))
                counts[code] = {
                    "counted": counted,
                    "expected": expected,
                    "variance": counted - expected,
                }
            missing_value = sum(
                (
                    -c["variance"] * self.standard_cost(code)
                    for code, c in counts.items()
                    if c["variance"] < 0
                ),
                Decimal("0.00"),
            )
            self.add(
                LinenCount,
                property_id=prop.id,
                counted_by_id=counter,
                count_date=self.anchor - dt.timedelta(days=days_before),
                count_type="routine",
                counts=counts,
                total_items_counted=sum(c["counted"] for c in counts.values()),
                total_discrepancies=sum(abs(c["variance"]) for c in counts.values()),
                discrepancy_value=missing_value,
                status="verified" if not latest else "completed",
            )

    def standard_cost(self, code: str) -> Decimal:
        return next(spec.standard_cost for spec in LINEN_TYPES if spec.type_code == code)

    def add_deliveries(self, prop: DemoProperty) -> None:
        """Exchanges before and after the latest count; the later one moves on-hand by
        delivered - picked up."""
        if prop.linen_vendor is None:
            return
        receiver = self.rng.choice(self.team_members["HK"])
        for days_before in (20, 7):
            delivered = {
                "BATH_TOWEL": 12 + 2 * prop.bedrooms,
                "HAND_TOWEL": 6,
                "PILLOW_CASE": 4 * prop.bedrooms,
            }
            picked_up = {code: max(0, n - self.rng.randint(0, 4)) for code, n in delivered.items()}
            self.add(
                LinenDelivery,
                property_id=prop.id,
                linen_service_company_id=prop.linen_vendor,
                delivery_date=self.anchor - dt.timedelta(days=days_before),
                delivery_time=dt.time(10, 30),
                delivery_type="exchange",
                delivered_by="Route driver",
                received_by_id=receiver,
                items_delivered=delivered,
                items_picked_up=picked_up,
                invoice_amount=Decimal(sum(delivered.values())) * Decimal("1.85"),
                status="completed",
            )

    def add_linen_issues(self) -> None:
        """Missing and damaged linen after the latest count (they lower on-hand), a stain (does
        not) and a loss before the count (already in the count)."""
        for key, code, kind, qty, days_before, cause in (
            ("KAI-2", "BATH_TOWEL", "missing", 3, 10, "guest"),
            ("KAI-2", "SHEET_SET_QUEEN", "damage", 1, 5, "laundry"),
            ("BRL-4", "PILLOW_CASE", "stain", 2, 8, "guest"),
            ("ALF-6", "BATH_TOWEL", "missing", 4, 3, "unknown"),
            ("ALF-6", "HAND_TOWEL", "damage", 2, 30, "wear"),
            ("BRL-5", "WASHCLOTH", "missing", 5, 4, "guest"),
        ):
            prop = self.prop(key)
            past = [s for s in self.stays[key] if s.check_out <= self.anchor and s.kind == "guest"]
            self.add(
                LinenIssue,
                linen_type_id=self.linen_type_ids[code],
                property_id=prop.id,
                reported_by_id=self.team_members["HK"][1],
                reservation_id=past[-1].id if past and cause == "guest" else None,
                issue_type=kind,
                issue_date=self.anchor - dt.timedelta(days=days_before),
                quantity=qty,
                description=f"{qty} x {code.replace('_', ' ').lower()} {kind}",
                estimated_value=self.standard_cost(code) * qty,
                cause=cause,
                is_billable=cause == "guest",
                status="open",
            )

    def add_linen_orders(self) -> None:
        """Two open orders (on order for the reorder job) and a received one (not)."""
        for key, code, qty, received, status, days_before in (
            ("KAI-0", "BATH_TOWEL", 24, None, "ordered", 6),
            ("BRL-3", "SHEET_SET_KING", 6, 2, "partial", 12),
            ("ALF-0", "PILLOW_CASE", 20, 20, "received", 40),
        ):
            prop = self.prop(key)
            self.add(
                LinenOrder,
                linen_type_id=self.linen_type_ids[code],
                supplier_company_id=prop.linen_vendor,
                ordered_by_id=self.team_members["HK"][0],
                destination_property_id=prop.id,
                order_date=self.anchor - dt.timedelta(days=days_before),
                quantity_ordered=qty,
                unit_cost=self.standard_cost(code),
                quantity_received=received,
                status=status,
                actual_delivery_date=self.anchor - dt.timedelta(days=days_before - 5)
                if status == "received"
                else None,
            )

    # -- storage -------------------------------------------------------------------------------

    def add_storage(self) -> None:
        """A warehouse per resort (two with an area inside) and catalogue stock; four rows at or
        below their reorder point, one of them relying on the catalogue's reorder quantity."""
        locations: dict[str, uuid.UUID] = {}
        for code, name in (
            ("WH-KAI", "Kailua warehouse"),
            ("WH-BRL", "Asheville warehouse"),
            ("WH-LIS", "Lisbon store room"),
        ):
            locations[code] = self.add(
                StorageLocation,
                location_code=code,
                location_name=name,
                location_type="warehouse",
                is_active=True,
            )
            if code != "WH-LIS":
                self.add(
                    StorageLocation,
                    parent_location_id=locations[code],
                    location_code=f"{code}-A",
                    location_name=f"{name}, area A",
                    location_type="area",
                    is_active=True,
                )
        items: dict[str, uuid.UUID] = {}
        for type_code, name, sku, cost, point, quantity, consumable in STORAGE_ITEMS:
            items[sku] = self.add(
                InventoryItem,
                type_code=type_code,
                supplier_company_id=self.companies["supplier"],
                item_name=name,
                sku=sku,
                standard_cost=Decimal(cost),
                last_cost=Decimal(cost),
                is_consumable=consumable,
                reorder_point=point,
                reorder_quantity=quantity,
            )
        low = {
            ("WH-KAI", "SD-10Y"): (8, 0, 24),
            ("WH-BRL", "CO-PLG"): (6, 0, 12),
            ("WH-LIS", "FX-25"): (7, 3, 10),
            ("WH-KAI", "PL-CL25"): (3, 0, None),
        }
        for location in ("WH-KAI", "WH-BRL", "WH-LIS"):
            for type_code, _name, sku, cost, point, quantity, _consumable in STORAGE_ITEMS:
                if location == "WH-LIS" and type_code == "POOL":
                    continue  # no pools to look after in Lisbon
                on_hand, reserved, reorder_qty = low.get(
                    (location, sku), ((point or 2) * 3 + self.rng.randint(0, 10), 0, quantity)
                )
                self.add(
                    StorageInventory,
                    item_id=items[sku],
                    location_id=locations[location],
                    quantity_on_hand=on_hand,
                    quantity_reserved=reserved,
                    reorder_point=point,
                    reorder_quantity=reorder_qty,
                    unit_cost=Decimal(cost),
                    last_count_date=self.anchor - dt.timedelta(days=10),
                    last_count_quantity=on_hand,
                )

    # -- channels ------------------------------------------------------------------------------

    def add_channels(self) -> None:
        """One connection per channel and one mapping per mapped property, whose feed URL points
        at a local test server (nothing serves it yet: the sync records an error, as it should)."""
        connections = {
            channel: self.add(
                ChannelConnection,
                channel=channel,
                name=name,
                status="active",
                sync_interval_minutes=15,
            )
            for channel, name in (
                ("airbnb", "Airbnb"),
                ("vrbo", "Vrbo"),
                ("booking_com", "Booking.com"),
            )
        }
        for channel, keys in (
            ("airbnb", "KAI-0 KAI-1 KAI-2 KAI-3 KAI-4 KAI-5 BRL-0 BRL-1 BRL-2 BRL-3"),
            ("vrbo", "BRL-4 BRL-5 BRL-6 BRL-7 ALF-0 ALF-1 ALF-2 ALF-3"),
            ("booking_com", "ALF-4 ALF-5 ALF-6 ALF-7 ALF-8"),
        ):
            for key in keys.split():
                prop = self.prop(key)
                self.add(
                    ChannelMapping,
                    connection_id=connections[channel],
                    property_id=prop.id,
                    external_listing_id=str(self.rng.randint(10**7, 10**8 - 1)),
                    import_url=f"http://127.0.0.1:8765/feeds/{prop.code}.ics",
                    is_active=True,
                )


# (type_code, name, sku, standard cost, reorder point, reorder quantity, consumable)
STORAGE_ITEMS = (
    ("SMOK", "Smoke detector, 10-year battery", "SD-10Y", "24.99", 10, 24, False),
    ("CMON", "CO monitor, plug-in", "CO-PLG", "34.50", 6, 12, False),
    ("FEXT", "Fire extinguisher, 2.5 lb ABC", "FX-25", "39.00", 5, 10, False),
    ("COFF", "Drip coffee maker, 12-cup", "CM-12", "45.00", 3, 6, False),
    ("VACU", "Cordless stick vacuum", "VAC-CS", "189.00", 2, 4, False),
    ("DISH", "Dinnerware set, 16 pieces", "DW-16", "59.00", 4, 8, False),
    ("TWLB", "Bath towel, spare stock", "TW-B-SP", "12.50", 40, 120, False),
    ("POOL", "Pool chlorine tablets, 25 lb", "PL-CL25", "89.00", 4, 10, True),
    ("TLET", "Smart TV, 55-inch", "TV-55", "429.00", 1, 2, False),
    ("OUTD", "Patio chair", "PT-CH", "79.00", None, None, False),
)


def reserve_for(index: int) -> Decimal:
    """Most owners keep no reserve; some hold back $500 or $250 for upcoming repairs."""
    if index % 4 == 0:
        return Decimal("500.00")
    if index % 7 == 1:
        return Decimal("250.00")
    return Decimal("0.00")


def property_pars(bedrooms: int) -> dict[str, int]:
    """Three sets of everything (in use, at the laundry, on the shelf), two guests a bedroom,
    a king bed in the primary bedroom and queens elsewhere."""
    guests = 2 * bedrooms
    pars = {
        "BATH_TOWEL": 3 * guests,
        "HAND_TOWEL": 3 * (bedrooms + 1),
        "WASHCLOTH": 3 * guests,
        "SHEET_SET_KING": 3,
        "SHEET_SET_QUEEN": 3 * (bedrooms - 1),
        "PILLOW_CASE": 3 * 4 * bedrooms,
    }
    return {code: n for code, n in pars.items() if n > 0}


def bedroom_pars(primary: bool) -> dict[str, int]:
    """The same needs, per bedroom (for properties that keep room-level pars)."""
    sheets = "SHEET_SET_KING" if primary else "SHEET_SET_QUEEN"
    return {"BATH_TOWEL": 6, sheets: 3, "PILLOW_CASE": 12}


def channel_commission(source: str, gross_rent: Decimal, cleaning_fee: Decimal) -> Decimal:
    """Airbnb's split-fee host share and Vrbo's commission + payment processing apply to rent
    and cleaning; Booking.com's commission to the room rate only; direct bookings pay none."""
    rate = CHANNEL_RATES.get(source)
    if rate is None:
        return Decimal("0.00")
    base = gross_rent if source == "booking_com" else gross_rent + cleaning_fee
    return (base * rate).quantize(CENT, ROUND_HALF_UP)


def us_holidays(year: int) -> list[tuple[dt.date, str]]:
    """The office calendar's closures (fixed dates, and Thanksgiving: fourth Thursday of Nov)."""
    november = dt.date(year, 11, 1)
    thanksgiving = november + dt.timedelta(days=(3 - november.weekday()) % 7 + 21)
    return [
        (dt.date(year, 1, 1), "New Year's Day"),
        (dt.date(year, 7, 4), "Independence Day"),
        (thanksgiving, "Thanksgiving"),
        (dt.date(year, 12, 25), "Christmas Day"),
    ]
