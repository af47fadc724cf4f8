"""The data sets: the demo holds the cases the jobs must get right, loads once and only once;
the bench loader fills every table in proportion, with business IDs from the sequences and
the schema's foreign keys intact."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from db.base import Base
from db.models.service import TICKET_STATUSES
from workers.dev.seeds import LINEN_TYPES, SeedError
from workers.dev.seeds.bench import BenchData, seed_bench
from workers.dev.seeds.demo import seed_demo

FOREIGN_KEYS_SQL = """
    SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
    FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2
"""


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def table_count(engine: Engine, fullname: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(Base.metadata.tables[fullname])
        ).scalar_one()


@pytest.fixture
def demo(engine: Engine, migrated_db: str) -> dict[str, int]:
    """A freshly cleaned database with the demo loaded (for the tests that write)."""
    return seed_demo(migrated_db)


@pytest.fixture(scope="class")
def shared_demo(migrated_db: str) -> Engine:
    """One demo load shared by a class of read-only checks: loading takes seconds and the
    checks only read, so they need not pay for it one by one. Cleans first, like `engine`."""
    from db.session import get_engine
    from tests.support.db import clean

    shared = get_engine()
    clean(shared)
    seed_demo(migrated_db)
    return shared


# --------------------------------------------------------------------------------------------
# Demo: loading


def test_seed_demo_returns_the_rows_it_inserted(demo: dict[str, int], engine: Engine) -> None:
    for fullname, count in demo.items():
        assert table_count(engine, fullname) == count, fullname
    # Big enough to show every job working, small enough to load in a few seconds.
    assert 2_000 <= demo["reservations.reservations"] <= 5_000


def test_seed_demo_a_second_time_changes_nothing(
    demo: dict[str, int], engine: Engine, migrated_db: str
) -> None:
    assert seed_demo(migrated_db) == {"skipped": 1}
    assert table_count(engine, "property.properties") == demo["property.properties"]
    assert table_count(engine, "reservations.reservations") == demo["reservations.reservations"]


# --------------------------------------------------------------------------------------------
# Demo: the cases the jobs need


class TestDemoHasWhatTheJobsNeed:
    def test_demo_resorts_are_in_three_time_zones_one_without_daylight_saving(
        self, shared_demo: Engine
    ) -> None:
        zones = [r[0] for r in rows(shared_demo, "SELECT timezone FROM property.resorts")]
        assert len(zones) == 3
        assert len(set(zones)) == 3
        assert "Pacific/Honolulu" in zones

    def test_demo_has_about_forty_properties_mostly_active(self, shared_demo: Engine) -> None:
        statuses = dict(
            rows(shared_demo, "SELECT status, count(*) FROM property.properties GROUP BY 1")
        )
        assert sum(statuses.values()) >= 35
        assert statuses["active"] >= 35
        assert {"onboarding", "inactive"} <= set(statuses)

    def test_demo_has_a_co_owned_property_whose_shares_sum_to_exactly_100(
        self, shared_demo: Engine
    ) -> None:
        sums = rows(
            shared_demo,
            """
            SELECT property_id, sum(ownership_pct), count(*)
            FROM directory.homeowner_property_relationship
            WHERE end_date IS NULL
            GROUP BY property_id
            HAVING count(*) > 1
            """,
        )
        assert sums, "no property with two or more current owners"
        assert all(total == 100 for _, total, _ in sums)
        assert any(owners == 3 for _, _, owners in sums), "no three-way split (33.33/33.33/33.34)"

    def test_demo_relationships_use_both_commission_bases_and_recognitions(
        self, shared_demo: Engine
    ) -> None:
        found = rows(
            shared_demo,
            """
            SELECT DISTINCT commission_base, revenue_recognition
            FROM directory.homeowner_property_relationship
            WHERE commission_pct BETWEEN 15 AND 25
            """,
        )
        assert {base for base, _ in found} == {"gross_rent", "net_rent"}
        assert {recognition for _, recognition in found} == {"by_night", "by_checkout"}

    def test_demo_has_a_back_to_back_turnover(self, shared_demo: Engine) -> None:
        turnovers = one(
            shared_demo,
            """
            SELECT count(*)
            FROM reservations.reservations departing
            JOIN reservations.reservations arriving
              ON arriving.property_id = departing.property_id
             AND arriving.check_in = departing.check_out
            WHERE departing.status = 'confirmed' AND arriving.status = 'confirmed'
              AND departing.reservation_type = 'guest' AND arriving.reservation_type = 'guest'
            """,
        )
        assert turnovers > 0

    def test_demo_has_a_double_booking(self, shared_demo: Engine) -> None:
        overlaps = one(
            shared_demo,
            """
            SELECT count(*)
            FROM reservations.reservations a
            JOIN reservations.reservations b
              ON b.property_id = a.property_id AND a.id < b.id
             AND a.check_in < b.check_out AND b.check_in < a.check_out
            WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'
              AND a.reservation_type = 'guest' AND b.reservation_type = 'guest'
            """,
        )
        assert overlaps > 0

    def test_demo_reservations_come_from_four_sources_with_cancellations(
        self, shared_demo: Engine
    ) -> None:
        sources = {
            r[0]
            for r in rows(
                shared_demo,
                "SELECT DISTINCT source FROM reservations.reservations"
                " WHERE reservation_type = 'guest'",
            )
        }
        assert sources == {"direct", "airbnb", "vrbo", "booking_com"}
        kinds = {
            r[0]
            for r in rows(
                shared_demo, "SELECT DISTINCT reservation_type FROM reservations.reservations"
            )
        }
        assert kinds == {"guest", "owner_stay", "block"}
        assert (
            one(
                shared_demo,
                "SELECT count(*) FROM reservations.reservations WHERE status = 'cancelled'"
                " AND cancelled_at IS NOT NULL AND cancelled_at >= booked_at",
            )
            > 0
        )

    def test_demo_tickets_cover_every_status_priority_and_type(self, shared_demo: Engine) -> None:
        def distinct(column: str) -> set[str]:
            return {
                r[0] for r in rows(shared_demo, f"SELECT DISTINCT {column} FROM service.tickets")
            }

        assert distinct("status") == set(TICKET_STATUSES)
        assert distinct("priority") == {"urgent", "high", "normal", "low"}
        assert distinct("ticket_type") == {"PC", "RSV", "ADM", "ACCT"}

    def test_demo_ticket_timestamps_are_coherent(self, shared_demo: Engine) -> None:
        incoherent = one(
            shared_demo,
            """
            SELECT count(*) FROM service.tickets
            WHERE first_response_at < created_at
               OR resolved_at < created_at
               OR greatest(created_at, first_response_at, resolved_at) > now()
               OR (status IN ('resolved', 'closed')) <> (resolved_at IS NOT NULL)
            """,
        )
        assert incoherent == 0

    def test_demo_bills_some_costs_to_owners_with_markup(self, shared_demo: Engine) -> None:
        billed = dict(
            rows(shared_demo, "SELECT billable_to, count(*) FROM service.ticket_costs GROUP BY 1")
        )
        assert set(billed) == {"owner", "company", "guest"}
        assert (
            one(
                shared_demo,
                "SELECT count(*) FROM service.ticket_costs"
                " WHERE billable_to = 'owner' AND markup_pct > 0",
            )
            > 0
        )

    def test_demo_has_an_active_property_without_an_active_linen_supplier(
        self, shared_demo: Engine
    ) -> None:
        unsupplied = one(
            shared_demo,
            """
            SELECT count(*) FROM property.properties p
            WHERE p.status = 'active'
              AND NOT EXISTS (
                SELECT 1 FROM directory.vendor_assignments v
                WHERE v.service_category = 'linen' AND v.is_active
                  AND (v.property_id = p.id OR v.property_id IS NULL)
              )
            """,
        )
        assert unsupplied > 0

    def test_demo_linen_counts_are_keyed_by_linen_type_codes(self, shared_demo: Engine) -> None:
        keys = {
            r[0]
            for r in rows(
                shared_demo, "SELECT DISTINCT jsonb_object_keys(counts) FROM inventory.linen_counts"
            )
        }
        codes = {r[0] for r in rows(shared_demo, "SELECT type_code FROM inventory.linen_types")}
        assert keys
        assert keys <= codes
        entry = one(
            shared_demo,
            "SELECT counts -> 'BATH_TOWEL' FROM inventory.linen_counts"
            " WHERE counts ? 'BATH_TOWEL' LIMIT 1",
        )
        assert set(entry) == {"counted", "expected", "variance"}
        assert entry["variance"] == entry["counted"] - entry["expected"]

    def test_demo_has_storage_stock_at_or_below_its_reorder_point(
        self, shared_demo: Engine
    ) -> None:
        assert (
            one(
                shared_demo,
                "SELECT count(*) FROM inventory.storage_inventory"
                " WHERE quantity_available <= reorder_point",
            )
            > 0
        )
        assert (
            one(
                shared_demo,
                "SELECT count(*) FROM inventory.inventory_items WHERE item_id LIKE 'INV-%'",
            )
            > 0
        )

    def test_demo_has_channel_mappings_recurring_rules_and_sla_policies(
        self, shared_demo: Engine
    ) -> None:
        channels = {
            r[0]
            for r in rows(
                shared_demo,
                "SELECT channel FROM channel.channel_connections WHERE status = 'active'",
            )
        }
        assert channels == {"airbnb", "vrbo", "booking_com"}
        assert (
            one(
                shared_demo,
                "SELECT count(*) FROM channel.channel_mappings WHERE import_url LIKE 'http://127.0.0.1:8765/feeds/%.ics'",
            )
            > 0
        )
        triggers = {
            r[0] for r in rows(shared_demo, "SELECT trigger_type FROM service.recurring_rules")
        }
        assert triggers == {"calendar", "reservation"}
        assert (
            one(
                shared_demo,
                "SELECT count(*) FROM service.recurring_rules WHERE rrule = 'FREQ=WEEKLY;BYDAY=MO'",
            )
            == 1
        )
        assert table_count(shared_demo, "service.sla_policies") == 2
        assert table_count(shared_demo, "service.business_calendar_holidays") > 0


# --------------------------------------------------------------------------------------------
# Bench


def test_seed_bench_at_a_tiny_scale_is_proportionate(engine: Engine, migrated_db: str) -> None:
    counts = seed_bench(migrated_db, scale=1, properties_per_scale=20)

    for fullname, count in counts.items():
        assert table_count(engine, fullname) == count, fullname
    assert counts["property.properties"] == 20
    assert 20 * 2 <= counts["property.rooms"] <= 20 * 5
    assert 20 * 80 <= counts["reservations.reservations"] <= 20 * 120
    assert 20 * 100 <= counts["service.tickets"] <= 20 * 200
    assert counts["inventory.linen_pars"] == 20 * len(LINEN_TYPES)
    assert counts["inventory.linen_counts"] == 20
    assert counts["channel.channel_connections"] == 3
    assert 20 <= counts["directory.homeowner_property_relationship"] <= 40


def test_seed_bench_leaves_business_ids_to_the_sequences(engine: Engine, migrated_db: str) -> None:
    counts = seed_bench(migrated_db, scale=1, properties_per_scale=20)

    numbers = rows(
        engine,
        "SELECT min(ticket_number), max(ticket_number), count(DISTINCT ticket_number)"
        " FROM service.tickets",
    )
    assert numbers == [
        ("TKT-010001", f"TKT-{10000 + counts['service.tickets']:06d}", counts["service.tickets"])
    ]
    assert (
        one(engine, "SELECT count(*) FROM service.tickets WHERE ticket_number NOT LIKE 'TKT-0%'")
        == 0
    )
    assert (
        one(
            engine, "SELECT count(*) FROM inventory.linen_pars WHERE linen_par_id NOT LIKE 'LNP-0%'"
        )
        == 0
    )
    assert (
        one(engine, "SELECT count(*) FROM inventory.inventory_items WHERE item_id NOT LIKE 'INV-%'")
        == 0
    )


def test_seed_bench_tickets_are_mostly_finished(engine: Engine, migrated_db: str) -> None:
    seed_bench(migrated_db, scale=1, properties_per_scale=20)

    share_open = one(
        engine,
        "SELECT avg((status NOT IN ('resolved', 'closed', 'cancelled'))::int) FROM service.tickets",
    )
    assert 0.005 < share_open < 0.08
    priorities = {r[0] for r in rows(engine, "SELECT DISTINCT priority FROM service.tickets")}
    assert priorities == {"urgent", "high", "normal", "low"}


def test_seed_bench_puts_the_foreign_keys_back_as_they_were(
    engine: Engine, migrated_db: str
) -> None:
    before = rows(engine, FOREIGN_KEYS_SQL)
    seed_bench(migrated_db, scale=1, properties_per_scale=20)
    assert rows(engine, FOREIGN_KEYS_SQL) == before


def test_seed_bench_refuses_a_database_that_has_properties(
    engine: Engine, migrated_db: str
) -> None:
    seed_demo(migrated_db)
    with pytest.raises(SeedError, match="already has"):
        seed_bench(migrated_db, scale=1, properties_per_scale=20)


def test_bench_data_is_deterministic_for_a_scale() -> None:
    """Same scale, same business data (ids and load-time stamps aside)."""

    def stays(seed: str) -> list[tuple[Any, ...]]:
        data = BenchData(20, seed=seed)
        for step in data.steps():  # in order: earlier steps fill the state later ones read
            produced = list(step.rows())
            if step.name == "reservations.reservations":
                # source, kind, status, check_in, check_out, then the five amounts
                return [(r[4], r[5], r[6], r[7], r[8], *r[11:]) for r in produced]
        raise AssertionError("no reservations step")

    assert stays("cmw-bench:1:20") == stays("cmw-bench:1:20")
    assert stays("cmw-bench:1:20") != stays("cmw-bench:2:20")
