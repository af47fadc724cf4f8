"""channel sync in the field: claims, held cancellations, bounded volume, overlap pairs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:00:00+00:00

SPEC 7.1. An import no longer holds a transaction while it waits on a feed: the mapping is
claimed (`claimed_by`, `claimed_until`) in a short transaction first, and channel.sync marks
due mappings (`sync_requested_at`) for the batches of channel.sync_mapping to claim. A feed that
suddenly empties has its cancellations held (`channel_bookings.held_since`, the mapping's
`hold_started_at`, sync_log status `held` and count `held`). Hostile events are counted
(`sync_log.rejected`). Unchanged runs fold into the mapping's newest sync_log row
(`last_sync_log_id`, `runs`, `last_started_at`). Every overlapping pair of stays is recorded in
`channel.overlap_pairs`, ticketed or not, so a pair is never raised twice; the pairs already
ticketed are copied in from their tickets' dedupe keys. Everything added is nullable or
defaulted, so a service inserting only the contract columns still succeeds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "overlap_pairs",
        sa.Column(
            "id", sa.UUID(), server_default=sa.text("ops.uuid_generate_v7()"), nullable=False
        ),
        sa.Column("lo", sa.UUID(), nullable=False),
        sa.Column("hi", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("mapping_id", sa.UUID(), nullable=True),
        sa.Column("ticket_id", sa.UUID(), nullable=True),
        sa.Column("found_at", TIMESTAMPTZ, nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("lo < hi", name=op.f("ck_overlap_pairs_ordered")),
        sa.ForeignKeyConstraint(
            ["mapping_id"],
            ["channel.channel_mappings.id"],
            name=op.f("fk_overlap_pairs_mapping_id_channel_mappings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["property.properties.id"],
            name=op.f("fk_overlap_pairs_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overlap_pairs")),
        sa.UniqueConstraint("lo", "hi", name="uq_overlap_pairs_lo_hi"),
        schema="channel",
    )
    op.create_index(
        "ix_overlap_pairs_property_id", "overlap_pairs", ["property_id"], schema="channel"
    )
    # The pairs raised before this revision, from their tickets' keys
    # ('channel:overlap:<lo>:<hi>'), so none of them is raised again.
    op.execute(
        """
        INSERT INTO channel.overlap_pairs (lo, hi, property_id, ticket_id, found_at)
        SELECT DISTINCT ON (lo, hi) lo, hi, property_id, id, created_at
        FROM (
            SELECT CAST(split_part(dedupe_key, ':', 3) AS uuid) AS lo,
                   CAST(split_part(dedupe_key, ':', 4) AS uuid) AS hi,
                   property_id, id, created_at
            FROM service.tickets
            WHERE dedupe_key LIKE 'channel:overlap:%' AND property_id IS NOT NULL
        ) t
        ORDER BY lo, hi, created_at
        ON CONFLICT (lo, hi) DO NOTHING
        """
    )

    op.add_column("channel_bookings", sa.Column("held_since", TIMESTAMPTZ), schema="channel")
    op.create_index(
        "ix_channel_bookings_mapping_id_held",
        "channel_bookings",
        ["mapping_id"],
        schema="channel",
        postgresql_where=sa.text("held_since IS NOT NULL"),
    )

    for name, type_ in (
        ("sync_requested_at", TIMESTAMPTZ),
        ("claimed_by", sa.Text()),
        ("claimed_until", TIMESTAMPTZ),
        ("hold_started_at", TIMESTAMPTZ),
        ("last_sync_log_id", sa.UUID()),
    ):
        op.add_column("channel_mappings", sa.Column(name, type_), schema="channel")
    op.create_index(
        "ix_channel_mappings_sync_requested_at",
        "channel_mappings",
        ["sync_requested_at"],
        schema="channel",
        postgresql_where=sa.text("sync_requested_at IS NOT NULL"),
    )

    for name, default in (("held", "0"), ("rejected", "0"), ("runs", "1")):
        op.add_column(
            "sync_log",
            sa.Column(name, sa.Integer(), server_default=sa.text(default), nullable=False),
            schema="channel",
        )
    op.add_column("sync_log", sa.Column("last_started_at", TIMESTAMPTZ), schema="channel")
    op.create_index("ix_sync_log_finished_at", "sync_log", ["finished_at"], schema="channel")
    op.drop_constraint(
        op.f("ck_sync_log_status_allowed"), "sync_log", schema="channel", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_sync_log_status_allowed"),
        "sync_log",
        "status IN ('ok', 'not_modified', 'error', 'held')",
        schema="channel",
    )
    op.execute(
        """
        UPDATE channel.channel_mappings m SET last_sync_log_id = s.id
        FROM (
            SELECT DISTINCT ON (mapping_id) mapping_id, id
            FROM channel.sync_log WHERE mapping_id IS NOT NULL
            ORDER BY mapping_id, started_at DESC, created_at DESC
        ) s
        WHERE s.mapping_id = m.id
        """
    )


def downgrade() -> None:
    op.execute("DELETE FROM channel.sync_log WHERE status = 'held'")
    op.drop_constraint(
        op.f("ck_sync_log_status_allowed"), "sync_log", schema="channel", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_sync_log_status_allowed"),
        "sync_log",
        "status IN ('ok', 'not_modified', 'error')",
        schema="channel",
    )
    op.drop_index("ix_sync_log_finished_at", table_name="sync_log", schema="channel")
    for name in ("last_started_at", "runs", "rejected", "held"):
        op.drop_column("sync_log", name, schema="channel")
    op.drop_index(
        "ix_channel_mappings_sync_requested_at",
        table_name="channel_mappings",
        schema="channel",
        postgresql_where=sa.text("sync_requested_at IS NOT NULL"),
    )
    for name in (
        "last_sync_log_id",
        "hold_started_at",
        "claimed_until",
        "claimed_by",
        "sync_requested_at",
    ):
        op.drop_column("channel_mappings", name, schema="channel")
    op.drop_index(
        "ix_channel_bookings_mapping_id_held",
        table_name="channel_bookings",
        schema="channel",
        postgresql_where=sa.text("held_since IS NOT NULL"),
    )
    op.drop_column("channel_bookings", "held_since", schema="channel")
    op.drop_index("ix_overlap_pairs_property_id", table_name="overlap_pairs", schema="channel")
    op.drop_table("overlap_pairs", schema="channel")
