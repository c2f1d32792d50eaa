"""a message template's own SMS text (with its "without Polish letters" choice) and panel text

Revision ID: 0017
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    """Empty texts: every existing template goes on carrying its main text on every channel."""
    with op.batch_alter_table("message_templates") as batch:
        batch.add_column(sa.Column("sms_body", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("sms_plain", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("panel_body", sa.Text(), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("message_templates") as batch:
        batch.drop_column("panel_body")
        batch.drop_column("sms_plain")
        batch.drop_column("sms_body")
