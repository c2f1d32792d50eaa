"""Staff accounts: owners add and change them; passwords and deactivation end sessions; one's own password."""
import re

import pytest
from helpers import csrf_token, make_user, sign_in
from flask import g
from sqlalchemy import select

from app.errors import ValidationFailed
from app.extensions import db
from app.models import AuditEvent, User
from app.shop.users import update_user

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fresh_g_per_request(app):
    """Each request starts with an empty `g`, as in production.

    The `app` fixture keeps one app context pushed for the whole test, and requests reuse it, so
    Flask-Login's cached user (g._login_user) would carry over from one client to the next.
    """

    @app.before_request
    def _forget():
        for name in list(g):
            g.pop(name)


def edit_form(client, user: User, **changes) -> dict:
    """The account form as the page fills it, with some fields changed (unchecked boxes are left out)."""
    data = {"csrf_token": csrf_token(client, f"/settings/users/{user.id}"), "name": user.name,
            "email": user.email, "role": user.role, "active": "y" if user.active else None,
            "can_see_outbox": "y" if user.can_see_outbox else None}
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def is_signed_in(client) -> bool:
    return client.get("/").status_code == 200


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_owner_creates_a_staff_account_that_can_sign_in(owner_client, app):
    response = owner_client.post("/settings/users/new", data={
        "csrf_token": csrf_token(owner_client, "/settings/users/new"),
        "name": "Piotr Nowak", "email": "Piotr@Shop.example", "role": "staff", "password": "dziesiec-znakow",
    })
    assert response.status_code == 200
    assert "dziesiec-znakow" not in response.get_data(as_text=True)  # a typed password is never echoed

    user = User.by_email("piotr@shop.example")
    assert (user.name, user.email, user.role, user.active) == ("Piotr Nowak", "piotr@shop.example", "staff", True)
    assert "user.create" in audit_actions()
    assert "Piotr Nowak" in owner_client.get("/settings/users").get_data(as_text=True)
    sign_in(app.test_client(), user, password="dziesiec-znakow")


def test_a_generated_password_is_shown_once_and_works(owner_client, app):
    response = owner_client.post("/settings/users/new", data={
        "csrf_token": csrf_token(owner_client, "/settings/users/new"),
        "name": "Ola", "email": "ola@shop.example", "role": "staff", "password": "",
    })
    password = re.search(r'<p class="mono">([^<]+)</p>', response.get_data(as_text=True)).group(1)
    assert len(password) >= 10
    sign_in(app.test_client(), User.by_email("ola@shop.example"), password=password)


def test_an_e_mail_address_can_have_only_one_account(owner_client, staff):
    response = owner_client.post("/settings/users/new", data={
        "csrf_token": csrf_token(owner_client, "/settings/users/new"),
        "name": "Copy", "email": staff.email.upper(), "role": "staff", "password": "dziesiec-znakow",
    })
    assert response.status_code == 422
    assert "already uses this e-mail" in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count(User.id))) == 2


def test_a_short_initial_password_is_refused(owner_client):
    response = owner_client.post("/settings/users/new", data={
        "csrf_token": csrf_token(owner_client, "/settings/users/new"),
        "name": "Ola", "email": "ola@shop.example", "role": "staff", "password": "short",
    })
    assert response.status_code == 422
    assert "at least 10 characters" in response.get_data(as_text=True)
    assert User.by_email("ola@shop.example") is None


def test_the_last_owner_cannot_be_demoted(owner_client, owner):
    response = owner_client.post(f"/settings/users/{owner.id}", data=edit_form(owner_client, owner, role="staff"))
    assert response.status_code == 422
    assert "only active owner" in response.get_data(as_text=True)
    db.session.expire_all()
    assert owner.role == "owner"


def test_the_last_active_owner_cannot_be_deactivated_by_anyone(owner, app):
    with app.test_request_context(), pytest.raises(ValidationFailed) as refused:
        update_user(owner, name=owner.name, email=owner.email, role="owner", active=False, can_see_outbox=False,
                    actor="cli")
    assert "active" in refused.value.fields


def test_an_owner_can_be_demoted_when_another_owner_remains(owner_client, owner):
    second = make_user("second@shop.example", role="owner")
    response = owner_client.post(f"/settings/users/{second.id}", data=edit_form(owner_client, second, role="staff"))
    assert response.status_code == 302
    db.session.expire_all()
    assert second.role == "staff"
    assert "user.update" in audit_actions()


def test_deactivating_an_account_ends_its_session_and_sign_in(owner_client, staff, app):
    staff_browser = app.test_client()
    sign_in(staff_browser, staff)
    assert is_signed_in(staff_browser)

    response = owner_client.post(f"/settings/users/{staff.id}", data=edit_form(owner_client, staff, active=None))
    assert response.status_code == 302

    next_request = staff_browser.get("/")
    assert next_request.status_code == 302 and "/login" in next_request.headers["Location"]
    token = csrf_token(staff_browser)
    refused = staff_browser.post("/login", data={"email": staff.email, "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 401

    # Taking the account back into use does not revive the old session: it has to sign in again.
    owner_client.post(f"/settings/users/{staff.id}", data=edit_form(owner_client, staff, active="y"))
    db.session.expire_all()
    assert staff.active
    assert not is_signed_in(staff_browser)


def test_an_owner_cannot_deactivate_their_own_account(owner_client, owner):
    make_user("second@shop.example", role="owner")
    response = owner_client.post(f"/settings/users/{owner.id}", data=edit_form(owner_client, owner, active=None))
    assert response.status_code == 422
    assert is_signed_in(owner_client)


def test_staff_can_be_allowed_to_see_the_outbox(owner_client, staff):
    owner_client.post(f"/settings/users/{staff.id}", data=edit_form(owner_client, staff, can_see_outbox="y"))
    db.session.expire_all()
    assert staff.can_see_outbox is True


def test_a_password_reset_ends_the_old_sessions(owner_client, staff, app):
    staff_browser = app.test_client()
    sign_in(staff_browser, staff)

    response = owner_client.post(f"/settings/users/{staff.id}/password", data={
        "csrf_token": csrf_token(owner_client, f"/settings/users/{staff.id}"), "password": "",
    }, headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment  # htmx gets just the card
    new_password = re.search(r'<p class="mono">([^<]+)</p>', fragment).group(1)

    assert not is_signed_in(staff_browser)
    assert "user.password_reset" in audit_actions()
    sign_in(app.test_client(), staff, password=new_password)


def test_a_reset_to_a_too_short_password_is_refused(owner_client, staff):
    response = owner_client.post(f"/settings/users/{staff.id}/password", data={
        "csrf_token": csrf_token(owner_client, f"/settings/users/{staff.id}"), "password": "short",
    }, headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert 'id="password-reset"' in fragment and "at least 10 characters" in fragment
    db.session.expire_all()
    assert staff.check_password(PASSWORD)


def test_own_password_change_needs_the_current_password(staff_client, staff):
    response = staff_client.post("/account/password", data={
        "csrf_token": csrf_token(staff_client, "/account/"), "current_password": "not my password",
        "new_password": "ein-neues-passwort", "new_password_again": "ein-neues-passwort",
    })
    assert response.status_code == 422
    assert "not your current password" in response.get_data(as_text=True)
    db.session.expire_all()
    assert staff.check_password(PASSWORD)


def test_own_password_change_keeps_this_session_and_ends_the_others(staff_client, staff, app):
    other_device = app.test_client()
    sign_in(other_device, staff)

    response = staff_client.post("/account/password", data={
        "csrf_token": csrf_token(staff_client, "/account/"), "current_password": PASSWORD,
        "new_password": "ein-neues-passwort", "new_password_again": "ein-neues-passwort",
    })
    assert response.status_code == 302

    assert is_signed_in(staff_client)
    assert not is_signed_in(other_device)
    sign_in(app.test_client(), staff, password="ein-neues-passwort")


def test_own_password_change_wants_the_new_password_twice_the_same(staff_client, staff):
    response = staff_client.post("/account/password", data={
        "csrf_token": csrf_token(staff_client, "/account/"), "current_password": PASSWORD,
        "new_password": "ein-neues-passwort", "new_password_again": "ein-anderes-passwort",
    })
    assert response.status_code == 422
    db.session.expire_all()
    assert staff.check_password(PASSWORD)


def test_my_account_shows_who_is_signed_in(staff_client, staff):
    page = staff_client.get("/account/").get_data(as_text=True)
    assert staff.email in page and staff.name in page
