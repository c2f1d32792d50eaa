"""a contact person's own SMS stop and bouncing address

Revision ID: 0024
Revises: 0023
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    """Plain added columns: nothing existing is rewritten."""
    op.add_column("contact_people", sa.Column("sms_stopped_at", sa.DateTime(), nullable=True))
    op.add_column("contact_people", sa.Column("email_bounced_at", sa.DateTime(), nullable=True))
    op.add_column("contact_people", sa.Column("email_bounce_reason", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("contact_people") as batch:
        batch.drop_column("email_bounce_reason")
        batch.drop_column("email_bounced_at")
        batch.drop_column("sms_stopped_at")
