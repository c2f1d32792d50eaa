"""Shared steps of the tests that walk every registered route: a small shop with one row of each kind, a signed-in
client per role (anonymous, staff, owner, panel customer, API token), and URLs built from `app.url_map`."""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from flask import Flask
from flask_wtf.csrf import CSRFError
from werkzeug.routing import Rule

from app.extensions import db
from app.panel.auth import in_request_form
from app.models import ApiToken, Delivery, MessageTemplate, Shop, Tag, TrustedDomain
from app.repairs import create_repair, create_ticket
from app.accounts.sms import configure_sms
from helpers import FreshGlobalsClient, build_app, csrf_token, free_port, make_user, sign_in
from panel_helpers import panel_csrf, panel_customer, publish, sign_in_customer

CSRF_REFUSED = "X-Test-CSRF-Refused"
TWILIO_TOKEN = "sweep-auth-token"
SMS_SID = "SM" + "1" * 32
ROLES = ("anonymous", "staff", "owner", "panel", "api")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PARAMETER = re.compile(r"<(?:([a-zA-Z_]+)(?:\([^)]*\))?:)?(\w+)>")


@dataclass
class Shopfront:
    """The app on its own database with a seeded shop; `ids` holds an existing row's id per URL parameter name."""

    app: Flask
    ids: dict[str, int] = field(default_factory=dict)
    slug: str = ""
    api_token: str = ""
    users: dict = field(default_factory=dict)
    customer: object = None


@contextmanager
def shops_per_role(databases, tmp_path_factory, prefix: str):
    """{role: Shopfront}: one seeded shop with its own app and database per role, so that what one role's requests
    change (a deleted thread, a signed-out session) cannot hide a route from another. Dropped afterwards."""
    opened = {}
    try:
        for role in ROLES:
            front, url, context = open_shop(databases, tmp_path_factory.mktemp(f"{prefix}-{role}"))
            context.pop()  # each test pushes its role's app context again
            opened[role] = (front, url)
        yield {role: front for role, (front, _url) in opened.items()}
    finally:
        for front, url in opened.values():
            with front.app.app_context():
                db.session.remove()
                db.engine.dispose()
            databases.drop(url)


def set_up_sms() -> None:
    """The shop's SMS account with TWILIO_TOKEN (again: an owner's sweep of the SMS settings changes it); its API
    is on a closed port, so nothing is sent."""
    configure_sms("AC" + "0" * 32, TWILIO_TOKEN, from_number="+48500100200",
                  api_base_url=f"http://127.0.0.1:{free_port()}", actor="test")
    db.session.commit()


def open_shop(databases, directory: Path):
    """A migrated database with one of each: owner, staff, panel customer with a repair, ticket, thread and
    message, template, tag, trusted domain, API token. Returns the shop, its database URL and the pushed app
    context (the caller pops it and drops the database)."""
    url = databases.create(directory / "instance")
    app = build_app(directory / "instance", url, RATELIMIT_ENABLED=False)  # a sweep is no attack on sign-in
    # A refused CSRF token is the test's mistake (it must send the role's own), so it must be told apart from the
    # other 400s; the error page itself does not say.
    app.register_error_handler(CSRFError, lambda error: ("CSRF refused", 400, {CSRF_REFUSED: "1"}))
    app.test_client_class = FreshGlobalsClient
    context = app.app_context()
    context.push()
    shop = Shop.current()
    shop.locale = "en"
    shop.request_form_enabled = True
    db.session.commit()
    owner = make_user("owner@shop.example", role="owner", name="Olga Owner")
    staff = make_user("staff@shop.example", role="staff", name="Stefan Staff")
    customer = panel_customer("Anna Nowak", "anna@example.com", phone="+48600100200")
    repair = create_repair(customer=customer, device="Phone", description="Cracked screen")
    ticket = create_ticket(customer=customer, subject="Question")
    db.session.commit()
    message = publish(customer, "Your phone is ready.", repair=repair, author=owner, channels=("portal",))
    template = MessageTemplate(name="Ready", channels=["email"], subject="Ready", body="Hello")
    tag = Tag(name="urgent")
    domain = TrustedDomain(domain="partner.example")
    db.session.add_all([template, tag, domain])
    db.session.commit()
    _row, plain = ApiToken.issue("erp")
    # An SMS account (its API on a closed port: nothing is sent) and an SMS it sent, for signed webhook calls.
    set_up_sms()
    db.session.add(Delivery(message=message, channel="sms", recipient="+48600100200", status="sent",
                            provider_id=SMS_SID))
    db.session.commit()
    front = Shopfront(app=app, slug=shop.slug, api_token=plain)
    delivery = message.deliveries[0]
    front.ids = dict(
        thread_id=message.thread_id, message_id=message.id, customer_id=customer.id, repair_id=repair.id,
        ticket_id=ticket.id, delivery_id=delivery.id, template_id=template.id, tag_id=tag.id,
        domain_id=domain.id, user_id=staff.id, owner_id=owner.id,
    )
    front.users = {"owner": owner, "staff": staff}
    front.customer = customer
    return front, url, context


class RoleClient:
    """A test client acting as one role, with the CSRF tokens of both session areas (staff and panel)."""

    def __init__(self, front: Shopfront, role: str):
        self.role = role
        self.front = front
        self.sign_in()

    def sign_in(self) -> None:
        """A fresh client (no cookies) signed in as the role, with its CSRF tokens."""
        front = self.front
        client = self.client = front.app.test_client()
        if self.role in ("staff", "owner"):
            sign_in(client, front.users[self.role])
        if self.role == "panel":
            sign_in_customer(client, front.customer)
        if self.role == "api":
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {front.api_token}"
        self.staff_token = csrf_token(client, "/" if self.role in ("staff", "owner") else "/login")
        self.panel_token = panel_csrf(client, "/" if self.role == "panel" else "/sign-in")
        self.request_token = panel_csrf(client, "/zapytanie")  # the public request form has its own session

    def token_for(self, path: str) -> str:
        if in_request_form(path):
            return self.request_token
        return self.panel_token if path.startswith("/p/") else self.staff_token

    def open(self, method: str, path: str, **kwargs):
        headers = {"X-CSRFToken": self.token_for(path), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)


def routes(app: Flask) -> list[Rule]:
    """Every registered route, in a stable order."""
    return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))


def in_safe_order(rules: list[Rule]) -> list[Rule]:
    """Routes that remove the seeded rows go last, so that the others still find them; those that end the
    session go after them."""
    ends_session = re.compile(r"logout|sign_out")
    removes = re.compile(r"delete|erase|discard|disable|deactivate|merge|split|redact|move|untag")
    return sorted(rules, key=lambda rule: (bool(ends_session.search(rule.endpoint)),
                                           bool(removes.search(rule.endpoint)), rule.rule, rule.endpoint))


def methods_of(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def good_value(front: Shopfront, rule: Rule, name: str) -> str:
    """A value of the path parameter `name` that names an existing thing."""
    converter = rule._converters[name]
    if hasattr(converter, "items"):  # any(...)
        return sorted(converter.items)[0]
    if type(converter).__name__ in ("IdConverter", "IntegerConverter"):
        return str(front.ids.get(name, 1))
    return {"slug": front.slug, "provider": "google", "filename": "app.css", "token": "x"}.get(name, "x")


def build_path(rule: Rule, values: dict[str, str]) -> str:
    """The rule's URL with each parameter replaced by its (URL-quoted) value."""
    return PARAMETER.sub(lambda m: quote(values[m.group(2)], safe="/" if m.group(1) == "path" else ""), rule.rule)


def refused(response) -> bool:
    """The answer of a route to a role that may not use it: 401, 403, or a redirect to a sign-in page."""
    if response.status_code in (401, 403):
        return True
    location = urlsplit(response.headers.get("Location", "")).path
    return response.status_code in (301, 302, 303) and (location == "/login" or location.endswith("/sign-in"))
