"""Staff accounts: creating them, changing roles and access, and passwords (the rules, not the screens).

Like the other domain functions, these flush and leave the commit to the caller.
"""
from __future__ import annotations

import secrets

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from .. import sign_in_sessions
from ..customers import normalize_email
from ..errors import ValidationFailed
from ..extensions import db
from ..fields import clean_line, gather
from ..models import User
from ..models.audit import apply_changes, record
from ..models.users import ROLES

MIN_PASSWORD_LENGTH = 10
NAME_MAX = 120  # User.name's column; the name signs replies and shows in the timeline


def generate_password() -> str:
    """A random password for a new account or a reset, to be handed over once."""
    return secrets.token_urlsafe(12)


def check_new_password(password: str | None, field: str = "password") -> None:
    """Refuse passwords shorter than MIN_PASSWORD_LENGTH."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            {field: _("The password must have at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)}
        )


def create_user(*, email: str, name: str, role: str, password: str, actor: User | str | None = None) -> User:
    """Add an active account. Refuses a bad or taken e-mail, an empty name, an unknown role, a short password."""
    email, name = _checked(email=email, name=name, role=role, password=password or "")
    user = User(email=email, name=name, role=role, active=True, can_see_outbox=False)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record("user.create", target=user, role=role, by=actor)
    return user


def update_user(user: User, *, name: str, email: str, role: str, active: bool, can_see_outbox: bool,
                actor: User | str | None = None) -> list[str]:
    """Change an account and return the names of the fields that changed.

    Refuses what create_user refuses, deactivating one's own account, and demoting or deactivating the
    last active owner (nobody would be left to manage the shop). Deactivating ends the account's sessions.
    """
    errors = {}
    try:
        email, name = _checked(email=email, name=name, role=role, exclude=user)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if isinstance(actor, User) and actor.id == user.id and not active:
        errors["active"] = _("You cannot deactivate your own account.")
    elif user.is_owner and user.active and (role != "owner" or not active) and _active_owners() == 1:
        errors["role" if role != "owner" else "active"] = _(
            "This is the only active owner. Make someone else an owner first."
        )
    if errors:
        raise ValidationFailed(errors)

    new_values = {"name": name, "email": email, "role": role, "active": active,
                  "can_see_outbox": can_see_outbox and role == "staff"}  # owners see the outbox anyway
    changed = apply_changes(user, new_values, "user.update", by=actor)
    if "active" in changed and not active:
        user.session_version += 1  # signed out everywhere at once, not at their next sign-in
        sign_in_sessions.end_all(user_id=user.id)
    db.session.flush()
    return changed


def reset_password(user: User, password: str | None = None, *, actor: User | str | None = None) -> str:
    """Give the account a new password (generated when none is given) and end its sessions; returns it.

    Refuses a password that is too short.
    """
    password = password or generate_password()
    check_new_password(password)
    user.set_password(password)
    sign_in_sessions.end_all(user_id=user.id)
    record("user.password_reset", target=user, by=actor)
    db.session.flush()
    return password


def change_own_password(user: User, *, current: str, new: str) -> None:
    """The person's own change; refuses a wrong current password or a short new one.

    The session version moves on, so every session of the account ends; the caller signs the
    current one in again.
    """
    if not user.check_password(current or ""):
        raise ValidationFailed({"current_password": _("This is not your current password.")})
    check_new_password(new, field="new_password")
    user.set_password(new)
    sign_in_sessions.end_all(user_id=user.id)
    record("user.password_change", target=user, by=user)
    db.session.flush()


def _checked(*, email: str, name: str, role: str, password: str | None = None,
             exclude: User | None = None) -> tuple[str, str]:
    """The normalised e-mail and name; ValidationFailed names every broken rule at once."""
    errors = {}
    try:
        email = normalize_email(email)
        if email is None:
            errors["email"] = _("Enter an e-mail address.")
        elif (other := User.by_email(email)) is not None and other is not exclude:
            errors["email"] = _("Another account already uses this e-mail address.")
    except ValidationFailed as exc:
        errors.update(exc.fields)
    name = gather(errors, clean_line, name, "name", NAME_MAX, _l("Enter a name."))
    if role not in ROLES:
        errors["role"] = _("Choose owner or staff.")
    if password is not None:
        try:
            check_new_password(password)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    return email, name


def _active_owners() -> int:
    return db.session.scalar(select(func.count(User.id)).where(User.role == "owner", User.active.is_(True))) or 0
