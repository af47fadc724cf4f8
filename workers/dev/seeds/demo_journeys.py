"""The demo's guest journeys (SPEC 7.6): templates, message rules, two reservation-driven ticket
rules with the new settings, per-property check-in times, and every upcoming or in-house stay
planned by the real planner, so `cmw dev` shows scheduled messages and door codes at once and
`journeys.release_due` (every minute) releases them as their local times come.

Called once by workers/dev/seeds/demo.py after the demo's rows are in, in the same transaction.

The journey, as the peers' automations run it (Guesty, Hostaway, Hospitable):

| message | when (property's wall clock) | who | late |
| --- | --- | --- | --- |
| booking confirmation | at booking | guest stays | skip |
| pre-arrival with the door code | 2 days before check-in, 10:00 | guest stays | send now |
| door code by SMS | check-in day, 12:00 | guest stays | send now |
| welcome | check-in time + 2 h | guest stays | skip |
| mid-stay check | 3 days after check-in, 11:00 | stays of 5+ nights | skip |
| checkout reminder | the evening before check-out, 18:00 | guest stays | send now |
| review request | the day after check-out, 10:00 | not Airbnb (it asks itself) | skip |
| owner arrival note | the day before, 12:00 | owner stays | send now |

Quiet hours 21:00-08:00 for every guest message but the door-code SMS (a guest arriving late
at night needs it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.orm import Session

from db.models.comms import MessageRule, MessageTemplate
from db.models.service import RecurringRule

if TYPE_CHECKING:
    from workers.dev.seeds.demo import DemoBuilder

QUIET = {"quiet_start": dt.time(21, 0), "quiet_end": dt.time(8, 0)}
GUEST_SOURCES_BUT_AIRBNB = ["direct", "vrbo", "booking_com", "ical"]

# (code, channel, subject, body)
TEMPLATES = (
    (
        "booking_confirmation",
        "email",
        "Your stay at {{ property.name }} is confirmed ({{ stay.confirmation_code }})",
        "Hi {{ guest.first_name | default('there') }},\n\nthank you for booking"
        " {{ property.name }} from {{ stay.check_in.strftime('%A %d %B') }} to"
        " {{ stay.check_out.strftime('%A %d %B') }} ({{ stay.nights }} nights).\n"
        "Check-in is from {{ stay.check_in_time }}, check-out by {{ stay.check_out_time }}.",
    ),
    (
        "pre_arrival",
        "email",
        "Arriving at {{ property.name }} on {{ stay.check_in.strftime('%A') }}",
        "Hi {{ guest.first_name | default('there') }},\n\nyour door code is {{ door_code }}."
        " It works from {{ door_code_valid_from.strftime('%A %H:%M') }} until"
        " {{ door_code_valid_until.strftime('%A %H:%M') }}.\nSee you soon!",
    ),
    (
        "door_code_sms",
        "sms",
        None,
        "{{ property.name }}: your door code is {{ door_code }}, from"
        " {{ door_code_valid_from.strftime('%H:%M') }} today.",
    ),
    (
        "welcome",
        "email",
        "Welcome to {{ property.name }}",
        "Hi {{ guest.first_name | default('there') }}, we hope you settled in well."
        " Reply to this email if anything is missing.",
    ),
    (
        "mid_stay",
        "sms",
        None,
        "Hi {{ guest.first_name | default('there') }}, is everything fine at"
        " {{ property.name }}? Fresh towels are one text away.",
    ),
    (
        "checkout_reminder",
        "email",
        "Check-out tomorrow by {{ stay.check_out_time }}",
        "Hi {{ guest.first_name | default('there') }}, a reminder that check-out is tomorrow"
        " by {{ stay.check_out_time }}. Leave the keys on the kitchen table.",
    ),
    (
        "review_request",
        "email",
        "How was {{ property.name }}?",
        "Hi {{ guest.first_name | default('there') }}, thank you for staying with us."
        " Would you leave a review of your {{ stay.nights }} nights?",
    ),
    (
        "owner_arrival",
        "email",
        "Your stay at {{ property.name }}",
        "The house is ready for you from {{ stay.check_in.strftime('%A') }}.",
    ),
)

# (name, template code, anchor, offset_minutes, local_time, extra columns)
RULES: tuple[tuple[str, str, str, int, dt.time | None, dict[str, Any]], ...] = (
    ("Booking confirmation", "booking_confirmation", "booked", 0, None,
     {"late_policy": "skip"}),
    ("Pre-arrival with door code", "pre_arrival", "check_in", -2 * 24 * 60, dt.time(10, 0),
     {"late_policy": "send_now", **QUIET}),
    ("Door code by SMS", "door_code_sms", "check_in", 0, dt.time(12, 0),
     {"late_policy": "send_now"}),
    ("Welcome", "welcome", "check_in", 120, None, {"late_policy": "skip", **QUIET}),
    ("Mid-stay check", "mid_stay", "check_in", 3 * 24 * 60, dt.time(11, 0),
     {"late_policy": "skip", "min_nights": 5, **QUIET}),
    ("Checkout reminder", "checkout_reminder", "check_out", -24 * 60, dt.time(18, 0),
     {"late_policy": "send_now", **QUIET}),
    ("Review request", "review_request", "check_out", 24 * 60, dt.time(10, 0),
     {"late_policy": "skip", "channels": GUEST_SOURCES_BUT_AIRBNB, **QUIET}),
    ("Owner arrival note", "owner_arrival", "check_in", -24 * 60, dt.time(12, 0),
     {"late_policy": "send_now", "reservation_types": ["owner_stay"], **QUIET}),
)  # fmt: skip

COUNTED_TABLES = (
    "comms.message_templates",
    "comms.message_rules",
    "comms.messages",
    "property.access_codes",
    "service.recurring_rules",
)


def add_message_journey(conn: Connection, new_id: Callable[[], uuid.UUID] | None = None) -> None:
    """The journey's templates and message rules (the benchmark's too); `new_id` gives the
    templates' ids (the demo's are reproducible), else the database draws them."""
    ids = {}
    for code, channel, subject, body in TEMPLATES:
        ids[code] = conn.execute(
            insert(MessageTemplate.__table__)
            .values(code=code, name=code.replace("_", " ").capitalize(), channel=channel,
                    subject=subject, body=body, **({"id": new_id()} if new_id else {}))
            .returning(MessageTemplate.__table__.c.id)
        ).scalar_one()  # fmt: skip
    # One statement per row: the rows set different columns (the others keep their defaults).
    for name, code, anchor, offset, local_time, extra in RULES:
        conn.execute(
            insert(MessageRule.__table__),
            {"name": name, "template_id": ids[code], "anchor": anchor,
             "offset_minutes": offset, "local_time": local_time, **extra},
        )  # fmt: skip


def seed_journeys(conn: Connection, builder: DemoBuilder) -> dict[str, int]:
    """Add the journey to the demo just inserted (same transaction); the rows per table."""
    from tasks.journeys.planning import plan_stays

    add_message_journey(conn, builder.ids.uuid)
    add_ticket_rules(conn, builder)
    # The Hawaiian resort lets guests in an hour earlier and out an hour earlier.
    conn.execute(
        text(
            "UPDATE property.properties SET check_in_time = '15:00', check_out_time = '10:00'"
            " WHERE property_code LIKE 'KAI-%'"
        )
    )
    # Every stay not yet over (leaving after today), planned as the system would have as each
    # was booked; the late messages of the in-house ones go out on the first sweep.
    stays = [
        s.id
        for per_property in builder.stays.values()
        for s in per_property
        if s.check_out > builder.today
    ]
    with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
        plan_stays(session, stays, builder.now)
        session.commit()
    return {
        table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in COUNTED_TABLES
    }


def add_ticket_rules(conn: Connection, builder: DemoBuilder) -> None:
    """Reservation-driven ticket rules with SPEC 7.6's settings: an owner-stay preparation
    assigned to the least-loaded housekeeper, and a mid-stay clean for long stays."""
    for row in (
        {
            "name": "Owner arrival preparation",
            "ticket_type": "PC",
            "category": "cleaning",
            "priority": "normal",
            "title_template": "Owner arrival prep - {property_name} - {date}",
            "team_id": builder.team_ids["HK"],
            "estimated_minutes": 90,
            "trigger_type": "reservation",
            "anchor": "check_in",
            "offset_minutes": -24 * 60,
            "local_time": dt.time(13, 0),
            "scope_type": "all_properties",
            "reservation_types": ["owner_stay"],
            "assign_to_member": True,
        },
        {
            "name": "Mid-stay clean",
            "ticket_type": "PC",
            "category": "cleaning",
            "priority": "low",
            "title_template": "Mid-stay clean - {property_name} - {reservation_code}",
            "team_id": builder.team_ids["HK"],
            "estimated_minutes": 120,
            "trigger_type": "reservation",
            "anchor": "check_in",
            "offset_minutes": 4 * 24 * 60,
            "local_time": dt.time(11, 0),
            "scope_type": "all_properties",
            "min_nights": 7,
            "assign_to_member": True,
        },
    ):
        conn.execute(insert(RecurringRule.__table__), row)
