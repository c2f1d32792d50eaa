"""API tokens for the shop's other systems: made (shown once), listed, revoked; from Settings and the command line."""
from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .errors import ValidationFailed
from .extensions import db
from .fields import clean_line
from .models import ApiToken, User, utcnow
from .models.audit import record

MAX_EXPIRY_DAYS = 3650
NAME_MAX = 120  # ApiToken.name's column


def api_tokens() -> list[ApiToken]:
    """Every token, newest first, revoked and expired ones too (the list shows what once had access)."""
    return list(db.session.scalars(select(ApiToken).options(selectinload(ApiToken.created_by))
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def create_token(name: str | None, *, actor: User | str, expires_days: int | None = None) -> tuple[ApiToken, str]:
    """Make a token named for the system that will use it, valid for `expires_days` days (None: until revoked);
    returns the row and the plain token, which is kept nowhere. Tied to `actor` when a staff member made it."""
    problems = {}
    try:  # the name labels the token's actions in the audit log ("api:NAME")
        name = clean_line(name, "name", NAME_MAX,
                          required=_("Name the token after the system that will use it, e.g. erp."))
    except ValidationFailed as exc:
        problems.update(exc.fields)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        problems["expires_days"] = _("Between 1 and %(days)d days, or empty for no expiry.", days=MAX_EXPIRY_DAYS)
    if problems:
        raise ValidationFailed(problems)
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    token, plain = ApiToken.issue(name, created_by_id=actor.id if isinstance(actor, User) else None,
                                  expires_at=expires_at)
    db.session.flush()
    record("api_token.create", by=actor, target=token, name=name,
           expires_at=expires_at.isoformat() if expires_at else None)
    return token, plain


def revoke_token(token: ApiToken, *, actor: User | str) -> None:
    """Stop the token at once (its next request gets 401); revoking twice changes nothing."""
    if token.revoked_at is not None:
        return
    token.revoked_at = utcnow()
    record("api_token.revoke", by=actor, target=token, name=token.name)
    db.session.flush()


def token_named(name_or_id: str) -> ApiToken:
    """The token a command names, by id or by name (the one not yet revoked); ValidationFailed when there is no
    such token or the name is ambiguous."""
    value = name_or_id.strip()
    if value.isdigit():
        token = db.session.get(ApiToken, int(value))
        if token is not None:
            return token
    matches = db.session.scalars(select(ApiToken).where(ApiToken.name == value, ApiToken.revoked_at.is_(None))).all()
    if not matches:
        raise ValidationFailed({"token": _("No token named %(name)s.", name=value)})
    if len(matches) > 1:
        raise ValidationFailed({"token": _("Several tokens are named %(name)s; give the id instead (%(ids)s).",
                                           name=value, ids=", ".join(str(t.id) for t in matches))})
    return matches[0]
