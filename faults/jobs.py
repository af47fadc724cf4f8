"""One real job of each family, set up so that its effect can be counted.

`prepare(session, ctx)` inserts what one run needs (fresh rows each time, so the runs of a
scenario never share an effect) and returns the task, its payload, a table the job writes to
(the scenario locks it to stop the job in the middle of its transaction), and the count that
must come out exactly: below it something was lost, above it something was done twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.support import factories as f
from tests.support import feeds
from tests.support.runs import scalar


@dataclass
class Prepared:
    task: str
    kwargs: dict[str, Any]
    lock_table: str
    effect_sql: str
    params: dict[str, Any]
    expected: int

    def outcome(self, engine: Engine) -> str:
        """`exact`, or `lost` / `duplicated` when the effect exists less or more than once."""
        done = scalar(engine, self.effect_sql, **self.params)
        if done < self.expected:
            return "lost"
        return "duplicated" if done > self.expected else "exact"


@dataclass
class Case:
    name: str
    prepare: Callable[[Session, dict], Prepared]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def sync_reservation(session: Session, ctx: dict) -> Prepared:
    if "reservation_rule" not in ctx:
        ctx["reservation_rule"] = f.insert(
            session, "service.recurring_rules", name="Departure clean", ticket_type="PC",
            title_template="Departure clean {property_name}", trigger_type="reservation",
            anchor="check_out", local_time=dt.time(11, 0), scope_type="all_properties",
        ).id  # fmt: skip
    prop = f.property_(session, timezone="Europe/Lisbon")
    check_in = _today() + dt.timedelta(days=20)
    stay = f.reservation(session, prop, check_in, check_in + dt.timedelta(days=3))
    return Prepared(
        "recurring.sync_reservation", {"reservation_id": str(stay)}, "service.tickets",
        "SELECT count(*) FROM service.tickets WHERE reservation_id = :r", {"r": stay}, 1,
    )  # fmt: skip


def generate(session: Session, ctx: dict) -> Prepared:
    prop = f.property_(session, timezone="America/Chicago")
    start = dt.datetime.combine(_today() + dt.timedelta(days=1), dt.time(9, 0))
    rule = f.insert(
        session, "service.recurring_rules", name="Pool check", ticket_type="PC",
        title_template="Pool check {property_name} {date}", trigger_type="calendar",
        rrule="FREQ=DAILY;COUNT=2", dtstart=start, lead_minutes=7 * 24 * 60,
        scope_type="property",
    ).id  # fmt: skip
    f.insert(session, "service.recurring_rule_targets", recurring_rule_id=rule, property_id=prop)
    return Prepared(
        "recurring.generate", {"rule_id": str(rule)}, "service.tickets",
        "SELECT count(*) FROM service.ticket_recurring WHERE recurring_rule_id = :r"
        " AND ticket_id IS NOT NULL", {"r": rule}, 2,
    )  # fmt: skip


def check_breaches(session: Session, ctx: dict) -> Prepared:
    now = dt.datetime.now(dt.UTC)
    created = now - dt.timedelta(hours=2)
    ticket = f.ticket(
        session, created_at=created, response_due_at=now - dt.timedelta(minutes=5),
        resolution_due_at=now + dt.timedelta(days=3),
        resolution_warn_due_at=now + dt.timedelta(days=2),
    )  # fmt: skip
    return Prepared(
        "sla.check_breaches", {"as_of": now.isoformat()}, "service.ticket_misses",
        "SELECT count(*) FROM service.ticket_misses WHERE ticket_id = :t", {"t": ticket}, 1,
    )  # fmt: skip


def statements(session: Session, ctx: dict) -> Prepared:
    first = _today().replace(day=1)
    last_month = (first - dt.timedelta(days=1)).replace(day=1)
    prop = f.property_(session, timezone="America/New_York")
    owner = f.homeowner(session)
    f.ownership(session, owner, prop)
    f.reservation(session, prop, last_month + dt.timedelta(days=3),
                  last_month + dt.timedelta(days=7), gross_rent="800.00")  # fmt: skip
    return Prepared(
        "statements.generate",
        {"period": last_month.strftime("%Y-%m"), "property_id": str(prop)},
        "finance.owner_statements",
        "SELECT count(*) FROM finance.owner_statements WHERE property_id = :p", {"p": prop}, 1,
    )  # fmt: skip


def channel_import(session: Session, ctx: dict) -> Prepared:
    server = ctx["feed_server"]
    prop = f.property_(session, timezone="Europe/Madrid")
    start = _today() + dt.timedelta(days=40)
    events = [
        feeds.airbnb_stay(f"{uuid.uuid4().hex}@airbnb.com", start + dt.timedelta(days=5 * i),
                          start + dt.timedelta(days=5 * i + 3), f"HM{uuid.uuid4().hex[:8].upper()}")
        for i in range(3)
    ]  # fmt: skip
    path = f"/faults/{uuid.uuid4().hex}.ics"
    server.set_feed(path, feeds.airbnb_feed(events))
    connection = feeds.connection(session, channel="airbnb")
    mapping = feeds.mapping(session, connection, prop, server.url(path))
    return Prepared(
        "channel.sync_mapping", {"mapping_id": str(mapping)}, "channel.channel_bookings",
        "SELECT count(*) FROM channel.channel_bookings WHERE mapping_id = :m", {"m": mapping}, 3,
    )  # fmt: skip


CASES = [
    Case("recurring.sync_reservation", sync_reservation),
    Case("recurring.generate", generate),
    Case("sla.check_breaches", check_breaches),
    Case("statements.generate", statements),
    Case("channel.sync_mapping", channel_import),
]
