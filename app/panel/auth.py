"""Who is signed in to the panel: its own session cookie, signing in and out, the signed-in customer and the
scope of a session opened with a receipt's access code."""
from __future__ import annotations

import re
from functools import wraps

from flask import g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface, SessionInterface
from flask_babel import refresh

from .. import sign_in_sessions
from ..extensions import db
from ..i18n import PANEL_LANGUAGE_KEY
from ..models import Customer, Repair, utcnow
from ..models.audit import record

PANEL_PREFIX = "/p/"
PANEL_COOKIE = "ri_panel"
SESSION_KEY = "panel_customer"  # "<customer id>:<panel session version>:<sign-in session token>"


def in_panel() -> bool:
    """Whether the current request is for the customer panel."""
    return request.path.startswith(PANEL_PREFIX)


class PanelSessionInterface(SecureCookieSessionInterface):
    """The panel's signed-cookie session: its own cookie (ri_panel, sent only to /p/) and its own signing salt, so
    a staff cookie cannot be passed off as a panel one, nor the other way round."""

    salt = "panel-session"

    def get_cookie_name(self, app) -> str:
        return PANEL_COOKIE

    def get_cookie_path(self, app) -> str:
        return PANEL_PREFIX


REQUEST_FORM_PATH = re.compile(r"^/p/[^/]+/zapytanie(/|$)")
REQUEST_FORM_COOKIE = "ri_request"


class RequestFormSessionInterface(SecureCookieSessionInterface):
    """The public request form's own session (its CSRF token, language and a request waiting for its code), apart
    from the panel's: shops show the form in a frame on their own websites, where a browser keeps only a cookie
    marked SameSite=None (and Secure; Partitioned, so it stays that site's). Such a cookie must never carry a panel
    sign-in, so it is another cookie, read only on the form's pages."""

    salt = "request-form-session"

    def get_cookie_name(self, app) -> str:
        return REQUEST_FORM_COOKIE

    def get_cookie_path(self, app) -> str:
        return PANEL_PREFIX

    def get_cookie_samesite(self, app) -> str:
        return "None" if app.config["SESSION_COOKIE_SECURE"] else "Lax"  # browsers refuse None without Secure

    def get_cookie_partitioned(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"])


def in_request_form(path: str) -> bool:
    """Whether a path is one of the public request form's pages."""
    return bool(REQUEST_FORM_PATH.match(path))


class AreaSessionInterface(SessionInterface):
    """Separate sessions by path: the request form's on /p/<slug>/zapytanie..., the panel's on the rest of /p/...,
    the staff app's (Flask's usual cookie) elsewhere. No area's cookie is ever read in another."""

    def __init__(self) -> None:
        self.staff = SecureCookieSessionInterface()
        self.panel = PanelSessionInterface()
        self.request_form = RequestFormSessionInterface()

    def _area(self, request) -> SessionInterface:
        if in_request_form(request.path):
            return self.request_form
        return self.panel if request.path.startswith(PANEL_PREFIX) else self.staff

    def open_session(self, app, request):
        return self._area(request).open_session(app, request)

    def save_session(self, app, session, response) -> None:
        return self._area(request).save_session(app, session, response)


def remember_language(customer: Customer) -> None:
    """Keep the customer's language in this browser's panel session: the pages after signing out (and the rest
    of this request) speak it too."""
    session[PANEL_LANGUAGE_KEY] = g.panel_language = customer.language
    refresh()


# --- the panel session -----------------------------------------------------------------------------


def sign_in(customer: Customer, *, how: str, repair: Repair | None = None) -> None:
    """Start a panel session for the customer; the first sign-in (invitation, link, code, access code) activates
    the panel. Refuses nothing: callers have checked the customer's proof and that access is not disabled.

    With `repair` (an access code) the session sees only that repair's threads. A session this browser had before
    ends (a new one replaces it: nobody keeps a session id they may have planted).
    """
    sign_in_sessions.end(_session_token())
    session.clear()
    token = sign_in_sessions.start(how=how, customer_id=customer.id, repair_id=repair.id if repair else None)
    session[SESSION_KEY] = f"{customer.id}:{customer.panel_session_version}:{token}"
    session.permanent = True
    g.pop("panel_customer", None)
    g.pop("panel_session", None)
    remember_language(customer)
    customer.panel_state = "active"  # whoever proved to be the customer has the panel from now on
    customer.panel_last_sign_in_at = utcnow()
    record("panel.sign_in", by=f"customer:{customer.id}", target=customer, how=how)


def _session_token() -> str | None:
    return str(session.get(SESSION_KEY, "")).split(":")[-1] or None


def sign_out() -> None:
    """End this browser's panel session, on the server too: a copy of the cookie stops working."""
    sign_in_sessions.end(_session_token())
    language = session.get(PANEL_LANGUAGE_KEY)
    session.clear()
    if language:
        session[PANEL_LANGUAGE_KEY] = g.panel_language = language
    g.pop("panel_customer", None)
    refresh()


def current_customer() -> Customer | None:
    """The signed-in customer of this panel request, or None: a session of an older version (password changed,
    access disabled) or of a customer whose panel is closed counts as signed out."""
    if "panel_customer" not in g:
        g.panel_customer = None
        if in_panel():
            g.panel_customer = _load_session_customer(session.get(SESSION_KEY, ""))
    return g.panel_customer


def _load_session_customer(value: str) -> Customer | None:
    customer_id, version, token = (str(value).split(":") + ["", ""])[:3]
    if not customer_id.isdigit() or not version.isdigit():
        return None
    customer = db.session.get(Customer, int(customer_id))
    if customer is None or customer.panel_session_version != int(version) or customer.anonymized_at:
        return None
    if customer.panel_state != "active":
        return None
    row = sign_in_sessions.find(token, customer_id=customer.id)
    if row is None:  # signed out (here or on another device with a copy of the cookie), or never started
        return None
    g.panel_session = row
    return customer


def repair_scope() -> int | None:
    """The repair an access-code session is limited to, or None for a full sign-in (and when nobody is in)."""
    current_customer()
    row = g.get("panel_session")
    return row.repair_id if row is not None else None


def full_session() -> bool:
    """Whether a customer is signed in with proof of the whole account (a one-time link or code, a password),
    not only a receipt's access code."""
    return current_customer() is not None and repair_scope() is None


def customer_required(view):
    """Only a signed-in customer may use this view; others go to the sign-in page (and come back after)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_customer() is None:
            return redirect(url_for("panel.sign_in", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)

    return wrapped


