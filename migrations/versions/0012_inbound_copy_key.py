"""one item per received mail: a unique copy key (Message-ID + content hash) instead of the plain dedupe index

Revision ID: 0012
Revises: 0011
"""
import hashlib

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_KEPT = ("accepted", "held", "discarded")  # statuses of an item that keeps its mail (its copies are duplicates)
_CHUNK = 1000


def upgrade():
    # Plain ADD COLUMN and CREATE INDEX: no table is recreated.
    op.add_column("inbound_items", sa.Column("copy_key", sa.String(length=64), nullable=True))
    items = sa.table("inbound_items", sa.column("id", sa.Integer), sa.column("source", sa.String),
                     sa.column("status", sa.String), sa.column("message_id_header", sa.String),
                     sa.column("content_hash", sa.String), sa.column("copy_key", sa.String))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(items.c.id, items.c.message_id_header, items.c.content_hash)
        .where(items.c.source == "email", items.c.status.in_(_KEPT)).order_by(items.c.id)
    ).all()
    # The oldest item of each mail keeps it (as the lookup before chose); copies stored twice by a race keep none.
    keys: dict[str, int] = {}
    for item_id, message_id, content_hash in rows:
        key = hashlib.sha256(f"{message_id or ''}\x00{content_hash}".encode("utf-8", "surrogatepass")).hexdigest()
        keys.setdefault(key, item_id)
    update = items.update().where(items.c.id == sa.bindparam("item_id")).values(copy_key=sa.bindparam("key"))
    pairs = [{"item_id": item_id, "key": key} for key, item_id in keys.items()]
    for start in range(0, len(pairs), _CHUNK):
        connection.execute(update, pairs[start:start + _CHUNK])
    op.create_index("ix_inbound_items_copy_key", "inbound_items", ["copy_key"], unique=True)
    op.drop_index("ix_inbound_items_dedupe", table_name="inbound_items")


def downgrade():
    op.create_index("ix_inbound_items_dedupe", "inbound_items", ["message_id_header", "content_hash"])
    op.drop_index("ix_inbound_items_copy_key", table_name="inbound_items")
    with op.batch_alter_table("inbound_items") as batch:
        batch.drop_column("copy_key")
