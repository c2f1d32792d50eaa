"""Behind a reverse proxy every request comes from the proxy's address: with TRUSTED_PROXIES the client's own
address (X-Forwarded-For) counts for sign-in limits and the audit log; without it the header is ignored, since
any client could write it."""
from __future__ import annotations

import pytest

from app.extensions import db
from app.models import AuditEvent
from helpers import csrf_token

PROXY = "10.0.0.2"
LIMITS = {"LOGIN_LIMIT_PER_IP": "3 per minute", "LOGIN_LIMIT_PER_ACCOUNT": "100 per minute"}


def fail_sign_in(client, client_address: str) -> int:
    token = csrf_token(client, environ_base={"REMOTE_ADDR": PROXY})
    return client.post("/login", data={"email": "nobody@example.com", "password": "wrong horse", "csrf_token": token},
                       headers={"X-Forwarded-For": client_address},
                       environ_base={"REMOTE_ADDR": PROXY}).status_code


def audited_addresses() -> list[str]:
    return [event.ip for event in db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "auth.login_failed").order_by(AuditEvent.id))]


@pytest.mark.app_config(TRUSTED_PROXIES=1, **LIMITS)
def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit_and_audit_address(app):
    first, second = app.test_client(), app.test_client()
    assert [fail_sign_in(first, "203.0.113.5") for _ in range(4)] == [401, 401, 401, 429]
    assert fail_sign_in(second, "198.51.100.7") == 401  # another customer behind the same proxy is not held up
    assert audited_addresses() == ["203.0.113.5"] * 3 + ["198.51.100.7"]


@pytest.mark.app_config(TRUSTED_PROXIES=1, **LIMITS)
def test_a_forged_address_before_the_proxys_own_is_not_believed(app):
    client = app.test_client()
    token = csrf_token(client, environ_base={"REMOTE_ADDR": PROXY})
    client.post("/login", data={"email": "nobody@example.com", "password": "x", "csrf_token": token},
                headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.5"}, environ_base={"REMOTE_ADDR": PROXY})
    assert audited_addresses() == ["203.0.113.5"]  # the proxy's hop, not what the client wrote before it


@pytest.mark.app_config(TRUSTED_PROXIES=0, **LIMITS)
def test_without_trusted_proxies_the_forwarded_header_is_ignored(app):
    client = app.test_client()
    codes = [fail_sign_in(client, f"203.0.113.{n}") for n in range(4)]  # a client inventing a new address each time
    assert codes == [401, 401, 401, 429]
    assert audited_addresses() == [PROXY] * 3
