"""The customer panel's migration: repairs that existed before it get a receipt access code."""
from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from helpers import build_app


def test_repairs_from_before_the_panel_get_access_codes(tmp_path, empty_database_url):
    app = build_app(tmp_path / "instance", empty_database_url)
    with app.app_context():
        runner = app.test_cli_runner()
        assert runner.invoke(args=["db", "upgrade", "0001"]).exit_code == 0
        with db.engine.begin() as connection:
            now = "2026-01-05 10:00:00"
            connection.execute(text("INSERT INTO customers (name, crm_note, sms_informational, marketing_consent, "
                                    "panel_state, panel_session_version, created_at, updated_at) "
                                    "VALUES ('Jan', '', true, false, 'none', 1, :now, :now)"), {"now": now})
            status_id = connection.execute(text("SELECT min(id) FROM repair_statuses")).scalar()
            for number in ("R-2026-0001", "R-2026-0002"):
                connection.execute(text(
                    "INSERT INTO repairs (number, customer_id, device, description, status_id, status_changed_at, "
                    "created_at, updated_at) VALUES (:number, 1, 'iPhone', '', :status, :now, :now, :now)"),
                    {"number": number, "status": status_id, "now": now})
        assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
        with db.engine.connect() as connection:
            codes = connection.execute(text("SELECT access_code FROM repairs")).scalars().all()
        assert len(codes) == 2 and len(set(codes)) == 2 and all(len(code) == 8 for code in codes)
        db.session.remove()
        db.engine.dispose()


def test_mail_and_sms_sent_before_the_whole_conversation_count_as_written_to_the_customer(tmp_path,
                                                                                         empty_database_url):
    """Messages sent by e-mail or SMS only were stored as not for the customer; after the upgrade the panel shows
    them (once sent), while a forward to a supplier and the panel's own invitations stay out."""
    app = build_app(tmp_path / "instance", empty_database_url)
    with app.app_context():
        runner = app.test_cli_runner()
        assert runner.invoke(args=["db", "upgrade", "0008"]).exit_code == 0
        with db.engine.begin() as connection:
            now = "2026-11-05 10:00:00"
            connection.execute(text("INSERT INTO customers (name, crm_note, sms_informational, marketing_consent, "
                                    "panel_state, panel_session_version, created_at, updated_at) "
                                    "VALUES ('Jan', '', true, false, 'active', 1, :now, :now)"), {"now": now})
            connection.execute(text(
                "INSERT INTO threads (token, customer_id, subject, status, priority, category, source_channel, "
                "private, unread, last_message_preview, last_activity_at, created_at) VALUES "
                "('t1', 1, 'Naprawa', 'open', 'normal', '', 'email', false, false, '', :now, :now)"), {"now": now})
            for body, meta, purpose in (("By e-mail", '{"channels": ["email"]}', "message"),
                                        ("Forward", '{"forward": {"to": "x@supplier.example"}}', "message"),
                                        ("Invitation", '{"channels": ["email"], "panel": "invite"}', "panel_invite"),
                                        ("Not sent anywhere", '{"channels": []}', None)):
                message_id = connection.execute(text(
                    "INSERT INTO messages (thread_id, kind, direction, sender, recipients, subject, body_text, "
                    "quoted_text, body_format, visible_to_customer, automatic, meta, created_at) VALUES "
                    "(1, 'message', 'out', '', '{}', '', :body, '', 'text', false, false, :meta, :now) "
                    "RETURNING id"), {"body": body, "meta": meta, "now": now}).scalar()
                if purpose:
                    connection.execute(text(
                        "INSERT INTO deliveries (message_id, channel, purpose, status, recipient, cc, attempts, "
                        "uncertain, created_at) VALUES (:id, 'email', :purpose, 'sent', 'jan@example.com', '[]', "
                        "1, false, :now)"), {"id": message_id, "purpose": purpose, "now": now})
        assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
        with db.engine.connect() as connection:
            visible = dict(connection.execute(text("SELECT body_text, visible_to_customer FROM messages")).all())
        assert {body: bool(flag) for body, flag in visible.items()} == {
            "By e-mail": True, "Forward": False, "Invitation": False, "Not sent anywhere": False}
        db.session.remove()
        db.engine.dispose()
