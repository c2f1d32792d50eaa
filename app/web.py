"""App-wide pages and plumbing: health check, vendored front-end assets, error pages, template globals."""
from __future__ import annotations

from importlib import resources

from flask import Blueprint, Flask, g, render_template, request, send_from_directory
from flask_login import current_user
from sqlalchemy import func, select, text

from .accounts.sms import active_account
from .extensions import db
from .i18n import current_shop
from .inbound.record import held_count
from .formatting import html_body, panel_body_html
from .labels import template_labels
from .models import Mailbox, Thread, utcnow
from .setup_checklist import setup_done, setup_steps
from .staff.auth import too_many_attempts

bp = Blueprint("web", __name__)

# htmx comes from its PyPI package (django-js-lib-htmx); the version is in the URL, so it can be cached for a year.
HTMX_DIR = resources.files("js_lib_htmx") / "static" / "htmx"
HTMX_VERSION = "2.0.3"
YEAR = 365 * 24 * 3600


@bp.route(f"/assets/htmx-{HTMX_VERSION}/<path:filename>")
def htmx_asset(filename: str):
    return send_from_directory(str(HTMX_DIR), filename, max_age=YEAR)


@bp.route("/healthz")
def healthz():
    """200 when the database answers, 503 otherwise (for Docker and monitoring)."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy"
        db.session.rollback()
        return {"status": "error", "database": type(exc).__name__}, 503
    return {"status": "ok", "database": "ok"}


def init_web(app: Flask) -> None:
    for code in (400, 403, 404, 405, 413, 500):
        app.register_error_handler(code, _error_page)


    app.register_error_handler(429, _rate_limited(too_many_attempts))

    app.add_template_filter(html_body, "body_html")
    app.add_template_filter(panel_body_html, "panel_body_html")

    @app.context_processor
    def _globals():
        return {"shop": current_shop(), "unread_count": _unread_count, "held_count": held_count,
                "broken_mailboxes": _broken_mailboxes,
                "setup_banner": _setup_banner, "sms_balance_low": _sms_balance_low,
                "now": utcnow, **template_labels()}


def _unread_count() -> int:
    """Threads waiting to be read by staff; the top navigation shows it."""
    if not current_user.is_authenticated:
        return 0

    return db.session.scalar(
        select(func.count(Thread.id)).where(Thread.unread.is_(True), Thread.deleted_at.is_(None))
    ) or 0


def _setup_banner() -> list | None:
    """The setup steps, when the signed-in owner has not finished nor hidden them; None otherwise. Worked out once
    per request and only for owners, so staff pages cost nothing."""
    if "setup_banner" not in g:
        user = current_user
        g.setup_banner = None
        if user.is_authenticated and getattr(user, "is_owner", False) and user.setup_dismissed_at is None:
            steps = setup_steps(current_shop())
            g.setup_banner = None if setup_done(steps) else steps
    return g.setup_banner


def _sms_balance_low():
    """The active SMS account when its balance is below the owner's threshold (every staff member sees a banner:
    SMS will soon stop going out), else None. Once per request, and only for signed-in staff."""
    if "sms_balance_low" not in g:
        account = active_account() if current_user.is_authenticated and hasattr(current_user, "is_owner") else None
        g.sms_balance_low = account if account is not None and account.balance_is_low else None
    return g.sms_balance_low


def _broken_mailboxes() -> list:
    """Mailboxes flagged broken after repeated failures; owners see a banner on every page."""

    return list(db.session.scalars(
        select(Mailbox).where(Mailbox.active.is_(True), Mailbox.broken_at.is_not(None)).order_by(Mailbox.id)
    ))


def _rate_limited(login_handler):
    def handler(error):
        if request.endpoint == "auth.login":
            return login_handler(error)
        if request.path.startswith("/api/"):
            return {"error": "too many requests"}, 429
        return _error_page(error)

    return handler


def _error_page(error):
    code = getattr(error, "code", 500) or 500
    if request.path.startswith("/api/"):
        return {"error": getattr(error, "description", "error")}, code
    if request.path.startswith("/p/"):  # a customer: the panel's page, never the staff's
        return render_template("panel/error.html", code=code, error=error), code
    return render_template("error.html", code=code, error=error), code
