"""Shared fixtures: a freshly migrated database per test, the app, a client, signed-in staff."""
from __future__ import annotations

import shutil

import pytest

from app import create_app
from app.extensions import db as _db
from app.models import User
from app.models.users import hash_password


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """Run the migrations once into a template SQLite file; each test gets a copy of it."""
    root = tmp_path_factory.mktemp("template")
    app = create_app({"INSTANCE_PATH": str(root), "TESTING": True, "SCHEDULER_ENABLED": False})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        _db.engine.dispose()
    return root / "repair-inbox.db"


@pytest.fixture
def app(tmp_path, migrated_template):
    instance = tmp_path / "instance"
    instance.mkdir()
    shutil.copy(migrated_template, instance / "repair-inbox.db")
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "TESTING": True,
            "SCHEDULER_ENABLED": False,
            "SECRET_KEY": "test-secret",
            "PUBLIC_BASE_URL": "http://shop.example",
        }
    )
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def make_user(email: str, role: str = "staff", password: str = "correct horse battery", name: str | None = None) -> User:
    user = User(email=email, name=name or email.split("@")[0].title(), role=role, password_hash=hash_password(password))
    _db.session.add(user)
    _db.session.commit()
    return user


@pytest.fixture
def owner(app):
    return make_user("owner@shop.example", role="owner", name="Olga Owner")


@pytest.fixture
def staff(app):
    return make_user("staff@shop.example", role="staff", name="Stefan Staff")


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token a page of the app hands out (from the body's hx-headers or a form)."""
    import re

    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, user: User, password: str = "correct horse battery"):
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def owner_client(client, owner):
    sign_in(client, owner)
    return client


@pytest.fixture
def staff_client(client, staff):
    sign_in(client, staff)
    return client
