"""Writing an outgoing mail's bytes directly: 7-bit headers (RFC 2047 words, RFC 2231 file names, folded lines),
quoted-printable text and HTML, base64 attachments.

The standard library's `EmailMessage` parses every header it is given and folds it again on output, which cost
more than everything else the dispatcher does for a mail. Our mails have one fixed shape (text and HTML,
optionally in a multipart/mixed with files), so they are written here in one go, and parsed back by the
standard library in the tests.
"""
from __future__ import annotations

import binascii
import re
import secrets
import string
from dataclasses import dataclass
from email.utils import formataddr
from functools import lru_cache
from urllib.parse import quote

LINE = 78  # the length RFC 5322 asks header lines to keep to
CRLF = "\r\n"

_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]+")  # a MIME type or subtype we write as given
_PLAIN_FILENAME = re.compile(r"[A-Za-z0-9 ._()+-]{1,60}")  # needs neither encoding nor quoting of its own
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_PERCENT_ESCAPE = 3  # "%C4": an RFC 2231 continuation must not split one
_WORD_LENGTH = 75  # an RFC 2047 encoded word's limit
_WORD_OVERHEAD = len("=?utf-8?q??=")
_Q_LITERAL = frozenset(string.ascii_letters + string.digits + "!*+-/")


@dataclass(frozen=True)
class File:
    """An attachment as it goes into the mail."""

    filename: str
    content_type: str  # "application/pdf"; anything that is not type/subtype is sent as application/octet-stream
    data: bytes


def header(name: str, value: str) -> str:
    """`Name: value` for a header of free text (Subject, Thread-Topic): RFC 2047 words for anything that is not
    ASCII, folded to LINE characters."""
    if _plain(value) and len(name) + 2 + len(value) <= LINE:
        return f"{name}: {value}"
    return f"{name}: " + encoded_words(value, LINE - len(name) - 2)


def address(display_name: str, addr_spec: str) -> str:
    """`Name <addr>`, the name quoted when it needs it and in RFC 2047 words when it is not ASCII."""
    if not display_name:
        return addr_spec
    if _plain(display_name):
        return formataddr((display_name, addr_spec))
    prefix = len("Reply-To: ")  # the longest header this is used in
    name = encoded_words(display_name, LINE - prefix)
    used = len(name.rpartition(CRLF)[2]) + (0 if CRLF in name else prefix)  # of the line the address would end
    separator = " " if used + len(f" <{addr_spec}>") <= LINE else CRLF + " "
    return f"{name}{separator}<{addr_spec}>"


def encoded_words(text: str, room: int) -> str:
    """`text` as RFC 2047 words ("Q" encoding of UTF-8), the first within `room` characters, the others on
    folded lines of their own. A word never splits a character, and keeps to the 75 characters RFC 2047 allows.

    Written here because email.header.Header, which tries both encodings and measures every candidate line, cost
    more than all the rest of a mail's headers.
    """
    words, word = [], ""
    payload = min(room, _WORD_LENGTH) - _WORD_OVERHEAD
    for char in text:
        piece = _q_encoded(char)
        if word and len(word) + len(piece) > payload:
            words.append(f"=?utf-8?q?{word}?=")
            word, payload = "", min(LINE - 1, _WORD_LENGTH) - _WORD_OVERHEAD  # after the folding space
        word += piece
    words.append(f"=?utf-8?q?{word}?=")
    return (CRLF + " ").join(words)


@lru_cache(maxsize=4096)  # keyed on one character: a shop's alphabet, so it stays small
def _q_encoded(char: str) -> str:
    """One character in RFC 2047's "Q" encoding, as allowed in a phrase (RFC 2047 5.3): its UTF-8 bytes as =XX
    unless a letter, digit or one of !*+-/; a space as "_"."""
    if char in _Q_LITERAL:
        return char
    if char == " ":
        return "_"
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def _plain(text: str) -> bool:
    """ASCII that a mail program would not read as an RFC 2047 word ("=?utf-8?q?...?=") written by us."""
    return text.isascii() and "=?" not in text


def folded(name: str, items: list[str], separator: str = "") -> str:
    """`Name: a, b, c` (with separator ",") or `Name: <a> <b>` (References), starting a new line before an item
    that would pass LINE characters."""
    lines, line = [], f"{name}:"
    for number, item in enumerate(items):
        piece = " " + item + (separator if number < len(items) - 1 else "")
        if len(line) + len(piece) > LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return CRLF.join(lines)


def mail_bytes(headers: list[str], text: str, html: str, files: list[File] = (), *,
               encoding: str = "ascii") -> bytes:
    """The whole mail: `headers` (complete lines, from the helpers above), then multipart/alternative of `text`
    and `html`, inside a multipart/mixed with `files` when there are any.

    `encoding` is "utf-8" only for a mail sent with SMTPUTF8, whose address headers may carry UTF-8.
    """
    alternative = _multipart("alternative", [_text_part("plain", text), _text_part("html", html)])
    body = alternative if not files else _multipart("mixed", [alternative, *map(_file_part, files)])
    head = CRLF.join([*headers, "MIME-Version: 1.0"]).encode(encoding)
    return head + b"\r\n" + body


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    # "=_" cannot occur in quoted-printable or base64 text, so the boundary cannot clash with a part.
    boundary = "=_" + secrets.token_hex(12)
    delimiter = f"\r\n--{boundary}\r\n".encode()
    return (f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n'.encode()
            + delimiter + delimiter.join(parts) + f"\r\n--{boundary}--\r\n".encode())


def _text_part(subtype: str, text: str) -> bytes:
    # Quoted-printable keeps the part 7-bit, for servers that do not take 8BITMIME; every line ends in CRLF
    # (b2a_qp copies the first line ending it finds, also into its soft line breaks).
    data = _LINE_BREAKS.sub(CRLF, text).rstrip(CRLF) + CRLF
    encoded = binascii.b2a_qp(data.encode("utf-8"), istext=True)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + encoded.rstrip(b"\r\n")


def _file_part(file: File) -> bytes:
    maintype, _slash, subtype = file.content_type.partition("/")
    if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
        maintype, subtype = "application", "octet-stream"
    encoded = binascii.b2a_base64(file.data, newline=False)
    lines = b"\r\n".join(encoded[start:start + 76] for start in range(0, len(encoded), 76))
    return (f"Content-Type: {maintype}/{subtype}\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment;{_filename(file.filename)}\r\n\r\n").encode() + lines


def _filename(name: str) -> str:
    """The filename parameter(s), each on a line of its own: quoted as it is when short and plain, else as RFC 2231
    continuations of the percent-encoded UTF-8 (how Polish letters and long names travel in 7 bits)."""
    name = name.replace("\r", " ").replace("\n", " ")
    if _PLAIN_FILENAME.fullmatch(name):
        return f'\r\n filename="{name}"'
    encoded = "utf-8''" + quote(name, safe="")
    chunks, start = [], 0
    while start < len(encoded):
        end = min(start + 60, len(encoded))
        percent = encoded.rfind("%", end - _PERCENT_ESCAPE + 1, end)
        if percent != -1 and end < len(encoded):
            end = percent  # keep an escape whole
        chunks.append(encoded[start:end])
        start = end
    if len(chunks) == 1:
        return f"\r\n filename*={chunks[0]}"
    return ";".join(f"\r\n filename*{number}*={chunk}" for number, chunk in enumerate(chunks))
