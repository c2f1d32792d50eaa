"""The reminders page in the browser: the owner adds "ready for pickup, 7 opening days" from Settings →
Notifications, sees the repair waiting longer than that in today's list, switches the reminder off and deletes it."""
from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from app.extensions import db
from app.messaging.templates import save_template
from app.models import RepairStatus, StatusReminder, utcnow
from app.repairs import change_status


def test_the_owner_adds_a_reminder_and_sees_who_gets_it_today(owner_page, live_server, repair):
    ready = RepairStatus.ordered()[-1]
    save_template(None, actor="test", name="Wciąż czeka", kind="message", language="pl", channels=["email"],
                  subject="Odbiór", body="{{ device }} czeka na odbiór.")
    change_status(repair, ready, actor="test")
    repair.status_changed_at = utcnow() - timedelta(days=40)
    db.session.commit()

    page = owner_page
    page.goto(f"{live_server.url}/settings/notifications/")
    page.get_by_role("link", name="Reminders").click()
    page.locator("#status_id").select_option(str(ready.id))
    page.locator("#days").fill("7")
    page.locator("#template_id").select_option(label="Wciąż czeka")
    page.get_by_role("button", name="Add the reminder").click()

    [reminder] = db.session.scalars(db.select(StatusReminder)).all()
    row = page.locator(f"tr[data-reminder='{reminder.id}']")
    expect(row).to_contain_text("7 opening days")
    expect(row).to_contain_text("Wciąż czeka")
    preview = page.locator(f"tr[data-preview='{reminder.id}']")
    expect(preview).to_contain_text(repair.number)
    expect(preview).to_contain_text(repair.customer.name)

    row.get_by_role("button", name="Switch off").click()
    expect(page.locator(f"tr[data-preview='{reminder.id}']")).to_contain_text("nobody gets it")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"tr[data-reminder='{reminder.id}']").get_by_role("button", name="Delete").click()
    expect(page.locator("#reminders")).to_contain_text("No reminders yet.")
