"""IMAP UIDs and UIDVALIDITY as big integers: they are unsigned 32-bit numbers, above PostgreSQL's integer

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

COLUMNS = {"mailboxes": ("uidvalidity", "last_uid"), "inbound_items": ("uidvalidity", "uid")}


def upgrade():
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger())


def downgrade():
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer())
