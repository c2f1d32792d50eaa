"""The audit trail: who did what and when (sign-ins, sends, deletes, exports, erasures, settings)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow
from .users import User


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor: Mapped[str] = mapped_column(String(254), default="")  # e-mail, "api:<name>", "system"
    action: Mapped[str] = mapped_column(String(64), index=True)  # e.g. "auth.login", "customer.create"
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    user = relationship("User")


def record(action: str, *, by=None, target=None, **details) -> AuditEvent:
    """Add an audit event to the session (committed with the change it records).

    `by` is who acted: a staff User, or a label for machines and strangers ("api:erp", "cli", an e-mail typed
    at the sign-in form); None means the system itself.
    """
    user = by if isinstance(by, User) else None
    event = AuditEvent(
        action=action,
        user_id=user.id if user else None,
        actor=user.email if user else (by or "system"),
        target_type=target.__tablename__ if target is not None else None,
        target_id=getattr(target, "id", None),
        ip=request.remote_addr if has_request_context() else None,
        details=details,
    )
    db.session.add(event)
    return event


def _jsonable(value):
    """A value as the audit log's JSON can keep it (dates and times as ISO text)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def apply_changes(target, values: dict, action: str, *, by=None, secrets_changed: Sequence[str] = (),
                  with_values: bool = True, **details) -> list[str]:
    """Set on `target` the `values` that differ from what it holds, and record one audit event `action` naming the
    changed fields (`changed`) and each one's value before and after (`changes`: {field: [old, new]}).

    `secrets_changed` names secrets the caller has already replaced (a password): listed as changed, never their
    values. A customer's, repair's or ticket's fields are personal data the log must not copy: `with_values=False`
    records only their names (`fields`). Nothing is recorded when nothing changed. Returns the changed fields in
    the order of `values`, then the secrets.
    """
    changed = [name for name, value in values.items() if getattr(target, name) != value]
    changes = {name: [_jsonable(getattr(target, name)), _jsonable(values[name])] for name in changed}
    for name in changed:
        setattr(target, name, values[name])
    changed += list(secrets_changed)
    if changed and with_values:
        record(action, by=by, target=target, changed=changed, changes=changes, **details)
    elif changed:
        record(action, by=by, target=target, fields=changed, **details)
    return changed
