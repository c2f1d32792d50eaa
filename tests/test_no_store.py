"""No cache keeps anything personal: every page, download, export and API answer made for a signed-in member of
staff, a panel customer or an API token says `Cache-Control: no-store`. The routes are read from the app's URL map,
so a page added later is checked without anyone remembering to."""
from __future__ import annotations

import io

from panel_helpers import panel_customer, publish, sign_in_customer

from app.attachments import store
from app.extensions import db
from app.models import ApiToken, RepairStatus, Shop
from app.panel import credentials
from app.repairs import create_repair
from helpers import sign_in


def _values(rule, known: dict) -> dict | None:
    """Values for the rule's arguments from `known`, or None when one is not known (that route is not swept)."""
    if not all(name in known for name in rule.arguments):
        return None
    return {name: known[name] for name in rule.arguments}


# The same for everyone, so they may be cached: versioned assets, the panel's colour and logo.
PUBLIC = {"web.htmx_asset", "panel.brand_css", "panel.logo"}


def _sweep(client, rules, known: dict) -> set[str]:
    """GET every rule; each 200 answer must be no-store. The endpoints that answered 200."""
    answered = set()
    for rule in rules:
        values = _values(rule, known)
        if values is None or rule.endpoint in PUBLIC:
            continue
        path = rule.build(values)[1]
        response = client.get(path)
        if response.status_code != 200:
            continue
        assert response.headers.get("Cache-Control") == "no-store", (path, response.headers.get("Cache-Control"))
        answered.add(rule.endpoint)
    return answered


def test_every_personal_get_route_says_no_store(app, owner):
    customer = panel_customer("Anna Nowak", "anna@example.com", phone="+48600100200")
    repair = create_repair(customer=customer, device="iPhone 12")
    db.session.commit()
    photo = store(io.BytesIO(b"%PDF-1.4\n% kosztorys\n"), "kosztorys.pdf")
    message = publish(customer, "Kosztorys w załączniku", repair=repair, author=owner, attachments=[photo])
    known = {
        "slug": Shop.current().slug, "customer_id": customer.id, "repair_id": repair.id,
        "thread_id": message.thread_id, "message_id": message.id, "attachment_id": message.attachments[0].id,
        "delivery_id": message.deliveries[0].id, "user_id": owner.id,
        "status_id": db.session.scalars(db.select(RepairStatus.id)).first(),
        "token": credentials.issue_link(customer, "login"),
    }
    _row, api_token = ApiToken.issue("erp")
    db.session.commit()
    rules = [rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and rule.endpoint != "static"]
    panel_rules = [rule for rule in rules if rule.rule.startswith("/p/")]
    api_rules = [rule for rule in rules if rule.rule.startswith("/api/")]
    staff_rules = [rule for rule in rules if rule not in panel_rules and rule not in api_rules]

    staff = app.test_client()
    sign_in(staff, owner)
    staff_answered = _sweep(staff, staff_rules, known)
    assert {"inbox.index", "threads.show", "threads.attachment", "customers.show", "customers.export",
            "repairs.show", "settings.users"} <= staff_answered

    panel = app.test_client()
    sign_in_customer(panel, customer)
    panel_answered = _sweep(panel, panel_rules, known)
    assert {"panel.inbox", "panel.thread", "panel.attachment", "panel.account"} <= panel_answered

    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token}"
    api_answered = _sweep(api, api_rules, known)
    assert {"api.get_thread", "api.get_customer", "api.export_customer_data", "api.list_threads"} <= api_answered


def test_only_what_is_the_same_for_everyone_may_be_cached(app, owner):
    staff = app.test_client()
    sign_in(staff, owner)
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == "web.htmx_asset")
    response = staff.get(rule.build({"filename": "htmx.min.js"})[1])
    assert response.status_code == 200 and "public" in response.headers["Cache-Control"]
    css = staff.get(f"/p/{Shop.current().slug}/brand.css")
    assert "public" in css.headers["Cache-Control"]
    assert staff.get("/login").headers["Cache-Control"] == "no-store"  # a form with its CSRF token
