"""Payment card numbers masked, and text staff mark as sensitive redacted, in stored messages and raw copies.

Which numbers count as card numbers: 13 to 19 digits (single spaces or dashes between them allowed) that pass
the Luhn check and start like a card issuer's number (Visa 4; Mastercard 51–55 and 2221–2720; American Express
34/37; Discover 6011, 644–649, 65; JCB 3528–3589; Diners 300–305, 36, 38–39; Maestro and UnionPay 50, 56–69).
IMEIs are 15 digits and Luhn-valid too, and many start with 35 or 86, so a 15-digit number counts only as an
American Express number, and no number right after the word "IMEI" counts. Digits glued to letters ("PL61...",
an order reference) and 26-digit runs (Polish bank account numbers) are left alone. A card number followed by its
expiry date and code in the same run of digit groups is still found. All but the last four digits become "*";
the separators stay, so staff still see the number's shape.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes
from email.header import Header
from email.message import Message as MimeMessage
from email.policy import compat32

from .charsets import decode_bytes, decode_words

MASK = "*"
REDACTED = "[redacted]"
# A run of digits with at most one separator (space, dash, no-break space, &nbsp; in HTML) between them, not
# glued to a word ("PL61 1090 ..." is a bank account, "x4111..." a reference); only runs long enough to hold a
# card number (13 digits), so the dates, prices and phone numbers of every mail never reach Python code.
_SEPARATOR = r"(?:[ \-\u00a0]|&nbsp;)"
# (The look-behind comes after the first digit: a pattern that starts with a digit is scanned for in C.)
_RUN = re.compile(rf"\d(?<![\w*]\d)(?:{_SEPARATOR}?\d){{12,}}")
BANK_ACCOUNT_DIGITS = 26  # a Polish account number (NRB, or an IBAN without "PL"): never a card
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_IMEI_BEFORE = re.compile(r"imei\W{0,5}$", re.IGNORECASE)
_ISSUER_PREFIXES = (
    ("4",), tuple(str(n) for n in range(51, 56)), tuple(str(n) for n in range(2221, 2721)), ("34", "37"),
    ("6011", "65") + tuple(str(n) for n in range(644, 650)), tuple(str(n) for n in range(3528, 3590)),
    ("36", "38", "39") + tuple(str(n) for n in range(300, 306)), ("50",) + tuple(str(n) for n in range(56, 70)),
)
ISSUER_PREFIXES = tuple(prefix for group in _ISSUER_PREFIXES for prefix in group)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn (mod 10) check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """Whether a string of digits (no separators) looks like a payment card number; see the module docstring."""
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    if len(digits) == 15:  # the length of every IMEI: only American Express cards have it too
        return digits.startswith(("34", "37"))
    return digits.startswith(ISSUER_PREFIXES)


def mask_card_numbers(text: str | None) -> str | None:
    """`text` with every card number's digits but the last four replaced by "*" (None stays None).

    A run of 13–19 digits is checked whole; a longer one (a card number followed by its expiry date and code,
    "4111 1111 1111 1111 12 27 123") by its beginnings that end where a group ends, longest first.
    """
    if not text:
        return text

    def mask(match: re.Match) -> str:
        run = match.group()
        if _IMEI_BEFORE.search(text, 0, match.start()):
            return run
        for end in _card_lengths(run):
            digits = re.sub(r"\D", "", run[:end].replace("&nbsp;", " "))
            if is_card_number(digits):
                return _masked(run[:end], len(digits) - 4) + run[end:]
        return run

    return _RUN.sub(mask, text)


def _card_lengths(run: str) -> list[int]:
    """Where a card number may end in a run of digits: the whole run, or a group's end, within 13–19 digits."""
    ends, count = [], 0
    for index, char in enumerate(run):
        if char.isdigit():
            count += 1
            at_group_end = index + 1 == len(run) or not run[index + 1].isdigit()
            if 13 <= count <= 19 and at_group_end:
                ends.append(index + 1)
    if count == BANK_ACCOUNT_DIGITS:
        return []
    return ends[::-1]


def _masked(number: str, hidden: int) -> str:
    """The first `hidden` digits of `number` as "*", separators kept."""
    out = []
    for char in number:
        if char.isdigit() and hidden > 0:
            out.append(MASK)
            hidden -= 1
        else:
            out.append(char)
    return "".join(out)


def sensitive_pattern(selected: str) -> re.Pattern | None:
    """A pattern finding what staff selected in a message, however its whitespace was laid out (the browser's
    selection joins lines and collapses spaces); None when the selection has no words."""
    words = selected.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(word) for word in words))


def rewrite_raw_mail(raw: bytes, change: Callable[[str], str]) -> bytes:
    """The raw mail with `change` applied to the decoded text of its Subject and of every text part (forwarded
    mails included), each part changed re-encoded as UTF-8; the same bytes when `change` changed nothing.

    Searching the raw bytes would miss text in quoted-printable or base64 parts, which is how most mail
    clients send anything with a Polish letter. Texts are decoded the way the parser decodes them (8-bit
    headers, mislabelled charsets), so `change` sees what staff saw.
    """
    mime = message_from_bytes(raw, policy=compat32)
    changed = False
    for part in mime.walk():
        raw_subject = next((str(value) for name, value in part.raw_items() if name.lower() == "subject"), None)
        if raw_subject is not None:
            subject = " ".join(decode_words(_UNFOLD.sub("", raw_subject)).split())
            new = change(subject)
            if new != subject:
                part.replace_header("subject", Header(new, "utf-8"))
                changed = True
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        changed |= _rewrite_text_part(part, change)
    return mime.as_bytes() if changed else raw


def _rewrite_text_part(part: MimeMessage, change: Callable[[str], str]) -> bool:
    text, _problem = decode_bytes(part.get_payload(decode=True) or b"", part.get_content_charset())
    new = change(text)
    if new == text:
        return False
    del part["content-transfer-encoding"]
    part.set_payload(new, "utf-8")  # sets the charset and a transfer encoding that fits
    return True


def mask_raw_mail(raw: bytes) -> bytes:
    """The raw mail with card numbers masked in its subject and text parts; a mail too broken to rewrite part by
    part is masked byte for byte instead (Latin-1 keeps every byte), so no card number is kept either way."""
    try:
        return rewrite_raw_mail(raw, mask_card_numbers)
    except Exception:  # noqa: BLE001 - whatever broke the rewrite, the mail must still be kept
        return mask_card_numbers(raw.decode("latin-1")).encode("latin-1")


def mask_parsed_mail(mail) -> bool:
    """Mask card numbers in a parsed mail's stored texts (subject, text, quoted text, HTML) in place; returns
    whether there was any, so the caller knows to mask the raw copy too (mask_raw_mail)."""
    found = False
    for name in ("subject", "text", "quoted_text", "html"):
        value = getattr(mail, name)
        masked = mask_card_numbers(value)
        if masked != value:
            setattr(mail, name, masked)
            found = True
    return found
