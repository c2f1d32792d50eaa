"""API: repair orders (create, read, change fields and status)."""
from __future__ import annotations

from datetime import datetime

from flask import jsonify, url_for

from .. import repairs as rules
from ..errors import ValidationFailed
from ..extensions import db
from ..messaging.reminders import sent_reminders
from ..models import Repair
from ..request_input import iso_datetime
from .base import api_actor, bp, json_body, token_required

CREATE_FIELDS = ("customer_id", "number", "device", "description", "status", "price_estimate", "pickup_date")
UPDATE_FIELDS = ("device", "description", "status", "price_estimate", "pickup_date", "status_changed_at")


def repair_json(repair: Repair) -> dict:
    return {
        "id": repair.id,
        "number": repair.number,
        "customer_id": repair.customer_id,
        "device": repair.device,
        "description": repair.description,
        "status": repair.status.name,
        "status_id": repair.status_id,
        "price_estimate": str(repair.price_estimate) if repair.price_estimate is not None else None,
        "pickup_date": repair.pickup_date.isoformat() if repair.pickup_date else None,
        "created_at": repair.created_at.isoformat(),
        "updated_at": repair.updated_at.isoformat(),
        "reminders": [reminder_json(sent) for sent in sent_reminders(repair)],
    }


def reminder_json(sent) -> dict:
    """One reminder's go for the repair: sent (with its message) or skipped (with the reason)."""
    return {
        "id": sent.id,
        "reminder_id": sent.reminder_id,
        "status_id": sent.reminder.status_id,
        "days": sent.reminder.days,
        "template": sent.reminder.template.name,
        "outcome": sent.outcome,
        "reason": sent.reason or None,
        "message_id": sent.message_id,
        "status_since": sent.status_since.isoformat(),
        "at": sent.created_at.isoformat(),
    }


def _timestamp(raw) -> datetime | None:
    """An ISO 8601 time from the request, or None when absent; a 422 for anything else."""
    if raw is None:
        return None
    try:
        return iso_datetime(raw)
    except ValueError:
        raise ValidationFailed({"status_changed_at": "expected an ISO 8601 time, e.g. 2026-03-01T10:00:00+01:00"}) \
            from None


@bp.post("/repairs")
@token_required
def post_repair():
    data = json_body(CREATE_FIELDS)
    repair = rules.create_repair(
        customer=data.get("customer_id"), device=data.get("device"), description=data.get("description", ""),
        status=data.get("status"), number=data.get("number"), price_estimate=data.get("price_estimate"),
        pickup_date=data.get("pickup_date"), actor=api_actor(), source="api",
    )
    db.session.commit()
    return jsonify(repair_json(repair)), 201, {"Location": url_for(".get_repair", repair_id=repair.id)}


@bp.get("/repairs/<int:repair_id>")
@token_required
def get_repair(repair_id: int):
    return jsonify(repair_json(db.get_or_404(Repair, repair_id, description="repair not found")))


@bp.patch("/repairs/<int:repair_id>")
@token_required
def patch_repair(repair_id: int):
    """Change fields and/or the status; a status change is logged and notifies like one made by staff.

    `status_changed_at` (ISO 8601 with a time zone) says when a change applied later really happened: one
    older than the shop's limit notifies nobody.
    """
    repair = db.get_or_404(Repair, repair_id, description="repair not found")
    fields = dict(json_body(UPDATE_FIELDS))
    has_status, status = "status" in fields, fields.pop("status", None)
    changed_at = _timestamp(fields.pop("status_changed_at", None))
    rules.update_repair(repair, actor=api_actor(), source="api", **fields)
    if has_status:
        rules.change_status(repair, status, actor=api_actor(), source="api", changed_at=changed_at)
    db.session.commit()
    return jsonify(repair_json(repair))
