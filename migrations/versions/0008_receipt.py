"""The acceptance receipt: a repair's serial number (or IMEI) and accessories, the shop's receipt terms

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN with a server default (no table copy on SQLite, filled for existing rows on both).
    op.add_column("repairs", sa.Column("serial_number", sa.String(64), nullable=False, server_default=""))
    op.add_column("repairs", sa.Column("accessories", sa.String(255), nullable=False, server_default=""))
    op.add_column("shop", sa.Column("receipt_terms", sa.Text(), nullable=False, server_default=""))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of repairs would trip the search triggers that name it.
    op.drop_column("shop", "receipt_terms")
    op.drop_column("repairs", "accessories")
    op.drop_column("repairs", "serial_number")
