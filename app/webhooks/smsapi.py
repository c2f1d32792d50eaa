"""SMSAPI.pl calling us: delivery reports (how far each SMS we sent has got) and the SMS customers send to the
shop's two-way number. SMSAPI does not sign its requests: each URL carries the account's long random callback
secret (Settings → SMS shows and rotates it), and a request without the right one gets 403."""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, request

from ..accounts.sms import account_of, callback_secret
from ..channels.sms import record_status_report
from ..channels.smsapi_provider import STATUSES, status_name
from ..extensions import db
from ..inbound.sms import IncomingSms, receive_sms
from ..request_input import without_nul

log = logging.getLogger(__name__)
bp = Blueprint("smsapi_webhooks", __name__, url_prefix="/webhooks/smsapi")

OK = "OK"  # what SMSAPI expects back; anything else makes it call again
MAX_REPORTS = 100  # reports in one call (SMSAPI groups several, comma-separated); more is no call of SMSAPI's
# The longest value each field may have to fit the columns it goes into; longer is no SMSAPI value (400).
LIMITS = {"MsgId": 64, "status": 32, "status_name": 32, "sms_from": 32, "sms_to": 32}


def _secret_matches(secret: str) -> bool:
    """Whether `secret` is the SMSAPI account's callback secret (also after a switch to Twilio: reports on SMS it
    sent, and replies to them, still come in)."""
    account = account_of("smsapi")
    expected = callback_secret(account) if account is not None else None
    if not expected:
        return False
    return hmac.compare_digest(secret.encode("utf-8", "replace"), expected.encode())


def _too_long(values) -> bool:
    return any(len(values.get(name, "")) > limit * (MAX_REPORTS if name in ("MsgId", "status", "status_name") else 1)
               for name, limit in LIMITS.items())


@bp.route("/<secret>/report", methods=["GET", "POST"])
def report(secret: str):
    """Record SMSAPI's delivery reports and answer "OK".

    One call may carry several reports: MsgId, status and status_name are then comma-separated lists of the same
    length. Each report moves its delivery only forward and counts once (record_status_report); one for an SMS
    that is not ours is logged and answered "OK" all the same (an error would only make SMSAPI call again).
    403 without the account's secret in the URL; 400 without MsgId or status, or with lists that do not match.
    """
    if not _secret_matches(secret):
        log.warning("refused an SMSAPI delivery report from %s: wrong or missing secret", request.remote_addr)
        return "", 403
    values = without_nul(request.values)
    if _too_long(values):
        return "", 400
    ids = [part.strip() for part in values.get("MsgId", "").split(",")]
    codes = [part.strip() for part in values.get("status", "").split(",")]
    names = [part.strip() for part in values.get("status_name", "").split(",")] if values.get("status_name") else []
    if not all(ids) or not all(codes) or len(ids) != len(codes) or (names and len(names) != len(ids)) \
            or len(ids) > MAX_REPORTS or any(len(i) > LIMITS["MsgId"] or len(c) > LIMITS["status"] for i, c in zip(ids, codes)):
        return "", 400
    for index, (msg_id, code) in enumerate(zip(ids, codes)):
        name = status_name(code, names[index] if names else None)[:LIMITS["status_name"]]
        detail = {"MsgId": msg_id, "status": code, "status_name": name,
                  **{key: _nth(values.get(key, ""), index) for key in ("idx", "donedate", "username", "points", "to")}}
        outcome = record_status_report(msg_id, name, code if STATUSES.get(name) == "failed" else None,
                                       detail=detail, provider="smsapi")
        log.log(logging.INFO if outcome == "unknown" else logging.DEBUG, "SMSAPI reported %s for %s: %s",
                name, msg_id, outcome)
    db.session.commit()
    return OK, 200, {"Content-Type": "text/plain"}


@bp.route("/<secret>/sms", methods=["POST"])
def incoming(secret: str):
    """Take in an SMS a customer sent to the shop's two-way number and answer "OK".

    403 without the account's secret in the URL, 400 without MsgId or sms_from, or with a field too long to be
    SMSAPI's. Kept and matched like Twilio's (app.inbound.sms.receive_sms): the same MsgId again stores nothing.
    """
    if not _secret_matches(secret):
        log.warning("refused an SMSAPI incoming SMS from %s: wrong or missing secret", request.remote_addr)
        return "", 403
    form = without_nul(request.form)
    msg_id, sender = form.get("MsgId", "").strip(), form.get("sms_from", "").strip()
    if not msg_id or not sender or _too_long(form) or len(msg_id) > LIMITS["MsgId"]:
        return "", 400
    sms = IncomingSms(sid=msg_id, sender=_international(sender), to=_international(form.get("sms_to", "")),
                      body=form.get("sms_text", ""))
    outcome = receive_sms(sms)
    db.session.commit()
    log.info("inbound SMS %s from %s via SMSAPI: %s%s", msg_id, sender, outcome.status,
             f" ({outcome.item.reason})" if outcome.status == "held" else "")
    return OK, 200, {"Content-Type": "text/plain"}


def _nth(value: str, index: int) -> str:
    """The index-th of a comma-separated list of values, or the whole value when it is a single one."""
    parts = value.split(",")
    return parts[index] if len(parts) > 1 and index < len(parts) else value


@bp.route("/report", methods=["GET", "POST"])
@bp.route("/sms", methods=["POST"])
def without_secret():
    """The callback addresses without their secret: someone guessing, or an address pasted incompletely."""
    log.warning("refused an SMSAPI callback from %s: the address has no secret", request.remote_addr)
    return "", 403


def _international(number: str) -> str:
    """SMSAPI gives numbers with their country code but without "+" (48500100200): the E.164 form."""
    number = number.strip()
    return f"+{number}" if number.isascii() and number.isdigit() else number
