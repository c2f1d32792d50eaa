"""What opens the panel: one-time links and codes, a repair's access code with the last digits of the phone, and
passwords; and the panel's state as staff set it."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import g
from flask_babel import gettext as _
from flask_babel import refresh
from sqlalchemy import or_, select, update

from .. import sign_in_sessions
from ..customers import normalize_email, parse_phone, refuse_erased
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Customer, CustomerEmail, PanelToken, Repair, WebRequest, utcnow
from ..models.audit import record
from ..models.users import hash_password, verify_password

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




# --- the code that confirms a request from the public form -----------------------------------------


def _request_code_digest(web_request: WebRequest, code: str) -> str:
    return _digest(f"request:{web_request.id}:{web_request.token_hash}:{code}")


def issue_request_code(web_request: WebRequest) -> str:
    """A new six-digit code for a request from the public form, valid CODE_LIFETIME; made when the message
    carrying it is sent, and only its hash kept (bound to that request). It replaces the request's earlier code."""
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    web_request.code_hash = _request_code_digest(web_request, code)
    web_request.code_expires_at = utcnow() + CODE_LIFETIME
    web_request.code_attempts = 0
    return code


def redeem_request_code(web_request: WebRequest, code: str) -> bool:
    """Whether `code` is the live code of the pending request (used up when it is). Like the sign-in codes, every
    try counts first (one conditional UPDATE, so tries sent at once cannot slip past the count) and after
    CODE_TRIES tries the code is dead. The caller commits also when this answers False, to keep the count."""
    now = utcnow()
    counted = db.session.execute(
        update(WebRequest).where(WebRequest.id == web_request.id, WebRequest.state == "pending",
                                 WebRequest.code_hash.is_not(None), WebRequest.code_expires_at > now,
                                 WebRequest.code_attempts < CODE_TRIES)
        .values(code_attempts=WebRequest.code_attempts + 1), execution_options={"synchronize_session": False}
    ).rowcount
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not counted or len(code) != CODE_DIGITS or not web_request.code_hash:
        return False
    if not secrets.compare_digest(web_request.code_hash, _request_code_digest(web_request, code)):
        return False
    return bool(db.session.execute(
        update(WebRequest).where(WebRequest.id == web_request.id, WebRequest.state == "pending",
                                 WebRequest.code_hash == web_request.code_hash)
        .values(code_hash=None), execution_options={"synchronize_session": False}).rowcount)
