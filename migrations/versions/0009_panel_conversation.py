"""the panel shows the whole conversation: messages the shop wrote to a customer by e-mail or SMS count as written
to them (visible_to_customer), as those written to the panel always did

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BATCH = 500

messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                    sa.column("direction", sa.String), sa.column("visible_to_customer", sa.Boolean),
                    sa.column("meta", sa.JSON))
deliveries = sa.table("deliveries", sa.column("message_id", sa.Integer), sa.column("purpose", sa.String))


def upgrade():
    """Until now a message sent by e-mail or SMS only was stored as not for the customer. Every message the shop
    wrote to the customer is (the panel shows it once a channel carried it); a forward to a supplier and the
    panel's own invitations and sign-in messages are not. Plain UPDATEs: no table is recreated."""
    connection = op.get_bind()
    written = sa.select(deliveries.c.message_id).where(deliveries.c.message_id == messages.c.id,
                                                       deliveries.c.purpose == "message").exists()
    rows = connection.execute(sa.select(messages.c.id, messages.c.meta).where(
        messages.c.kind == "message", messages.c.direction == "out", messages.c.visible_to_customer.is_(False),
        written)).all()
    ids = [row.id for row in rows if not {"forward", "panel"} & set(row.meta or {})]
    for start in range(0, len(ids), BATCH):
        connection.execute(messages.update().where(messages.c.id.in_(ids[start:start + BATCH]))
                           .values(visible_to_customer=True))


def downgrade():
    """Nothing to undo: the flag is kept; older code shows only messages published to the panel either way."""
