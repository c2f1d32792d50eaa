"""the SMS balance check's last error, kept on the account for Settings → SMS and `flask status`; the ready-made
"still waiting for pickup after 7 days" reminder, switched off, for a fresh shop

Revision ID: 0025
Revises: 0024
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from app.messaging.starter_templates import NOTICE_CHANNELS, PICKUP_REMINDER_DAYS, READY_STATUS, starter_rows

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

reminders = sa.table(
    "status_reminders", sa.column("status_id", sa.Integer), sa.column("days", sa.Integer),
    sa.column("template_id", sa.Integer), sa.column("channels", sa.JSON), sa.column("enabled", sa.Boolean),
    sa.column("created_at", sa.DateTime))


def upgrade():
    """Plain new nullable columns: nothing existing is rewritten."""
    op.add_column("sms_accounts", sa.Column("balance_error", sa.Text(), nullable=True))
    op.add_column("sms_accounts", sa.Column("balance_error_at", sa.DateTime(), nullable=True))
    _pickup_reminder_for_a_fresh_shop()


def _pickup_reminder_for_a_fresh_shop():
    """A shop nobody has used yet (no accounts, no reminders) that has the ready-made pickup reminder text (0010
    added it) gets that reminder for its ready-for-pickup status, switched off; a shop in use gets nothing (it can
    add it from Settings → Templates, or make its own in Settings → Notifications → Reminders)."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() or \
            bind.execute(sa.text("SELECT COUNT(*) FROM status_reminders")).scalar():
        return
    locale = bind.execute(sa.text("SELECT locale FROM shop ORDER BY id LIMIT 1")).scalar() or "pl"
    name = next((name for purpose, language, name, *_rest in starter_rows(locale)
                 if purpose == "pickup_reminder" and language == locale), None)
    template_id = bind.execute(sa.text("SELECT id FROM message_templates WHERE name = :name AND language = :language "
                                       "ORDER BY id LIMIT 1"), {"name": name, "language": locale}).scalar()
    statuses = bind.execute(sa.text(
        "SELECT id, name, is_final FROM repair_statuses WHERE active = :yes ORDER BY position, id"),
        {"yes": True}).all()
    ready = next((s for s in statuses if s.name == READY_STATUS), None) or \
        next((s for s in reversed(statuses[1:]) if not s.is_final), None)
    if template_id is None or ready is None:
        return
    bind.execute(reminders.insert().values(status_id=ready.id, days=PICKUP_REMINDER_DAYS, template_id=template_id,
                                           channels=NOTICE_CHANNELS, enabled=False,
                                           created_at=datetime.now(timezone.utc).replace(tzinfo=None)))


def downgrade():
    op.drop_column("sms_accounts", "balance_error_at")
    op.drop_column("sms_accounts", "balance_error")
