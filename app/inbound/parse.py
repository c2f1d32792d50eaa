"""MIME to a clean message: addresses, ids, text and sanitised HTML, the quoted history split off, attachments.

CONTRACT (shared by the fetcher, the classifier and the threader): `parse_mail(raw) -> ParsedMail`, or
`UnparseableMail` with a human-readable reason when nothing useful can be read. Everything else (odd
charsets, broken MIME, missing headers) degrades gracefully and is listed in `ParsedMail.defects`.
"""
from __future__ import annotations

import binascii
import hashlib
import mimetypes
import re
import zlib
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from app.attachments import safe_filename
from app.mail_ids import extract_ids

from . import reports
from .charsets import decode_bytes, decode_words, header_param, unescape_8bit
from .html import html_to_text, sanitize
from .quotes import is_forward, split_at_mark, split_reply


class UnparseableMail(Exception):
    """The bytes are not a mail we can read at all; the message says why (stored with the raw bytes)."""


class ParserFailed(Exception):
    """The parser broke on a mail in another process, with an error that could not be sent back: its type and
    message, as text."""


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
    original_recipients: list[str] = field(default_factory=list)  # To, Cc, Reply-To (token address) of the bounced mail

    @property
    def permanent(self) -> bool:
        return (self.action or "").lower() == "failed" or (self.status or "").startswith("5")


@dataclass
class ParsedMail:
    message_id: str | None  # without brackets; None when the mail has none
    in_reply_to: list[str]  # ids without brackets, newest first
    references: list[str]  # ids without brackets, newest (rightmost) first
    subject: str  # decoded, one line
    from_address: str  # lower-case addr-spec, "" when missing; encoded words in it are kept as they came
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
    # Other ids this same mail is known by: the id its sender's provider replaced (Outlook.com and
    # Exchange keep it in X-Microsoft-Original-Message-ID).
    message_id_aliases: list[str] = field(default_factory=list)
    read_receipt: bool = False  # a disposition notification (RFC 8098): not a reply, not a bounce
    # The header the sender was taken from: "from", else (a mail without From) "sender", "reply-to" or
    # "return-path"; "" when none of them holds an address.
    sender_header: str = "from"

    @property
    def all_recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.envelope_recipients]


_MAIL_HEADERS = {"from", "to", "cc", "subject", "date", "message-id", "received", "return-path", "sender"}
_ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to")
_REPORT_PARTS = {"message/delivery-status", "message/global-delivery-status", "text/rfc822-headers",
                 "message/global-headers", "message/disposition-notification"}
_ADDRESS_HEADERS = {"from", "to", "cc", "bcc", "sender", "reply-to", "return-path", "delivered-to", "x-original-to",
                    "envelope-to", "x-envelope-to", "resent-from", "resent-to", "disposition-notification-to"}
# Where the sender of a mail without From is found, in this order.
_SENDER_HEADERS = ("from", "sender", "reply-to", "return-path")
_DEFAULT_NAMES = {"message/rfc822": "message.eml", "text/calendar": "invite.ics", "application/ms-tnef": "winmail.dat",
                  "text/plain": "text.txt", "text/html": "page.html"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
_UUENCODE = {"x-uuencode", "uuencode", "x-uue", "uue"}
# A uuencoded file in a text body (`begin 644 name` … `end`), as old mail programs and scripts attach files.
# Its lines hold only the characters of uuencoding (space to backquote), so a "begin" without its "end" costs
# one line's look, not a scan of the rest of the mail.
_UU_BLOCK = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+?)[ \t]*\r?\n((?:[ -`]{1,90}\r?\n)*)end[ \t]*$\r?\n?", re.MULTILINE)
_BOUNDARY_LINE = re.compile(rb"^--([^\s-][^\r\n]{0,69}?)\s*$", re.MULTILINE)


def parse_mail(raw: bytes) -> ParsedMail:
    """Read one RFC 5322 message, its texts without NUL characters; raises UnparseableMail when it has no
    headers or body we can read."""
    if not raw or not raw.strip():
        raise UnparseableMail("The message is empty.")
    try:
        return drop_nul(_parse(raw))
    except RecursionError:  # thousands of nested parts: built to break parsers, not written by anyone
        raise UnparseableMail("The MIME parts are nested too deeply to read.") from None


def read_mails(raws: list[bytes]) -> list[ParsedMail | Exception]:
    """parse_mail of each raw mail, or in its place what it raised: a parser bug must not lose the mail either
    (it is kept raw, with the error)."""
    read: list[ParsedMail | Exception] = []
    for raw in raws:
        try:
            read.append(parse_mail(raw))
        except Exception as exc:  # noqa: BLE001 - see above
            read.append(exc)
    return read


def drop_nul(value):
    """`value` without NUL characters in any of its texts (in place for the parsed mail's dataclasses):
    PostgreSQL refuses them in text columns, and broken mail carries them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, (list, tuple)):
        return type(value)(drop_nul(v) for v in value)
    if isinstance(value, dict):
        return {drop_nul(k): drop_nul(v) for k, v in value.items()}
    if is_dataclass(value):
        for attribute in fields(value):
            setattr(value, attribute.name, drop_nul(getattr(value, attribute.name)))
    return value


def _parse(raw: bytes) -> ParsedMail:
    message = BytesParser(policy=compat32).parsebytes(raw)
    headers = _header_values(message)
    if not headers.keys() & _MAIL_HEADERS:
        raise UnparseableMail("No mail headers found (From, To, Subject, Date or Message-ID).")
    body = _Body()
    body.read(message)
    charset = body.charset

    subject = " ".join(decode_words(_first(headers, "subject"), charset).split())
    sender_header, from_name, from_address = _sender(headers, charset)
    date, date_problem = _date(_first(headers, "date"))
    plain = "\n\n".join(chunk for chunk in body.plain if chunk.strip())
    raw_html = "\n".join(body.html)
    html = sanitize(raw_html) if raw_html.strip() else None
    report_type = ""
    if message.get_content_type() == "multipart/report":
        report_type = message.get_param("report-type", "").lower()
    report = _report(message, report_type, from_address, plain, raw_html, body)
    text, quoted = _split(plain, raw_html, keep_whole=report is not None or is_forward(subject))
    text = "\n\n".join(part for part in (text, *body.forwarded) if part)

    defects = [*body.defects]
    defects += [f"{type(d).__name__} in {part.get_content_type()}" for part in message.walk() for d in part.defects]
    if date_problem:
        defects.append(date_problem)
    content = [from_address, subject, date.isoformat() if date else _first(headers, "date"), plain, raw_html,
               *sorted(_payload_hash(a) for a in body.attachments)]
    return ParsedMail(
        message_id=_message_id(_first(headers, "message-id")),
        in_reply_to=extract_ids(" ".join(headers.get("in-reply-to", []))),
        references=extract_ids(" ".join(headers.get("references", []))),
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to=[addr for _, addr in _addresses(headers.get("to", []), charset)],
        cc=[addr for _, addr in _addresses(headers.get("cc", []), charset)],
        envelope_recipients=_unique(
            addr for name in _ENVELOPE_HEADERS for _, addr in _addresses(headers.get(name, []), charset)
        ),
        date=date,
        text=text,
        quoted_text=quoted,
        html=html,
        attachments=body.attachments,
        headers={name: " ".join(_decode_header(name, values[0], charset).split()) for name, values in headers.items()},
        content_hash=hashlib.sha256("\x00".join(content).encode("utf-8", "surrogatepass")).hexdigest(),
        report=report,
        defects=defects,
        message_id_aliases=extract_ids(" ".join(headers.get("x-microsoft-original-message-id", []))),
        read_receipt=report_type == "disposition-notification",
        sender_header=sender_header,
    )


def _report(message: Message, report_type: str, sender: str, plain: str, raw_html: str,
            body: _Body) -> DeliveryReport | None:
    """The delivery report of a DSN, or of a mailer daemon's prose bounce; None for anything else
    (read receipts included)."""
    if report_type == "delivery-status":
        return DeliveryReport(*reports.read_dsn(message))
    if not report_type and reports.is_robot_sender(sender):
        prose = plain or html_to_text(raw_html, mark_quote=False)
        return DeliveryReport(*reports.read_free_text("\n\n".join([prose, *body.copied_headers])))
    return None


def _split(plain: str, raw_html: str, keep_whole: bool) -> tuple[str, str]:
    """(new part, quoted history) from the plain text, or from the HTML when the mail has no plain text;
    `keep_whole` for bounces and forwards, whose "quote" is the point of the mail."""
    if plain.strip() or not raw_html.strip():
        return (plain.strip(), "") if keep_whole else split_reply(plain)
    if keep_whole:
        return html_to_text(raw_html, mark_quote=False), ""
    return split_at_mark(html_to_text(raw_html))


def compress(raw: bytes) -> bytes:
    """The raw message as kept for audit and re-parsing (zlib)."""
    # Level 1: a third of level 6's time on every received mail, for kept raw mail about a fifth bigger.
    return zlib.compress(raw, 1)


def decompress(kept: bytes) -> bytes:
    """The raw message back from `compress`."""
    return zlib.decompress(kept)


class _Body:
    """Walks the MIME tree: body text and HTML, attachments, forwarded messages, what could not be read."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.forwarded: list[str] = []  # forwarded messages (message/rfc822) as text: never a quote to hide
        self.copied_headers: list[str] = []  # headers of mail returned inside a bounce
        self.defects: list[str] = []
        # The charset the first text part declares: the sender's program wrote raw 8-bit headers in it too.
        self.charset: str | None = None

    def read(self, part: Message, in_report: bool = False) -> None:
        """Take in one part and its children. A part that trips the parser is kept as an attachment
        of its raw bytes, with the error among the defects, and the rest of the mail is still read."""
        try:
            self._read(part, in_report)
        except Exception as error:  # noqa: BLE001 - hostile input must not cost the rest of the mail
            ctype = part.get_content_type()
            self.defects.append(f"{ctype} could not be read ({type(error).__name__}: {error})")
            raw = _payload(part)
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
            self._attach(part, ctype, data)

    def _read(self, part: Message, in_report: bool) -> None:
        ctype = part.get_content_type()
        payload = _payload(part)
        if ctype in ("message/rfc822", "message/global") and isinstance(payload, list) and payload:
            self.copied_headers.append("".join(f"{k}: {v}\n" for k, v in payload[0].raw_items()))
            if in_report:
                self._attach(part, ctype, payload[0].as_bytes(), "original.eml")
            else:
                self._forwarded(payload[0])
        elif ctype == "multipart/alternative" and isinstance(payload, list):
            self._alternative(payload, in_report)
        elif isinstance(payload, list):
            in_report = in_report or ctype == "multipart/report"
            for child in payload:
                self.read(child, in_report)
        elif ctype.startswith("multipart/"):
            self._broken_multipart(part, ctype)
        elif in_report and ctype in _REPORT_PARTS:
            self.copied_headers.append(self._decoded_text(part, ctype))
        elif ctype == "text/html" and not _is_attachment(part):
            self.html.append(self._decoded_text(part, ctype))
        elif _transfer_encoding(part) in _UUENCODE:
            self._uuencoded(part, ctype)
        elif ctype == "text/plain" and not _is_attachment(part):
            text = self._decoded_text(part, ctype)
            if (part.get_param("format") or "").lower() == "flowed":
                text = _unflow(text, (part.get_param("delsp") or "").lower() == "yes")
            self.plain.append(self._uu_blocks(text))
        else:
            self._attach(part, ctype, part.get_payload(decode=True) or b"")

    def _uuencoded(self, part: Message, ctype: str) -> None:
        """A part sent with Content-Transfer-Encoding x-uuencode: a file, named by its `begin` line when the
        headers do not name it."""
        raw = _payload(part)
        raw = raw if isinstance(raw, str) else ""
        block = _UU_BLOCK.search(raw)
        if block:
            name = unescape_8bit(block[1].strip(), part.get_content_charset())
            ctype = ctype if ctype not in ("text/plain", "application/octet-stream") else _guess_type(name)
            self._attach(part, ctype, _uudecode(block[2]), name)
        else:
            self.defects.append(f"{ctype}: x-uuencode without a begin line, kept as it came")
            self._attach(part, ctype, raw.encode("utf-8", "surrogateescape"))

    def _uu_blocks(self, text: str) -> str:
        """The text without its uuencoded files (`begin 644 name` … `end`), which become attachments."""
        if "begin " not in text:
            return text

        def take(block: re.Match) -> str:
            name = block[1].strip()
            self.attachments.append(ParsedAttachment(filename=safe_filename(name) or "attachment.bin",
                                                     content_type=_guess_type(name), payload=_uudecode(block[2])))
            return ""

        rest, found = _UU_BLOCK.subn(take, text)
        return re.sub(r"\n{3,}", "\n\n", rest) if found else text

    def _decoded_text(self, part: Message, ctype: str) -> str:
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset()
        if charset is None and ctype == "text/html" and (meta := _META_CHARSET.search(data[:4096])):
            charset = meta[1].decode("ascii")  # HTML that declares its charset only inside itself
        self.charset = self.charset or charset
        text, problem = decode_bytes(data, charset)
        if problem:
            self.defects.append(f"{ctype}: {problem}")
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def _alternative(self, children: list[Message], in_report: bool) -> None:
        """Alternatives say the same thing: the last plain text and the last HTML among them count; the
        attachments of all of them (inline images of the HTML) are kept."""
        versions = []
        for child in children:
            version = _Body()
            version.read(child, in_report)
            versions.append(version)
            self.attachments += version.attachments
            self.forwarded += version.forwarded
            self.copied_headers += version.copied_headers
            self.defects += version.defects
            self.charset = self.charset or version.charset
        self.plain += next((v.plain for v in reversed(versions) if v.plain), [])
        self.html += next((v.html for v in reversed(versions) if v.html), [])

    def _forwarded(self, inner: Message) -> None:
        """A forwarded message: its headers and text become part of the text, its attachments ours."""
        version = _Body()
        version.read(inner)
        self.attachments += version.attachments
        self.defects += version.defects
        headers = _header_values(inner)
        lines = ["---------- Forwarded message ----------"]
        for label, name in (("From", "from"), ("Date", "date"), ("Subject", "subject"), ("To", "to")):
            if name in headers:
                lines.append(f"{label}: {' '.join(_decode_header(name, headers[name][0]).split())}")
        text = "\n\n".join(version.plain) or html_to_text("\n".join(version.html), mark_quote=False)
        self.forwarded.append("\n".join(lines) + "\n\n" + "\n\n".join([text.strip(), *version.forwarded]).strip())

    def _broken_multipart(self, part: Message, ctype: str) -> None:
        """A multipart whose boundary is missing or wrong: re-read it with the boundary its lines show;
        failing that, its body is read as text so nothing the customer wrote is lost."""
        data = part.get_payload(decode=True) or b""
        boundaries = [b for b in _BOUNDARY_LINE.findall(data) if not b.endswith(b"--")]
        boundary = max(set(boundaries), key=boundaries.count, default=None)
        if boundary:
            header = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
            repaired = BytesParser(policy=compat32).parsebytes(header + data)
            if isinstance(repaired.get_payload(), list):
                self.defects.append("multipart boundary repaired")
                for child in repaired.get_payload():
                    self.read(child)
                return
        self.defects.append(f"{ctype} without readable parts, read as text")
        self.plain.append(decode_bytes(data, part.get_content_charset())[0])

    def _attach(self, part: Message, ctype: str, payload: bytes, default_name: str | None = None) -> None:
        filename = (header_param(_raw_header(part, "content-disposition"), "filename", self.charset)
                    or header_param(_raw_header(part, "content-type"), "name", self.charset))
        if not filename:
            extension = mimetypes.guess_extension(ctype) or ".bin"
            filename = default_name or _DEFAULT_NAMES.get(ctype) or "attachment" + extension
        content_id = " ".join(unescape_8bit(_raw_header(part, "content-id") or "").split()).strip("<>") or None
        disposition = part.get_content_disposition()
        self.attachments.append(ParsedAttachment(
            filename=safe_filename(filename),
            content_type=ctype,
            payload=payload,
            content_id=content_id,
            inline=disposition != "attachment" and (content_id is not None or disposition == "inline"),
        ))


def _is_attachment(part: Message) -> bool:
    """True for a text part the sender attached as a file (disposition or a file name) rather than wrote."""
    disposition = part.get_content_disposition()
    if disposition == "attachment" or part.get_param("name") is not None:
        return True
    return disposition is not None and part.get_param("filename", header="content-disposition") is not None


def _payload(part: Message):
    """The part's payload as the parser holds it (children, or text with raw 8-bit bytes as surrogates); the
    standard library raises for 8-bit text under a charset label it cannot look up (one with a NUL in it)."""
    try:
        return part.get_payload()
    except (ValueError, LookupError):
        return (part.get_payload(decode=True) or b"").decode("ascii", "surrogateescape")


def _transfer_encoding(part: Message) -> str:
    return str(part.get("content-transfer-encoding", "")).strip().lower()


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _uudecode(body: str) -> bytes:
    """The bytes of a uuencoded block's lines; a line with trailing garbage or lost padding (mail
    programs strip trailing spaces) is read as far as it goes."""
    out = bytearray()
    for line in body.splitlines():
        if not line or line in ("`", " "):
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            length = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
            try:
                out += binascii.a2b_uu(line[:length].ljust(length))
            except binascii.Error:
                continue
    return bytes(out)


def _payload_hash(attachment: ParsedAttachment) -> str:
    """SHA-256 of an attachment; text ones with line endings normalised, as servers store mail with either."""
    payload = attachment.payload
    if attachment.content_type.startswith("text/") or attachment.content_type == "message/rfc822":
        payload = payload.replace(b"\r\n", b"\n")
    return hashlib.sha256(payload).hexdigest()


def _unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676), the way Thunderbird and Apple send it.

    A line ending in a space continues on the next line of the same quote depth."""
    out: list[str] = []
    carry, carry_depth = None, 0

    def emit(content: str, depth: int) -> None:
        out.append(">" * depth + (" " if depth and content else "") + content)

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content[1:] if content.startswith(" ") else content  # space-stuffing
        if carry is not None and depth != carry_depth:
            emit(carry, carry_depth)
            carry = None
        joined = content if carry is None else carry + content
        if content.endswith(" ") and content != "-- ":
            carry, carry_depth = (joined[:-1] if delsp else joined), depth
        else:
            emit(joined, depth)
            carry = None
    if carry is not None:
        emit(carry, carry_depth)
    return "\n".join(out)


def _header_values(message: Message) -> dict[str, list[str]]:
    """Lower-case header name -> its values in order, unfolded, raw 8-bit bytes still as surrogates."""
    values: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        values.setdefault(name.strip().lower(), []).append(re.sub(r"\r?\n(?=[ \t])", "", str(value)).strip())
    return values


def _raw_header(part: Message, name: str) -> str | None:
    return next((str(value) for key, value in part.raw_items() if key.lower() == name), None)


def _first(headers: dict[str, list[str]], name: str) -> str:
    return headers.get(name, [""])[0]


def _addresses(values: list[str], charset: str | None = None) -> list[tuple[str, str]]:
    """(decoded display name, lower-case addr-spec) of every address in the headers, in order, deduplicated.

    Encoded words are decoded in display names only, and not when that would make a name look like an address:
    one inside an addr-spec (`=?utf-8?q?boss=40shop.example?=@evil.example`) or an encoded address as the name is
    a trick to show another address than the one the mail came from, and stays as it came."""
    found: list[tuple[str, str]] = []
    if not values:
        return found
    for name, addr in getaddresses([unescape_8bit(value, charset) for value in values]):
        addr = addr.strip().strip("<>").lower()
        if "@" in addr and addr not in (a for _, a in found):
            shown = decode_words(name, charset)
            if "@" in shown and "@" not in name:  # a name that decodes into an address shows as it came
                shown = name
            found.append((" ".join(shown.split()).strip("\"' "), addr))
    return found


def _sender(headers: dict[str, list[str]], charset: str | None) -> tuple[str, str, str]:
    """(header it came from, display name, address) of the mail's sender: From, else Sender, Reply-To,
    Return-Path (mail without From is sent by scripts and scanners, and still has someone behind it)."""
    for name in _SENDER_HEADERS:
        found = _addresses(headers.get(name, []), charset)
        if found:
            return name, *found[0]
    return "", "", ""


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
# An encoded word that is part of an addr-spec: touching an "@" or a dot of the address, or inside <...>.
_WORD_IN_ADDRESS = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=(?=[@.])|(?<=[@.])=\?[^?\s]+\?[bBqQ]\?[^?]*\?=|<[^<>]*>")


def _decode_header(name: str, value: str, charset: str | None = None) -> str:
    """A header's value decoded for reading; in address headers the addresses, and encoded words that would
    read as one, are left as they came (see _addresses)."""
    if name not in _ADDRESS_HEADERS or "=?" not in value:
        return decode_words(value, charset)
    kept: list[str] = []

    def keep(match: re.Match) -> str:
        kept.append(match[0])
        return f"\ue000{len(kept) - 1}\ue001"

    def keep_address_like(match: re.Match) -> str:
        return keep(match) if "@" in decode_words(match[0]) else match[0]

    masked = _WORD_IN_ADDRESS.sub(keep, unescape_8bit(value, charset))
    masked = _ENCODED_WORD.sub(keep_address_like, masked)
    return re.sub("\ue000(\\d+)\ue001", lambda m: kept[int(m[1])], decode_words(masked, charset))


def _unique(addresses) -> list[str]:
    return list(dict.fromkeys(addresses))


def _message_id(value: str) -> str | None:
    """The Message-ID without brackets; also the bare ones some broken mailers send."""
    ids = extract_ids(value)
    if ids:
        return ids[-1]  # extract_ids lists newest first; a Message-ID header has one, the first written
    value = value.strip()
    return value if value and " " not in value and "@" in value else None


def _date(value: str) -> tuple[datetime | None, str | None]:
    """(aware UTC date, problem) of a Date header; a missing zone is taken as UTC."""
    if not value.strip():
        return None, "no Date header"
    try:
        date = parsedate_to_datetime(unescape_8bit(value))
        if date.tzinfo is None:
            date = date.replace(tzinfo=timezone.utc)
        return date.astimezone(timezone.utc), None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, f"unreadable Date header: {value[:80]}"
