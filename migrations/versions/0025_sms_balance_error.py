"""the SMS balance check's last error, kept on the account for Settings → SMS and `flask status`

Revision ID: 0025
Revises: 0023
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    """Plain new nullable columns: nothing existing is rewritten."""
    op.add_column("sms_accounts", sa.Column("balance_error", sa.Text(), nullable=True))
    op.add_column("sms_accounts", sa.Column("balance_error_at", sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column("sms_accounts", "balance_error_at")
    op.drop_column("sms_accounts", "balance_error")
