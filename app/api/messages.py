"""API: writing to a customer (POST /messages) and following each delivery (GET /deliveries/<id>)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import jsonify, url_for
from flask_babel import gettext as _

from ..errors import ValidationFailed
from ..extensions import db
from ..messaging.compose import compose
from ..messaging.templates import render, version_for
from ..models import ContactPerson, Customer, Delivery, Message, MessageTemplate, Repair, Shop, Thread, Ticket
from ..repairs import row_by_id
from ..request_input import iso_datetime
from .base import api_actor, bp, json_body, token_required

MESSAGE_FIELDS = ("customer_id", "repair_id", "ticket_id", "thread_id", "channels", "subject", "body", "send_at",
                  "cc", "sms_plain", "template_id", "texts", "contact_id")
OWN_TEXT_CHANNELS = ("sms", "portal")  # the channels that can carry a text of their own (e-mail carries `body`)


def iso(value: datetime | None) -> str | None:
    """An aware UTC time as ISO 8601 (with +00:00), or None."""
    return value.isoformat() if value is not None else None


def delivery_summary(delivery: Delivery) -> dict:
    return {"id": delivery.id, "channel": delivery.channel, "status": delivery.status}


def delivery_json(delivery: Delivery) -> dict:
    return {
        **delivery_summary(delivery),
        "message_id": delivery.message_id,
        "thread_id": delivery.message.thread_id,
        "uncertain": delivery.uncertain,
        "attempts": delivery.attempts,
        "error": delivery.error,
        "error_code": delivery.error_code,
        "provider_id": delivery.provider_id,
        # The SMS provider that carried an SMS ("twilio", "smsapi"); None for other channels and SMS not sent yet.
        "provider": delivery.sms_account.provider if delivery.sms_account is not None else None,
        "recipient": delivery.recipient,
        "queued_at": iso(delivery.created_at),
        "next_attempt_at": iso(delivery.next_attempt_at),
        "sent_at": iso(delivery.sent_at),
        "delivered_at": iso(delivery.delivered_at),
    }


def message_created_json(message: Message) -> dict:
    return {"id": message.id, "thread_id": message.thread_id,
            "deliveries": [delivery_summary(d) for d in message.deliveries]}


# Readers of the JSON body's fields. Each returns the value for compose(), or notes the problem in `errors`
# and returns a harmless stand-in, so that every bad field is named at once. Null counts as not sent.


def _row(data: dict, field: str, errors: dict, model, usable=lambda row: True, required: bool = False):
    if data.get(field) is None:
        if required:
            errors[field] = _("Required.")
        return None
    row = row_by_id(model, data[field])
    if row is None or not usable(row):
        errors[field] = _("No such id.")
        return None
    return row


def _text(data: dict, field: str, errors: dict) -> str:
    value = data.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[field] = _("Must be text.")
        return ""
    return value


def _texts(data: dict, field: str, errors: dict, required: bool = False) -> list[str]:
    value = data.get(field)
    if value is None:
        if required:
            errors[field] = _("Required.")
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors[field] = _("Must be a list of strings.")
        return []
    return value


def _flag(data: dict, field: str, errors: dict) -> bool:
    value = data.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        errors[field] = _("Must be true or false.")
        return False
    return value


def _time(data: dict, field: str, errors: dict) -> datetime | None:
    """A time in UTC; one without an offset is refused, as it could mean any time zone."""
    value = data.get(field)
    if value is None:
        return None
    try:
        when = iso_datetime(value)
    except ValueError:
        when = None
    if when is None:
        errors[field] = _("Give the time in ISO 8601, like 2026-03-01T14:30:00+01:00.")
    elif when.tzinfo is None:
        errors[field] = _("Add the time zone: an offset like +01:00, or Z for UTC.")
    else:
        return when.astimezone(timezone.utc)
    return None


def _own_texts(data: dict, field: str, errors: dict) -> dict[str, str]:
    """The channels' own texts: an object of texts keyed "sms" and/or "portal"."""
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(key in OWN_TEXT_CHANNELS and isinstance(text, str)
                                              for key, text in value.items()):
        errors[field] = _("Must be an object of texts keyed “sms” or “portal”.")
        return {}
    return value


def _compose_arguments(data: dict) -> dict:
    """compose()'s arguments read from the JSON body; refuses wrong types and ids of nothing
    (an anonymised customer, a deleted thread), naming every such field at once.

    With `template_id` the template (in the customer's language, filled in for them and the repair) gives the
    subject and text that are not sent, its own SMS and panel texts (unless `texts` gives a channel's), and its
    "without Polish letters" choice unless `sms_plain` is sent.
    """
    errors: dict[str, str] = {}
    arguments = {
        "customer": _row(data, "customer_id", errors, Customer, lambda c: c.anonymized_at is None, required=True),
        "repair": _row(data, "repair_id", errors, Repair),
        "ticket": _row(data, "ticket_id", errors, Ticket),
        "thread": _row(data, "thread_id", errors, Thread, lambda t: t.deleted_at is None),
        "channels": _texts(data, "channels", errors, required=True),
        "subject": _text(data, "subject", errors),
        "body": _text(data, "body", errors),
        "cc": _texts(data, "cc", errors),
        "send_at": _time(data, "send_at", errors),
        "sms_plain": _flag(data, "sms_plain", errors),
        "template": _row(data, "template_id", errors, MessageTemplate, lambda t: t.kind == "message"),
        "texts": _own_texts(data, "texts", errors),
    }
    if data.get("contact_id") is not None:  # else the repair's contact person, if any (compose's default)
        arguments["contact"] = _row(data, "contact_id", errors, ContactPerson)
    if errors:
        raise ValidationFailed(errors)
    if (template := arguments["template"]) is not None:
        shop = Shop.current()
        arguments["template"] = template = version_for(template, arguments["customer"], shop)
        rendered = render(template, shop=shop, customer=arguments["customer"], repair=arguments["repair"])
        arguments["subject"] = arguments["subject"] if data.get("subject") is not None else rendered.subject
        arguments["body"] = arguments["body"] if data.get("body") is not None else rendered.body
        arguments["texts"] = {**rendered.texts, **arguments["texts"]}
        if data.get("sms_plain") is None:
            arguments["sms_plain"] = rendered.sms_plain
    return arguments


@bp.post("/messages")
@token_required
def post_message():
    """Write to a customer as staff would: without `send_at` the shop's undo window applies before anything goes.

    Refuses (422) what _compose_arguments refuses and what compose() refuses, such as a channel that cannot
    reach the customer (`channels.<name>`, with the reason) or a repair of another customer.
    """
    message = compose(**_compose_arguments(json_body(MESSAGE_FIELDS)), author=None, source=api_actor())
    db.session.commit()
    return (
        jsonify(message_created_json(message)), 201,
        {"Location": url_for(".get_thread", thread_id=message.thread_id)},
    )


@bp.get("/deliveries/<int:delivery_id>")
@token_required
def get_delivery(delivery_id: int):
    return jsonify(delivery_json(db.get_or_404(Delivery, delivery_id, description="delivery not found")))
