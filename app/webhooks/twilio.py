"""Twilio calling us: status callbacks (how far each SMS we sent has got) and the SMS customers send us."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator

from ..channels.sms import record_status_report
from ..crypto import SecretUnreadable, decrypt
from ..extensions import db
from ..inbound.sms import IncomingSms, receive_sms
from ..models import DeliveryEvent, InboundItem
from ..request_input import whole_number, without_nul
from ..accounts.sms import account_of
from ..urls import public_url

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# "Received, no answer": Twilio sends nothing back to the customer. (Twilio answers STOP by itself.)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_MEDIA = 10  # Twilio's limit of pictures on one MMS
# Twilio's fields kept in columns, and those columns: a longer value is no value Twilio sends, and is refused (400)
# rather than failing the insert.
STORED_FIELDS = {"MessageSid": (InboundItem.provider_id, DeliveryEvent.provider_ref), "From": (InboundItem.sender,),
                 "MessageStatus": (DeliveryEvent.status,), "ErrorCode": (DeliveryEvent.error_code,)}


def _too_long(form) -> str | None:
    """The first of STORED_FIELDS whose value does not fit its columns, or None."""
    return next((name for name, columns in STORED_FIELDS.items()
                 if len(form.get(name, "")) > min(column.type.length for column in columns)), None)


def signed_by_twilio() -> bool:
    """Whether the request carries a valid X-Twilio-Signature made with the Twilio account's auth token.

    Twilio signs the exact URL it called plus the POST fields. That URL is the StatusCallback we sent,
    PUBLIC_BASE_URL + path; behind a reverse proxy `request.url` would show the internal address instead,
    so the URL is rebuilt the same way: PUBLIC_BASE_URL + `request.full_path` (which ends in a bare "?"
    when there is no query string, and Twilio's URL does not).
    """
    signature = request.headers.get("X-Twilio-Signature")
    account = account_of("twilio")  # also after a switch to SMSAPI: reports on what Twilio sent still come in
    if not signature or account is None:
        return False
    try:
        token = decrypt(account.auth_token_enc)
    except SecretUnreadable:
        log.error("cannot check Twilio signatures: the stored auth token cannot be decrypted")
        return False
    url = public_url(request.full_path.removesuffix("?"))
    return RequestValidator(token).validate(url, request.form, signature)


@bp.post("/twilio/status")
def twilio_status():
    """Record Twilio's report on one SMS and answer 204 at once.

    403 without a valid signature. An unknown MessageSid (an SMS another system sent through the same
    account, or a delivery deleted since) is logged and answered 204 as well: an error answer would only
    make Twilio retry and flag our webhook as failing, for a report nobody can use.
    """
    if not signed_by_twilio():
        log.warning("refused a Twilio status callback from %s: missing or wrong X-Twilio-Signature",
                    request.remote_addr)
        return "", 403
    form = without_nul(request.form)
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or not status or _too_long(form):
        return "", 400
    outcome = record_status_report(sid, status, form.get("ErrorCode"), detail=form.to_dict())
    db.session.commit()
    if outcome == "unknown":
        log.info("Twilio reported %s for %s, which is no SMS of ours; ignored", status, sid)
    else:
        log.debug("Twilio reported %s for %s: %s", status, sid, outcome)
    return "", 204


@bp.post("/twilio/sms")
def twilio_sms():
    """Take in an SMS a customer sent to the shop's number and answer with empty TwiML at once.

    403 without a valid signature, 400 without MessageSid or From, or with a field too long to be Twilio's. The
    SMS is kept and matched in one short transaction (app.inbound.sms.receive_sms); the same MessageSid posted
    again stores nothing new and gets the same answer, so Twilio's retries are harmless. Pictures of an MMS are counted and their URLs kept,
    not downloaded.
    """
    if not signed_by_twilio():
        log.warning("refused an inbound SMS from %s: missing or wrong X-Twilio-Signature", request.remote_addr)
        return "", 403
    form = without_nul(request.form)  # PostgreSQL text cannot hold NUL; refusing would lose the SMS
    sid, sender = form.get("MessageSid", ""), form.get("From", "")
    if not sid or not sender or _too_long(form):
        return "", 400
    media_count = min(form.get("NumMedia", 0, type=whole_number), MAX_MEDIA)
    body = form.get("Body", "")
    sms = IncomingSms(sid=sid, sender=sender, to=form.get("To", ""), body=body,
                      media_urls=[url for i in range(media_count) if (url := form.get(f"MediaUrl{i}"))])
    outcome = receive_sms(sms)
    db.session.commit()
    log.info("inbound SMS %s from %s: %s%s", sid, sender, outcome.status,
             f" ({outcome.item.reason})" if outcome.status == "held" else "")
    return Response(EMPTY_TWIML, mimetype="text/xml")
