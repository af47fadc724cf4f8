"""channel mapping health: per-mapping backoff and sync bookkeeping

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:00:00+00:00

A connection is one account at a channel with many listings; one listing whose feed fails (a
deleted listing answering 404) must back off on its own rather than slow every listing of the
account. So each mapping gets its own failure count, backoff time and last error, plus the
time of its last change (`cmw channels`) and the hash of its last imported body (a feed without
validators answering the same bytes is a cheap run). All nullable or defaulted: a service that
inserts only the contract columns still succeeds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column(
        "channel_mappings",
        sa.Column("last_changed_at", TIMESTAMPTZ, nullable=True),
        schema="channel",
    )
    op.add_column(
        "channel_mappings", sa.Column("last_feed_hash", sa.Text(), nullable=True), schema="channel"
    )
    op.add_column(
        "channel_mappings", sa.Column("next_sync_at", TIMESTAMPTZ, nullable=True), schema="channel"
    )
    op.add_column(
        "channel_mappings",
        sa.Column(
            "consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        schema="channel",
    )
    op.add_column(
        "channel_mappings", sa.Column("failing_since", TIMESTAMPTZ, nullable=True), schema="channel"
    )
    op.add_column(
        "channel_mappings", sa.Column("last_error", sa.Text(), nullable=True), schema="channel"
    )
    op.create_check_constraint(
        op.f("ck_channel_mappings_consecutive_failures_nonnegative"),
        "channel_mappings",
        "consecutive_failures >= 0",
        schema="channel",
    )
    op.create_index(
        "ix_channel_bookings_mapping_id_end_date_active",
        "channel_bookings",
        ["mapping_id", "end_date"],
        unique=False,
        schema="channel",
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_channel_bookings_mapping_id_end_date_active",
        table_name="channel_bookings",
        schema="channel",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_constraint(
        op.f("ck_channel_mappings_consecutive_failures_nonnegative"),
        "channel_mappings",
        schema="channel",
        type_="check",
    )
    for column in (
        "last_error",
        "failing_since",
        "consecutive_failures",
        "next_sync_at",
        "last_feed_hash",
        "last_changed_at",
    ):
        op.drop_column("channel_mappings", column, schema="channel")
