"""SMS providers: which one an SMS account is (Twilio or SMSAPI.pl), the secret in its callback URLs, its balance

Revision ID: 0019
Revises: 0018
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

COLUMNS = ("callback_secret_enc", "balance", "balance_currency", "balance_checked_at", "low_balance_threshold",
           "low_balance_noticed_at")


def upgrade():
    """Plain ADD COLUMN (no recreated table: deliveries point at sms_accounts); every existing account is Twilio's."""
    op.add_column("sms_accounts", sa.Column("provider", sa.String(16), nullable=False, server_default="twilio"))
    op.add_column("sms_accounts", sa.Column("callback_secret_enc", sa.Text(), nullable=True))
    op.add_column("sms_accounts", sa.Column("balance", sa.Numeric(14, 4), nullable=True))
    op.add_column("sms_accounts", sa.Column("balance_currency", sa.String(16), nullable=True))
    op.add_column("sms_accounts", sa.Column("balance_checked_at", sa.DateTime(), nullable=True))
    op.add_column("sms_accounts", sa.Column("low_balance_threshold", sa.Numeric(14, 4), nullable=True))
    op.add_column("sms_accounts", sa.Column("low_balance_noticed_at", sa.DateTime(), nullable=True))


def downgrade():
    for column in reversed(COLUMNS):
        op.drop_column("sms_accounts", column)
    op.drop_column("sms_accounts", "provider")
