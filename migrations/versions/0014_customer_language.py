"""a customer's language (the panel, sign-in messages and notifications follow it) and staff's correction of the
vocative of their first name

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    """Two nullable columns: every existing customer reads the shop's language and gets the dictionary's
    vocative until staff say otherwise."""
    # Plain ADD COLUMN on both databases (no table copy on SQLite, which would trip the search triggers on
    # customers).
    op.add_column("customers", sa.Column("language", sa.String(length=8), nullable=True))
    op.add_column("customers", sa.Column("vocative", sa.String(length=120), nullable=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+), for the same reason.
    op.drop_column("customers", "vocative")
    op.drop_column("customers", "language")
