"""What the calendar and reservation halves of the recurring rules share: statuses, the rule
targets, and how a ticket template is filled in (SPEC 6.1)."""

from __future__ import annotations

from db.models.service import CLOSED_TICKET_STATUSES, TICKET_OPEN_SQL

# A stay that is happening (or happened): it occupies its nights and keeps its tickets.
# SPEC 6.1 says "confirmed"; checked_in and checked_out are the same stay later in its life
# (an occurrence caught up after downtime may look at a stay that has since checked in).
LIVE_STAY_STATUSES = ("confirmed", "checked_in", "checked_out")
# Stays that occupy a property for skip_if_occupied / skip_if_vacant, and arrivals that make
# a departure a back-to-back turnover: guests and owners sleep there, a block does not.
OCCUPYING_STAY_TYPES = ("guest", "owner_stay")
# A ticket nobody has started: cancelled with its stay. Anything further along
# (in_progress, pending_*, on_hold) has had work done on it and is left to its team.
NOT_STARTED_TICKET_STATUSES = ("open", "acknowledged")
STARTED_TICKET_STATUSES = ("in_progress", "pending_guest", "pending_vendor", "on_hold")
FINISHED_TICKET_STATUSES = CLOSED_TICKET_STATUSES
OPEN_TICKET_SQL = TICKET_OPEN_SQL

TURNOVER_PREFIX = "[Turnover] "
TURNOVER_PRIORITY = "high"


def sql_list(values: tuple[str, ...]) -> str:
    """A SQL list of fixed, code-defined literals (never user input): "('a', 'b')"."""
    assert all("'" not in v for v in values)
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


LIVE_STAYS_SQL = sql_list(LIVE_STAY_STATUSES)
OCCUPYING_TYPES_SQL = sql_list(OCCUPYING_STAY_TYPES)
NOT_STARTED_SQL = sql_list(NOT_STARTED_TICKET_STATUSES)
STARTED_SQL = sql_list(STARTED_TICKET_STATUSES)


def fill_template_sql(template: str, property_name: str, local_date: str, code: str) -> str:
    """SQL filling {property_name}, {date} (ISO local date) and {reservation_code} into the
    column `template`; the arguments are column expressions. Plain replace(), not format():
    any other braces in a template are left as written."""
    return (
        f"replace(replace(replace({template}, '{{property_name}}', {property_name}),"
        f" '{{date}}', to_char({local_date}, 'YYYY-MM-DD')),"
        f" '{{reservation_code}}', coalesce({code}, ''))"
    )


# The properties a rule applies to, as (rule_id, property_id, timezone, property_name), for the
# rules in the CTE `rules` (which must expose id and scope_type): every active property for
# all_properties; otherwise the rule's property targets plus the active properties of its
# resort targets. A target row means what it says whatever the scope_type of a property or
# resort rule, so a resort rule may name one extra property. UNION ALL without duplicates: a
# property named directly is left out of its resort's branch, a property has one resort, and
# (rule, property) / (rule, resort) targets are unique.
TARGETS_SQL = """
    SELECT r.id AS rule_id, p.id AS property_id, p.timezone, p.name AS property_name
    FROM rules r
    JOIN property.properties p ON p.status = 'active'
    WHERE r.scope_type = 'all_properties'
      AND (CAST(:property_id AS uuid) IS NULL OR p.id = CAST(:property_id AS uuid))
    UNION ALL
    SELECT r.id, p.id, p.timezone, p.name
    FROM rules r
    JOIN service.recurring_rule_targets t ON t.recurring_rule_id = r.id
    JOIN property.properties p ON p.id = t.property_id
    WHERE r.scope_type <> 'all_properties' AND p.status = 'active'
      AND (CAST(:property_id AS uuid) IS NULL OR p.id = CAST(:property_id AS uuid))
    UNION ALL
    SELECT r.id, p.id, p.timezone, p.name
    FROM rules r
    JOIN service.recurring_rule_targets t ON t.recurring_rule_id = r.id
    JOIN property.properties p ON p.resort_id = t.resort_id
    WHERE r.scope_type <> 'all_properties' AND p.status = 'active'
      AND (CAST(:property_id AS uuid) IS NULL OR p.id = CAST(:property_id AS uuid))
      AND NOT EXISTS (
          SELECT 1 FROM service.recurring_rule_targets d
          WHERE d.recurring_rule_id = r.id AND d.property_id = p.id
      )
"""
