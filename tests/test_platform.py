"""The platform under every page: health check, security headers and cookies, CSRF, sign-in limits, sessions."""
from __future__ import annotations

import pytest

from app.extensions import db
from helpers import build_app, csrf_token, free_port, sign_in

HTTPS = {"base_url": "https://shop.example", "headers": {"Referer": "https://shop.example/login"}}


def set_cookie(response, name: str) -> str | None:
    """The Set-Cookie line for cookie `name`, if the response sets it."""
    return next((line for line in response.headers.getlist("Set-Cookie") if line.startswith(name + "=")), None)


def assert_signed_out(client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.location.startswith("/login")


# ---------------------------------------------------------------- health check


def test_health_check_answers_ok_while_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_health_check_answers_503_when_the_database_is_unreachable(tmp_path, kind):
    unreachable = {
        "sqlite": f"sqlite:///{tmp_path}/no-such-directory/repair-inbox.db",
        "postgresql": f"postgresql://postgres@127.0.0.1:{free_port()}/repair_inbox",
    }[kind]
    app = build_app(tmp_path / "instance", unreachable)
    try:
        response = app.test_client().get("/healthz")
    finally:
        with app.app_context():
            db.engine.dispose()
    assert response.status_code == 503
    assert response.json["status"] == "error"


# ---------------------------------------------------------------- headers, assets, cookies


def assert_security_headers(response) -> None:
    assert response.mimetype == "text/html"
    policy = {part.split()[0]: part.split()[1:] for part in response.headers["Content-Security-Policy"].split("; ")}
    assert policy["script-src"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] in ("DENY", "SAMEORIGIN")


def test_every_kind_of_html_page_carries_the_security_headers(client, owner):
    assert_security_headers(client.get("/login"))
    sign_in(client, owner)
    assert_security_headers(client.get("/"))
    assert_security_headers(client.get("/no-such-page"))
    assert_security_headers(client.post("/account/language", data={"locale": "en"}))  # the CSRF error page


def test_htmx_is_served_from_a_versioned_url_and_cached_for_a_year(client):
    assert 'src="/assets/htmx-2.0.3/htmx.min.js"' in client.get("/login").get_data(as_text=True)

    with client.get("/assets/htmx-2.0.3/htmx.min.js") as response:  # closes the served file
        assert response.status_code == 200
        assert "javascript" in response.mimetype
        assert "max-age=31536000" in response.headers["Cache-Control"]
        assert b'version:"2.0.3"' in response.data


def test_session_cookie_is_http_only_and_same_site_lax(client, owner):
    response = sign_in(client, owner)

    cookie = set_cookie(response, "ri_staff")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the test shop is served over plain http
    assert set_cookie(response, "ri_staff_remember") is None


@pytest.mark.app_config(PUBLIC_BASE_URL="https://shop.example")
def test_cookies_are_secure_when_the_shop_is_served_over_https(client, owner):
    response = sign_in(client, owner, remember=True, **HTTPS)

    for name in ("ri_staff", "ri_staff_remember"):
        cookie = set_cookie(response, name)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    assert client.get("/", **HTTPS).status_code == 200


def test_remember_me_sets_the_remember_cookie(client, owner):
    response = sign_in(client, owner, remember=True)

    cookie = set_cookie(response, "ri_staff_remember")
    assert cookie is not None
    assert "HttpOnly" in cookie and "Expires=" in cookie


# ---------------------------------------------------------------- CSRF


@pytest.mark.shop_locale("pl")
def test_a_post_without_csrf_token_is_refused(client):
    client.get("/login")  # a session exists, only the token is missing

    response = client.post("/account/language", data={"locale": "en"})

    assert response.status_code == 400
    assert '<html lang="pl">' in client.get("/login").get_data(as_text=True)


def test_a_post_with_the_htmx_csrf_header_is_accepted(client):
    token = csrf_token(client, "/login")

    response = client.post("/account/language", data={"locale": "en", "next": "/login"},
                           headers={"X-CSRFToken": token})

    assert response.status_code == 302
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


# ---------------------------------------------------------------- sign-in limits and sessions


def test_the_sixth_quick_wrong_password_for_one_account_is_refused(client, owner, staff):
    token = csrf_token(client)
    wrong = {"email": owner.email, "password": "wrong horse", "csrf_token": token}
    for _ in range(5):
        assert client.post("/login", data=wrong).status_code == 401

    refused = client.post("/login", data=wrong)

    assert refused.status_code == 429
    body = refused.get_data(as_text=True)
    assert "Too many sign-in attempts" in body or "Zbyt wiele" in body
    assert 'name="password"' in body  # the sign-in form again, not a bare error page
    right = {"email": owner.email, "password": "correct horse battery", "csrf_token": token}
    assert client.post("/login", data=right).status_code == 429  # the account waits out the minute
    sign_in(client, staff)  # another account from the same address is not held up (the per-IP limit is 20)


def test_signing_out_ends_the_session(owner_client):
    token = csrf_token(owner_client, "/")

    response = owner_client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 302
    assert response.location.startswith("/login")
    assert_signed_out(owner_client)


def test_a_changed_session_version_signs_the_user_out_on_the_next_request(client, owner):
    sign_in(client, owner, remember=True)
    assert client.get("/").status_code == 200

    owner.session_version += 1  # what a password change or "sign out everywhere" does
    db.session.commit()

    assert_signed_out(client)  # neither the session nor the remember cookie loads the old version
