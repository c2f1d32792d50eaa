"""Settings → Mailboxes (owners only): the shop's sending accounts, their health, and "Test connection"."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from htmx_flask import request
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import Optional

from ..channels.email import EmailChannel
from ..errors import ValidationFailed
from ..extensions import db
from ..inbound import imap
from ..mail_ids import reply_address
from ..accounts.mailboxes import (
    RECEIVING_DEFAULTS, SETTINGS, create_mailbox, mailboxes, make_default, record_test, set_active, update_mailbox,
)
from ..models import Mailbox
from . import form_values, owner_required, show_errors, wants_fragment

bp = Blueprint("mailboxes", __name__, url_prefix="/settings/mailboxes")

SECURITY_CHOICES = [
    SelectChoice("starttls", _l("STARTTLS (usually port 587)")),
    SelectChoice("tls", _l("TLS (usually port 465)")),
    SelectChoice("none", _l("None: not encrypted")),
]
IMAP_SECURITY_CHOICES = [
    SelectChoice("tls", _l("TLS (usually port 993)")),
    SelectChoice("starttls", _l("STARTTLS (usually port 143)")),
    SelectChoice("none", _l("None: not encrypted")),
]
AFTER_FETCH_CHOICES = [
    SelectChoice("seen", _l("Mark as read and keep it")),
    SelectChoice("move", _l("Move it to a folder")),
    SelectChoice("delete", _l("Delete it from the server")),
]


class MailboxForm(FlaskForm):
    # Choices are not checked by the form (validate_choice=False): the domain's message is clearer.
    name = StringField(_l("Name"))
    email = EmailField(_l("E-mail address"))
    display_name = StringField(_l("Sender name"))
    smtp_host = StringField(_l("SMTP server"))
    smtp_port = IntegerField(_l("Port"), validators=[Optional()])
    smtp_security = SelectField(_l("Security"), choices=SECURITY_CHOICES, validate_choice=False)
    username = StringField(_l("Login"))
    password = PasswordField(_l("Password"))  # write-only: never rendered back
    is_default = BooleanField(_l("Default mailbox for sending"))
    # Receiving, with the same login and password.
    imap_host = StringField(_l("IMAP server"))
    imap_port = IntegerField(_l("Port"), validators=[Optional()])
    imap_security = SelectField(_l("Security"), choices=IMAP_SECURITY_CHOICES, validate_choice=False)
    imap_validate_cert = BooleanField(_l("Check the server's certificate"))
    imap_folder = StringField(_l("Folder"))
    after_fetch = SelectField(_l("After fetching a mail"), choices=AFTER_FETCH_CHOICES, validate_choice=False)
    after_fetch_folder = StringField(_l("Move to the folder"))
    allow_new_threads = BooleanField(_l("Start new conversations"))
    store_attachments = BooleanField(_l("Store attachments"))
    poll_interval = IntegerField(_l("Check for new mail every (seconds)"), validators=[Optional()])


def _settings(form: MailboxForm) -> dict:
    return {name: value for name, value in form_values(form).items() if name in SETTINGS}


def _status(form: FlaskForm) -> int:
    return 422 if form.errors else 200


@bp.route("/")
@owner_required
def index():
    return render_template("staff/mailboxes/index.html", mailboxes=mailboxes())


@bp.route("/new", methods=["GET", "POST"])
@owner_required
def new():
    form = MailboxForm(smtp_port=587, smtp_security="starttls", **RECEIVING_DEFAULTS)
    if form.validate_on_submit():
        try:
            mailbox = create_mailbox(**_settings(form), password=form.password.data, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            flash(_("Mailbox %(name)s added. Test its connection before relying on it.", name=mailbox.name),
                  "success")
            return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))
    return render_template("staff/mailboxes/new.html", form=form), _status(form)


@bp.route("/<int:mailbox_id>", methods=["GET", "POST"])
@owner_required
def edit(mailbox_id: int):
    mailbox = db.get_or_404(Mailbox, mailbox_id)
    form = MailboxForm(obj=mailbox)
    if form.validate_on_submit():
        settings = _settings(form)
        if mailbox.is_default:
            del settings["is_default"]  # not on the form: another mailbox is made the default instead
        try:
            changed = update_mailbox(mailbox, **settings, password=form.password.data, actor=current_user)
            db.session.commit()
        except ValidationFailed as exc:
            show_errors(form, exc)
        else:
            flash(_("Mailbox %(name)s saved.", name=mailbox.name) if changed else _("Nothing changed."), "success")
            return redirect(url_for("mailboxes.index"))
    return render_template("staff/mailboxes/edit.html", mailbox=mailbox, form=form,
                           reply_example=reply_address(mailbox.email, _("code"))), _status(form)


@bp.route("/<int:mailbox_id>/test", methods=["POST"])
@owner_required
def test(mailbox_id: int):
    """Connect, secure, sign in and quit with the stored settings; htmx gets just the result."""
    mailbox = db.get_or_404(Mailbox, mailbox_id)
    ok, outcome = EmailChannel().test_connection(mailbox)
    return _tested(mailbox, ok, outcome, receiving=False)


@bp.route("/<int:mailbox_id>/test-imap", methods=["POST"])
@owner_required
def test_imap(mailbox_id: int):
    """Sign in to the IMAP server, open the folder and report what is there; htmx gets just the result."""
    mailbox = db.get_or_404(Mailbox, mailbox_id)
    ok, outcome = imap.test_connection(mailbox)
    return _tested(mailbox, ok, outcome, receiving=True)


def _tested(mailbox: Mailbox, ok: bool, outcome: str, *, receiving: bool):
    """Keep a test's result on the mailbox and show it: the htmx fragment, or a flash on the edit page."""
    record_test(mailbox, ok, outcome, receiving=receiving)
    db.session.commit()
    if wants_fragment():
        return render_template("staff/mailboxes/_test_result.html", ok=ok, outcome=outcome)
    flash(outcome, "success" if ok else "error")
    return redirect(url_for("mailboxes.edit", mailbox_id=mailbox.id))


@bp.route("/<int:mailbox_id>/default", methods=["POST"], endpoint="make_default")
@owner_required
def make_default_view(mailbox_id: int):
    mailbox = db.get_or_404(Mailbox, mailbox_id)
    try:
        make_default(mailbox, actor=current_user)
        db.session.commit()
    except ValidationFailed as exc:
        flash(exc.message_for("is_default"), "error")
    else:
        flash(_("Mail now goes out through %(name)s unless a message says otherwise.", name=mailbox.name), "success")
    return redirect(url_for("mailboxes.index"))


@bp.route("/<int:mailbox_id>/active", methods=["POST"], endpoint="set_active")
@owner_required
def set_active_view(mailbox_id: int):
    """Switch the mailbox on (`active=1`) or off (`active=0`)."""
    mailbox = db.get_or_404(Mailbox, mailbox_id)
    active = request.form.get("active") == "1"
    set_active(mailbox, active, actor=current_user)
    db.session.commit()
    flash(_("%(name)s sends and receives mail again.", name=mailbox.name) if active else
          _("%(name)s is switched off: it neither sends nor receives mail.", name=mailbox.name), "success")
    return redirect(url_for("mailboxes.index"))
