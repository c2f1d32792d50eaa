"""The shop's SMS accounts (one per provider: Twilio, SMSAPI.pl): the active one SMS go out through, and setting
them up (Settings → SMS, `flask sms configure`). Sending and the balance are the SMS channel's (channels/sms.py)."""
from __future__ import annotations

import re
import secrets
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import phonenumbers
from flask_babel import gettext as _
from sqlalchemy import select

from ..crypto import SecretUnreadable, decrypt, encrypt
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, gather
from ..models import SmsAccount, User
from ..models.audit import record
from ..models.mailboxes import SMS_PROVIDERS, TWO_WAY_SENDER

SOURCES = ("staff", "cli")
SID = re.compile(r"[A-Za-z0-9]{2,64}")
# An alphanumeric sender ID as carriers accept it: up to 11 letters, digits and spaces, not digits only.
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
# Plain http would send the auth token readable on the way; only a server on this machine may use it.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def configure_sms(
    account_sid: str,
    auth_token: str | None,
    from_number: str | None = None,
    messaging_service_sid: str | None = None,
    api_base_url: str | None = None,
    actor: User | str | None = None,
    source: str = "staff",
) -> SmsAccount:
    """Make Twilio (or a Twilio-compatible provider) the one SMS go out through; flushed, the caller commits.

    The Twilio account row is changed in place (deliveries keep pointing at it), or made when there is none; an
    SMSAPI account stays stored but inactive.
    An empty `auth_token` keeps the stored one; a new one is stored encrypted and never audited.
    Refuses, naming every problem at once: a malformed account SID; no auth token for a new account;
    no sender or two of them (exactly one of a number and a Messaging Service SID); a number that is not a
    valid one in international form, or a sender name that is not 1-11 letters, digits and spaces with a
    letter; an API base URL that is not http(s) (plain http only for this machine).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; one of {SOURCES}")
    account = account_of("twilio")
    values = _checked(account_sid, auth_token, from_number, messaging_service_sid, api_base_url,
                      has_token=account is not None)
    token = values.pop("auth_token")
    account = _activated(account, "twilio", token, values)
    record("sms.configure", target=account, source=source, account_sid=account.account_sid,
           sender=account.from_number or account.messaging_service_sid, api_base_url=account.api_base_url,
           token_changed=bool(token), by=actor)
    return account


def configure_smsapi(token: str | None, from_name: str | None, api_base_url: str | None = None,
                     actor: User | str | None = None, source: str = "staff") -> SmsAccount:
    """Make SMSAPI.pl the provider SMS go out through, with its API token and sender; flushed, the caller commits.

    The SMSAPI account row is changed in place, or made (with a new callback secret) when there is none; the
    other provider's account stays stored but inactive. An empty token keeps the stored one. Refuses, naming
    every problem at once: no token for a new account; no sender, or one that is neither a number in
    international form, nor "2way" (SMSAPI's two-way number), nor a name of 1-11 letters, digits and spaces;
    an API base URL that is not http(s) (plain http only for this machine).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; one of {SOURCES}")
    account = account_of("smsapi")
    errors: dict[str, str] = {}
    token = gather(errors, clean_line, token, "token", 256) or None
    sender = gather(errors, clean_line, from_name, "from_number", 32)
    base_url = gather(errors, clean_line, api_base_url, "api_base_url", 2000).rstrip("/") or None
    if token is None and account is None:
        errors["token"] = _("Enter the API token from SMSAPI's panel (API → OAuth tokens).")
    if not sender and "from_number" not in errors:
        errors["from_number"] = _("Enter the sender: a registered sender name, 2way, or a number.")
    elif sender.lower() == TWO_WAY_SENDER:
        sender = TWO_WAY_SENDER
    elif sender:
        try:
            sender = _sender(sender)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if base_url is not None and not _acceptable_base_url(base_url):
        errors["api_base_url"] = _("Enter an https:// address, like https://api.provider.example "
                                   "(http:// only for a server on this machine).")
    if errors:
        raise ValidationFailed(errors)
    values = {"account_sid": "", "from_number": sender, "messaging_service_sid": None, "api_base_url": base_url}
    account = _activated(account, "smsapi", token, values)
    if not account.callback_secret_enc:
        account.callback_secret_enc = encrypt(new_callback_secret())
    db.session.flush()
    record("sms.configure", target=account, source=source, provider="smsapi", sender=sender,
           api_base_url=base_url, token_changed=bool(token), by=actor)
    return account


def use_provider(provider: str | None, actor: User | str | None = None) -> SmsAccount:
    """Make the stored account of `provider` the one SMS go out through; refuses a provider with no stored account."""
    account = account_of(provider) if provider in SMS_PROVIDERS else None
    if account is None:
        raise ValidationFailed({"provider": _("Save that provider's account first.")})
    _activated(account, provider, None, {})
    record("sms.provider", target=account, provider=provider, by=actor)
    return account


def new_callback_secret() -> str:
    """A secret for callback URLs: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def rotate_callback_secret(account: SmsAccount, actor: User | str | None = None) -> str:
    """Give the account a new callback secret (the old URLs stop working at once: 403); flushed, caller commits."""
    secret = new_callback_secret()
    account.callback_secret_enc = encrypt(secret)
    db.session.flush()
    record("sms.rotate_secret", target=account, provider=account.provider, by=actor)
    return secret


def callback_secret(account: SmsAccount) -> str | None:
    """The secret in the account's callback URLs; None when it has none, or it cannot be decrypted (the app's
    secret key changed: then no callback gets in until the owner makes new addresses)."""
    if not account.callback_secret_enc:
        return None
    try:
        return decrypt(account.callback_secret_enc)
    except SecretUnreadable:
        return None


def set_low_balance_threshold(account: SmsAccount, raw: str | None, actor: User | str | None = None) -> None:
    """Set (or, empty, clear) the balance below which the owner is told; refuses what is no number from 0 up.

    A changed threshold starts afresh: the next balance check tells again if the balance is below it."""
    text = (raw or "").strip().replace(",", ".")
    try:
        value = Decimal(text) if text else None
    except InvalidOperation:
        value = Decimal(-1)
    if value is not None and (not value.is_finite() or value < 0 or value >= Decimal(10) ** 10):
        raise ValidationFailed({"low_balance_threshold": _("Enter an amount from 0 up, or leave it empty.")})
    if value != account.low_balance_threshold:
        account.low_balance_threshold = value
        account.low_balance_noticed_at = None
    db.session.flush()
    record("sms.low_balance_threshold", target=account, threshold=str(value) if value is not None else None,
           by=actor)


def _activated(account: SmsAccount | None, provider: str, token: str | None, values: dict) -> SmsAccount:
    """`account` (made for `provider` when None) with `values` and a new `token` when given, made the active one."""
    if account is None:
        account = SmsAccount(provider=provider)
        db.session.add(account)
    if token:
        account.auth_token_enc = encrypt(token)
    for field, value in values.items():
        setattr(account, field, value)
    for other in db.session.scalars(select(SmsAccount).where(SmsAccount.active.is_(True))):
        if other is not account:
            other.active = False
    account.active = True
    account.last_error = None  # new settings deserve a fresh start; the next send reports again
    db.session.flush()
    return account


def account_of(provider: str) -> SmsAccount | None:
    """The stored account of `provider`, active or not."""
    return db.session.scalar(
        select(SmsAccount).where(SmsAccount.provider == provider).order_by(SmsAccount.id.desc()).limit(1))


def _checked(account_sid, auth_token, from_number, messaging_service_sid, api_base_url, *, has_token: bool) -> dict:
    """The cleaned values for SmsAccount's columns (plus auth_token, None to keep), or ValidationFailed."""
    errors = {}
    values = {  # each goes into an HTTP request line or header: one line, no control characters
        "account_sid": gather(errors, clean_line, account_sid, "account_sid", 64),
        "auth_token": gather(errors, clean_line, auth_token, "auth_token", 256) or None,
        "from_number": gather(errors, clean_line, from_number, "from_number", 32) or None,
        "messaging_service_sid": gather(errors, clean_line, messaging_service_sid, "messaging_service_sid", 64) or None,
        "api_base_url": gather(errors, clean_line, api_base_url, "api_base_url", 2000).rstrip("/") or None,
    }
    if not SID.fullmatch(values["account_sid"]):
        errors["account_sid"] = _("Enter the account SID from Twilio's console (AC followed by 32 characters).")
    if values["auth_token"] is None and not has_token:
        errors["auth_token"] = _("Enter the auth token from Twilio's console.")
    if (values["from_number"] is None) == (values["messaging_service_sid"] is None):
        errors["sender"] = _("Choose one sender: a phone number or name, or a Messaging Service SID.")
    elif values["from_number"] is not None:
        try:
            values["from_number"] = _sender(values["from_number"])
        except ValidationFailed as exc:
            errors.update(exc.fields)
    elif not SID.fullmatch(values["messaging_service_sid"]):
        errors["messaging_service_sid"] = _("Enter the Messaging Service SID (MG followed by 32 characters).")
    if values["api_base_url"] is not None and not _acceptable_base_url(values["api_base_url"]):
        errors["api_base_url"] = _("Enter an https:// address, like https://api.provider.example "
                                   "(http:// only for a server on this machine).")
    if errors:
        raise ValidationFailed(errors)
    return values


def _sender(raw: str) -> str:
    """A sender number in E.164, or an alphanumeric sender name as typed."""
    if any(ch.isalpha() for ch in raw):
        if not ALPHANUMERIC_SENDER.fullmatch(raw):
            raise ValidationFailed({"from_number": _(
                "A sender name can have 1 to 11 letters (without Polish letters), digits and spaces.")})
        return raw
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed({"from_number": _(
            "Enter the number in international form, like +48 500 100 200, or a sender name like SERWIS.")})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _acceptable_base_url(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def active_account() -> SmsAccount | None:
    """The account SMS go out through (configure_sms keeps one active), or None when SMS is not set up."""
    return db.session.scalar(
        select(SmsAccount).where(SmsAccount.active.is_(True)).order_by(SmsAccount.id.desc()).limit(1)
    )
