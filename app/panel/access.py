"""Who is signed in to the customer panel, how they get in (one-time links and codes, a password, a repair's
access code), and the loaders through which every panel query passes with the signed-in customer."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps

from flask import abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface, SessionInterface
from flask_babel import gettext as _
from flask_babel import refresh
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased, defer, joinedload

from .. import sign_in_sessions
from ..attachments import servable
from ..customers import normalize_email, parse_phone, refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..i18n import PANEL_LANGUAGE_KEY
from ..models import Attachment, Customer, CustomerEmail, Delivery, Message, PanelToken, Repair, Thread, utcnow
from ..models.audit import record
from ..messaging.threads import live_thread
from ..models.users import hash_password, verify_password

PANEL_PREFIX = "/p/"
PANEL_COOKIE = "ri_panel"
SESSION_KEY = "panel_customer"  # "<customer id>:<panel session version>:<sign-in session token>"
INVITE_LIFETIME = timedelta(days=7)
LINK_LIFETIME = timedelta(minutes=30)
CODE_LIFETIME = timedelta(minutes=15)
CODE_DIGITS = 6
CODE_TRIES = 5  # wrong codes typed against one code before it stops working
ACCESS_CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY34679"  # no 0/O, 1/I/L, 2/Z, 5/S, 8/B to misread on a receipt
ACCESS_CODE_LENGTH = 8
PHONE_DIGITS = 3  # the last digits of the customer's phone that confirm an access code
MIN_PASSWORD = 10


class LinkExpired(Exception):
    """A one-time link that is unknown, used or past its time."""


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


class AreaSessionInterface(SessionInterface):
    """Two separate sessions by path: the panel's on /p/..., the staff app's (Flask's usual cookie) elsewhere. A
    staff cookie is never read on panel pages and a panel cookie never on staff pages."""

    def __init__(self) -> None:
        self.staff = SecureCookieSessionInterface()
        self.panel = PanelSessionInterface()

    def _area(self, request) -> SessionInterface:
        return self.panel if request.path.startswith(PANEL_PREFIX) else self.staff

    def open_session(self, app, request):
        return self._area(request).open_session(app, request)

    def save_session(self, app, session, response) -> None:
        return self._area(request).save_session(app, session, response)


# --- one-time links and codes -------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue_link(customer: Customer, purpose: str, hours: int | None = None) -> str:
    """A new one-time link token for the customer ("invite": 7 days, "login": 30 minutes, or `hours`); only its
    hash is kept."""
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(hours=hours) if hours else INVITE_LIFETIME if purpose == "invite" else LINK_LIFETIME
    db.session.add(PanelToken(customer_id=customer.id, token_hash=_digest(token), purpose=purpose,
                              expires_at=utcnow() + lifetime))
    return token


def _code_digest(customer_id: int, code: str) -> str:
    return _digest(f"code:{customer_id}:{code}")


def issue_code(customer: Customer) -> str:
    """A new six-digit sign-in code for the customer, valid 15 minutes; its hash is bound to the customer. It
    replaces the customer's earlier codes: only one works at a time, so guessing gets no wider target."""
    db.session.execute(update(PanelToken).where(PanelToken.customer_id == customer.id, PanelToken.purpose == "code",
                                                PanelToken.used_at.is_(None)).values(used_at=utcnow()),
                       execution_options={"synchronize_session": False})
    while True:
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        digest = _code_digest(customer.id, code)
        if db.session.scalar(select(PanelToken.id).where(PanelToken.token_hash == digest)) is None:
            break
    db.session.add(PanelToken(customer_id=customer.id, token_hash=digest, purpose="code",
                              expires_at=utcnow() + CODE_LIFETIME))
    return code


def _use(token_hash: str, purposes: tuple[str, ...]) -> PanelToken | None:
    """Mark the token used with one conditional UPDATE (two clicks at once cannot both win); the token or None."""
    now = utcnow()
    used = db.session.execute(
        update(PanelToken)
        .where(PanelToken.token_hash == token_hash, PanelToken.purpose.in_(purposes),
               PanelToken.used_at.is_(None), PanelToken.expires_at > now)
        .values(used_at=now)
    ).rowcount
    if not used:
        return None
    return db.session.scalar(select(PanelToken).where(PanelToken.token_hash == token_hash))


def link_works(token: str) -> bool:
    """Whether a one-time link would still sign in (unused, in time, its customer's panel open); uses nothing."""
    row = db.session.scalar(select(PanelToken).where(
        PanelToken.token_hash == _digest(token or ""), PanelToken.purpose.in_(("invite", "login")),
        PanelToken.used_at.is_(None), PanelToken.expires_at > utcnow()))
    customer = db.session.get(Customer, row.customer_id) if row else None
    return customer is not None and customer.panel_state in ("invited", "active") and not customer.anonymized_at


def speak_language_of_link(token: str) -> None:
    """Let the page of a working one-time link speak its customer's language (they are not signed in yet)."""
    row = db.session.scalar(select(PanelToken).where(PanelToken.token_hash == _digest(token or ""),
                                                     PanelToken.purpose.in_(("invite", "login"))))
    customer = db.session.get(Customer, row.customer_id) if row else None
    if customer is not None and customer.language:
        g.panel_language = customer.language
        refresh()


def remember_language(customer: Customer) -> None:
    """Keep the customer's language in this browser's panel session: the pages after signing out (and the rest
    of this request) speak it too."""
    session[PANEL_LANGUAGE_KEY] = g.panel_language = customer.language
    refresh()


def redeem_link(token: str) -> tuple[Customer, str]:
    """The customer and purpose of a one-time link, which is used up; LinkExpired when it is unknown, used,
    expired, or its customer's panel access has been disabled since."""
    used = _use(_digest(token or ""), ("invite", "login"))
    customer = db.session.get(Customer, used.customer_id) if used else None
    if customer is None or customer.panel_state not in ("invited", "active") or customer.anonymized_at:
        raise LinkExpired()
    return customer, used.purpose


def redeem_code(login: str, code: str) -> Customer | None:
    """The customer whose e-mail or phone is `login` and who was sent `code` (used up), or None.

    Every try counts against the customer's live code before it is compared (one conditional UPDATE, so tries
    sent at once cannot slip past the count); after CODE_TRIES tries the code is dead and a new one must be asked
    for. The caller commits also when this answers None, so that the count is kept."""
    customer = customer_by_login(login)
    if customer is None:
        return None
    live = db.session.scalars(
        select(PanelToken).where(PanelToken.customer_id == customer.id, PanelToken.purpose == "code",
                                 PanelToken.used_at.is_(None), PanelToken.expires_at > utcnow())
        .order_by(PanelToken.id.desc()).limit(1)
    ).first()
    if live is None:
        return None
    counted = db.session.execute(
        update(PanelToken).where(PanelToken.id == live.id, PanelToken.used_at.is_(None),
                                 PanelToken.attempts < CODE_TRIES)
        .values(attempts=PanelToken.attempts + 1), execution_options={"synchronize_session": False}
    ).rowcount
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if counted and len(code) == CODE_DIGITS and secrets.compare_digest(live.token_hash,
                                                                      _code_digest(customer.id, code)):
        if _use(live.token_hash, ("code",)):
            return customer
    db.session.execute(update(PanelToken).where(PanelToken.id == live.id, PanelToken.used_at.is_(None),
                                                PanelToken.attempts >= CODE_TRIES).values(used_at=utcnow()),
                       execution_options={"synchronize_session": False})
    return None


def login_identity(login: str | None) -> str:
    """One spelling of an e-mail address or phone number, so that "+48 600 100 200", "600100200" and
    "0048600100200" (or "Anna@Example.com" and "anna@example.com") count as one person for sign-in limits."""
    login = (login or "").strip()
    try:
        if "@" in login:
            return "email:" + (normalize_email(login) or "")
        return "phone:" + (parse_phone(login) or "")
    except ValidationFailed:
        return "other:" + login.lower()


def customer_by_login(login: str) -> Customer | None:
    """The customer with panel access whose e-mail address (main or extra) or phone number `login` is."""
    login = (login or "").strip()
    if not login:
        return None
    try:
        if "@" in login:
            address = normalize_email(login)
            condition = or_(Customer.email == address,
                            Customer.id.in_(select(CustomerEmail.customer_id).where(CustomerEmail.address == address)))
        else:
            condition = Customer.phone == parse_phone(login)
    except ValidationFailed:
        return None
    return db.session.scalars(
        select(Customer).where(condition, Customer.panel_state.in_(("invited", "active")),
                               Customer.anonymized_at.is_(None)).order_by(Customer.id).limit(1)
    ).first()


# --- panel access as staff see it ------------------------------------------------------------------


def set_panel_state(customer: Customer, state: str, *, actor) -> None:
    """Open (invited/active) or close (disabled) the customer's panel; closing signs out every panel session."""
    if state != "disabled":
        refuse_erased(customer)
    if state == customer.panel_state:
        return
    if state == "disabled":
        customer.panel_session_version = (customer.panel_session_version or 0) + 1
        sign_in_sessions.end_all(customer_id=customer.id)
    customer.panel_state = state
    record("panel.state", by=actor, target=customer, state=state)


def ensure_access_code(repair: Repair) -> str:
    """The repair's receipt access code, made on first use: 8 letters and digits that are hard to misread."""
    while not repair.access_code:
        code = "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))
        if db.session.scalar(select(Repair.id).where(Repair.access_code == code)) is None:
            repair.access_code = code
    return repair.access_code


def repair_by_access_code(code: str, phone_digits: str) -> Repair | None:
    """The repair whose receipt code is `code`, when `phone_digits` are the last digits of its customer's phone."""
    code = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    digits = "".join(ch for ch in (phone_digits or "") if ch.isdigit())
    if not code or len(digits) < PHONE_DIGITS:
        return None
    repair = db.session.scalar(select(Repair).where(Repair.access_code == code))
    if repair is None or not repair.customer.phone or repair.customer.panel_state == "disabled" \
            or repair.customer.anonymized_at:
        return None
    if not secrets.compare_digest(repair.customer.phone[-len(digits):], digits):
        return None
    return repair


# --- passwords -------------------------------------------------------------------------------------


def set_password(customer: Customer, password: str, *, current: str | None = None) -> None:
    """Set or change the customer's optional panel password; every panel session of theirs ends (the caller signs
    this browser in again). Changing a password takes the current one; refuses short passwords.

    Callers allow this only in a full session (a one-time link, code or password sign-in), never in one opened by
    a receipt's access code: the receipt is not proof of owning the account.
    """
    if customer.panel_password_hash and not verify_password(customer.panel_password_hash, current or ""):
        raise ValidationFailed({"current_password": _("The current password is wrong.")})
    if len(password or "") < MIN_PASSWORD:
        raise ValidationFailed({"password": _("Use at least %(n)d characters.", n=MIN_PASSWORD)})
    customer.panel_password_hash = hash_password(password)
    customer.panel_session_version = (customer.panel_session_version or 0) + 1
    sign_in_sessions.end_all(customer_id=customer.id)
    record("panel.password", by=f"customer:{customer.id}", target=customer)


def check_password(login: str, password: str) -> Customer | None:
    """The customer whose login and panel password these are, or None (also for customers without a password).
    The password is checked (against a stand-in hash when there is nothing to check) either way, so the time
    taken does not tell whether an address belongs to a customer."""
    customer = customer_by_login(login)
    stored = customer.panel_password_hash if customer is not None and customer.panel_state == "active" else None
    ok = verify_password(stored, password or "")
    return customer if ok and stored else None


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
            return redirect(url_for("portal.sign_in", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)

    return wrapped


# --- loaders: every panel query goes through these -------------------------------------------------


# The delivery states in which a message has reached the customer by at least one channel: e-mail and SMS handed
# over (or confirmed delivered), a panel message published. A message still in its undo window, scheduled for
# later, cancelled, or only failed or bounced on every channel was never the customer's to read.
REACHED = ("sent", "delivered")
# The channels a customer writes by; what staff record of a phone call or a visit is their note, not the customer's.
CUSTOMER_CHANNELS = ("email", "sms", "portal")


def _reached_the_customer():
    """The message itself (not a notice about it) went to the customer and arrived on at least one channel."""
    return exists().where(Delivery.message_id == Message.id, Delivery.purpose == "message",
                          Delivery.status.in_(REACHED))


def customer_sees(customer: Customer):
    """The messages the customer sees in the panel, whichever channel carried them: what the shop wrote to them
    (by e-mail, SMS or the panel) once it reached them, and what they wrote themselves (an e-mail, an SMS, a panel
    message). Never notes, events, automatic replies, bounces, a forward to a supplier or what someone else
    wrote into the thread."""
    return and_(
        Message.kind == "message",
        Message.redacted_at.is_(None),
        or_(
            and_(Message.direction == "out", Message.visible_to_customer.is_(True), _reached_the_customer()),
            and_(Message.direction == "in", Message.channel.in_(CUSTOMER_CHANNELS),
                 Message.author_customer_id == customer.id),
        ),
    )


def _own_threads(customer: Customer):
    """The customer's live threads that staff have not marked private (only the access code's repair's in such a
    session)."""
    query = select(Thread).where(Thread.customer_id == customer.id, Thread.deleted_at.is_(None),
                                 Thread.merged_into_id.is_(None), Thread.private.is_(False))
    if repair_scope() is not None:
        query = query.where(Thread.repair_id == repair_scope())
    return query


@dataclass(frozen=True)
class PanelThread:
    """A line of the panel's inbox: the thread, whether the customer has unread messages, the newest one they see."""

    thread: Thread
    unread: bool
    last: Message


def threads_for_customer(customer: Customer) -> list[PanelThread]:
    """The customer's threads that have something for them, newest first, in one query (with each thread's repair
    and the newest message the customer sees, and its files for a preview of a message without text). The preview
    is that message, not the thread's own preview, which may be a note or a message still waiting to go."""
    last = aliased(Message)
    newest = (select(Message.id).where(Message.thread_id == Thread.id, customer_sees(customer))
              .order_by(Message.created_at.desc(), Message.id.desc()).limit(1).correlate(Thread).scalar_subquery())
    unread = exists().where(Message.thread_id == Thread.id, customer_sees(customer), Message.direction == "out",
                            Message.read_by_customer_at.is_(None)).correlate(Thread)
    rows = db.session.execute(
        _own_threads(customer).add_columns(last, unread.label("unread")).join(last, last.id == newest)
        .options(joinedload(Thread.repair).joinedload(Repair.status), joinedload(last.attachments),
                 defer(last.body_html), defer(last.quoted_text))  # a mail's HTML can be long; the line shows text
        .order_by(last.created_at.desc(), last.id.desc())
    ).unique()
    return [PanelThread(thread, bool(is_unread), message) for thread, message, is_unread in rows]


def thread_for_customer(thread_id: int, customer: Customer) -> Thread:
    """The customer's thread (one with something for them), or 404 for anyone else's, deleted or empty ones.
    A thread merged into another stands for that other one (a link in an older notice, a reply form left open)."""
    merged_into = db.session.scalar(select(Thread.merged_into_id).where(
        Thread.id == thread_id, Thread.customer_id == customer.id, Thread.merged_into_id.is_not(None)))
    if merged_into is not None:
        thread_id = live_thread(db.session.get(Thread, merged_into)).id
    thread = db.session.scalar(_own_threads(customer).where(
        Thread.id == thread_id,
        select(Message.id).where(Message.thread_id == Thread.id, customer_sees(customer)).exists()))
    if thread is None:
        abort(404)
    return thread


def messages_for_customer(thread: Thread, customer: Customer) -> list[Message]:
    """What the customer sees of a thread (already loaded through thread_for_customer), oldest first, with the
    files and deliveries each shows (how it travelled) joined in the same query."""
    return list(db.session.scalars(
        select(Message).where(Message.thread_id == thread.id, customer_sees(customer))
        .options(joinedload(Message.attachments), joinedload(Message.deliveries))
        .order_by(Message.created_at, Message.id)
    ).unique())


def travelled_by(message: Message) -> list[str]:
    """The channels by which a message the customer sees reached the panel's reader: the one a customer's message
    came in on, or those on which the shop's message was sent or delivered (in the order e-mail, SMS, panel)."""
    if message.direction == "in":
        return [message.channel]
    reached = {d.channel for d in message.deliveries if d.purpose == "message" and d.status in REACHED}
    return [channel for channel in CUSTOMER_CHANNELS if channel in reached]


def repairs_for_customer(customer: Customer) -> list[Repair]:
    """The customer's repairs, newest first (only the access code's repair in such a session)."""
    query = select(Repair).where(Repair.customer_id == customer.id)
    if repair_scope() is not None:
        query = query.where(Repair.id == repair_scope())
    return list(db.session.scalars(query.order_by(Repair.created_at.desc(), Repair.id.desc())))


def repair_for_customer(repair_id: int, customer: Customer) -> Repair:
    """The customer's repair, or 404."""
    repair = db.session.get(Repair, repair_id)
    if repair is None or repair.customer_id != customer.id or repair_scope() not in (None, repair.id):
        abort(404)
    return repair


def attachment_for_customer(attachment_id: int, customer: Customer) -> Attachment:
    """A stored file of a message the customer sees, or 404."""
    attachment = db.session.scalar(
        select(Attachment).join(Message).join(Thread, Thread.id == Message.thread_id)
        .where(Attachment.id == attachment_id, Attachment.sha256.is_not(None), customer_sees(customer),
               Thread.id.in_(_own_threads(customer).with_only_columns(Thread.id)))
    )
    if attachment is None or not servable(attachment.filename, attachment.sha256):
        abort(404)
    return attachment
