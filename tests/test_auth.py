"""Staff sign-in: passwords, limits, sessions."""
from datetime import timedelta

from app.extensions import db
from app.jobs import purge_expired_credentials
from app.models import SignInSession
from helpers import count_password_checks, csrf_token, sign_in


def test_owner_signs_in_and_reaches_the_inbox(client, owner):
    sign_in(client, owner)
    page = client.get("/")
    assert page.status_code == 200
    assert "Olga Owner" in page.get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(client, owner):
    token = csrf_token(client)
    response = client.post("/login", data={"email": owner.email, "password": "nope", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.get_data(as_text=True) or "Błędny" in response.get_data(as_text=True)


def _copy_cookie(source, target, name: str) -> None:
    cookie = source.get_cookie(name)
    assert cookie is not None, name
    target.set_cookie(name, cookie.value)


def test_signing_out_ends_the_session_also_for_copied_cookies(app, owner):
    browser = app.test_client()
    sign_in(browser, owner, remember=True)
    session_copy, remember_copy = app.test_client(), app.test_client()
    _copy_cookie(browser, session_copy, "ri_staff")
    _copy_cookie(browser, remember_copy, "ri_staff_remember")  # "remember me" alone signs in again
    assert session_copy.get("/").status_code == 200 and remember_copy.get("/").status_code == 200

    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/")})
    assert browser.get("/").status_code == 302
    for copy in (session_copy, remember_copy):
        response = copy.get("/")
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_signing_out_on_one_device_leaves_the_others_signed_in(app, owner):
    first, second = app.test_client(), app.test_client()
    sign_in(first, owner)
    sign_in(second, owner, remember=True)
    first.post("/logout", data={"csrf_token": csrf_token(first, "/")})
    assert second.get("/").status_code == 200


def test_a_wrong_password_for_an_unknown_address_is_checked_all_the_same(client, owner, monkeypatch):
    calls = count_password_checks(monkeypatch)
    token = csrf_token(client)
    for email in ("nobody@shop.example", owner.email):
        before = len(calls)
        response = client.post("/login", data={"email": email, "password": "wrong password", "csrf_token": token})
        assert response.status_code == 401
        assert len(calls) == before + 1, email  # the same work (an Argon2 check) either way


def test_finished_sign_in_sessions_are_cleared_away(app, owner):
    browser = app.test_client()
    sign_in(browser, owner)
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/")})
    sign_in(browser, owner)
    rows = db.session.scalars(db.select(SignInSession).order_by(SignInSession.id)).all()
    assert [row.ended_at is not None for row in rows] == [True, False]
    rows[0].ended_at -= timedelta(days=2)
    db.session.commit()
    purge_expired_credentials()
    assert db.session.scalars(db.select(SignInSession.id)).all() == [rows[1].id]
    assert browser.get("/").status_code == 200
