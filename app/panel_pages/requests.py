"""The public request form's pages (/p/<slug>/zapytanie): no sign-in, in the customer's language, and the one page
of the app any website may show in a frame. What a request becomes is decided in app/web_requests.py."""
from __future__ import annotations

import secrets

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, MultipleFileField, StringField, TelField, TextAreaField

from ..attachments import StoredFile, store
from ..errors import ValidationFailed
from ..extensions import db, limiter
from ..i18n import CUSTOMER_LANGUAGE_NAMES, PANEL_LANGUAGE_KEY, current_shop
from ..models.customers import CUSTOMER_LANGUAGES
from ..pages import show_errors
from ..panel import credentials
from ..panel.conversation import panel_file_limit
from ..request_input import uploads
from ..security import allow_framing
from ..web_requests import check_request, confirm_request, submit_request, waiting_request
from .blueprint import bp

TOKEN_KEY = "request_token"  # the request of this browser that waits for its code


class RequestForm(FlaskForm):
    name = StringField(_l("Your name"), render_kw={"required": True, "autocomplete": "name", "maxlength": 200})
    email = EmailField(_l("E-mail"), render_kw={"autocomplete": "email", "maxlength": 254})
    phone = TelField(_l("Phone number"), render_kw={"autocomplete": "tel", "maxlength": 32})
    device = StringField(_l("Device"), render_kw={"required": True, "maxlength": 200})
    problem = TextAreaField(_l("What is wrong?"), render_kw={"required": True, "rows": 5})
    attachments = MultipleFileField(_l("Photos (optional)"), render_kw={"accept": "image/*,application/pdf"})
    consent = BooleanField(_l("I agree that the shop contacts me about this request."), render_kw={"required": True})
    # A field people never see (hidden by the stylesheet, skipped by the keyboard): only robots fill it in.
    website = StringField(_l("Leave this field empty"), render_kw={"tabindex": "-1", "autocomplete": "off"})


class RequestCodeForm(FlaskForm):
    code = StringField(_l("Code"), render_kw={"required": True, "inputmode": "numeric", "autocomplete": "one-time-code",
                                             "maxlength": 12})


def _contact_key() -> str:
    """The form's limit per person, however their address or number is spelt (the e-mail address when given)."""
    return "request-contact:" + credentials.login_identity(request.form.get("email") or request.form.get("phone"))


def _waiting_key() -> str:
    """The code page's limit per request waiting in this session (never read from the form)."""
    return "request-code:" + str(session.get(TOKEN_KEY, ""))


def _limit(setting: str, scope: str, key_func=None):
    return limiter.limit(lambda: current_app.config[setting], methods=["POST"], scope=scope,
                         **({"key_func": key_func} if key_func else {}))


def _speak_chosen_language() -> None:
    """The form speaks the language chosen with ?lang= (kept in this browser's form session), else the shop's."""
    chosen = request.args.get("lang")
    if chosen in CUSTOMER_LANGUAGES:
        session[PANEL_LANGUAGE_KEY] = chosen
    language = session.get(PANEL_LANGUAGE_KEY)
    if language in CUSTOMER_LANGUAGES:
        g.panel_language = language
        refresh()


def _page(template: str, status: int = 200, **context):
    """A page of the form, in a frame too; 404 with a clear word when the shop does not take requests here."""
    if not current_shop().request_form_enabled:
        return allow_framing(current_app.make_response((render_template("panel/request_closed.html"), 404)))
    response = current_app.make_response((render_template(template, languages=CUSTOMER_LANGUAGE_NAMES, **context),
                                          status))
    return allow_framing(response)


@bp.route("/zapytanie", methods=["GET", "POST"])
@_limit("REQUEST_LIMIT_PER_IP", "request-form-ip")
@_limit("REQUEST_LIMIT_PER_CONTACT", "request-form-contact", _contact_key)
def request_form():
    """The form: name, e-mail and/or phone, device, what is wrong, photos, consent. Both outcomes (a new
    customer's ticket, or a request waiting for the code sent to a known contact) lead to the same page, so the
    form does not tell anyone whose contacts the shop has."""
    _speak_chosen_language()
    form = RequestForm()
    if current_shop().request_form_enabled and form.validate_on_submit():
        if form.website.data:  # a robot: thanked like anyone, and nothing kept
            session[TOKEN_KEY] = secrets.token_urlsafe(32)
            return redirect(url_for("panel.request_code"), 303)
        fields = {"name": form.name.data, "email": form.email.data, "phone": form.phone.data,
                  "device": form.device.data, "problem": form.problem.data, "consent": form.consent.data is True}
        uploaded = uploads(form.attachments.data)
        try:
            # Everything but the files' contents first, so that a refused request (no consent, no contact, files
            # the shop does not take) stores no file: nobody has to clean up after strangers' failed attempts.
            check_request(**fields, attachments=[StoredFile("", 0, "", f.filename) for f in uploaded])
            limit = panel_file_limit(current_shop())
            files = [store(f.stream, f.filename, limit) for f in uploaded]
            submitted = submit_request(**fields, attachments=files,
                                       language=str(g.get("panel_language") or current_shop().locale or "pl"))
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            session[TOKEN_KEY] = submitted.token or secrets.token_urlsafe(32)
            return redirect(url_for("panel.request_code"), 303)
    return _page("panel/request_form.html", 400 if request.method == "POST" else 200, form=form,
                 allows_files=current_shop().panel_allows_attachments)


@bp.route("/zapytanie/kod", methods=["GET", "POST"])
@_limit("LOGIN_LIMIT_PER_IP", "request-code-ip")
@_limit("LOGIN_LIMIT_PER_ACCOUNT", "request-code-request", _waiting_key)
def request_code():
    """Thanks for the request, and where the code goes when the contact is already the shop's."""
    _speak_chosen_language()
    if TOKEN_KEY not in session:
        return redirect(url_for("panel.request_form"))
    form = RequestCodeForm()
    if current_shop().request_form_enabled and form.validate_on_submit():
        waiting = waiting_request(session.get(TOKEN_KEY))
        thread = confirm_request(waiting, form.code.data) if waiting is not None else None
        db.session.commit()  # the try counts against the code
        if thread is not None:
            session.pop(TOKEN_KEY, None)
            return _page("panel/request_confirmed.html")
        form.code.errors.append(_("This code is wrong or has expired. Check it; the shop gets your request either "
                                  "way."))
    return _page("panel/request_code.html", 400 if form.errors else 200, form=form)
