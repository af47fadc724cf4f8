"""Schema service: tickets, their activity and SLA history, recurring rules, SLA policies and
business calendars, and the costs billed to owners (SPEC 4 "Service", 6.1, 6.2).

Business IDs: tickets.ticket_number "TKT-010001", recurring_rules.rule_code "RR-010001".

The ticket indexes are shaped for the jobs: `sla.check_breaches` finds due tickets through the
partial indexes below and never scans every ticket. A query uses a partial index only when its
WHERE clause repeats the index predicate, so the predicates are module constants
(`TICKET_OPEN_SQL`, ...) that the queries can reuse word for word.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, business_id, check_in, created_at, updated_at, uuid_pk

TICKET_STATUSES = (
    "open",
    "acknowledged",
    "in_progress",
    "pending_guest",
    "pending_vendor",
    "on_hold",
    "resolved",
    "closed",
    "cancelled",
)
# A ticket in one of these is finished: no SLA clock, no breach, no warning.
CLOSED_TICKET_STATUSES = ("resolved", "closed", "cancelled")
# While a ticket waits in one of these its SLA clock is paused (SPEC 6.2).
PAUSED_TICKET_STATUSES = ("pending_guest", "pending_vendor", "on_hold")
TICKET_SOURCES = ("portal", "agent", "email", "recurring", "system", "channel")
SLA_KINDS = ("response", "resolution")

RECURRING_TRIGGER_TYPES = ("calendar", "reservation")
RECURRING_ANCHORS = ("check_in", "check_out", "booked")
RECURRING_SCOPE_TYPES = ("property", "resort", "all_properties")
RECURRING_SKIP_POLICIES = ("none", "skip_if_occupied", "skip_if_vacant")
RECURRING_MISSED_POLICIES = ("catch_up", "skip")
# What became of one occurrence: a ticket, or a decision not to make one (skip policy, or
# missed with missed_policy='skip'), recorded so the occurrence is never reconsidered.
RECURRING_OUTCOMES = ("created", "skipped", "missed")

COST_BILLABLE_TO = ("owner", "company", "guest")

# Index predicates, reused verbatim by the queries that want the indexes.
TICKET_OPEN_SQL = "status NOT IN ('resolved', 'closed', 'cancelled')"
RESPONSE_PENDING_SQL = (
    f"first_response_at IS NULL AND response_breached_at IS NULL AND {TICKET_OPEN_SQL}"
)
RESOLUTION_PENDING_SQL = (
    f"resolved_at IS NULL AND resolution_breached_at IS NULL AND {TICKET_OPEN_SQL}"
)
WARNING_PENDING_SQL = f"sla_warned_at IS NULL AND {RESOLUTION_PENDING_SQL}"
NO_DEADLINES_SQL = f"response_due_at IS NULL AND {TICKET_OPEN_SQL}"
PAUSED_SQL = "status IN (" + ", ".join(f"'{s}'" for s in PAUSED_TICKET_STATUSES) + ")"
# A pause clock that disagrees with the status: a ticket resumed (or finished) while its clock
# still runs as paused, or one that entered a waiting status with its deadlines still running,
# by a service that changed the status without enqueueing sla.apply. Normally empty.
PAUSE_CLOCK_STALE_SQL = (
    f"(sla_paused_since IS NOT NULL AND NOT ({PAUSED_SQL}))"
    f" OR (sla_paused_since IS NULL AND {PAUSED_SQL} AND response_due_at IS NOT NULL)"
)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        check_in("status", TICKET_STATUSES),
        check_in("source", TICKET_SOURCES),
        CheckConstraint("sla_paused_minutes >= 0", name="sla_paused_minutes_nonnegative"),
        # sla.check_breaches: unanswered tickets by response deadline ...
        Index(
            "ix_tickets_response_due_pending",
            "response_due_at",
            postgresql_where=text(RESPONSE_PENDING_SQL),
        ),
        # ... unresolved tickets by resolution deadline ...
        Index(
            "ix_tickets_resolution_due_pending",
            "resolution_due_at",
            postgresql_where=text(RESOLUTION_PENDING_SQL),
        ),
        # ... unwarned tickets by the instant of their warning ...
        Index(
            "ix_tickets_resolution_warn_due_pending",
            "resolution_warn_due_at",
            postgresql_where=text(WARNING_PENDING_SQL),
        ),
        # ... and open tickets inserted without deadlines (no sla.apply was enqueued).
        Index(
            "ix_tickets_no_deadlines",
            "created_at",
            postgresql_where=text(NO_DEADLINES_SQL),
        ),
        # ... and tickets whose pause clock disagrees with their status.
        Index(
            "ix_tickets_pause_clock_stale",
            "updated_at",
            postgresql_where=text(PAUSE_CLOCK_STALE_SQL),
        ),
        # One open ticket per dedupe key (e.g. "no linen supplier for property X", "double
        # booking A/B"): jobs insert with ON CONFLICT DO NOTHING, so concurrent runs raise one.
        Index(
            "uq_tickets_dedupe_key_open",
            "dedupe_key",
            unique=True,
            postgresql_where=text(f"dedupe_key IS NOT NULL AND {TICKET_OPEN_SQL}"),
        ),
        Index("ix_tickets_property_id", "property_id"),
        Index("ix_tickets_reservation_id", "reservation_id"),
        Index("ix_tickets_current_team_id", "current_team_id"),
        # "The open tickets of this member": reservation rules assign new tickets to the
        # active member of the rule's team with the fewest (SPEC 7.6).
        Index(
            "ix_tickets_current_agent_id_open",
            "current_agent_id",
            "current_team_id",
            postgresql_where=text(f"current_agent_id IS NOT NULL AND {TICKET_OPEN_SQL}"),
        ),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    ticket_number: Mapped[str] = business_id("service", "tickets", "ticket_number", "TKT")
    # No default: a ticket's type routes it (PC, RSV, ADM, ACCT), and a guessed type would
    # silently send it to the wrong team.
    ticket_type: Mapped[str] = mapped_column(
        ForeignKey("ref.ticket_type_key.code", ondelete="RESTRICT")
    )
    category: Mapped[str | None]
    title: Mapped[str]
    description: Mapped[str | None]
    notes: Mapped[str | None]
    # Every ticket starts open (the ticketing design's lifecycle).
    status: Mapped[str] = mapped_column(server_default="open")
    # 'normal' is the middle of ref.ticket_priority_key: an unclassified ticket gets the
    # ordinary SLA, neither paged as urgent nor parked as low.
    priority: Mapped[str] = mapped_column(
        ForeignKey("ref.ticket_priority_key.code", ondelete="RESTRICT"),
        server_default="normal",
    )
    # The jobs always name their source (recurring, system, channel); the inserting service
    # that does not is the owner/guest portal, the main way tickets are opened.
    source: Mapped[str] = mapped_column(server_default="portal")
    property_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("property.properties.id", ondelete="SET NULL")
    )
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.reservations.id", ondelete="SET NULL")
    )
    homeowner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("directory.homeowners.id", ondelete="SET NULL")
    )
    requestor_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("directory.contacts.id", ondelete="SET NULL")
    )
    current_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.team_directory.id", ondelete="SET NULL")
    )
    current_team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.teams.id", ondelete="SET NULL")
    )
    # When the work is scheduled (a recurring occurrence, a turnover clean), not an SLA deadline.
    due_at: Mapped[dt.datetime | None]
    # Copied from a recurring rule's template: how long the work is expected to take.
    estimated_minutes: Mapped[int | None]
    # Set by jobs that must raise at most one open ticket about one thing (see the index).
    dedupe_key: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]

    # SLA (SPEC 6.2); all written by sla.apply / sla.check_breaches.
    sla_policy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.sla_policies.id", ondelete="SET NULL")
    )
    response_due_at: Mapped[dt.datetime | None]
    resolution_due_at: Mapped[dt.datetime | None]
    # The instant at warn_at_pct of the resolution time, computed with resolution_due_at, so
    # the sweep finds tickets to warn through an index instead of recomputing for every ticket.
    resolution_warn_due_at: Mapped[dt.datetime | None]
    sla_paused_since: Mapped[dt.datetime | None]
    # Business minutes spent paused so far; the resolution deadline has moved by them.
    sla_paused_minutes: Mapped[int] = mapped_column(server_default=text("0"))
    sla_warned_at: Mapped[dt.datetime | None]
    # The deadline that was missed (not the sweep's time); set once, never cleared.
    response_breached_at: Mapped[dt.datetime | None]
    resolution_breached_at: Mapped[dt.datetime | None]


class TicketEvent(Base):
    """Append-only activity log of a ticket (no updated_at: rows never change)."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index("ix_ticket_events_ticket_id_occurred_at", "ticket_id", "occurred_at"),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.tickets.id", ondelete="CASCADE")
    )
    # created, sla_breached, sla_warning, escalated, moved, cancelled, ... (free text: grows).
    event_type: Mapped[str]
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    # 'system' for jobs, which write most events; people's events name the person.
    actor: Mapped[str] = mapped_column(server_default="system")
    data: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[dt.datetime] = created_at()


class TicketMiss(Base):
    """SLA miss history: one row per ticket and kind, however many sweeps see the breach."""

    __tablename__ = "ticket_misses"
    __table_args__ = (
        check_in("sla_kind", SLA_KINDS),
        UniqueConstraint("ticket_id", "sla_kind", name="uq_ticket_misses_ticket_id_sla_kind"),
        Index("ix_ticket_misses_team_id_breached_at", "team_id", "breached_at"),
        # The misses not yet folded into ops.sla_breach_totals (the metrics add them).
        Index("ix_ticket_misses_uncounted", "sla_kind", postgresql_where=text("NOT counted")),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.tickets.id", ondelete="CASCADE")
    )
    sla_kind: Mapped[str]
    due_at: Mapped[dt.datetime]
    # = due_at: the breach happened at the deadline, whenever the sweep noticed it.
    breached_at: Mapped[dt.datetime]
    sla_policy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.sla_policies.id", ondelete="SET NULL")
    )
    # Priority and team as they were before the escalation, so reports blame the right team.
    priority: Mapped[str] = mapped_column(
        ForeignKey("ref.ticket_priority_key.code", ondelete="RESTRICT")
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.teams.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = created_at()
    # Folded into ops.sla_breach_totals by ops.watch (revision 0011).
    counted: Mapped[bool] = mapped_column(server_default=text("false"))


class RecurringRule(Base):
    __tablename__ = "recurring_rules"
    __table_args__ = (
        check_in("trigger_type", RECURRING_TRIGGER_TYPES),
        check_in("anchor", RECURRING_ANCHORS),
        check_in("scope_type", RECURRING_SCOPE_TYPES),
        check_in("skip_policy", RECURRING_SKIP_POLICIES),
        check_in("missed_policy", RECURRING_MISSED_POLICIES),
        # A rule must carry what its trigger needs, or the generator could not expand it.
        CheckConstraint(
            "trigger_type <> 'calendar' OR (rrule IS NOT NULL AND dtstart IS NOT NULL)",
            name="calendar_has_rrule",
        ),
        CheckConstraint(
            "trigger_type <> 'reservation' OR anchor IS NOT NULL",
            name="reservation_has_anchor",
        ),
        CheckConstraint("lead_minutes >= 0", name="lead_minutes_nonnegative"),
        # Reservation-rule conditions (SPEC 7.6), the same as the message rules'.
        CheckConstraint(
            "channels IS NULL OR channels <@"
            " ARRAY['direct', 'airbnb', 'vrbo', 'booking_com', 'ical', 'owner']::text[]",
            name="channels_known",
        ),
        CheckConstraint(
            "reservation_types <@ ARRAY['guest', 'owner_stay', 'block']::text[]",
            name="reservation_types_known",
        ),
        CheckConstraint("min_nights IS NULL OR min_nights >= 0", name="min_nights_nonnegative"),
        CheckConstraint(
            "max_nights IS NULL OR min_nights IS NULL OR max_nights >= min_nights",
            name="nights_ordered",
        ),
        CheckConstraint("NOT assign_to_member OR team_id IS NOT NULL", name="assign_needs_team"),
        Index(
            "ix_recurring_rules_trigger_type_active",
            "trigger_type",
            postgresql_where=text("is_active"),
        ),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    rule_code: Mapped[str] = business_id("service", "recurring_rules", "rule_code", "RR")
    name: Mapped[str]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))

    # Ticket template.
    ticket_type: Mapped[str] = mapped_column(
        ForeignKey("ref.ticket_type_key.code", ondelete="RESTRICT")
    )
    category: Mapped[str | None]
    priority: Mapped[str] = mapped_column(
        ForeignKey("ref.ticket_priority_key.code", ondelete="RESTRICT"),
        server_default="normal",
    )
    # Placeholders: {property_name}, {date}, {reservation_code}.
    title_template: Mapped[str]
    description: Mapped[str | None]
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.teams.id", ondelete="SET NULL")
    )
    estimated_minutes: Mapped[int | None]

    trigger_type: Mapped[str]
    # Calendar trigger: an RFC 5545 RRULE expanded from dtstart in each property's own zone,
    # so both bounds are wall-clock times without a zone (09:00 stays 09:00 across DST).
    rrule: Mapped[str | None]
    dtstart: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP(timezone=False))
    # Inclusive, as RFC 5545's UNTIL.
    until: Mapped[dt.datetime | None] = mapped_column(TIMESTAMP(timezone=False))
    # Reservation trigger: due on the anchor's local date at local_time (midnight when null),
    # plus offset_minutes of wall-clock time (signed).
    anchor: Mapped[str | None]
    offset_minutes: Mapped[int] = mapped_column(server_default=text("0"))
    local_time: Mapped[dt.time | None]
    # Create the ticket this long before it is due; 0 = when it falls due.
    lead_minutes: Mapped[int] = mapped_column(server_default=text("0"))
    # Reservation trigger conditions (SPEC 7.6): the stay's source (null = every channel), its
    # type ('{guest}' keeps 6.1's behaviour; add 'owner_stay' for owner stays), its nights.
    channels: Mapped[list[str] | None] = mapped_column(ARRAY(Text()))
    reservation_types: Mapped[list[str]] = mapped_column(
        ARRAY(Text()), server_default=text("'{guest}'::text[]")
    )
    min_nights: Mapped[int | None]
    max_nights: Mapped[int | None]
    # New tickets go to the active member of team_id with the fewest open tickets of it.
    assign_to_member: Mapped[bool] = mapped_column(server_default=text("false"))

    scope_type: Mapped[str] = mapped_column(server_default="property")
    skip_policy: Mapped[str] = mapped_column(server_default="none")
    # catch_up by default: work missed during downtime is still done, just late.
    missed_policy: Mapped[str] = mapped_column(server_default="catch_up")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class RecurringRuleTarget(Base):
    """A property, or a resort (expanded to its active properties at generation time)."""

    __tablename__ = "recurring_rule_targets"
    __table_args__ = (
        CheckConstraint("num_nonnulls(property_id, resort_id) = 1", name="one_target"),
        # NULLs are distinct, so each constraint only bites on rows of its own kind.
        UniqueConstraint(
            "recurring_rule_id", "property_id", name="uq_recurring_rule_targets_property"
        ),
        UniqueConstraint("recurring_rule_id", "resort_id", name="uq_recurring_rule_targets_resort"),
        Index("ix_recurring_rule_targets_property_id", "property_id"),
        Index("ix_recurring_rule_targets_resort_id", "resort_id"),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    recurring_rule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.recurring_rules.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    resort_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("property.resorts.id", ondelete="CASCADE")
    )
    created_at: Mapped[dt.datetime] = created_at()


class TicketRecurring(Base):
    """One considered occurrence of a rule: the idempotency key of the recurring jobs.

    Calendar occurrences are keyed by (rule, property, occurrence_at), reservation ones by
    (rule, reservation); both keys are partial unique indexes, so the generator inserts with
    ON CONFLICT DO NOTHING and two concurrent runs create one ticket.
    """

    __tablename__ = "ticket_recurring"
    __table_args__ = (
        check_in("outcome", RECURRING_OUTCOMES),
        CheckConstraint("outcome = 'created' OR ticket_id IS NULL", name="ticket_only_if_created"),
        Index(
            "uq_ticket_recurring_calendar_occurrence",
            "recurring_rule_id",
            "property_id",
            "occurrence_at",
            unique=True,
            postgresql_where=text("reservation_id IS NULL"),
        ),
        Index(
            "uq_ticket_recurring_reservation_occurrence",
            "recurring_rule_id",
            "reservation_id",
            unique=True,
            postgresql_where=text("reservation_id IS NOT NULL"),
        ),
        # recurring.sync_reservation starts from the stay.
        Index(
            "ix_ticket_recurring_reservation_id",
            "reservation_id",
            postgresql_where=text("reservation_id IS NOT NULL"),
        ),
        Index("ix_ticket_recurring_ticket_id", "ticket_id"),
        Index("ix_ticket_recurring_property_id", "property_id"),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # NULL for a skipped or missed occurrence; SET NULL keeps the key if a ticket is deleted,
    # so a deleted ticket is not generated again.
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.tickets.id", ondelete="SET NULL")
    )
    recurring_rule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.recurring_rules.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="CASCADE")
    )
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.reservations.id", ondelete="CASCADE")
    )
    # The occurrence's due instant (for reservation rules, the current one: it moves with the
    # stay's dates).
    occurrence_at: Mapped[dt.datetime]
    outcome: Mapped[str] = mapped_column(server_default="created")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class SlaPolicy(Base):
    """Response/resolution targets; the most specific active policy for a priority wins."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        CheckConstraint("response_minutes > 0 AND resolution_minutes > 0", name="minutes_positive"),
        CheckConstraint("warn_at_pct > 0 AND warn_at_pct <= 100", name="warn_at_pct_range"),
        Index("ix_sla_policies_priority_active", "priority", postgresql_where=text("is_active")),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    # NULL type or category: matches any.
    ticket_type: Mapped[str | None] = mapped_column(
        ForeignKey("ref.ticket_type_key.code", ondelete="RESTRICT")
    )
    category: Mapped[str | None]
    priority: Mapped[str] = mapped_column(
        ForeignKey("ref.ticket_priority_key.code", ondelete="RESTRICT")
    )
    response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]
    # NULL = 24x7. RESTRICT: deleting a calendar must not silently turn policies into 24x7.
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.business_calendars.id", ondelete="RESTRICT")
    )
    warn_at_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), server_default=text("80"))
    escalate_to_team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.teams.id", ondelete="SET NULL")
    )
    escalate_priority: Mapped[str | None] = mapped_column(
        ForeignKey("ref.ticket_priority_key.code", ondelete="RESTRICT")
    )
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class BusinessCalendar(Base):
    __tablename__ = "business_calendars"
    __table_args__ = {"schema": "service"}

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    # IANA zone the weekly hours are read in.
    timezone: Mapped[str]
    # {"mon": [["09:00", "17:00"]], ...}; a missing day has no business hours. No default: an
    # empty week would have no business minutes and push every deadline to infinity.
    weekly_hours: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class BusinessCalendarHoliday(Base):
    __tablename__ = "business_calendar_holidays"
    __table_args__ = (
        UniqueConstraint(
            "calendar_id", "holiday_date", name="uq_business_calendar_holidays_calendar_date"
        ),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    calendar_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.business_calendars.id", ondelete="CASCADE")
    )
    # A local date in the calendar's zone: the whole day has no business hours.
    holiday_date: Mapped[dt.date]
    name: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class TicketCost(Base):
    """A cost incurred for a ticket; owner-billable ones land on an owner statement once."""

    __tablename__ = "ticket_costs"
    __table_args__ = (
        check_in("billable_to", COST_BILLABLE_TO),
        CheckConstraint("markup_pct >= 0", name="markup_pct_nonnegative"),
        # statements.generate: the owner's unbilled costs of a property in a period.
        Index(
            "ix_ticket_costs_unbilled_owner",
            "property_id",
            "cost_date",
            postgresql_where=text("statement_line_id IS NULL AND billable_to = 'owner'"),
        ),
        Index("ix_ticket_costs_ticket_id", "ticket_id"),
        {"schema": "service"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # RESTRICT: a ticket with costs (maybe already billed) is not deleted from under them.
    # Nullable: a cost may be booked against a property before or without a ticket.
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service.tickets.id", ondelete="RESTRICT")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("property.properties.id", ondelete="RESTRICT")
    )
    cost_date: Mapped[dt.date]
    description: Mapped[str | None]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    # No default: who pays is a money decision the recorder must make.
    billable_to: Mapped[str]
    # Billed to the owner as amount * (1 + markup_pct / 100).
    markup_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), server_default=text("0"))
    # Set by statements.finalize; unique, so a cost is billed by one line only. use_alter:
    # owner_statement_lines.ticket_cost_id points back here, a cycle between the two tables.
    statement_line_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(
            "finance.owner_statement_lines.id",
            ondelete="SET NULL",
            use_alter=True,
            name="fk_ticket_costs_statement_line_id_owner_statement_lines",
        ),
        unique=True,
    )
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
