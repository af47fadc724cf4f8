"""sla: index of tickets whose pause clock disagrees with their status

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:30:00+00:00

sla.apply is enqueued by the services that change a ticket's status; one that forgets leaves a
resumed ticket with its clock still stopped (no resolution deadline, so never breached) or a
waiting ticket with its clock still running. The every-minute sweep puts such tickets right
(tasks.sla.sweep.reconcile_pause_clocks); this partial index is how it finds them without
reading the tickets whose clock is right, which is all of them almost always.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAUSED = "status IN ('pending_guest', 'pending_vendor', 'on_hold')"
STALE = (
    f"(sla_paused_since IS NOT NULL AND NOT ({PAUSED}))"
    f" OR (sla_paused_since IS NULL AND {PAUSED} AND response_due_at IS NOT NULL)"
)


def upgrade() -> None:
    op.create_index(
        "ix_tickets_pause_clock_stale",
        "tickets",
        ["updated_at"],
        unique=False,
        schema="service",
        postgresql_where=sa.text(STALE),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_pause_clock_stale", table_name="tickets", schema="service")
