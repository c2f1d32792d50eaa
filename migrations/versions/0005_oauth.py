"""mailboxes signing in with OAuth2: the shop's OAuth clients, and mailbox health (last good poll, owner told)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("provider", name=op.f("uq_oauth_clients_provider")),
    )
    # Plain ADD COLUMN: no table is recreated (0004's search triggers stay).
    op.add_column("mailboxes", sa.Column("last_poll_ok_at", sa.DateTime(), nullable=True))
    op.add_column("mailboxes", sa.Column("broken_notified_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("broken_notified_at")
        batch.drop_column("last_poll_ok_at")
    op.drop_table("oauth_clients")
