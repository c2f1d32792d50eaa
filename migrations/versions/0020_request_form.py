"""the public request form: the shop's switch for it, and requests waiting for their sender's code

Revision ID: 0020
Revises: 0019
"""
from alembic import op
import sqlalchemy as sa



revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    """A plain ADD COLUMN on the shop (never a recreated table) and a new table."""
    op.add_column("shop", sa.Column("request_form_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "web_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("code_channel", sa.String(length=8), nullable=False),
        sa.Column("code_recipient", sa.String(length=254), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(), nullable=True),
        sa.Column("code_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("device", sa.String(length=200), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("consent_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_web_requests_customer_id_customers"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], name=op.f("fk_web_requests_thread_id_threads"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_requests")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_requests_token_hash")),
    )
    op.create_index("ix_web_requests_state", "web_requests", ["state", "expires_at"], unique=False)
    op.create_index(op.f("ix_web_requests_customer_id"), "web_requests", ["customer_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_web_requests_customer_id"), table_name="web_requests")
    op.drop_index("ix_web_requests_state", table_name="web_requests")
    op.drop_table("web_requests")
    op.drop_column("shop", "request_form_enabled")
