"""Twilio's status callbacks: how far each SMS we sent has got (delivered, undelivered, failed)."""
from __future__ import annotations

import logging

from flask import request
from twilio.request_validator import RequestValidator

from ..channels.sms import active_account, public_url, record_status_report
from ..crypto import SecretUnreadable, decrypt
from ..extensions import db
from . import bp

log = logging.getLogger(__name__)


def signed_by_twilio() -> bool:
    """Whether the request carries a valid X-Twilio-Signature made with the SMS account's auth token.

    Twilio signs the exact URL it called plus the POST fields. That URL is the StatusCallback we sent,
    PUBLIC_BASE_URL + path; behind a reverse proxy `request.url` would show the internal address instead,
    so the URL is rebuilt the same way: PUBLIC_BASE_URL + `request.full_path` (which ends in a bare "?"
    when there is no query string, and Twilio's URL does not).
    """
    signature = request.headers.get("X-Twilio-Signature")
    account = active_account()
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
    sid, status = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if not sid or not status:
        return "", 400
    outcome = record_status_report(sid, status, request.form.get("ErrorCode"), detail=request.form.to_dict())
    db.session.commit()
    if outcome == "unknown":
        log.info("Twilio reported %s for %s, which is no SMS of ours; ignored", status, sid)
    else:
        log.debug("Twilio reported %s for %s: %s", status, sid, outcome)
    return "", 204
