"""MIME to a clean message: addresses, ids, text and sanitised HTML, the quoted history split off, attachments.

CONTRACT (shared by the fetcher, the classifier and the threader): `parse_mail(raw) -> ParsedMail`, or
`UnparseableMail` with a human-readable reason when nothing useful can be read. Everything else (odd
charsets, broken MIME, missing headers) degrades gracefully and is listed in `ParsedMail.defects`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class UnparseableMail(Exception):
    """The bytes are not a mail we can read at all; the message says why (stored with the raw bytes)."""


@dataclass
class ParsedAttachment:
    filename: str  # decoded (RFC 2047 / RFC 2231), made safe with app.attachments.safe_filename
    content_type: str  # as declared by the sender; the store sniffs the real type
    payload: bytes
    content_id: str | None = None  # without angle brackets
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass
class DeliveryReport:
    """What a DSN (multipart/report; report-type=delivery-status) or a mailer-daemon mail says."""

    recipient: str | None  # Final-Recipient / Original-Recipient address, lower-case
    action: str | None  # failed | delayed | delivered | relayed | expanded
    status: str | None  # e.g. 5.1.1
    diagnostic: str  # Diagnostic-Code, or the human part of the report
    original_ids: list[str] = field(default_factory=list)  # Message-ID / References of the bounced mail
    original_recipients: list[str] = field(default_factory=list)  # To of the bounced mail (token addresses)

    @property
    def permanent(self) -> bool:
        return (self.action or "").lower() == "failed" or (self.status or "").startswith("5")


@dataclass
class ParsedMail:
    message_id: str | None  # without brackets; None when the mail has none
    in_reply_to: list[str]  # ids without brackets, newest first
    references: list[str]  # ids without brackets, newest (rightmost) first
    subject: str  # decoded, one line
    from_address: str  # lower-case addr-spec, "" when missing
    from_name: str
    to: list[str]  # lower-case addr-specs
    cc: list[str]
    envelope_recipients: list[str]  # Delivered-To, X-Original-To, Envelope-To: where the server put it
    date: datetime | None  # aware UTC
    text: str  # the new part of the message, plain text (from HTML when there is no text part)
    quoted_text: str  # the quoted history split off the reply ("" when none)
    html: str | None  # sanitised full HTML body (remote images blocked, cid: kept for the view to rewrite)
    attachments: list[ParsedAttachment]
    headers: dict[str, str]  # lower-case header name -> first value, decoded, for classification
    content_hash: str  # sha256 hex of what the mail says (sender, subject, bodies, attachments), not of transport headers
    report: DeliveryReport | None = None  # set for delivery status notifications and mailer-daemon mail
    defects: list[str] = field(default_factory=list)

    @property
    def all_recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.envelope_recipients]


def parse_mail(raw: bytes) -> ParsedMail:
    """Read one RFC 5322 message; raises UnparseableMail when it has no headers or body we can read."""
    raise NotImplementedError  # filled in by the parsing work
