"""Monitoring: each mailbox keeps what its last polling pass did

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("last_poll_counts", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("last_poll_counts")
