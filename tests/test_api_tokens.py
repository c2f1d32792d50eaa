"""API tokens are managed: owners list, make (shown once, optionally expiring) and revoke them in Settings, and
scripts do the same from the command line; a revoked or expired token is refused on its very next request."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiToken, AuditEvent, utcnow
from helpers import csrf_token


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def bearer(plain: str) -> dict:
    return {"Authorization": f"Bearer {plain}"}


def api_status(app, plain: str) -> int:
    return app.test_client().get("/api/v1/held", headers=bearer(plain)).status_code


def audited(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def create_in_settings(client, **fields) -> str:
    data = {"csrf_token": csrf_token(client, "/settings/api-tokens/"), **fields}
    response = client.post("/settings/api-tokens/", data=data)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    match = re.search(r'id="api-token">(ri_[^<]+)<', response.get_data(as_text=True))
    assert match, "the new token is shown"
    return match.group(1)


def test_an_owner_makes_a_token_sees_it_once_and_its_last_use(app, owner_client, owner):
    assert "/settings/api-tokens/" in owner_client.get("/settings/").get_data(as_text=True)
    plain = create_in_settings(owner_client, name="sklep internetowy", expires_days="30")

    token = db.session.scalars(select(ApiToken)).one()
    assert token.created_by_id == owner.id and token.token_hash != plain
    assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
    [event] = audited("api_token.create")
    assert (event.user_id, event.target_id, event.details["name"]) == (owner.id, token.id, "sklep internetowy")

    listing = owner_client.get("/settings/api-tokens/").get_data(as_text=True)
    assert "sklep internetowy" in listing and owner.name in listing and plain not in listing
    assert "never" in listing  # not used yet
    assert api_status(app, plain) == 200
    db.session.expire_all()
    assert token.last_used_at is not None
    row = owner_client.get("/settings/api-tokens/").get_data(as_text=True).partition("sklep internetowy")[2]
    assert row.partition("</tr>")[0].count("never") == 0  # used now, and it expires


def test_a_token_needs_a_name_and_a_sensible_expiry(owner_client):
    for fields in ({"name": " "}, {"name": "erp", "expires_days": "0"}, {"name": "erp", "expires_days": "99999"}):
        data = {"csrf_token": csrf_token(owner_client, "/settings/api-tokens/"), **fields}
        assert owner_client.post("/settings/api-tokens/", data=data).status_code == 422
    assert db.session.scalar(select(func.count(ApiToken.id))) == 0


def test_revoking_asks_first_and_the_token_is_refused_at_once(app, owner_client, owner):
    plain = create_in_settings(owner_client, name="erp")
    token = db.session.scalars(select(ApiToken)).one()
    assert api_status(app, plain) == 200

    confirm = owner_client.get(f"/settings/api-tokens/{token.id}/revoke")
    assert confirm.status_code == 200 and "Revoke the token" in confirm.get_data(as_text=True)
    db.session.expire_all()
    assert token.revoked_at is None  # asking changes nothing
    assert owner_client.post(f"/settings/api-tokens/{token.id}/revoke").status_code == 400  # no CSRF token
    response = owner_client.post(f"/settings/api-tokens/{token.id}/revoke",
                                 data={"csrf_token": csrf_token(owner_client, f"/settings/api-tokens/{token.id}/revoke")})
    assert response.status_code == 302

    assert api_status(app, plain) == 401
    [event] = audited("api_token.revoke")
    assert (event.user_id, event.target_id) == (owner.id, token.id)
    assert "Revoked" in owner_client.get("/settings/api-tokens/").get_data(as_text=True)


def test_staff_cannot_see_make_or_revoke_tokens(staff_client):
    token, _plain = ApiToken.issue("erp")
    db.session.commit()
    assert staff_client.get("/settings/api-tokens/").status_code == 403
    assert staff_client.get(f"/settings/api-tokens/{token.id}/revoke").status_code == 403
    response = staff_client.post(f"/settings/api-tokens/{token.id}/revoke",
                                 data={"csrf_token": csrf_token(staff_client, "/")})
    assert response.status_code == 403
    db.session.expire_all()
    assert token.revoked_at is None


def test_an_expired_token_is_refused(app, cli):
    result = cli.invoke(args=["api-token", "create", "erp", "--expires", "7"])
    assert result.exit_code == 0, result.output
    plain = result.stdout.strip()
    assert api_status(app, plain) == 200
    token = db.session.scalars(select(ApiToken)).one()
    token.expires_at = utcnow() - timedelta(seconds=1)  # a week later
    db.session.commit()
    assert api_status(app, plain) == 401
    assert "expired" in cli.invoke(args=["api-token", "list"]).output


def test_the_command_line_lists_and_revokes_tokens_by_name_or_id(app, cli, owner_client, owner):
    made = cli.invoke(args=["api-token", "create", "erp"])
    assert made.exit_code == 0, made.output
    erp = made.stdout.strip()
    web = create_in_settings(owner_client, name="sklep")

    listing = cli.invoke(args=["api-token", "list"]).output
    erp_line = next(line for line in listing.splitlines() if " erp " in line)
    shop_line = next(line for line in listing.splitlines() if " sklep " in line)
    assert "command line" in erp_line and "active" in erp_line
    assert owner.email in shop_line
    assert erp not in listing and web not in listing
    assert "command line" in owner_client.get("/settings/api-tokens/").get_data(as_text=True)

    result = cli.invoke(args=["api-token", "revoke", "erp"])
    assert result.exit_code == 0 and "revoked" in result.output
    assert api_status(app, erp) == 401 and api_status(app, web) == 200
    shop_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "sklep"))
    assert cli.invoke(args=["api-token", "revoke", str(shop_id)]).exit_code == 0
    assert api_status(app, web) == 401
    assert [e.actor for e in audited("api_token.revoke")] == ["cli", "cli"]
    assert "revoked" in cli.invoke(args=["api-token", "list"]).output

    unknown = cli.invoke(args=["api-token", "revoke", "nic"])
    assert unknown.exit_code == 1 and "No token named nic" in unknown.output


def test_two_live_tokens_of_one_name_are_revoked_by_id(cli):
    for _ in range(2):
        assert cli.invoke(args=["api-token", "create", "erp"]).exit_code == 0
    result = cli.invoke(args=["api-token", "revoke", "erp"])
    assert result.exit_code == 1 and "give the id" in result.output
    assert db.session.scalar(select(func.count(ApiToken.id)).where(ApiToken.revoked_at.is_not(None))) == 0
