"""The panel's pages: sign-in (link, code, password, a repair's access code), the inbox, a thread, replies, files."""
from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, PasswordField, SelectChoice, SelectField, StringField, TextAreaField

from ..attachments import SNIFF_BYTES, digest_of, open_stored, send_stored, sniff, store
from ..customers import first_name_vocative, update_customer
from ..errors import ValidationFailed
from ..extensions import db, limiter
from ..formatting import markdown_to_text, own_panel_text
from ..i18n import CUSTOMER_LANGUAGE_NAMES, current_shop
from ..models import preview_of
from ..pages import safe_next, show_errors, wants_fragment
from ..panel import auth, credentials, loaders
from ..panel import notices
from ..shop import branding
from ..panel.conversation import customer_new_thread, customer_reply, mark_read, panel_file_limit
from ..request_input import uploads, whole_number
from ..security import allow_framing
from .blueprint import bp

POLL_FIRST = 10  # seconds before a thread asks for new messages
POLL_MAX = 120  # the longest wait once nothing has changed for a while
LOGIN_KEY = "panel_login"  # the address a code was asked for, so the code page knows whose code it is
NEXT_KEY = "panel_next"  # the page to open once the code has signed the customer in


class SignInForm(FlaskForm):
    login = StringField(_l("E-mail or phone number"), render_kw={"required": True, "autocomplete": "username"})
    password = PasswordField(_l("Password (only if you have set one)"), render_kw={"autocomplete": "current-password"})


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), render_kw={"required": True, "inputmode": "numeric", "autocomplete": "one-time-code",
                                             "maxlength": 12})


class AccessCodeForm(FlaskForm):
    code = StringField(_l("Access code from your receipt"), render_kw={"required": True, "autocapitalize": "characters"})
    digits = StringField(_l("Last 3 digits of your phone number"),
                         render_kw={"required": True, "inputmode": "numeric", "maxlength": 6})


class MessageForm(FlaskForm):
    body = TextAreaField(_l("Your message"), render_kw={"rows": 4})
    attachments = MultipleFileField(_l("Photos or files"))


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), render_kw={"autocomplete": "current-password"})
    password = PasswordField(_l("New password"), render_kw={"required": True, "autocomplete": "new-password"})


class LanguageForm(FlaskForm):
    # Each language named in itself: whoever cannot read the current one still finds theirs.
    language = SelectField(_l("Language"), validate_choice=False,
                           choices=[SelectChoice(code, name) for code, name in CUSTOMER_LANGUAGE_NAMES.items()])


def _login_key() -> str:
    """The sign-in form's limit: per person, however their address or number is spelt."""
    return "panel-login:" + credentials.login_identity(request.form.get("login"))


def _pending_key() -> str:
    """The code page's limit: per person whose sign-in is pending in this session. Never read from the form,
    which the visitor controls (a made-up field would give every try a fresh count)."""
    return "panel-login:" + credentials.login_identity(session.get(LOGIN_KEY))


def _access_code_key() -> str:
    """The access-code form's limit per receipt code, however it is typed: someone holding a photo of a receipt
    cannot try the phone digits from many addresses at once."""
    return "panel-access:" + "".join(ch for ch in (request.form.get("code") or "").upper() if ch.isalnum())


def _limit(setting: str, scope: str, key_func=None):
    return limiter.limit(lambda: current_app.config[setting], methods=["POST"], scope=scope,
                         **({"key_func": key_func} if key_func else {}))


def _next_in_panel(target: str | None) -> str | None:
    """A page of the panel to go to after signing in (a path within the app, as request.full_path gives), or None."""
    target = safe_next(target)
    return target if target and target.startswith(auth.PANEL_PREFIX) else None


def _after_sign_in(target: str | None):
    return redirect(request.script_root + target if target else url_for("panel.inbox"))


# --- signing in ---------------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@_limit("LOGIN_LIMIT_PER_IP", "panel-sign-in-ip")
@_limit("LOGIN_LIMIT_PER_ACCOUNT", "panel-sign-in-login", _login_key)
def sign_in():
    """Passwordless by default: the address gets a one-time link and code; with a password, straight in."""
    if auth.full_session():  # an access code's session may still sign in to the whole account
        return redirect(url_for("panel.inbox"))
    form = SignInForm()
    if form.validate_on_submit():
        login = (form.login.data or "").strip()  # None when the form did not send the field at all
        if not login:
            form.login.errors.append(_("Required."))
        elif form.password.data:
            customer = credentials.check_password(login, form.password.data)
            if customer is not None:
                auth.sign_in(customer, how="password")
                db.session.commit()
                return _after_sign_in(_next_in_panel(request.args.get("next")))
            form.password.errors.append(_("Wrong e-mail, phone number or password."))
        else:
            notices.send_sign_in(login)
            db.session.commit()
            session[LOGIN_KEY] = login
            session[NEXT_KEY] = _next_in_panel(request.args.get("next"))
            return redirect(url_for("panel.code"))
    # The receipt's QR code opens this page with its access code filled in: the customer types the phone digits.
    receipt_code = request.args.get("code", "").strip()[:16]
    return render_template("panel/sign_in.html", form=form, access_form=AccessCodeForm(code=receipt_code),
                           receipt_code=receipt_code)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@_limit("LOGIN_LIMIT_PER_IP", "panel-code-ip")
@_limit("LOGIN_LIMIT_PER_ACCOUNT", "panel-code-login", _pending_key)
def code():
    """Where the customer types the code sent to them; the page reads the same whether the address is known."""
    login = session.get(LOGIN_KEY)
    if not login:
        return redirect(url_for("panel.sign_in"))
    form = CodeForm()
    if form.validate_on_submit():
        customer = credentials.redeem_code(login, form.code.data)
        if customer is not None:
            next_page = session.get(NEXT_KEY)
            auth.sign_in(customer, how="code")
            db.session.commit()
            return _after_sign_in(_next_in_panel(next_page))
        db.session.commit()  # the try counts against the code
        form.code.errors.append(_("This code is wrong or has expired. Check it, or ask for a new one."))
    return render_template("panel/code.html", form=form, login=login)


@bp.route("/s/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], scope="panel-link-ip")
def link(token: str):
    """A one-time link from an invitation, a sign-in message or a notice. Opening it shows a button that signs in:
    mail scanners (Outlook's Safe Links and the like) open links in mail before the person does, and must not
    use them up. A used or old link says so kindly and leads to the sign-in page."""
    next_page = _next_in_panel(request.args.get("next"))
    form = FlaskForm()
    if request.method == "GET" and credentials.link_works(token):
        credentials.speak_language_of_link(token)
        return render_template("panel/link.html", form=form)
    try:
        if not form.validate_on_submit():
            raise credentials.LinkExpired()
        customer, purpose = credentials.redeem_link(token)
    except credentials.LinkExpired:
        db.session.rollback()
        return render_template("panel/expired.html", next=next_page), 410
    auth.sign_in(customer, how=purpose)
    db.session.commit()
    if purpose == "invite":
        flash(_("Welcome! Your messages from the shop will appear here."), "success")
        return redirect(url_for("panel.account", welcome=1))
    return _after_sign_in(next_page)


@bp.route("/access", methods=["POST"])
@_limit("LOGIN_LIMIT_PER_IP", "panel-access-ip")
@_limit("LOGIN_LIMIT_PER_ACCOUNT", "panel-access-code", _access_code_key)
def access_code():
    """A repair receipt's access code with the last digits of the customer's phone opens that repair's threads."""
    form = AccessCodeForm()
    repair = credentials.repair_by_access_code(form.code.data, form.digits.data) if form.validate_on_submit() else None
    if repair is None:
        form.code.errors.append(_("The code or the phone digits do not match."))
        return render_template("panel/sign_in.html", form=SignInForm(formdata=None), access_form=form), 400
    auth.sign_in(repair.customer, how="access_code", repair=repair)
    db.session.commit()
    return redirect(url_for("panel.inbox"))


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    auth.sign_out()
    db.session.commit()  # the session's end is kept: every instance refuses the cookie from now on
    flash(_("You have been signed out."), "info")
    return redirect(url_for("panel.sign_in"))


@bp.route("/account", methods=["GET", "POST"])
@auth.customer_required
def account():
    """The optional password (passwordless sign-in always works). Only a full sign-in may set one, and changing
    it takes the current one: a receipt's access code opens one repair, never the account."""
    customer = auth.current_customer()
    if not auth.full_session():
        return render_template("panel/account.html", form=None, customer=customer, scoped=True), \
            403 if request.method == "POST" else 200
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            credentials.set_password(customer, form.password.data, current=form.current_password.data)
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            auth.sign_in(customer, how="password_set")  # this session goes on; others ended
            db.session.commit()
            flash(_("Your password is set."), "success")
            return redirect(url_for("panel.inbox"))
    return render_template("panel/account.html", form=form, customer=customer,
                           language_form=LanguageForm(language=customer.language_or(current_shop().locale)),
                           welcome=bool(request.args.get("welcome")))


@bp.route("/account/language", methods=["POST"])
@auth.customer_required
def language():
    """The customer chooses the language of the panel, their sign-in messages and the shop's notifications.
    Like the password, only in a full session: a receipt's access code opens one repair, never the account."""
    customer = auth.current_customer()
    if not auth.full_session():
        return redirect(url_for("panel.account")), 303
    form = LanguageForm()
    if form.validate_on_submit():
        try:
            update_customer(customer, actor=f"customer:{customer.id}", source="panel", language=form.language.data)
        except ValidationFailed as exc:
            db.session.rollback()
            flash(" ".join(exc.fields.values()), "error")
        else:
            db.session.commit()
            auth.remember_language(customer)  # the confirmation already in the new language
            flash(_("The panel now speaks your language."), "success")
    return redirect(url_for("panel.account"))


# --- reading and writing ----------------------------------------------------------------------


@bp.route("/")
@auth.customer_required
def inbox():
    """The customer's threads; htmx polls the same URL for changes, waiting longer while nothing changes."""
    customer = auth.current_customer()
    threads = loaders.threads_for_customer(customer)
    seen = ".".join(f"{line.last.id}{'u' if line.unread else ''}" for line in threads)  # what the page shows
    wait = _next_wait(seen)
    if wants_fragment():
        return render_template("panel/_threads.html", threads=threads, seen=seen, wait=wait), {"Vary": "HX-Request"}
    return render_template("panel/inbox.html", threads=threads, seen=seen, wait=wait,
                           repairs=loaders.repairs_for_customer(customer)), {"Vary": "HX-Request"}


def _next_wait(state: str | int) -> int:
    """Seconds until the next poll: POLL_FIRST after a change (or on a full page), twice the last wait up to
    POLL_MAX while the page's `seen` state is still what it shows."""
    if not wants_fragment() or request.args.get("seen") != str(state):
        return POLL_FIRST
    return min(max(request.args.get("wait", POLL_FIRST, type=whole_number), POLL_FIRST // 2) * 2, POLL_MAX)


@bp.route("/threads/<int:thread_id>")
@auth.customer_required
def thread(thread_id: int):
    """The thread; htmx polls the same URL for its messages, waiting longer while nothing changes."""
    customer = auth.current_customer()
    thread = loaders.thread_for_customer(thread_id, customer)
    if thread.id != thread_id:  # merged into another thread since the link was made
        return redirect(url_for("panel.thread", thread_id=thread.id))
    messages = loaders.messages_for_customer(thread, customer)
    mark_read(thread, messages)
    db.session.commit()
    last_id = messages[-1].id if messages else 0
    wait = _next_wait(last_id)
    if wants_fragment():
        return render_template("panel/_messages.html", thread=thread, messages=messages, wait=wait,
                               last_id=last_id), {"Vary": "HX-Request"}
    return render_template("panel/thread.html", thread=thread, messages=messages, wait=wait, last_id=last_id,
                           form=MessageForm()), {"Vary": "HX-Request"}


def _stored_files(form: MessageForm) -> list:
    """The uploaded files, stored; one over the shop's panel file size is refused while it streams in."""
    limit = panel_file_limit(current_shop())
    return [store(f.stream, f.filename, limit) for f in uploads(form.attachments.data)]


@bp.route("/threads/<int:thread_id>/reply", methods=["POST"])
@auth.customer_required
def reply(thread_id: int):
    customer = auth.current_customer()
    thread = loaders.thread_for_customer(thread_id, customer)
    form = MessageForm()
    if form.validate_on_submit():
        try:
            customer_reply(thread, customer, form.body.data, _stored_files(form))
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            return redirect(url_for("panel.thread", thread_id=thread.id, _anchor="reply"), 303)
    messages = loaders.messages_for_customer(thread, customer)
    return render_template("panel/thread.html", thread=thread, messages=messages, form=form, wait=POLL_FIRST,
                           last_id=messages[-1].id if messages else 0), 400


@bp.route("/new", methods=["GET", "POST"])
@auth.customer_required
def new_thread():
    """A new conversation about one of the customer's repairs (chosen by ?repair_id=)."""
    customer = auth.current_customer()
    repair = loaders.repair_for_customer(request.args.get("repair_id", type=whole_number) or 0, customer)
    form = MessageForm()
    if form.validate_on_submit():
        try:
            message = customer_new_thread(customer, repair, form.body.data, _stored_files(form))
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc)
        else:
            db.session.commit()
            return redirect(url_for("panel.thread", thread_id=message.thread_id), 303)
    return render_template("panel/new_thread.html", form=form, repair=repair), 200 if request.method == "GET" else 400


@bp.route("/attachments/<int:attachment_id>")
@auth.customer_required
def attachment(attachment_id: int):
    found = loaders.attachment_for_customer(attachment_id, auth.current_customer())
    try:
        response = send_stored(found.sha256, mimetype=found.content_type, as_attachment=True,
                               download_name=found.filename)
    except FileNotFoundError:
        return render_template("error.html", code=404, error=None), 404
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/brand.css")
def brand_css():
    """The shop's colour as a CSS custom property (inline styles are forbidden by the CSP)."""
    palette = branding.brand_palette(current_shop())
    css = f":root {{ --brand: {palette.colour}; --on-brand: {palette.on_colour}; --brand-ink: {palette.ink}; }}\n"
    return Response(css, mimetype="text/css", headers={"Cache-Control": "public, no-cache"})  # the same for all


@bp.route("/logo")
def logo():
    """The shop's logo (Settings → Customer panel), stored with the attachments; its type read from its bytes."""
    sha256 = digest_of(current_shop().panel_logo_path)
    try:
        with open_stored(sha256 or "") as fh:
            mimetype = sniff(fh.read(SNIFF_BYTES))
        response = send_stored(sha256, mimetype=mimetype)
    except (FileNotFoundError, ValueError):
        return render_template("panel/error.html", code=404), 404
    response.cache_control.public = True  # the same for everyone (see security.py's cache rule)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _thread_title(thread) -> str:
    """How the panel names a thread: its repair ("R-2026-0042 · iPhone 12"), else its subject, else the shop."""
    if thread.repair is not None:
        return thread.repair.label
    return thread.subject or _("Message from %(shop)s", shop=current_shop().name)


# How a message in the panel travelled, by its direction and channel.
TRAVELLED = {
    ("out", "email"): _l("sent by e-mail"), ("out", "sms"): _l("sent as SMS"),
    ("out", "portal"): _l("written in the panel"),
    ("in", "email"): _l("your e-mail"), ("in", "sms"): _l("your SMS"), ("in", "portal"): _l("written in the panel"),
}


def _travelled(message) -> list[str]:
    """The labels saying how a message the customer sees reached them, or came from them ("sent as SMS")."""
    return [str(TRAVELLED[message.direction, channel]) for channel in loaders.travelled_by(message)
            if (message.direction, channel) in TRAVELLED]


def _preview(message) -> str:
    """A message's first words without Markdown markers, for the inbox line."""
    own = own_panel_text(message)
    text = markdown_to_text(own or message.body_text) if own or message.body_format == "markdown" \
        else message.body_text
    return preview_of(text, ", ".join(a.filename for a in message.attachments))


def _greeting_name(customer) -> str:
    """The name a greeting on a panel page uses: in Polish the vocative ("Dzień dobry, Katarzyno")."""
    return first_name_vocative(customer) if str(get_locale()) == "pl" else customer.first_name


@bp.app_context_processor
def _panel_globals():
    return {"panel_greeting_name": _greeting_name, "panel_current_customer": auth.current_customer, "panel_thread_title": _thread_title,
            "panel_preview": _preview, "panel_travelled": _travelled,
            "DELIVERY_PURPOSE_LABELS": notices.PURPOSE_LABELS}


@bp.errorhandler(400)
@bp.errorhandler(404)
@bp.errorhandler(413)
@bp.errorhandler(429)
def _error(error):
    code = getattr(error, "code", 500) or 500
    if auth.in_request_form(request.path):  # the form may be in a frame: so may its errors
        return allow_framing(current_app.make_response((render_template("panel/error.html", code=code,
                                                                        request_form=True), code)))
    return render_template("panel/error.html", code=code), code
