"""Settings → Mailboxes → Google and Microsoft 365 (owners only): the shop's OAuth clients, and connecting or
reconnecting a mailbox through the provider's sign-in page."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField

from ..errors import ValidationFailed
from ..extensions import db
from ..models import Mailbox
from ..accounts.oauth import PROVIDERS, ConnectRefused, finish_connect, oauth_client, redirect_uri, save_client, start_connect
from . import owner_required, show_errors

bp = Blueprint("mailbox_oauth", __name__, url_prefix="/settings/mailboxes")

FLOW_KEY = "mailbox_oauth_flow"  # the flow in progress (state, PKCE verifier), in the signed session cookie
# Connect and Reconnect are links (GET): the pages' CSP (form-action 'self') forbids a form to lead to another
# site, and starting a flow changes nothing but the pending flow in the session, which only the provider's
# answer with its state can finish.


class ClientForm(FlaskForm):
    client_id = StringField(_l("Client ID"))
    client_secret = PasswordField(lazy_pgettext("OAuth client secret", "Client secret"))  # write-only: never rendered back


def _forms(submitted: str | None = None) -> dict[str, ClientForm]:
    """One form per provider, each with its own field prefix; only the submitted one reads the request."""
    forms = {}
    for name in PROVIDERS:
        client = oauth_client(name)
        data = None if name == submitted else {"client_id": client.client_id if client else ""}
        forms[name] = ClientForm(prefix=name, formdata=request.form if name == submitted else None, data=data)
    return forms


def _page(forms: dict[str, ClientForm], status: int = 200):
    clients = {name: oauth_client(name) for name in PROVIDERS}
    return render_template("staff/mailboxes/oauth.html", providers=PROVIDERS, forms=forms, clients=clients,
                           redirect_uri=redirect_uri()), status


@bp.route("/oauth")
@owner_required
def clients():
    return _page(_forms())


@bp.route("/oauth/<provider>", methods=["POST"])
@owner_required
def save(provider: str):
    if provider not in PROVIDERS:
        abort(404)
    forms = _forms(submitted=provider)
    form = forms[provider]
    if form.validate_on_submit():
        try:
            save_client(provider, client_id=form.client_id.data, client_secret=form.client_secret.data,
                        actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            flash(_("The %(provider)s client is saved.", provider=PROVIDERS[provider].label), "success")
            return redirect(url_for("mailbox_oauth.clients"))
    return _page(forms, 422)


@bp.route("/connect/<provider>")
@owner_required
def connect(provider: str):
    """Send the browser to the provider's sign-in page to connect a new mailbox."""
    if provider not in PROVIDERS:
        abort(404)
    return _start(provider, None)


@bp.route("/<int:mailbox_id>/reconnect")
@owner_required
def reconnect(mailbox_id: int):
    """Sign the mailbox in again (consent revoked, password changed, refresh token expired)."""
    mailbox = db.get_or_404(Mailbox, mailbox_id)
    if not mailbox.uses_oauth:
        abort(404)
    return _start(mailbox.auth_kind, mailbox)


def _start(provider: str, mailbox: Mailbox | None):
    try:
        url, flow = start_connect(provider, mailbox)
    except ValidationFailed as exc:
        flash(exc.message_for("provider"), "error")
        return redirect(url_for("mailbox_oauth.clients"))
    session[FLOW_KEY] = flow
    return redirect(url)


@bp.route("/oauth/callback")
@owner_required
def callback():
    """Where the provider sends the browser back: the flow is used once, whatever its outcome."""
    try:
        mailbox = finish_connect(session.pop(FLOW_KEY, None), request.args, actor=current_user)
        db.session.commit()
    except ConnectRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("mailboxes.index"))
    flash(_("%(address)s is connected: mail goes out and comes in through it.", address=mailbox.email), "success")
    return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))


@bp.app_template_filter("oauth_provider_label")
def provider_label(name: str) -> str:
    """"Google" for google: how a mailbox's auth_kind is shown."""
    return PROVIDERS[name].label if name in PROVIDERS else name
