"""The customer panel's migration: repairs that existed before it get a receipt access code."""
from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from conftest import build_app


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
