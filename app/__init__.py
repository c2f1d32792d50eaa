"""Repair Inbox: create_app() builds the Flask app; nothing global is created at import time."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import configure
from .extensions import babel, csrf, db, htmx, limiter, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    """Build the app. `config` overrides everything else (tests pass DATABASE_URL, INSTANCE_PATH...)."""
    config = dict(config or {})
    instance_path = config.pop("INSTANCE_PATH", None) or os.environ.get("INSTANCE_PATH") or PROJECT_ROOT / "instance"
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    configure(app, config)
    _trust_proxies(app)

    from . import models  # noqa: F401  (registers the tables)
    from .i18n import init_i18n
    from .panel_pages import init_panel
    from .request_input import init_request_input
    from .security import init_security
    from .staff.auth import init_login

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)
    init_login(app, login_manager)
    init_i18n(app, babel)
    init_security(app)
    init_request_input(app)  # before the routes: it replaces the `int` converter
    _register_blueprints(app)
    init_panel(app)

    from .cli import register_cli
    from .jobs import scheduler_cli
    from .monitoring import init_monitoring
    from .web import init_web

    init_web(app)
    register_cli(app)
    app.cli.add_command(scheduler_cli)
    init_monitoring(app)  # request logs, /metrics, `flask status`
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, the client's address, scheme and host come from the headers those
    proxies set (the last N values of each), so sign-in limits and the audit log see each client, not the proxy."""
    hops = int(app.config["TRUSTED_PROXIES"])
    if hops < 0:
        raise ValueError("TRUSTED_PROXIES must be 0 (no proxy) or the number of proxies in front of the app")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def _register_blueprints(app: Flask) -> None:
    from .api import bp as api_bp
    from .staff import (account, api_tokens, audit, auth, backups, bulk, compose, customers, held, inbox,
                        mail_rules, mailbox_oauth, mailboxes, notifications, outbox, panel_settings, repairs, settings,
                        sms_settings, stats, templates, thread_actions, thread_tools, threads, tickets,
                        trusted_domains, workflow)
    from .web import bp as web_bp
    from .webhooks import bp as webhooks_bp
    from .webhooks import smsapi_bp

    for module in (auth, inbox, threads, thread_actions, thread_tools, compose, customers, repairs, tickets, outbox,
                   settings, workflow, mailboxes, mailbox_oauth, sms_settings, account, panel_settings, held,
                   trusted_domains, stats, templates, notifications, bulk, audit, backups, api_tokens,
                   mail_rules):
        app.register_blueprint(module.bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(smsapi_bp)
    app.register_blueprint(web_bp)
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens, not cookies
    csrf.exempt(webhooks_bp)  # each provider's signature protects its webhooks
    csrf.exempt(smsapi_bp)  # the secret in SMSAPI's callback URLs protects them


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite as a server database: WAL for concurrent readers, a busy timeout, foreign keys on."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # SQLite's own lower() knows only A-Z; searches must fold "Łukasz" like PostgreSQL does.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value):
    return value.lower() if isinstance(value, str) else value
