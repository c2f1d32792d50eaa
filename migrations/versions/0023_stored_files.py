"""stored files in the database (ATTACHMENT_STORAGE=database) and Undo's kept drafts

Revision ID: 0023
Revises: 0022
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    """New tables only: nothing existing is rewritten."""
    op.create_table(
        "stored_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_stored_blobs")),
    )
    op.create_table(
        "stored_blob_chunks",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["stored_blobs.sha256"], ondelete="CASCADE",
                                name=op.f("fk_stored_blob_chunks_sha256_stored_blobs")),
        sa.PrimaryKeyConstraint("sha256", "seq", name=op.f("pk_stored_blob_chunks")),
    )
    op.create_table(
        "kept_drafts",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_kept_drafts_user_id_users")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE",
                                name=op.f("fk_kept_drafts_customer_id_customers")),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_kept_drafts")),
    )
    op.create_index(op.f("ix_kept_drafts_user_id"), "kept_drafts", ["user_id"])
    op.create_index(op.f("ix_kept_drafts_created_at"), "kept_drafts", ["created_at"])
    op.create_index(op.f("ix_kept_drafts_customer_id"), "kept_drafts", ["customer_id"])


def downgrade():
    op.drop_index(op.f("ix_kept_drafts_customer_id"), table_name="kept_drafts")
    op.drop_index(op.f("ix_kept_drafts_created_at"), table_name="kept_drafts")
    op.drop_index(op.f("ix_kept_drafts_user_id"), table_name="kept_drafts")
    op.drop_table("kept_drafts")
    op.drop_table("stored_blob_chunks")
    op.drop_table("stored_blobs")
