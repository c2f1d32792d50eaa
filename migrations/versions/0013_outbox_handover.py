"""deliveries remember when their hand-over to the provider began, so a crash leaves only those in doubt

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("deliveries", sa.Column("handover_at", sa.DateTime(), nullable=True))
    # Claims taken before this column existed may be on their way: they count as handed over (uncertain once
    # stale), never as untouched (which would send them again).
    deliveries = sa.table("deliveries", sa.column("status", sa.String), sa.column("claimed_at", sa.DateTime),
                          sa.column("handover_at", sa.DateTime))
    op.execute(deliveries.update().where(deliveries.c.status == "sending")
               .values(handover_at=sa.func.coalesce(deliveries.c.claimed_at, sa.func.current_timestamp())))


def downgrade():
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("handover_at")
