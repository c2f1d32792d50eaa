"""Mailboxes: adding and changing the shop's mail accounts, choosing the default one, and their health.

Like the other domain functions, these flush and leave the commit to the caller.
"""
from __future__ import annotations

import re

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from ..crypto import encrypt
from ..customers import normalize_email
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, gather
from ..models import Mailbox, User, utcnow
from ..models.audit import apply_changes, record
from ..models.mailboxes import AFTER_FETCH, SECURITY_MODES

# What the settings form changes; the password is handled apart, as it is write-only.
SENDING_SETTINGS = ("name", "email", "display_name", "smtp_host", "smtp_port", "smtp_security", "username",
                    "is_default")
# Receiving (IMAP) signs in with the same login and password; an empty IMAP server means no receiving.
RECEIVING_SETTINGS = ("imap_host", "imap_port", "imap_security", "imap_validate_cert", "imap_folder", "after_fetch",
                      "after_fetch_folder", "allow_new_threads", "store_attachments", "poll_interval")
SETTINGS = SENDING_SETTINGS + RECEIVING_SETTINGS
RECEIVING_DEFAULTS = {"imap_host": "", "imap_port": 993, "imap_security": "tls", "imap_validate_cert": True,
                      "imap_folder": "INBOX", "after_fetch": "seen", "after_fetch_folder": None,
                      "allow_new_threads": True, "store_attachments": False, "poll_interval": 60}
POLL_INTERVAL_MIN, POLL_INTERVAL_MAX = 15, 24 * 3600
# Receiving errors are stored with this mark: one mailbox health serves sending and receiving, and a success of
# one side must not clear the other side's failures.
RECEIVING_ERROR = "IMAP: "
MAX_PASSWORD = 1024
NAME_MAX = 120  # the mailbox's name and the sender name in its mail's From header
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
                   is_default: bool = False, auth_kind: str = "password", actor: User | str | None = None,
                   **receiving) -> Mailbox:
    """Add an active mailbox for sending, and for receiving when `receiving` (RECEIVING_SETTINGS) names an IMAP
    server; the shop's first mailbox becomes the default whatever is asked. A mailbox whose `auth_kind` is an
    OAuth provider (app/accounts/oauth.py) signs in with tokens instead of a password.

    Refuses (ValidationFailed, naming every broken rule) an empty name, a bad e-mail address, a host that
    is not a host name or IP address, a port outside 1-65535, an unknown security mode, a login without a
    password, and the receiving settings _checked_receiving refuses. The password is stored encrypted.
    """
    unknown = set(receiving) - set(RECEIVING_SETTINGS)
    if unknown:
        raise TypeError(f"not mailbox settings: {sorted(unknown)}")
    values = _checked(name=name, email=email, display_name=display_name, smtp_host=smtp_host,
                      smtp_port=smtp_port, smtp_security=smtp_security, username=username,
                      is_default=is_default, password=password, has_stored_password=auth_kind != "password",
                      **{**RECEIVING_DEFAULTS, **receiving})
    first = default_mailbox() is None
    mailbox = Mailbox(**values, active=True, auth_kind=auth_kind, password_enc=encrypt(password) if password else None)
    if first:
        mailbox.is_default = True
    db.session.add(mailbox)
    db.session.flush()
    if mailbox.is_default:
        _unset_other_defaults(mailbox)
    record("mailbox.create", target=mailbox, email=mailbox.email, smtp_host=mailbox.smtp_host,
           imap_host=mailbox.imap_host, default=mailbox.is_default, by=actor)
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
    values = _checked(**{**current, **values}, password=password,
                      has_stored_password=bool(mailbox.password_enc) or mailbox.auth_kind != "password")
    if mailbox.is_default and not values["is_default"]:
        raise ValidationFailed({"is_default": _("Make another mailbox the default instead.")})

    if password:
        mailbox.password_enc = encrypt(password)
    changed = apply_changes(mailbox, values, "mailbox.update", by=actor,
                            secrets_changed=["password"] if password else [])
    if "is_default" in changed:
        _unset_other_defaults(mailbox)
    if set(changed) & {"imap_host", "username", "imap_folder"}:
        # Another folder (or server) has UIDs of its own: read it from the start; mail already stored is
        # recognised by its content and not stored twice.
        mailbox.uidvalidity, mailbox.last_uid = None, 0
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


def set_active(mailbox: Mailbox, active: bool, *, actor: User | str | None = None) -> bool:
    """Switch a mailbox on or off; returns False when it already was. A mailbox switched off neither sends nor
    is polled; when it was the default, mail goes out through the first active mailbox (default_mailbox), and
    the default mark moves there, so the list never shows an inactive default. Switching on clears the broken
    flag, so it is tried afresh."""
    if mailbox.active == active:
        return False
    mailbox.active = active
    changed = ["active"]
    if active:
        mailbox.consecutive_failures, mailbox.broken_at = 0, None
    elif mailbox.is_default:
        mailbox.is_default = False
        changed.append("is_default")
        db.session.flush()
        successor = default_mailbox()
        if successor is not None:
            successor.is_default = True
    record("mailbox.update", target=mailbox, changed=changed, by=actor)
    db.session.flush()
    return True


def _unset_other_defaults(mailbox: Mailbox) -> None:
    db.session.execute(update(Mailbox).where(Mailbox.id != mailbox.id, Mailbox.is_default.is_(True))
                       .values(is_default=False))


def _checked(*, name, email, display_name, smtp_host, smtp_port, smtp_security, username, is_default,
             password, has_stored_password: bool, **receiving) -> dict:
    """The settings cleaned up (trimmed, one line, e-mail normalised); ValidationFailed names every broken rule."""
    errors = {}
    values = {
        "name": gather(errors, clean_line, name, "name", NAME_MAX, _l("Enter a name for the mailbox.")),
        "display_name": gather(errors, clean_line, display_name, "display_name", NAME_MAX),
        "smtp_host": (smtp_host or "").strip(),
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "username": (username or "").strip(),
        "is_default": bool(is_default),
    }
    try:
        values["email"] = normalize_email(email)
        if values["email"] is None:
            errors["email"] = _("Enter the mailbox's e-mail address.")
    except ValidationFailed as exc:
        errors["email"] = exc.message_for("email")
    if not _HOST.fullmatch(values["smtp_host"]):
        errors["smtp_host"] = _("Enter the SMTP server's host name, like smtp.example.com.")
    if not isinstance(smtp_port, int) or not 1 <= smtp_port <= 65535:
        errors["smtp_port"] = _("Enter a port from 1 to 65535 (usually 465 for TLS, 587 for STARTTLS).")
    if smtp_security not in SECURITY_MODES:
        errors["smtp_security"] = _("Choose TLS, STARTTLS or none.")
    if any(ch.isspace() or not ch.isprintable() for ch in values["username"]) or len(values["username"]) > 254:
        errors["username"] = _("Enter the login without spaces.")
    if password and (not password.isprintable() or len(password) > MAX_PASSWORD):
        errors["password"] = _("Enter the password on one line.")
    elif values["username"] and not password and not has_stored_password:
        errors["password"] = _("Enter the password for this login.")
    values.update(_checked_receiving(receiving, errors))
    if values["imap_host"] and not values["username"]:
        errors["username"] = _("Enter the login: receiving mail needs one.")
    if errors:
        raise ValidationFailed(errors)
    return values


def _checked_receiving(settings: dict, errors: dict) -> dict:
    """The receiving settings cleaned up; broken rules go into `errors`. Without an IMAP server nothing else
    is checked: the mailbox only sends."""
    values = {
        **settings,
        "imap_host": (settings["imap_host"] or "").strip(),
        "imap_validate_cert": bool(settings["imap_validate_cert"]),
        "imap_folder": (settings["imap_folder"] or "").strip() or "INBOX",
        "after_fetch_folder": (settings["after_fetch_folder"] or "").strip() or None,
        "allow_new_threads": bool(settings["allow_new_threads"]),
        "store_attachments": bool(settings["store_attachments"]),
    }
    if settings["after_fetch"] != "move":
        values["after_fetch_folder"] = None
    if not values["imap_host"]:  # only sends: whatever the form left empty keeps its default
        return {name: RECEIVING_DEFAULTS[name] if value is None else value for name, value in values.items()}
    if not _HOST.fullmatch(values["imap_host"]):
        errors["imap_host"] = _("Enter the IMAP server's host name, like imap.example.com.")
    if not isinstance(values["imap_port"], int) or not 1 <= values["imap_port"] <= 65535:
        errors["imap_port"] = _("Enter a port from 1 to 65535 (usually 993 for TLS, 143 for STARTTLS).")
    if values["imap_security"] not in SECURITY_MODES:
        errors["imap_security"] = _("Choose TLS, STARTTLS or none.")
    for folder in ("imap_folder", "after_fetch_folder"):
        if values[folder] and (len(values[folder]) > 255 or not values[folder].isprintable()):
            errors[folder] = _("Enter the folder's name on one line.")
    if values["after_fetch"] not in AFTER_FETCH:
        errors["after_fetch"] = _("Choose what happens to fetched mail.")
    elif values["after_fetch"] == "move" and not values["after_fetch_folder"]:
        errors["after_fetch_folder"] = _("Enter the folder fetched mail is moved to.")
    elif values["after_fetch"] == "move" and values["after_fetch_folder"] == values["imap_folder"]:
        errors["after_fetch_folder"] = _("Choose a folder other than the one mail is fetched from.")
    interval = values["poll_interval"]
    if not isinstance(interval, int) or not POLL_INTERVAL_MIN <= interval <= POLL_INTERVAL_MAX:
        errors["poll_interval"] = _("Enter a polling interval from %(min)s to %(max)s seconds.",
                                    min=POLL_INTERVAL_MIN, max=POLL_INTERVAL_MAX)
    return values


# --- health -------------------------------------------------------------------------------------


def record_sent(mailbox: Mailbox) -> None:
    """A mail went out through the mailbox: sending works again (failures of receiving stay counted)."""
    if not receiving_failed(mailbox):
        mark_healthy(mailbox)
    mailbox.last_send_at = utcnow()


def record_polled(mailbox: Mailbox) -> None:
    """A polling pass went through: receiving works again (failures of sending stay counted)."""
    if receiving_failed(mailbox):
        mark_healthy(mailbox)
    mailbox.last_poll_at = mailbox.last_poll_ok_at = utcnow()


def record_receive_failure(mailbox: Mailbox, error: str) -> bool:
    """A polling pass could not connect, sign in or finish; counts like a sending failure (see record_failure).
    The pass counts as done: the next one waits for the polling interval."""
    mailbox.last_poll_at = utcnow()
    return record_failure(mailbox, RECEIVING_ERROR + error)


def receiving_failed(mailbox: Mailbox) -> bool:
    """Whether the mailbox's last error was one of receiving (IMAP) rather than sending."""
    return bool(mailbox.consecutive_failures) and (mailbox.last_error or "").startswith(RECEIVING_ERROR)


def mark_healthy(mailbox: Mailbox) -> None:
    """The mailbox works (again): no failures counted, not broken, the shop may be told again if it breaks."""
    mailbox.consecutive_failures = 0
    mailbox.broken_at = mailbox.broken_notified_at = None


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


def record_test(mailbox: Mailbox, ok: bool, outcome: str, *, receiving: bool = False) -> None:
    """The result of the owner's "Test connection" of sending (or `receiving`): a success ends the broken state
    that side caused (the owner fixed it)."""
    if ok:
        if receiving_failed(mailbox) == receiving:
            mark_healthy(mailbox)
        if receiving:
            mailbox.imap_test_ok_at = utcnow()
        else:
            mailbox.smtp_test_ok_at = utcnow()
    else:
        mailbox.last_error = RECEIVING_ERROR + outcome if receiving else outcome
        mailbox.last_error_at = utcnow()
