"""Daily settings: opening hours and closed days, bulk rates per channel, the panel's attachment size

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

shop = sa.table(
    "shop", sa.column("id", sa.Integer), sa.column("bulk_rates", sa.JSON), sa.column("closed_days", sa.JSON),
    sa.column("panel_attachment_max_mb", sa.Integer), sa.column("bulk_rate_per_second", sa.Integer),
)


def upgrade():
    with op.batch_alter_table("shop") as batch:
        batch.add_column(sa.Column("opening_week", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("closed_days", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("bulk_rates", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("panel_attachment_max_mb", sa.Integer(), nullable=True))
    bind = op.get_bind()
    for row in bind.execute(sa.select(shop.c.id, shop.c.bulk_rate_per_second)).all():
        per_minute = max(1, min(600, (row.bulk_rate_per_second or 1) * 60))
        bind.execute(shop.update().where(shop.c.id == row.id).values(
            bulk_rates={"email": per_minute, "sms": per_minute, "portal": per_minute},
            closed_days=[], panel_attachment_max_mb=10))
    with op.batch_alter_table("shop") as batch:
        batch.alter_column("closed_days", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("bulk_rates", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("panel_attachment_max_mb", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("bulk_rate_per_second")


def downgrade():
    with op.batch_alter_table("shop") as batch:
        batch.add_column(sa.Column("bulk_rate_per_second", sa.Integer(), nullable=True))
    bind = op.get_bind()
    for row in bind.execute(sa.select(shop.c.id, shop.c.bulk_rates)).all():
        rates = row.bulk_rates or {}
        bind.execute(shop.update().where(shop.c.id == row.id).values(
            bulk_rate_per_second=max(1, min(rates.values() or [60]) // 60)))
    with op.batch_alter_table("shop") as batch:
        batch.alter_column("bulk_rate_per_second", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("panel_attachment_max_mb")
        batch.drop_column("bulk_rates")
        batch.drop_column("closed_days")
        batch.drop_column("opening_week")
