"""Delivery reports read out of bounces: standard DSNs (RFC 3464) and the free-text ones mailer daemons send."""
from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from app.mail_ids import extract_ids

from .charsets import decode_bytes, decode_words, unescape_8bit

_ROBOT_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|microsoftexchange[0-9a-f]*)@", re.IGNORECASE)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d[ -]")
_COPIED_ID = re.compile(r"^[ \t>]*message-id:[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_COPIED_REFS = re.compile(r"^[ \t>]*(?:references|in-reply-to):[ \t]*((?:<[^>\s]+>[ \t]*(?:\r?\n[ \t]+)?)+)",
                          re.IGNORECASE | re.MULTILINE)
_COPIED_TO = re.compile(r"^[ \t>]*(?:to|reply-to):[ \t]*(.+(?:\r?\n[ \t]+.+)*)", re.IGNORECASE | re.MULTILINE)
_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:", re.MULTILINE)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_TEMPORARY = re.compile(r"delayed|will (?:be )?retr|opóźnion|ponowi", re.IGNORECASE)


def is_robot_sender(address: str) -> bool:
    """True for mailer-daemon, postmaster and Exchange's system sender: they send bounces, never replies."""
    return bool(_ROBOT_SENDER.match(address or ""))


def read_dsn(report: Message) -> tuple[str | None, str | None, str | None, str, list[str], list[str]]:
    """(recipient, action, status, diagnostic, original ids, original recipients) of a multipart/report."""
    fields: dict[str, str] = {}
    original: Message | None = None
    human = ""
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            fields = _recipient_fields(part)
        elif ctype in ("message/rfc822", "message/global") and original is None:
            payload = part.get_payload()
            original = payload[0] if isinstance(payload, list) and payload else None
        elif ctype in ("text/rfc822-headers", "message/global-headers") and original is None:
            original = HeaderParser().parsestr(_text_of(part))
        elif ctype == "text/plain" and not human and part.get_content_disposition() != "attachment":
            human = _text_of(part)
    recipient = _address(fields.get("final-recipient") or fields.get("original-recipient"))
    diagnostic = re.sub(r"^\s*(?:smtp|x-[\w-]+)\s*;\s*", "", fields.get("diagnostic-code", ""), flags=re.IGNORECASE)
    ids, recipients = _original_of(original) if original is not None else ([], [])
    return (
        recipient,
        (fields.get("action") or "").strip().lower() or None,
        (fields.get("status") or "").strip() or None,
        " ".join(diagnostic.split()) or _summary(human),
        ids,
        recipients,
    )


def read_free_text(text: str) -> tuple[str | None, str | None, str | None, str, list[str], list[str]]:
    """The same, best effort, from a bounce written as prose (qmail, Exchange NDRs, old Gmail notices):
    the original's ids and recipients come from its headers copied into the text."""
    ids = [found.strip("<>") for found in _COPIED_ID.findall(text)]
    for refs in _COPIED_REFS.findall(text):
        ids += [ref for ref in extract_ids(refs) if ref not in ids]
    recipients = _unique_addresses(_COPIED_TO.findall(text))
    qmail = _QMAIL_RECIPIENT.search(text)
    recipient = qmail[1].lower() if qmail else next(iter(recipients), None)
    if recipient is None and (found := _ADDRESS.search(text)):
        recipient = found[0].lower()
    status = _STATUS.search(text)
    code = _SMTP_CODE.search(text)
    temporary = (status and status[1].startswith("4")) or (code and code[1] == "4") or _TEMPORARY.search(text)
    return (
        recipient,
        "delayed" if temporary else "failed",
        status[1] if status else None,
        _summary(text),
        ids,
        recipients,
    )


def _recipient_fields(part: Message) -> dict[str, str]:
    """The first per-recipient block of a delivery-status part (a failed one when there are several)."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    if not blocks:  # some servers send it base64-encoded or as one block the parser did not split
        text = _text_of(part)
        blocks = [HeaderParser().parsestr(chunk) for chunk in re.split(r"\r?\n\s*\r?\n", text) if chunk.strip()]
    recipients = [block for block in blocks if block.get("final-recipient") or block.get("action")]
    chosen = next((b for b in recipients if str(b.get("action", "")).strip().lower() == "failed"), None)
    chosen = chosen or next(iter(recipients), None)
    if chosen is None:
        return {}
    return {name.lower(): " ".join(unescape_8bit(str(value)).split()) for name, value in chosen.raw_items()}


def _original_of(original: Message) -> tuple[list[str], list[str]]:
    """Ids (Message-ID, Outlook's original id, then References and In-Reply-To newest first) and the To and
    Reply-To addresses of the returned mail: what ties a bounce to the delivery it answers."""
    ids: list[str] = []
    for header in ("message-id", "x-microsoft-original-message-id", "references", "in-reply-to"):
        for value in original.get_all(header, []):
            ids += [ref for ref in extract_ids(str(value)) if ref not in ids]
    values = [decode_words(str(value)) for header in ("to", "cc", "reply-to") for value in original.get_all(header, [])]
    return ids, _unique_addresses(values)


def _unique_addresses(values: list[str]) -> list[str]:
    """The lower-case addresses in address headers, in order, each once."""
    return list(dict.fromkeys(addr.lower() for _, addr in getaddresses(values) if "@" in addr))


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return decode_bytes(payload, part.get_content_charset())[0]
    return str(part.get_payload() or "")


def _address(field: str | None) -> str | None:
    """The address of a `Final-Recipient: rfc822; x@y` field."""
    if not field:
        return None
    value = field.split(";", 1)[-1].strip().strip("<>")
    return value.lower() or None


def _summary(text: str) -> str:
    """The human part of a bounce, without its copy of the original: what staff read as the reason."""
    kept = re.split(r"^-{2,}.*(?:below this line|original message|wiadomość oryginalna).*$|^Return-Path:|^Received:",
                    text, maxsplit=1, flags=re.IGNORECASE | re.MULTILINE)[0]
    return "\n".join(line.rstrip() for line in kept.strip().splitlines())[:2000]
