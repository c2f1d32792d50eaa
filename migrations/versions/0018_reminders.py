"""Reminders: a template sent when a repair has stayed in a status for some opening days, once per repair

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    """Two new tables; no existing table is touched."""
    op.create_table(
        "status_reminders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status_id", sa.Integer(), sa.ForeignKey("repair_statuses.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), sa.ForeignKey("message_templates.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("status_id", "days"),
    )
    op.create_index("ix_status_reminders_status_id", "status_reminders", ["status_id"])
    op.create_table(
        "sent_reminders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reminder_id", sa.Integer(), sa.ForeignKey("status_reminders.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("repair_id", sa.Integer(), sa.ForeignKey("repairs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
        sa.Column("status_since", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("repair_id", "reminder_id"),
    )
    op.create_index("ix_sent_reminders_reminder_id", "sent_reminders", ["reminder_id"])
    op.create_index("ix_sent_reminders_repair_id", "sent_reminders", ["repair_id"])


def downgrade():
    op.drop_table("sent_reminders")
    op.drop_table("status_reminders")
