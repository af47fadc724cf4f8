"""guest journeys and door codes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 22:00:00+00:00

SPEC 7.6. Message templates and rules (comms.message_templates, comms.message_rules); the
journey columns and statuses of comms.messages (`scheduled_for`, `message_rule_id`,
`status_reason`; statuses `scheduled` and `cancelled`; the delivery service still reads only
`queued`); door codes (property.access_codes, unique per property among overlapping live
windows by an exclusion constraint that needs no btree_gist); a property's own check-in and
check-out times; the reservation-rule conditions and member assignment of
service.recurring_rules. Two SQL functions do the zone arithmetic the journeys share:
`ops.local_to_utc` (a wall-clock time in a zone to an instant, with the rule of SPEC 6.1: a
time in a spring-forward gap moves forward by the gap, an ambiguous one takes the first) and
`comms.after_quiet_hours`. Everything added to an existing table is nullable or defaulted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = postgresql.TIMESTAMP(timezone=True)
TEXT_ARRAY = postgresql.ARRAY(sa.Text())

# PostgreSQL's own `timestamp AT TIME ZONE zone` reads an ambiguous wall-clock time as the
# second instant (standard time); SPEC 6.1 wants the first, as zoneinfo's fold=0 gives. The
# candidate `earlier` reads the time with the offset in force a day before PostgreSQL's
# instant (the offset before any transition): kept when it maps back to the same wall clock
# (the first of an ambiguous pair, or the only instant), else PostgreSQL's instant when that
# maps back, else (a time inside a gap) `earlier`, i.e. moved forward by the gap. One SQL
# expression with no FROM, so the planner inlines it; tested against zoneinfo in
# tests/integration/test_journey_time.py.
LOCAL_TO_UTC_SQL = """
CREATE FUNCTION ops.local_to_utc(wall timestamp, tz text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
  WHEN ((wall - ((((wall AT TIME ZONE tz) - interval '1 day') AT TIME ZONE tz)
                 - (((wall AT TIME ZONE tz) - interval '1 day') AT TIME ZONE 'UTC')))
        AT TIME ZONE 'UTC') AT TIME ZONE tz = wall
    OR ((wall AT TIME ZONE tz) AT TIME ZONE tz) <> wall
  THEN (wall - ((((wall AT TIME ZONE tz) - interval '1 day') AT TIME ZONE tz)
                - (((wall AT TIME ZONE tz) - interval '1 day') AT TIME ZONE 'UTC')))
       AT TIME ZONE 'UTC'
  ELSE wall AT TIME ZONE tz
END
$$
"""

# The first instant at or after `ts` outside the quiet hours [quiet_start, quiet_end) of the
# zone's wall clock; a window with quiet_start > quiet_end wraps midnight (22:00-08:00).
AFTER_QUIET_HOURS_SQL = """
CREATE FUNCTION comms.after_quiet_hours(ts timestamptz, tz text, quiet_start time,
                                        quiet_end time) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
  WHEN quiet_start IS NULL OR quiet_end IS NULL OR quiet_start = quiet_end THEN ts
  WHEN quiet_start < quiet_end THEN
    CASE WHEN (ts AT TIME ZONE tz)::time >= quiet_start AND (ts AT TIME ZONE tz)::time < quiet_end
         THEN greatest(ts, ops.local_to_utc((ts AT TIME ZONE tz)::date + quiet_end, tz))
         ELSE ts END
  WHEN (ts AT TIME ZONE tz)::time >= quiet_start
    THEN greatest(ts, ops.local_to_utc((ts AT TIME ZONE tz)::date + 1 + quiet_end, tz))
  WHEN (ts AT TIME ZONE tz)::time < quiet_end
    THEN greatest(ts, ops.local_to_utc((ts AT TIME ZONE tz)::date + quiet_end, tz))
  ELSE ts
END
$$
"""

SOURCES = "ARRAY['direct', 'airbnb', 'vrbo', 'booking_com', 'ical', 'owner']::text[]"
TYPES = "ARRAY['guest', 'owner_stay', 'block']::text[]"
CODE_KEY = "hashtextextended(property_id::text || ':' || code, 0)"
OLD_MESSAGE_STATUSES = "status IN ('queued', 'sent', 'failed')"
NEW_MESSAGE_STATUSES = "status IN ('scheduled', 'queued', 'sent', 'failed', 'cancelled')"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", TIMESTAMPTZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, server_default=sa.text("now()"), nullable=False),
    ]


def _id() -> sa.Column:
    return sa.Column(
        "id", sa.UUID(), server_default=sa.text("ops.uuid_generate_v7()"), nullable=False
    )


def _updated_at_trigger(fullname: str) -> None:
    op.execute(
        f"CREATE TRIGGER set_updated_at BEFORE UPDATE ON {fullname}"
        " FOR EACH ROW EXECUTE FUNCTION ops.set_updated_at()"
    )


def upgrade() -> None:
    op.execute(LOCAL_TO_UTC_SQL)
    op.execute(AFTER_QUIET_HOURS_SQL)

    # -- templates and rules ---------------------------------------------------------------
    op.create_table(
        "message_templates",
        _id(),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), server_default="email", nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'slack', 'webhook')",
            name=op.f("ck_message_templates_channel_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint("code", name=op.f("uq_message_templates_code")),
        schema="comms",
    )
    _updated_at_trigger("comms.message_templates")
    op.create_table(
        "message_rules",
        _id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("template_id", sa.UUID(), nullable=False),
        sa.Column("anchor", sa.Text(), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=True),
        sa.Column("channels", TEXT_ARRAY, nullable=True),
        sa.Column(
            "reservation_types",
            TEXT_ARRAY,
            server_default=sa.text("'{guest}'::text[]"),
            nullable=False,
        ),
        sa.Column("min_nights", sa.Integer(), nullable=True),
        sa.Column("max_nights", sa.Integer(), nullable=True),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("late_policy", sa.Text(), server_default="send_now", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "anchor IN ('booked', 'check_in', 'check_out')",
            name=op.f("ck_message_rules_anchor_allowed"),
        ),
        sa.CheckConstraint(
            "late_policy IN ('send_now', 'skip')", name=op.f("ck_message_rules_late_policy_allowed")
        ),
        sa.CheckConstraint(
            f"channels IS NULL OR channels <@ {SOURCES}",
            name=op.f("ck_message_rules_channels_known"),
        ),
        sa.CheckConstraint(
            f"reservation_types <@ {TYPES}", name=op.f("ck_message_rules_reservation_types_known")
        ),
        sa.CheckConstraint(
            "min_nights IS NULL OR min_nights >= 0",
            name=op.f("ck_message_rules_min_nights_nonnegative"),
        ),
        sa.CheckConstraint(
            "max_nights IS NULL OR min_nights IS NULL OR max_nights >= min_nights",
            name=op.f("ck_message_rules_nights_ordered"),
        ),
        sa.CheckConstraint(
            "(quiet_start IS NULL) = (quiet_end IS NULL)",
            name=op.f("ck_message_rules_quiet_both_or_none"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["comms.message_templates.id"],
            name=op.f("fk_message_rules_template_id_message_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_rules")),
        schema="comms",
    )
    op.create_index(
        "ix_message_rules_template_id", "message_rules", ["template_id"], schema="comms"
    )
    _updated_at_trigger("comms.message_rules")

    # -- the outbox's journey columns and statuses ------------------------------------------
    op.add_column("messages", sa.Column("scheduled_for", TIMESTAMPTZ), schema="comms")
    op.add_column("messages", sa.Column("message_rule_id", sa.UUID()), schema="comms")
    op.add_column("messages", sa.Column("status_reason", sa.Text()), schema="comms")
    op.drop_constraint(
        op.f("ck_messages_status_allowed"), "messages", schema="comms", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_messages_status_allowed"), "messages", NEW_MESSAGE_STATUSES, schema="comms"
    )
    op.create_index(
        "ix_messages_scheduled_for",
        "messages",
        ["scheduled_for"],
        schema="comms",
        postgresql_where=sa.text("status = 'scheduled'"),
    )

    # -- door codes ----------------------------------------------------------------------------
    op.add_column("properties", sa.Column("check_in_time", sa.Time()), schema="property")
    op.add_column("properties", sa.Column("check_out_time", sa.Time()), schema="property")
    op.create_table(
        "access_codes",
        _id(),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("reservation_id", sa.UUID(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("valid_from", TIMESTAMPTZ, nullable=False),
        sa.Column("valid_until", TIMESTAMPTZ, nullable=False),
        sa.Column("status", sa.Text(), server_default="scheduled", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("revoked_at", TIMESTAMPTZ, nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "status IN ('scheduled', 'active', 'revoked', 'expired')",
            name=op.f("ck_access_codes_status_allowed"),
        ),
        sa.CheckConstraint("valid_until > valid_from", name=op.f("ck_access_codes_window_ordered")),
        sa.CheckConstraint("code ~ '^[0-9]{4,10}$'", name=op.f("ck_access_codes_code_digits")),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["property.properties.id"],
            name=op.f("fk_access_codes_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.reservations.id"],
            name=op.f("fk_access_codes_reservation_id_reservations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_codes")),
        schema="property",
    )
    op.execute(
        "ALTER TABLE property.access_codes ADD CONSTRAINT access_codes_no_overlap"
        f" EXCLUDE USING gist (int8range({CODE_KEY}, {CODE_KEY}, '[]') WITH =,"
        " tstzrange(valid_from, valid_until) WITH &&)"
        " WHERE (status IN ('scheduled', 'active'))"
    )
    op.create_index(
        "uq_access_codes_reservation_id",
        "access_codes",
        ["reservation_id"],
        unique=True,
        schema="property",
        postgresql_where=sa.text("status <> 'revoked'"),
    )
    op.create_index(
        "ix_access_codes_scheduled_valid_from",
        "access_codes",
        ["valid_from"],
        schema="property",
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index(
        "ix_access_codes_live_valid_until",
        "access_codes",
        ["valid_until"],
        schema="property",
        postgresql_where=sa.text("status IN ('scheduled', 'active')"),
    )
    op.create_index(
        "ix_access_codes_property_id", "access_codes", ["property_id"], schema="property"
    )
    _updated_at_trigger("property.access_codes")

    # -- reservation-rule conditions and assignment ------------------------------------------
    op.add_column("recurring_rules", sa.Column("channels", TEXT_ARRAY), schema="service")
    op.add_column(
        "recurring_rules",
        sa.Column(
            "reservation_types",
            TEXT_ARRAY,
            server_default=sa.text("'{guest}'::text[]"),
            nullable=False,
        ),
        schema="service",
    )
    op.add_column("recurring_rules", sa.Column("min_nights", sa.Integer()), schema="service")
    op.add_column("recurring_rules", sa.Column("max_nights", sa.Integer()), schema="service")
    op.add_column(
        "recurring_rules",
        sa.Column(
            "assign_to_member", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        schema="service",
    )
    for name, condition in (
        ("channels_known", f"channels IS NULL OR channels <@ {SOURCES}"),
        ("reservation_types_known", f"reservation_types <@ {TYPES}"),
        ("min_nights_nonnegative", "min_nights IS NULL OR min_nights >= 0"),
        ("nights_ordered", "max_nights IS NULL OR min_nights IS NULL OR max_nights >= min_nights"),
        ("assign_needs_team", "NOT assign_to_member OR team_id IS NOT NULL"),
    ):
        op.create_check_constraint(
            op.f(f"ck_recurring_rules_{name}"), "recurring_rules", condition, schema="service"
        )
    op.create_index(
        "ix_tickets_current_agent_id_open",
        "tickets",
        ["current_agent_id", "current_team_id"],
        schema="service",
        postgresql_where=sa.text(
            "current_agent_id IS NOT NULL AND status NOT IN ('resolved', 'closed', 'cancelled')"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_current_agent_id_open", table_name="tickets", schema="service")
    for name in (
        "assign_needs_team",
        "nights_ordered",
        "min_nights_nonnegative",
        "reservation_types_known",
        "channels_known",
    ):
        op.drop_constraint(
            op.f(f"ck_recurring_rules_{name}"), "recurring_rules", schema="service", type_="check"
        )
    for name in ("assign_to_member", "max_nights", "min_nights", "reservation_types", "channels"):
        op.drop_column("recurring_rules", name, schema="service")

    op.drop_table("access_codes", schema="property")
    op.drop_column("properties", "check_out_time", schema="property")
    op.drop_column("properties", "check_in_time", schema="property")

    op.drop_index("ix_messages_scheduled_for", table_name="messages", schema="comms")
    # Journey rows that never reached the sender have no place in the older outbox.
    op.execute("DELETE FROM comms.messages WHERE status IN ('scheduled', 'cancelled')")
    op.drop_constraint(
        op.f("ck_messages_status_allowed"), "messages", schema="comms", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_messages_status_allowed"), "messages", OLD_MESSAGE_STATUSES, schema="comms"
    )
    for name in ("status_reason", "message_rule_id", "scheduled_for"):
        op.drop_column("messages", name, schema="comms")

    op.drop_index("ix_message_rules_template_id", table_name="message_rules", schema="comms")
    op.drop_table("message_rules", schema="comms")
    op.drop_table("message_templates", schema="comms")
    op.execute("DROP FUNCTION comms.after_quiet_hours(timestamptz, text, time, time)")
    op.execute("DROP FUNCTION ops.local_to_utc(timestamp, text)")
