"""linen reorder indexes: latest count and deliveries since, per property by date

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22 03:20:00+00:00

linen.reorder reads, per property, its latest count on or before today and the deliveries
dated after that count. The seed's indexes are on property_id alone, so both lookups fetched a
property's whole history (a year of weekly exchanges is 52 deliveries a property, 520,000 at
10,000 properties) to keep the last few. With the date in the index, the latest count is one
backward index step and the deliveries since are one range scan. The seed's single-column
indexes stay: the seed names them.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "idx_linen_counts_property_date",
        "linen_counts",
        ["property_id", "count_date"],
        unique=False,
        schema="inventory",
    )
    op.create_index(
        "idx_linen_del_property_date",
        "linen_deliveries",
        ["property_id", "delivery_date"],
        unique=False,
        schema="inventory",
    )


def downgrade() -> None:
    op.drop_index("idx_linen_del_property_date", table_name="linen_deliveries", schema="inventory")
    op.drop_index("idx_linen_counts_property_date", table_name="linen_counts", schema="inventory")
