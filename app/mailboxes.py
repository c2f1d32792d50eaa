"""Mailboxes: adding and changing the shop's mail accounts, choosing the default one, and their health.

Like the other domain functions, these flush and leave the commit to the caller.
"""
from __future__ import annotations

import re

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from .crypto import encrypt
from .customers import normalize_email
from .errors import ValidationFailed
from .extensions import db
from .models import Mailbox, User, utcnow
from .models.audit import record
from .models.mailboxes import SECURITY_MODES

# What the settings form changes; the password is handled apart, as it is write-only.
SETTINGS = ("name", "email", "display_name", "smtp_host", "smtp_port", "smtp_security", "username", "is_default")
MAX_PASSWORD = 1024
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


def mailboxes() -> list[Mailbox]:
    """Every mailbox, the default one first, then by name."""
    return list(db.session.scalars(select(Mailbox).order_by(Mailbox.is_default.desc(), func.lower(Mailbox.name),
                                                            Mailbox.id)))


def default_mailbox() -> Mailbox | None:
    """The mailbox mail goes out through unless a message says otherwise: the active default one, else the
    first active one; None when the shop has no active mailbox."""
    return db.session.scalar(
        select(Mailbox).where(Mailbox.active.is_(True)).order_by(Mailbox.is_default.desc(), Mailbox.id).limit(1)
    )


def create_mailbox(*, name: str, email: str, smtp_host: str, smtp_port: int | None, smtp_security: str,
                   display_name: str = "", username: str = "", password: str | None = None,
                   is_default: bool = False, actor: User | str | None = None) -> Mailbox:
    """Add an active mailbox for sending; the shop's first mailbox becomes the default whatever is asked.

    Refuses (ValidationFailed, naming every broken rule) an empty name, a bad e-mail address, a host that
    is not a host name or IP address, a port outside 1-65535, an unknown security mode, and a login
    without a password. The password is stored encrypted.
    """
    values = _checked(name=name, email=email, display_name=display_name, smtp_host=smtp_host,
                      smtp_port=smtp_port, smtp_security=smtp_security, username=username,
                      is_default=is_default, password=password, has_stored_password=False)
    first = default_mailbox() is None
    mailbox = Mailbox(**values, active=True, password_enc=encrypt(password) if password else None)
    if first:
        mailbox.is_default = True
    db.session.add(mailbox)
    db.session.flush()
    if mailbox.is_default:
        _unset_other_defaults(mailbox)
    record("mailbox.create", target=mailbox, email=mailbox.email, smtp_host=mailbox.smtp_host,
           default=mailbox.is_default, by=actor)
    return mailbox


def update_mailbox(mailbox: Mailbox, *, password: str | None = None, actor: User | str | None = None,
                   **values) -> list[str]:
    """Change a mailbox's settings (names from SETTINGS) and return the names of the fields that changed.

    An empty `password` keeps the stored one. Refuses what create_mailbox refuses, and taking the default
    flag off the default mailbox (another one has to be made the default instead).
    """
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise TypeError(f"not mailbox settings: {sorted(unknown)}")
    current = {field: getattr(mailbox, field) for field in SETTINGS}
    values = _checked(**{**current, **values}, password=password, has_stored_password=bool(mailbox.password_enc))
    if mailbox.is_default and not values["is_default"]:
        raise ValidationFailed({"is_default": _("Make another mailbox the default instead.")})

    changed = [field for field, value in values.items() if getattr(mailbox, field) != value]
    for field in changed:
        setattr(mailbox, field, values[field])
    if password:
        mailbox.password_enc = encrypt(password)
        changed.append("password")
    if "is_default" in changed:
        _unset_other_defaults(mailbox)
    if changed:
        record("mailbox.update", target=mailbox, changed=changed, by=actor)
    db.session.flush()
    return changed


def make_default(mailbox: Mailbox, *, actor: User | str | None = None) -> bool:
    """Make this the shop's default mailbox; returns False when it already was. Refuses an inactive mailbox."""
    if mailbox.is_default:
        return False
    if not mailbox.active:
        raise ValidationFailed({"is_default": _("An inactive mailbox cannot be the default.")})
    mailbox.is_default = True
    _unset_other_defaults(mailbox)
    record("mailbox.update", target=mailbox, changed=["is_default"], by=actor)
    db.session.flush()
    return True


def _unset_other_defaults(mailbox: Mailbox) -> None:
    db.session.execute(update(Mailbox).where(Mailbox.id != mailbox.id, Mailbox.is_default.is_(True))
                       .values(is_default=False))


def _checked(*, name, email, display_name, smtp_host, smtp_port, smtp_security, username, is_default,
             password, has_stored_password: bool) -> dict:
    """The settings cleaned up (trimmed, one line, e-mail normalised); ValidationFailed names every broken rule."""
    errors = {}
    values = {
        "name": _one_line(name),
        "display_name": _one_line(display_name),
        "smtp_host": (smtp_host or "").strip(),
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "username": (username or "").strip(),
        "is_default": bool(is_default),
    }
    if not values["name"]:
        errors["name"] = _("Enter a name for the mailbox.")
    elif len(values["name"]) > 120:
        errors["name"] = _("The name can have at most %(max)s characters.", max=120)
    if len(values["display_name"]) > 120:
        errors["display_name"] = _("The display name can have at most %(max)s characters.", max=120)
    try:
        values["email"] = normalize_email(email)
        if values["email"] is None:
            errors["email"] = _("Enter the mailbox's e-mail address.")
    except ValidationFailed as exc:
        errors["email"] = exc.fields["email"]
    if not _HOST.fullmatch(values["smtp_host"]):
        errors["smtp_host"] = _("Enter the SMTP server's host name, like smtp.example.com.")
    if not isinstance(smtp_port, int) or not 1 <= smtp_port <= 65535:
        errors["smtp_port"] = _("Enter a port from 1 to 65535 (usually 465 for TLS, 587 for STARTTLS).")
    if smtp_security not in SECURITY_MODES:
        errors["smtp_security"] = _("Choose TLS, STARTTLS or none.")
    if any(ch.isspace() for ch in values["username"]) or len(values["username"]) > 254:
        errors["username"] = _("Enter the login without spaces.")
    if password and ("\n" in password or "\r" in password or len(password) > MAX_PASSWORD):
        errors["password"] = _("Enter the password on one line.")
    elif values["username"] and not password and not has_stored_password:
        errors["password"] = _("Enter the password for this login.")
    if errors:
        raise ValidationFailed(errors)
    return values


def _one_line(text: str | None) -> str:
    """Names end up in mail headers: one line, single spaces."""
    return " ".join((text or "").split())


# --- health -------------------------------------------------------------------------------------


def record_sent(mailbox: Mailbox) -> None:
    """A mail went out through the mailbox: it is healthy again."""
    mailbox.consecutive_failures = 0
    mailbox.broken_at = None
    mailbox.last_send_at = utcnow()


def record_failure(mailbox: Mailbox, error: str) -> bool:
    """The mailbox could not connect or sign in; returns True when this failure marks it broken.

    After MAILBOX_BROKEN_AFTER consecutive failures (default 3) it is broken: the owner sees a banner
    and mail goes out through the default mailbox until it works again.
    """
    now = utcnow()
    mailbox.consecutive_failures = (mailbox.consecutive_failures or 0) + 1
    mailbox.last_error = error
    mailbox.last_error_at = now
    if mailbox.broken_at is None and mailbox.consecutive_failures >= current_app.config.get("MAILBOX_BROKEN_AFTER", 3):
        mailbox.broken_at = now
        return True
    return False


def record_test(mailbox: Mailbox, ok: bool, outcome: str) -> None:
    """The result of the owner's "Test connection": a success ends the broken state (the owner fixed it)."""
    if ok:
        mailbox.consecutive_failures = 0
        mailbox.broken_at = None
    else:
        mailbox.last_error = outcome
        mailbox.last_error_at = utcnow()
