"""Shared steps of the customer panel tests: customers with panel access, messages published to their panel,
signing a customer in through a real one-time link."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

from app.customers import create_customer
from app.extensions import db
from app.messaging.compose import compose
from app.models import Customer, Message, Shop, utcnow
from app.outbox import dispatch_pass
from app.panel import credentials


def panel_customer(name: str, email: str, phone: str | None = None) -> Customer:
    customer = create_customer(name=name, email=email, phone=phone)
    customer.panel_state = "active"
    db.session.commit()
    return customer


def publish(customer: Customer, body: str, *, repair=None, author=None, channels=("portal",), **kwargs) -> Message:
    """A message from the shop to the customer's panel, sent through the outbox after the undo window."""
    message = compose(customer=customer, channels=list(channels), body=body, repair=repair, author=author, **kwargs)
    db.session.commit()
    dispatch_pass(now=utcnow() + timedelta(seconds=Shop.current().undo_seconds + 1))
    return message


def panel_path(path: str = "/") -> str:
    return f"/p/{Shop.current().slug}{path}"


def sign_in_customer(client, customer: Customer) -> None:
    """Sign the customer in with a fresh one-time link, as the invitation's button does."""
    token = credentials.issue_link(customer, "login")
    db.session.commit()
    response = open_link(client, panel_path(f"/s/{token}"))
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def open_link(client, path: str):
    """Open a one-time link and press its "Sign in" button; the button's answer (302 in, 410 expired)."""
    page = client.get(path)
    if page.status_code != 200:
        return page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post(path, data={"csrf_token": token})


def panel_csrf(client, path: str) -> str:
    html = client.get(panel_path(path)).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def mail_text(received) -> str:
    """The plain-text part of a mail the test SMTP server received."""
    mail = email.message_from_bytes(received.data, policy=email.policy.default)
    return mail.get_body(preferencelist=("plain",)).get_content()


def link_in(text: str) -> str:
    """The path of the one-time panel link in a mail or SMS (PUBLIC_BASE_URL is http://shop.example)."""
    match = re.search(r"http://shop\.example(/p/[^/\s]+/s/[^\s]+)", text)
    assert match, text
    return match.group(1)


def dispatch_now() -> dict:
    return dispatch_pass(now=utcnow() + timedelta(seconds=1))
