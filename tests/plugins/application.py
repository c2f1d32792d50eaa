"""The app on the test's own migrated database (markers `app_config` and `shop_locale`), its test client, staff
accounts, signed-in clients and an API client; logging and password hashing as the tests need them; the compiled
Polish catalogue (`compiled_catalogue`)."""
from __future__ import annotations

import logging.config
import subprocess
import sys
from pathlib import Path

import pytest

from app.extensions import db as _db
from app.models import ApiToken, Shop
from helpers import FreshGlobalsClient, build_app, make_user, sign_in


@pytest.fixture(scope="session", autouse=True)
def logging_left_to_pytest():
    """Migrations run in-process here, and Alembic's env.py then calls logging.config.fileConfig(alembic.ini),
    which disables every logger that exists (the app's module loggers: caplog would see nothing) and swaps the
    root logger's handlers. Tests leave logging as pytest set it up."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logging.config, "fileConfig", lambda *args, **kwargs: None)
        yield


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Argon2id at minimal cost: the production parameters take ~0.4 s a hash, and most tests hash twice."""
    from argon2 import PasswordHasher

    from app.models import users

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


@pytest.fixture
def app(request, tmp_path, database_url):
    """The app on this test's own migrated database, with an app context pushed.

    `@pytest.mark.app_config(KEY=value, ...)` overrides settings for one test. The shop speaks English in
    tests so that assertions read plainly; `@pytest.mark.shop_locale("pl")` keeps the product's Polish.
    """
    marker = request.node.get_closest_marker("app_config")
    locale = request.node.get_closest_marker("shop_locale")
    app = build_app(tmp_path / "instance", database_url, **(marker.kwargs if marker else {}))
    app.test_client_class = FreshGlobalsClient
    with app.app_context():
        Shop.current().locale = locale.args[0] if locale else "en"
        _db.session.commit()
        yield app
        _db.session.remove()
        _db.engine.dispose()  # the database is dropped next; no pooled connection may hold it


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def owner(app):
    return make_user("owner@shop.example", role="owner", name="Olga Owner")


@pytest.fixture
def staff(app):
    return make_user("staff@shop.example", role="staff", name="Stefan Staff")


@pytest.fixture
def api(client):
    """The test client with a valid API bearer token (issued to "erp")."""
    _row, plain = ApiToken.issue("erp")
    _db.session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plain}"
    return client


@pytest.fixture
def owner_client(client, owner):
    sign_in(client, owner)
    return client


@pytest.fixture
def staff_client(client, staff):
    sign_in(client, staff)
    return client


TRANSLATIONS = Path(__file__).resolve().parents[2] / "app" / "translations"


@pytest.fixture(scope="session")
def compiled_catalogue():
    """The app reads the compiled .mo (git-ignored, made by `make`): compile it when missing or older than the .po."""
    polish = TRANSLATIONS / "pl" / "LC_MESSAGES" / "messages.po"
    compiled = polish.with_suffix(".mo")
    if not compiled.exists() or compiled.stat().st_mtime < polish.stat().st_mtime:
        subprocess.run([sys.executable, "-m", "babel.messages.frontend", "compile", "-d", str(TRANSLATIONS)],
                       check=True, capture_output=True)
