"""Helpers that test files import: the test settings, building an app on a given database, staff accounts,
CSRF tokens, signing in through the test client, and running `flask` commands. Fixtures live in tests/plugins/."""
from __future__ import annotations

import re
import socket
from pathlib import Path

from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from jinja2 import BytecodeCache

from app import create_app
from app.extensions import db as _db
from app.models import User
from app.models.users import hash_password

PASSWORD = "correct horse battery"
TEST_CONFIG = {
    "TESTING": True,
    "SCHEDULER_ENABLED": False,
    "SECRET_KEY": "test-secret",
    "PUBLIC_BASE_URL": "http://shop.example",
}


def free_port() -> int:
    """A loopback TCP port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SharedTemplateCache(BytecodeCache):
    """Compiled templates shared by the run's apps: each app has its own Jinja environment, and compiling the
    templates of one page anew costs more than the rest of a test's setup. Jinja checks each template's source
    checksum, so an edited template is compiled again."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CACHE = SharedTemplateCache()


def build_app(instance: Path, database_url: str, **overrides) -> Flask:
    """The app as tests run it: no scheduler, a fixed secret, the given database, then any overrides."""
    app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, **overrides})
    app.jinja_env.bytecode_cache = TEMPLATE_CACHE
    return app


class FreshGlobalsClient(FlaskClient):
    """Every request starts with an empty `g`, as in production.

    Requests reuse the app context the `app` fixture pushed (so they share the test's database session), and
    without this its `g` would carry the signed-in user, the shop and the locale over from the last request.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            for name in list(g):
                g.pop(name)
        return super().open(*args, **kwargs)


def count_password_checks(monkeypatch) -> list[str]:
    """From now on, every password check (the hash checked against) is added to the returned list: a failed sign-in
    must do the same work whether or not the account exists, and this shows it without measuring time."""
    from argon2 import PasswordHasher

    from app.models import users

    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash, password):  # noqa: A002  (argon2's own parameter name)
            calls.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_hasher", CountingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return calls


def make_user(email: str, role: str = "staff", password: str = PASSWORD, name: str | None = None) -> User:
    """A committed staff account (role "staff" or "owner"); the name defaults to the e-mail's local part."""
    user = User(email=email, name=name or email.split("@")[0].title(), role=role, password_hash=hash_password(password))
    _db.session.add(user)
    _db.session.commit()
    return user


def csrf_token(client, path: str = "/login", **request) -> str:
    """The CSRF token a page of the app hands out (from the body's hx-headers or a form).

    `request` goes to `client.get` (e.g. base_url="https://shop.example").
    """
    html = client.get(path, **request).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, user: User, password: str = PASSWORD, remember: bool = False, **request):
    """Sign in through the form and insist that it worked; `request` goes to both requests (base_url, headers)."""
    token = csrf_token(client, "/login", **request)
    data = {"email": user.email, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data, **request)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def run_flask(app, *args: str):
    """Run a `flask` command of the app and insist that it succeeded."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, f"flask {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
    return result
