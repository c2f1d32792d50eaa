"""Setup checklist: the owner's dismissal, passed mailbox tests; ready-made templates for a fresh shop

Revision ID: 0010
Revises: 0009
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from app.messaging.starter_templates import NOTICE_CHANNELS, READY_STATUS, starter_rows

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

templates = sa.table(
    "message_templates", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("channels", sa.JSON),
    sa.column("subject", sa.String), sa.column("body", sa.Text), sa.column("language", sa.String),
    sa.column("marketing", sa.Boolean), sa.column("kind", sa.String), sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime))
notifications = sa.table(
    "status_notifications", sa.column("status_id", sa.Integer), sa.column("template_id", sa.Integer),
    sa.column("channels", sa.JSON), sa.column("enabled", sa.Boolean))


def upgrade():
    # Plain ADD COLUMN (nullable columns need no table copy on SQLite).
    op.add_column("users", sa.Column("setup_dismissed_at", sa.DateTime(), nullable=True))
    op.add_column("mailboxes", sa.Column("smtp_test_ok_at", sa.DateTime(), nullable=True))
    op.add_column("mailboxes", sa.Column("imap_test_ok_at", sa.DateTime(), nullable=True))
    _starter_templates_for_a_fresh_shop()


def _starter_templates_for_a_fresh_shop():
    """A shop nobody has used yet (no accounts, no templates) gets the ready-made templates and switched-off
    notices for its first status and its ready-for-pickup status; a shop in use gets nothing (it can add them
    from Settings → Templates)."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() or \
            bind.execute(sa.text("SELECT COUNT(*) FROM message_templates")).scalar():
        return
    locale = bind.execute(sa.text("SELECT locale FROM shop ORDER BY id LIMIT 1")).scalar() or "pl"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    chosen = {}
    for purpose, language, name, channels, subject, body in starter_rows(locale):
        template_id = bind.execute(templates.insert().values(
            name=name, channels=channels, subject=subject, body=body, language=language, marketing=False,
            kind="message", created_at=now, updated_at=now).returning(templates.c.id)).scalar()
        if language == locale:
            chosen[purpose] = template_id
    statuses = bind.execute(sa.text(
        "SELECT id, name, is_final FROM repair_statuses WHERE active = :yes ORDER BY position, id"),
        {"yes": True}).all()
    if not statuses:
        return
    ready = next((s for s in statuses if s.name == READY_STATUS), None) or \
        next((s for s in reversed(statuses[1:]) if not s.is_final), None)
    for purpose, status in (("accepted", statuses[0]), ("ready", ready)):
        if status is not None and purpose in chosen:
            bind.execute(notifications.insert().values(status_id=status.id, template_id=chosen[purpose],
                                                       channels=NOTICE_CHANNELS, enabled=False))


def downgrade():
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("imap_test_ok_at")
        batch.drop_column("smtp_test_ok_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("setup_dismissed_at")
