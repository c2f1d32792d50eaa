"""a message template's own SMS text (with its "without Polish letters" choice) and panel text

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    """Empty texts: every existing template goes on carrying its main text on every channel.

    Plain ADD and DROP COLUMN, never a recreated table: on SQLite a batch copy drops the old message_templates,
    and with foreign keys on that deletes every automatic notification and template file pointing at it."""
    op.add_column("message_templates", sa.Column("sms_body", sa.Text(), nullable=False, server_default=""))
    op.add_column("message_templates", sa.Column("sms_plain", sa.Boolean(), nullable=False,
                                                 server_default=sa.false()))
    op.add_column("message_templates", sa.Column("panel_body", sa.Text(), nullable=False, server_default=""))


def downgrade():
    for column in ("panel_body", "sms_plain", "sms_body"):
        op.drop_column("message_templates", column)
