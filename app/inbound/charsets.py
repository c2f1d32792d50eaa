"""Mail bytes and header words to text, whatever charset a mail program declared (or got wrong)."""
from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from urllib.parse import unquote_to_bytes

import charset_normalizer

_POLISH = set("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")
# A Polish letter read in the wrong single-byte charset shows up as one of these (ł as ³, ą as ¹ or ±...).
_MOJIBAKE = re.compile(r"[A-Za-z][¹³¿¥¯±¶¼¡¦¬]|[¹³¿¥¯±¶¼¡¦¬][a-z]|[\x80-\x9f]")
# Charsets worth trying when the declaration is missing or wrong, for mail from Poland and its neighbours.
_GUESSES = ["cp1252", "iso8859_15", "cp1251", "koi8_r", "iso8859_5", "cp1250", "iso8859_2", "utf_16"]
_ALIASES = {"x-user-defined": "cp1252", "unknown-8bit": "", "x-unknown": "", "utf8": "utf-8",
            "iso-8859-8-i": "iso8859_8"}

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")


def codec_name(charset: str | None) -> str | None:
    """Python's name for a declared charset (`utf-8*pl` and quotes tolerated), or None when unknown."""
    name = (charset or "").strip().strip("\"'").split("*")[0].lower()
    name = _ALIASES.get(name, name)
    if not name:
        return None
    try:
        return codecs.lookup(name).name.replace("-", "_")
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, str | None]:
    """(text, problem): the bytes read with the declared charset when it fits, else with the charset they
    really are in (UTF-8 first, then Polish single-byte charsets, then charset-normalizer's guess).

    `problem` says what was wrong with the declaration, None when it was right. Never raises: the last
    resort replaces what cannot be read.
    """
    declared = codec_name(charset)
    if data.isascii():
        return data.decode("ascii"), None
    if declared and declared.startswith(("utf_16", "utf_32")):
        try:
            return data.decode(declared), None
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:  # non-ASCII bytes that happen to be valid UTF-8 are UTF-8, whatever the label says
        return text, None if declared in (None, "utf_8") else f"declared {charset}, read as utf-8"
    if declared and declared != "ascii":
        try:
            text = data.decode(declared)
        except UnicodeDecodeError:
            pass
        else:
            if not (_single_byte(declared) and _MOJIBAKE.search(text)):
                return text, None
    guess = _guess(data)
    problem = f"declared {charset}, read as {guess}" if charset else None
    return data.decode(guess, errors="replace"), problem


def _single_byte(codec: str) -> bool:
    return codec.startswith(("iso8859", "cp12", "latin", "koi8", "mac"))


def _guess(data: bytes) -> str:
    """The single-byte charset the bytes most likely are in: Polish letters decide between Windows-1250
    and ISO-8859-2, charset-normalizer between the rest."""
    scores = {}
    for codec in ("cp1250", "iso8859_2"):
        text = data.decode(codec, errors="replace")
        scores[codec] = sum(ch in _POLISH for ch in text) - 3 * len(_MOJIBAKE.findall(text)) - 3 * text.count("\ufffd")
    best = max(scores, key=lambda codec: scores[codec])  # ties go to Windows-1250, the commoner one
    if scores[best] > 0:
        return best
    match = charset_normalizer.from_bytes(data, cp_isolation=_GUESSES).best()
    return codec_name(match.encoding) if match else "cp1250"


def unescape_8bit(value: str) -> str:
    """A header value as the parser gave it, with raw 8-bit bytes (kept as surrogates) decoded."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return decode_bytes(value.encode("ascii", "surrogateescape"))[0]


def decode_words(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded (also the broken ones real mail has:
    words inside quotes, UTF-8 characters split across two words, missing base64 padding, bad charsets)."""
    value = unescape_8bit(value)
    if "=?" not in value:
        return value
    value = _BETWEEN_WORDS.sub("", value)
    out: list[str] = []
    pending: list[tuple[str | None, bytes]] = []  # adjacent words are joined before decoding

    def flush():
        if pending:
            out.append(decode_bytes(b"".join(chunk for _, chunk in pending), pending[0][0])[0])
            pending.clear()

    position = 0
    for match in _ENCODED_WORD.finditer(value):
        if match.start() > position:
            flush()
            out.append(value[position : match.start()])
        charset, encoding, payload = match.groups()
        chunk = _decode_word(encoding, payload)
        if pending and pending[0][0] != charset.lower():
            flush()
        pending.append((charset.lower(), chunk))
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def _decode_word(encoding: str, payload: str) -> bytes:
    if encoding in "qQ":
        return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        return payload.encode("ascii", "replace")


_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_SECTION = re.compile(r"^(.+?)\*(\d+)(\*?)$")


def header_param(value: str | None, name: str) -> str | None:
    """A parameter of a structured header (`filename` of Content-Disposition, `name` of Content-Type),
    decoded: RFC 2231 (`filename*=utf-8''...`, continuations), RFC 2047 words, raw 8-bit."""
    if not value:
        return None
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:])
        params.setdefault(key.lower(), raw)
    name = name.lower()
    if name + "*" in params:
        return _rfc2231([(params[name + "*"], True)])
    sections = sorted(
        (int(m[2]), raw, bool(m[3])) for key, raw in params.items() if (m := _SECTION.match(key)) and m[1] == name
    )
    if sections:
        return _rfc2231([(raw, encoded) for _, raw, encoded in sections])
    if name in params:
        return decode_words(params[name]).strip()
    return None


def _rfc2231(pieces: list[tuple[str, bool]]) -> str:
    """Join RFC 2231 sections; the first encoded one carries `charset'language'`."""
    charset, data = None, b""
    for index, (raw, encoded) in enumerate(pieces):
        if encoded:
            if index == 0 and raw.count("'") >= 2:
                charset, _language, raw = raw.split("'", 2)
            data += unquote_to_bytes(raw.encode("ascii", "surrogateescape"))
        else:
            data += raw.encode("ascii", "surrogateescape")
    return decode_words(decode_bytes(data, charset or None)[0]).strip()
