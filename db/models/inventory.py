"""Schema inventory: the product catalogue, where every physical item is, and the linen subsystem.

Fifteen tables, after the inventory seed (Inventory Schema — Complete Table Map v4.1):

- catalogue and stock: ``inventory_items`` (the universal catalogue, typed by
  ``ref.inventory_item_types``), ``room_inventory`` (items in guest rooms), ``owner_inventory``
  (the homeowner's own belongings), ``company_inventory`` (company equipment), warehouse stock in
  ``storage_inventory`` at ``storage_locations``, purchase orders in ``inventory_purchases`` and
  the movement audit log ``inventory_events``;
- linen: ``linen_types``, individually tracked ``linen_items``, par levels (``linen_pars``),
  service deliveries, periodic counts, issues (damage, loss) and purchase orders
  (``linen_orders``).

The ``linen.reorder`` and ``inventory.reorder_stock`` jobs (SPEC 6.3) read the pars, counts,
deliveries, issues and stock here and write ``linen_orders`` / ``inventory_purchases``; the
partial unique indexes on those two tables are what makes "at most one open order" a database
guarantee rather than a hope.

Deliberate departures from the seed, each because SPEC.md decides:
- primary keys default to ``ops.uuid_generate_v7()`` (the seed writes ``generate_uuid_v7()``);
- money is ``numeric(12,2)`` everywhere (SPEC 2; the seed has many ``numeric(10,2)``, which
  this only widens); non-money decimals keep the seed's precision;
- ``idx_storage_inv_reorder`` covers ``quantity_available <= reorder_point``, the reorder rule
  of SPEC 6.3, instead of the seed's ``quantity_on_hand <= reorder_point``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    ARRAY,
    Computed,
    FetchedValue,
    ForeignKey,
    Index,
    Numeric,
    Text,
    TextClause,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, business_id, check_in, created_at, money, updated_at, uuid_pk

SCHEMA = "inventory"

# inventory_items.item_id is "INV-{type_code}-NNNNNN" (INV-TWLB-010001). A server default cannot
# read another column of the row, so the column has none: a BEFORE INSERT trigger created by the
# migration fills it when NULL from this sequence (START 10001), as
# INVENTORY_ITEM_ID_TRIGGER_SQL shows. NOT NULL is checked after BEFORE triggers run, so an
# insert may omit item_id like any other business ID.
INVENTORY_ITEM_ID_SEQUENCE = "inventory.inventory_items_item_id_seq"
INVENTORY_ITEM_ID_TRIGGER_SQL = (
    "'INV-' || NEW.type_code || '-' || regexp_replace(to_char(nextval("
    f"'{INVENTORY_ITEM_ID_SEQUENCE}'), 'FM0000000000000000000'), '^0{{0,13}}', '')"
)

# Allowed values of the status and kind columns, as the seed lists them (CHECKs, not enums).
ITEM_CONDITIONS = ("new", "good", "fair", "poor")
OWNER_ITEM_CONDITIONS = ("excellent", "good", "fair", "poor")

INVENTORY_ITEM_STATUSES = ("active", "inactive", "discontinued")
UNITS_OF_MEASURE = ("each", "pack", "case", "set")
ROOM_INVENTORY_STATUSES = ("good", "damaged", "missing", "replaced")
OWNER_INVENTORY_CATEGORIES = ("furniture", "electronics", "art", "decor", "other")
OWNER_INVENTORY_STATUSES = ("at_property", "in_storage", "removed", "damaged", "lost")
COMPANY_INVENTORY_STATUSES = ("available", "assigned", "in_use", "maintenance", "retired")
DEPRECIATION_METHODS = ("straight_line", "declining_balance")
STORAGE_LOCATION_TYPES = ("warehouse", "area", "aisle", "shelf", "bin")
INVENTORY_PURCHASE_STATUSES = ("pending", "ordered", "shipped", "delivered", "cancelled", "partial")
# Not yet delivered nor cancelled: stock still to come, and at most one per item and location.
INVENTORY_PURCHASE_OPEN_STATUSES = ("pending", "ordered", "shipped", "partial")
INVENTORY_EVENT_TYPES = (
    "received",
    "issued",
    "transferred",
    "adjusted",
    "counted",
    "damaged",
    "disposed",
    "returned",
)
INVENTORY_EVENT_REFERENCE_TYPES = ("purchase", "ticket", "inspection", "adjustment", "count")

LINEN_CATEGORIES = ("towels", "sheets", "blankets", "pillows", "other")
LINEN_ITEM_STATUSES = ("in_service", "damaged", "retired", "lost", "at_laundry")
LINEN_ITEM_LOCATIONS = ("property", "laundry", "storage")
LINEN_DELIVERY_TYPES = ("exchange", "purchase", "rental")
LINEN_DELIVERY_STATUSES = ("scheduled", "in_transit", "completed", "cancelled")
LINEN_COUNT_TYPES = ("routine", "spot_check", "audit", "turnover")
LINEN_COUNT_STATUSES = ("in_progress", "completed", "verified")
LINEN_ISSUE_TYPES = ("damage", "stain", "missing", "wear", "quality")
# The issue types that take linen out of stock for the reorder job's on-hand figure (SPEC 6.3).
LINEN_ISSUE_TYPES_REDUCING_STOCK = ("missing", "damage")
LINEN_ISSUE_CAUSES = ("guest", "wear", "laundry", "unknown")
LINEN_ISSUE_STATUSES = ("open", "investigating", "resolved", "written_off")
LINEN_ORDER_STATUSES = ("pending", "ordered", "shipped", "received", "cancelled", "partial")
# An order counts as "on order" until received or cancelled (SPEC 6.3).
LINEN_ORDER_OPEN_STATUSES = ("pending", "ordered", "shipped", "partial")


def _fk(target: str, ondelete: str) -> ForeignKey:
    """A foreign key with the seed's ON DELETE action; every inventory FK has ON UPDATE CASCADE."""
    return ForeignKey(target, ondelete=ondelete, onupdate="CASCADE")


def _status_in(values: tuple[str, ...]) -> TextClause:
    """The predicate of a partial index over some statuses."""
    return text("status IN (" + ", ".join(f"'{v}'" for v in values) + ")")


class InventoryItem(Base):
    """The universal product catalogue every other inventory table points at."""

    __tablename__ = "inventory_items"
    __table_args__ = (
        check_in("unit_of_measure", UNITS_OF_MEASURE),
        check_in("status", INVENTORY_ITEM_STATUSES),
        # idx_inv_items_id: the UNIQUE constraint of item_id serves as that index.
        Index("idx_inv_items_type", "type_code"),
        Index("idx_inv_items_supplier", "supplier_company_id"),
        Index("idx_inv_items_sku", "sku", postgresql_where=text("sku IS NOT NULL")),
        Index(
            "idx_inv_items_replacement",
            "replacement_item_id",
            postgresql_where=text("replacement_item_id IS NOT NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # Filled by the trigger described at INVENTORY_ITEM_ID_SEQUENCE; FetchedValue renders no DDL,
    # it only tells the ORM the database supplies the value so it is read back after an insert.
    item_id: Mapped[str] = mapped_column(nullable=False, unique=True, server_default=FetchedValue())
    type_code: Mapped[str] = mapped_column(_fk("ref.inventory_item_types.type_code", "RESTRICT"))
    supplier_company_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("directory.companies.id", "SET NULL")
    )
    replacement_item_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.inventory_items.id", "SET NULL")
    )
    item_name: Mapped[str]
    description: Mapped[str | None]
    sku: Mapped[str | None]
    upc: Mapped[str | None]
    brand: Mapped[str | None]
    model: Mapped[str | None]
    unit_of_measure: Mapped[str] = mapped_column(server_default="each")
    units_per_pack: Mapped[int | None] = mapped_column(server_default=text("1"))
    standard_cost: Mapped[Decimal | None] = mapped_column(money())
    last_cost: Mapped[Decimal | None] = mapped_column(money())
    list_price: Mapped[Decimal | None] = mapped_column(money())
    weight_lbs: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    dimensions: Mapped[str | None]
    is_consumable: Mapped[bool | None] = mapped_column(server_default=text("false"))
    is_trackable: Mapped[bool | None] = mapped_column(server_default=text("true"))
    requires_inspection: Mapped[bool | None] = mapped_column(server_default=text("false"))
    typical_lifespan_months: Mapped[int | None]
    warranty_months: Mapped[int | None]
    # Catalogue-wide defaults; a storage_inventory row may override both per location.
    reorder_point: Mapped[int | None]
    reorder_quantity: Mapped[int | None]
    is_discontinued: Mapped[bool | None] = mapped_column(server_default=text("false"))
    discontinued_date: Mapped[dt.date | None]
    notes: Mapped[str | None]
    status: Mapped[str | None] = mapped_column(server_default="active")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class RoomInventory(Base):
    """Items placed in guest rooms, checked against expected_quantity during inspections."""

    __tablename__ = "room_inventory"
    __table_args__ = (
        check_in("status", ROOM_INVENTORY_STATUSES),
        check_in("condition", ITEM_CONDITIONS),
        # One item per location per room. location_in_room is nullable: NULLS NOT DISTINCT
        # (PostgreSQL 15+) keeps "no particular spot" to one row too, quantity counts the pieces.
        UniqueConstraint(
            "room_id", "item_id", "location_in_room", postgresql_nulls_not_distinct=True
        ),
        # idx_room_inv_id: the UNIQUE constraint of room_inventory_id serves as that index.
        Index("idx_room_inv_room", "room_id"),
        Index("idx_room_inv_item", "item_id"),
        Index("idx_room_inv_inspection", "last_inspection_id"),
        Index("idx_room_inv_status", "status", postgresql_where=text("status != 'good'")),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    room_inventory_id: Mapped[str] = business_id(
        SCHEMA, "room_inventory", "room_inventory_id", "RINV"
    )
    room_id: Mapped[uuid.UUID] = mapped_column(_fk("property.rooms.id", "CASCADE"))
    item_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.inventory_items.id", "RESTRICT"))
    last_inspection_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("property.inspections.id", "SET NULL")
    )
    quantity: Mapped[int] = mapped_column(server_default=text("1"))
    # The room's par for this item.
    expected_quantity: Mapped[int | None] = mapped_column(server_default=text("1"))
    status: Mapped[str | None] = mapped_column(server_default="good")
    condition: Mapped[str | None]
    condition_notes: Mapped[str | None]
    location_in_room: Mapped[str | None]
    serial_number: Mapped[str | None]
    purchase_date: Mapped[dt.date | None]
    purchase_cost: Mapped[Decimal | None] = mapped_column(money())
    warranty_expiry: Mapped[dt.date | None]
    last_inspected_at: Mapped[dt.datetime | None]
    last_replaced_at: Mapped[dt.datetime | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class OwnerInventory(Base):
    """The homeowner's own belongings kept at a rental (insurance, move-out, damage claims)."""

    __tablename__ = "owner_inventory"
    __table_args__ = (
        check_in("category", OWNER_INVENTORY_CATEGORIES),
        check_in("condition", OWNER_ITEM_CONDITIONS),
        check_in("status", OWNER_INVENTORY_STATUSES),
        # idx_owner_inv_id: the UNIQUE constraint of owner_inventory_id serves as that index.
        Index("idx_owner_inv_owner", "homeowner_id"),
        Index("idx_owner_inv_property", "property_id"),
        Index("idx_owner_inv_item", "item_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    owner_inventory_id: Mapped[str] = business_id(
        SCHEMA, "owner_inventory", "owner_inventory_id", "OINV"
    )
    homeowner_id: Mapped[uuid.UUID] = mapped_column(_fk("directory.homeowners.id", "CASCADE"))
    property_id: Mapped[uuid.UUID | None] = mapped_column(_fk("property.properties.id", "SET NULL"))
    # Only when the belonging matches a catalogue item; item_name always describes it.
    item_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.inventory_items.id", "SET NULL")
    )
    item_name: Mapped[str]
    category: Mapped[str | None]
    quantity: Mapped[int] = mapped_column(server_default=text("1"))
    estimated_value: Mapped[Decimal | None] = mapped_column(money())
    purchase_date: Mapped[dt.date | None]
    purchase_price: Mapped[Decimal | None] = mapped_column(money())
    serial_number: Mapped[str | None]
    condition: Mapped[str | None]
    condition_notes: Mapped[str | None]
    location_description: Mapped[str | None]
    photo_urls: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    is_insured: Mapped[bool | None] = mapped_column(server_default=text("false"))
    insurance_value: Mapped[Decimal | None] = mapped_column(money())
    do_not_move: Mapped[bool | None] = mapped_column(server_default=text("false"))
    special_instructions: Mapped[str | None]
    notes: Mapped[str | None]
    status: Mapped[str | None] = mapped_column(server_default="at_property")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class CompanyInventory(Base):
    """Company equipment and assets: assignment, location, maintenance and depreciation."""

    __tablename__ = "company_inventory"
    __table_args__ = (
        check_in("status", COMPANY_INVENTORY_STATUSES),
        check_in("condition", ITEM_CONDITIONS),
        check_in("depreciation_method", DEPRECIATION_METHODS),
        # idx_company_inv_id: the UNIQUE constraint of company_inventory_id serves as that index.
        Index("idx_company_inv_item", "item_id"),
        Index(
            "idx_company_inv_assigned",
            "assigned_to_id",
            postgresql_where=text("assigned_to_id IS NOT NULL"),
        ),
        Index(
            "idx_company_inv_location",
            "current_property_id",
            postgresql_where=text("current_property_id IS NOT NULL"),
        ),
        # The seed's asset_tag UNIQUE, as its named partial unique index (NULLs never collide in
        # either form, so one index does both jobs; ON CONFLICT must repeat the WHERE).
        Index(
            "idx_company_inv_asset_tag",
            "asset_tag",
            unique=True,
            postgresql_where=text("asset_tag IS NOT NULL"),
        ),
        Index("ix_company_inventory_vendor_company_id", "vendor_company_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    company_inventory_id: Mapped[str] = business_id(
        SCHEMA, "company_inventory", "company_inventory_id", "CINV"
    )
    item_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.inventory_items.id", "RESTRICT"))
    assigned_to_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    current_property_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("property.properties.id", "SET NULL")
    )
    asset_tag: Mapped[str | None]
    serial_number: Mapped[str | None]
    status: Mapped[str | None] = mapped_column(server_default="available")
    condition: Mapped[str | None]
    purchase_date: Mapped[dt.date | None]
    purchase_cost: Mapped[Decimal | None] = mapped_column(money())
    vendor_company_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("directory.companies.id", "SET NULL")
    )
    warranty_expiry: Mapped[dt.date | None]
    depreciation_method: Mapped[str | None]
    useful_life_years: Mapped[int | None]
    salvage_value: Mapped[Decimal | None] = mapped_column(money())
    current_value: Mapped[Decimal | None] = mapped_column(money())
    last_maintenance_date: Mapped[dt.date | None]
    next_maintenance_date: Mapped[dt.date | None]
    maintenance_notes: Mapped[str | None]
    location_notes: Mapped[str | None]
    notes: Mapped[str | None]
    retired_date: Mapped[dt.date | None]
    retirement_reason: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class StorageInventory(Base):
    """Bulk stock per catalogue item, storage location and lot; the reorder_stock job's input."""

    __tablename__ = "storage_inventory"
    __table_args__ = (
        # One record per item/location/lot. lot_number is nullable: NULLS NOT DISTINCT
        # (PostgreSQL 15+) keeps un-lotted stock of an item at a location to one row, so the
        # reorder job never sees the same stock split in two.
        UniqueConstraint(
            "item_id", "location_id", "lot_number", postgresql_nulls_not_distinct=True
        ),
        # idx_storage_inv_id: the UNIQUE constraint of storage_inventory_id serves as that index.
        Index("idx_storage_inv_item", "item_id"),
        Index("idx_storage_inv_location", "location_id"),
        # The reorder queue. SPEC 6.3 reorders on quantity_available (the seed indexed
        # quantity_on_hand <= reorder_point), so the index follows the predicate the job uses.
        Index(
            "idx_storage_inv_reorder",
            "quantity_available",
            postgresql_where=text("quantity_available <= reorder_point"),
        ),
        Index(
            "idx_storage_inv_expiry",
            "expiration_date",
            postgresql_where=text("expiration_date IS NOT NULL"),
        ),
        Index("ix_storage_inventory_last_counted_by_id", "last_counted_by_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    storage_inventory_id: Mapped[str] = business_id(
        SCHEMA, "storage_inventory", "storage_inventory_id", "SINV"
    )
    item_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.inventory_items.id", "RESTRICT"))
    location_id: Mapped[uuid.UUID] = mapped_column(
        _fk("inventory.storage_locations.id", "RESTRICT")
    )
    last_counted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    quantity_on_hand: Mapped[int] = mapped_column(server_default=text("0"))
    # NOT NULL (the seed leaves it nullable): a NULL here would make quantity_available NULL and
    # hide the row from the reorder job.
    quantity_reserved: Mapped[int] = mapped_column(server_default=text("0"))
    quantity_available: Mapped[int] = mapped_column(
        Computed("quantity_on_hand - quantity_reserved", persisted=True)
    )
    # Location-specific overrides of the catalogue item's reorder settings.
    reorder_point: Mapped[int | None]
    reorder_quantity: Mapped[int | None]
    lot_number: Mapped[str | None]
    expiration_date: Mapped[dt.date | None]
    last_count_date: Mapped[dt.date | None]
    last_count_quantity: Mapped[int | None]
    unit_cost: Mapped[Decimal | None] = mapped_column(money())
    total_value: Mapped[Decimal | None] = mapped_column(
        money(), Computed("quantity_on_hand * unit_cost", persisted=True)
    )
    bin_location: Mapped[str | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class StorageLocation(Base):
    """Warehouse locations, nested warehouse > area > aisle > shelf > bin by parent_location_id."""

    __tablename__ = "storage_locations"
    __table_args__ = (
        check_in("location_type", STORAGE_LOCATION_TYPES),
        # The seed's location_code UNIQUE under the name of its idx_storage_loc_code index: one
        # index, not two, and still a real constraint for ON CONFLICT (location_code).
        UniqueConstraint("location_code", name="idx_storage_loc_code"),
        # idx_storage_loc_id: the UNIQUE constraint of location_id serves as that index.
        Index("idx_storage_loc_parent", "parent_location_id"),
        Index("idx_storage_loc_type", "location_type"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # LOC-0001: four digits from 1, as the seed shows.
    location_id: Mapped[str] = business_id(
        SCHEMA, "storage_locations", "location_id", "LOC", width=4, start=1
    )
    # RESTRICT: a location with children cannot be deleted out from under them.
    parent_location_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.storage_locations.id", "RESTRICT")
    )
    location_code: Mapped[str]
    location_name: Mapped[str]
    location_type: Mapped[str]
    description: Mapped[str | None]
    address: Mapped[str | None]
    capacity_units: Mapped[int | None]
    capacity_volume_cuft: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    is_climate_controlled: Mapped[bool | None] = mapped_column(server_default=text("false"))
    temperature_range: Mapped[str | None]
    is_secure: Mapped[bool | None] = mapped_column(server_default=text("false"))
    access_notes: Mapped[str | None]
    sort_order: Mapped[int | None]
    is_active: Mapped[bool | None] = mapped_column(server_default=text("true"))
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class InventoryPurchase(Base):
    """Purchase orders for catalogue items; inventory.reorder_stock creates the automatic ones."""

    __tablename__ = "inventory_purchases"
    __table_args__ = (
        check_in("status", INVENTORY_PURCHASE_STATUSES),
        # idx_inv_purch_id: the UNIQUE constraint of purchase_id serves as that index.
        Index("idx_inv_purch_item", "item_id"),
        Index("idx_inv_purch_supplier", "supplier_company_id"),
        Index(
            "idx_inv_purch_status",
            "status",
            postgresql_where=text("status NOT IN ('delivered', 'cancelled')"),
        ),
        Index("idx_inv_purch_destination", "destination_property_id"),
        Index("idx_inv_purch_po", "po_number", postgresql_where=text("po_number IS NOT NULL")),
        Index("ix_inventory_purchases_destination_location_id", "destination_location_id"),
        Index("ix_inventory_purchases_ordered_by_id", "ordered_by_id"),
        # SPEC 6.3: one open purchase per item and destination location, enforced here so two
        # concurrent reorder runs cannot both insert (the loser's ON CONFLICT does nothing).
        Index(
            "uq_inventory_purchases_open_per_item_location",
            "item_id",
            "destination_location_id",
            unique=True,
            postgresql_where=_status_in(INVENTORY_PURCHASE_OPEN_STATUSES),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    purchase_id: Mapped[str] = business_id(SCHEMA, "inventory_purchases", "purchase_id", "INVPO")
    item_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.inventory_items.id", "RESTRICT"))
    supplier_company_id: Mapped[uuid.UUID] = mapped_column(
        _fk("directory.companies.id", "RESTRICT")
    )
    destination_property_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("property.properties.id", "SET NULL")
    )
    destination_location_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.storage_locations.id", "SET NULL")
    )
    ordered_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    po_number: Mapped[str | None]
    order_date: Mapped[dt.date]
    quantity_ordered: Mapped[int]
    unit_cost: Mapped[Decimal] = mapped_column(money())
    total_cost: Mapped[Decimal] = mapped_column(
        money(), Computed("quantity_ordered * unit_cost", persisted=True)
    )
    shipping_cost: Mapped[Decimal | None] = mapped_column(money(), server_default=text("0"))
    tax_amount: Mapped[Decimal | None] = mapped_column(money(), server_default=text("0"))
    grand_total: Mapped[Decimal] = mapped_column(
        money(),
        Computed(
            "quantity_ordered * unit_cost + COALESCE(shipping_cost, 0) + COALESCE(tax_amount, 0)",
            persisted=True,
        ),
    )
    expected_delivery_date: Mapped[dt.date | None]
    actual_delivery_date: Mapped[dt.date | None]
    quantity_received: Mapped[int | None]
    # NOT NULL (the seed leaves it nullable): a NULL status would slip past the open-order
    # unique index above.
    status: Mapped[str] = mapped_column(server_default="pending")
    tracking_number: Mapped[str | None]
    carrier: Mapped[str | None]
    invoice_number: Mapped[str | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class InventoryEvent(Base):
    """Append-only audit log of every inventory movement and change (so no updated_at)."""

    __tablename__ = "inventory_events"
    __table_args__ = (
        check_in("event_type", INVENTORY_EVENT_TYPES),
        check_in("reference_type", INVENTORY_EVENT_REFERENCE_TYPES),
        # idx_inv_events_id: the UNIQUE constraint of event_id serves as that index.
        Index("idx_inv_events_item", "item_id"),
        Index(
            "idx_inv_events_property",
            "property_id",
            postgresql_where=text("property_id IS NOT NULL"),
        ),
        Index("idx_inv_events_date", "event_timestamp"),
        Index("idx_inv_events_type", "event_type"),
        Index(
            "idx_inv_events_ref",
            "reference_type",
            "reference_id",
            postgresql_where=text("reference_id IS NOT NULL"),
        ),
        Index("ix_inventory_events_performed_by_id", "performed_by_id"),
        Index("ix_inventory_events_from_location_id", "from_location_id"),
        Index("ix_inventory_events_to_location_id", "to_location_id"),
        Index("ix_inventory_events_from_room_id", "from_room_id"),
        Index("ix_inventory_events_to_room_id", "to_room_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    event_id: Mapped[str] = business_id(SCHEMA, "inventory_events", "event_id", "INVEV")
    item_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.inventory_items.id", "RESTRICT"))
    property_id: Mapped[uuid.UUID | None] = mapped_column(_fk("property.properties.id", "SET NULL"))
    performed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    from_location_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.storage_locations.id", "SET NULL")
    )
    to_location_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.storage_locations.id", "SET NULL")
    )
    from_room_id: Mapped[uuid.UUID | None] = mapped_column(_fk("property.rooms.id", "SET NULL"))
    to_room_id: Mapped[uuid.UUID | None] = mapped_column(_fk("property.rooms.id", "SET NULL"))
    event_type: Mapped[str]
    event_timestamp: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    # Signed: positive adds stock, negative removes it.
    quantity: Mapped[int]
    quantity_before: Mapped[int | None]
    quantity_after: Mapped[int | None]
    unit_cost: Mapped[Decimal | None] = mapped_column(money())
    total_value: Mapped[Decimal | None] = mapped_column(money())
    # A polymorphic pointer (purchase, ticket, ...) to a row in another table, so no FK.
    reference_type: Mapped[str | None]
    reference_id: Mapped[uuid.UUID | None]
    reference_number: Mapped[str | None]
    reason: Mapped[str | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()


class LinenType(Base):
    """Linen categories; type_code is the key of linen_counts.counts and the delivery jsonb."""

    __tablename__ = "linen_types"
    __table_args__ = (
        check_in("category", LINEN_CATEGORIES),
        # The seed's type_code UNIQUE under the name of its idx_linen_types_code index: one index,
        # and still a real constraint for ON CONFLICT (type_code).
        UniqueConstraint("type_code", name="idx_linen_types_code"),
        # idx_linen_types_id: the UNIQUE constraint of linen_type_id serves as that index.
        Index("idx_linen_types_category", "category"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # LNT-0001: four digits from 1, as the seed shows.
    linen_type_id: Mapped[str] = business_id(
        SCHEMA, "linen_types", "linen_type_id", "LNT", width=4, start=1
    )
    # BATH_TOWEL, KING_SHEET, ...: the key of linen_counts.counts and the delivery jsonb (SPEC 6.3).
    type_code: Mapped[str]
    type_name: Mapped[str]
    category: Mapped[str]
    # size and material are descriptive attributes, left open (the seed's lists are examples).
    size: Mapped[str | None]
    material: Mapped[str | None]
    thread_count: Mapped[int | None]
    gsm: Mapped[int | None]
    color: Mapped[str | None]
    description: Mapped[str | None]
    # The price linen.reorder orders at.
    standard_cost: Mapped[Decimal | None] = mapped_column(money())
    replacement_frequency_months: Mapped[int | None]
    is_premium: Mapped[bool | None] = mapped_column(server_default=text("false"))
    sort_order: Mapped[int | None]
    is_active: Mapped[bool | None] = mapped_column(server_default=text("true"))
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class LinenItem(Base):
    """One physical piece of linen, tracked by barcode/RFID through its life."""

    __tablename__ = "linen_items"
    __table_args__ = (
        check_in("status", LINEN_ITEM_STATUSES),
        check_in("condition", ITEM_CONDITIONS),
        check_in("current_location", LINEN_ITEM_LOCATIONS),
        # idx_linen_items_id: the UNIQUE constraint of linen_item_id serves as that index.
        Index("idx_linen_items_type", "linen_type_id"),
        Index("idx_linen_items_status", "status", postgresql_where=text("status != 'in_service'")),
        # The seed's barcode UNIQUE, as its named partial unique index (untagged pieces have no
        # barcode; ON CONFLICT (barcode) must add WHERE barcode IS NOT NULL).
        Index(
            "idx_linen_items_barcode",
            "barcode",
            unique=True,
            postgresql_where=text("barcode IS NOT NULL"),
        ),
        Index(
            "idx_linen_items_property",
            "current_property_id",
            postgresql_where=text("current_property_id IS NOT NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    linen_item_id: Mapped[str] = business_id(SCHEMA, "linen_items", "linen_item_id", "LNI")
    linen_type_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.linen_types.id", "RESTRICT"))
    barcode: Mapped[str | None]
    status: Mapped[str | None] = mapped_column(server_default="in_service")
    condition: Mapped[str | None] = mapped_column(server_default="good")
    purchase_date: Mapped[dt.date | None]
    purchase_cost: Mapped[Decimal | None] = mapped_column(money())
    first_use_date: Mapped[dt.date | None]
    wash_count: Mapped[int | None] = mapped_column(server_default=text("0"))
    last_washed_at: Mapped[dt.datetime | None]
    current_location: Mapped[str | None]
    current_property_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("property.properties.id", "SET NULL")
    )
    retired_date: Mapped[dt.date | None]
    retirement_reason: Mapped[str | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class LinenPar(Base):
    """Required linen quantities: a property-wide row (room_id NULL) or per-room rows (SPEC 6.3)."""

    __tablename__ = "linen_pars"
    __table_args__ = (
        # idx_linen_pars_id: the UNIQUE constraint of linen_par_id serves as that index.
        Index("idx_linen_pars_property", "property_id"),
        Index("idx_linen_pars_room", "room_id", postgresql_where=text("room_id IS NOT NULL")),
        Index("idx_linen_pars_type", "linen_type_id"),
        # One par per property/room/type. room_id NULL is the property-level par, and a plain
        # UNIQUE would let two of those coexist: NULLS NOT DISTINCT (PostgreSQL 15+) forbids it.
        Index(
            "idx_linen_pars_unique",
            "property_id",
            "room_id",
            "linen_type_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    linen_par_id: Mapped[str] = business_id(SCHEMA, "linen_pars", "linen_par_id", "LNP")
    property_id: Mapped[uuid.UUID] = mapped_column(_fk("property.properties.id", "CASCADE"))
    room_id: Mapped[uuid.UUID | None] = mapped_column(_fk("property.rooms.id", "CASCADE"))
    linen_type_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.linen_types.id", "RESTRICT"))
    par_quantity: Mapped[int]
    # Reorder point and order-up-to level; par_quantity stands in for either when NULL.
    min_quantity: Mapped[int | None]
    max_quantity: Mapped[int | None]
    notes: Mapped[str | None]
    is_active: Mapped[bool | None] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class LinenDelivery(Base):
    """Deliveries from linen service providers: what came in and what was picked up."""

    __tablename__ = "linen_deliveries"
    __table_args__ = (
        check_in("delivery_type", LINEN_DELIVERY_TYPES),
        check_in("status", LINEN_DELIVERY_STATUSES),
        # idx_linen_del_id: the UNIQUE constraint of delivery_id serves as that index.
        Index("idx_linen_del_property", "property_id"),
        Index("idx_linen_del_company", "linen_service_company_id"),
        Index("idx_linen_del_date", "delivery_date"),
        # linen.reorder: a property's deliveries since its last count, one range scan
        # (revision 0004; the seed's property_id index alone fetched its whole history).
        Index("idx_linen_del_property_date", "property_id", "delivery_date"),
        Index("ix_linen_deliveries_received_by_id", "received_by_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    delivery_id: Mapped[str] = business_id(SCHEMA, "linen_deliveries", "delivery_id", "LND")
    property_id: Mapped[uuid.UUID] = mapped_column(_fk("property.properties.id", "CASCADE"))
    linen_service_company_id: Mapped[uuid.UUID] = mapped_column(
        _fk("directory.companies.id", "RESTRICT")
    )
    delivery_date: Mapped[dt.date]
    delivery_time: Mapped[dt.time | None]
    delivery_type: Mapped[str | None] = mapped_column(server_default="exchange")
    delivered_by: Mapped[str | None]
    received_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    # {linen_types.type_code: quantity}; on hand moves by delivered minus picked up (SPEC 6.3).
    items_delivered: Mapped[dict | None] = mapped_column(JSONB)
    items_picked_up: Mapped[dict | None] = mapped_column(JSONB)
    delivery_notes: Mapped[str | None]
    condition_notes: Mapped[str | None]
    invoice_number: Mapped[str | None]
    invoice_amount: Mapped[Decimal | None] = mapped_column(money())
    status: Mapped[str | None] = mapped_column(server_default="completed")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class LinenCount(Base):
    """Periodic linen counts; the latest one per type is the reorder job's starting stock."""

    __tablename__ = "linen_counts"
    __table_args__ = (
        check_in("count_type", LINEN_COUNT_TYPES),
        check_in("status", LINEN_COUNT_STATUSES),
        # idx_linen_counts_id: the UNIQUE constraint of count_id serves as that index.
        Index("idx_linen_counts_property", "property_id"),
        Index("idx_linen_counts_date", "count_date"),
        # linen.reorder: a property's latest count on or before a date, one backward index step
        # (revision 0004).
        Index("idx_linen_counts_property_date", "property_id", "count_date"),
        Index("idx_linen_counts_counter", "counted_by_id"),
        Index("ix_linen_counts_verified_by_id", "verified_by_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    count_id: Mapped[str] = business_id(SCHEMA, "linen_counts", "count_id", "LNC")
    property_id: Mapped[uuid.UUID] = mapped_column(_fk("property.properties.id", "CASCADE"))
    counted_by_id: Mapped[uuid.UUID] = mapped_column(_fk("team.team_directory.id", "RESTRICT"))
    count_date: Mapped[dt.date]
    count_type: Mapped[str | None] = mapped_column(server_default="routine")
    # {linen_types.type_code: {"counted": n, "expected": n, "variance": n}}
    counts: Mapped[dict] = mapped_column(JSONB, nullable=False)
    total_items_counted: Mapped[int | None]
    total_discrepancies: Mapped[int | None]
    discrepancy_value: Mapped[Decimal | None] = mapped_column(money())
    notes: Mapped[str | None]
    verified_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    verified_at: Mapped[dt.datetime | None]
    status: Mapped[str | None] = mapped_column(server_default="completed")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class LinenIssue(Base):
    """Linen damage, stains, loss and quality problems, with the investigation outcome."""

    __tablename__ = "linen_issues"
    __table_args__ = (
        check_in("issue_type", LINEN_ISSUE_TYPES),
        check_in("cause", LINEN_ISSUE_CAUSES),
        check_in("status", LINEN_ISSUE_STATUSES),
        # idx_linen_issues_id: the UNIQUE constraint of issue_id serves as that index.
        Index("idx_linen_issues_item", "linen_item_id"),
        Index(
            "idx_linen_issues_property",
            "property_id",
            postgresql_where=text("property_id IS NOT NULL"),
        ),
        Index("idx_linen_issues_status", "status", postgresql_where=text("status = 'open'")),
        Index(
            "idx_linen_issues_reservation",
            "reservation_id",
            postgresql_where=text("reservation_id IS NOT NULL"),
        ),
        Index("ix_linen_issues_linen_type_id", "linen_type_id"),
        Index("ix_linen_issues_reported_by_id", "reported_by_id"),
        Index("ix_linen_issues_resolved_by_id", "resolved_by_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    issue_id: Mapped[str] = business_id(SCHEMA, "linen_issues", "issue_id", "LNIS")
    linen_item_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("inventory.linen_items.id", "SET NULL")
    )
    linen_type_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.linen_types.id", "RESTRICT"))
    property_id: Mapped[uuid.UUID | None] = mapped_column(_fk("property.properties.id", "SET NULL"))
    reported_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("reservations.reservations.id", "SET NULL")
    )
    issue_type: Mapped[str]
    issue_date: Mapped[dt.date]
    quantity: Mapped[int | None] = mapped_column(server_default=text("1"))
    description: Mapped[str | None]
    photo_urls: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    estimated_value: Mapped[Decimal | None] = mapped_column(money())
    cause: Mapped[str | None]
    is_billable: Mapped[bool | None] = mapped_column(server_default=text("false"))
    status: Mapped[str | None] = mapped_column(server_default="open")
    resolution: Mapped[str | None]
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    resolved_at: Mapped[dt.datetime | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class LinenOrder(Base):
    """Linen purchase orders; linen.reorder creates them for properties short of par (SPEC 6.3)."""

    __tablename__ = "linen_orders"
    __table_args__ = (
        check_in("status", LINEN_ORDER_STATUSES),
        # idx_linen_orders_id: the UNIQUE constraint of order_id serves as that index.
        Index("idx_linen_orders_type", "linen_type_id"),
        Index("idx_linen_orders_supplier", "supplier_company_id"),
        Index(
            "idx_linen_orders_status",
            "status",
            postgresql_where=text("status NOT IN ('received', 'cancelled')"),
        ),
        Index(
            "idx_linen_orders_destination",
            "destination_property_id",
            postgresql_where=text("destination_property_id IS NOT NULL"),
        ),
        Index("ix_linen_orders_ordered_by_id", "ordered_by_id"),
        # SPEC 6.3: never more than one open order per property and linen type, guaranteed by
        # the database, so concurrent reorder runs cannot double-order.
        Index(
            "uq_linen_orders_open_per_property_type",
            "destination_property_id",
            "linen_type_id",
            unique=True,
            postgresql_where=_status_in(LINEN_ORDER_OPEN_STATUSES),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    order_id: Mapped[str] = business_id(SCHEMA, "linen_orders", "order_id", "LNPO")
    linen_type_id: Mapped[uuid.UUID] = mapped_column(_fk("inventory.linen_types.id", "RESTRICT"))
    supplier_company_id: Mapped[uuid.UUID] = mapped_column(
        _fk("directory.companies.id", "RESTRICT")
    )
    ordered_by_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("team.team_directory.id", "SET NULL")
    )
    destination_property_id: Mapped[uuid.UUID | None] = mapped_column(
        _fk("property.properties.id", "SET NULL")
    )
    po_number: Mapped[str | None]
    order_date: Mapped[dt.date]
    quantity_ordered: Mapped[int]
    unit_cost: Mapped[Decimal] = mapped_column(money())
    total_cost: Mapped[Decimal] = mapped_column(
        money(), Computed("quantity_ordered * unit_cost", persisted=True)
    )
    shipping_cost: Mapped[Decimal | None] = mapped_column(money(), server_default=text("0"))
    expected_delivery_date: Mapped[dt.date | None]
    actual_delivery_date: Mapped[dt.date | None]
    # "On order" is quantity_ordered less this for open orders (SPEC 6.3).
    quantity_received: Mapped[int | None]
    # NOT NULL (the seed leaves it nullable): a NULL status would slip past the open-order
    # unique index above.
    status: Mapped[str] = mapped_column(server_default="pending")
    tracking_number: Mapped[str | None]
    invoice_number: Mapped[str | None]
    notes: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
