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
# A Polish letter read in the wrong single-byte charset shows up as one of these (ł as ³, ą as ¹ or ±...);
# in Windows-1252 a word ending in ę, ń or ć ("się", "dzień", "być") ends in ê, ñ or æ, which no Western
# language's words do.
_MOJIBAKE = re.compile(r"[A-Za-z][¹³¿¥¯±¶¼¡¦¬]|[¹³¿¥¯±¶¼¡¦¬][a-z]|[\x80-\x9f]|[a-z][êñæ](?![^\W\d_])")
# What charset-normalizer chooses among when nothing declared fits: the code pages mail is really written in.
_GUESSES = ["cp1250", "iso8859_2", "cp1252", "iso8859_15", "cp1251", "koi8_r", "koi8_u", "iso8859_5", "cp1257",
            "iso8859_13", "cp1253", "cp1254", "cp1255", "cp1256", "gb18030", "cp932", "euc_jp", "cp949",
            "big5hkscs", "utf_16"]
# A declared charset is read as the superset the sender's mail program really writes (the WHATWG Encoding
# Standard's choices): Outlook and webmail label Windows code pages with the older standards' names.
_SAMPLE = 4096  # bytes a guess looks at
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949", "big5": "big5hkscs",
              "latin_1": "cp1252", "iso8859_1": "cp1252", "ascii": "cp1252", "tis_620": "cp874",
              "iso8859_9": "cp1254", "iso8859_11": "cp874"}
_ALIASES = {"x-user-defined": "cp1252", "unknown-8bit": "", "x-unknown": "", "utf8": "utf-8",
            "iso-8859-8-i": "iso8859_8", "x-sjis": "cp932", "windows-31j": "cp932", "ks_c_5601": "cp949",
            "windows-874": "cp874", "x-gbk": "gb18030", "x-euc-jp": "euc_jp", "x-mac-roman": "mac_roman",
            "cn-big5": "big5hkscs", "x-x-big5": "big5hkscs"}
# The escape sequences of ISO-2022-JP (and its relatives): 7-bit text that is not ASCII.
_ISO2022_ESCAPE = re.compile(rb"\x1b(?:\$[@B]|\$\([@BDOPQ]|\([BJI])")
_ISO2022_SEGMENT = re.compile(rb"(\x1b(?:\$[@B]|\$\([@BDOPQ]|\([BJI]))")

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")


def codec_name(charset: str | None) -> str | None:
    """Python's name for the charset to read a declared one with (`utf-8*pl` and quotes tolerated): its
    superset (GB2312 → GB18030, Shift_JIS → CP932, ISO-8859-1 → Windows-1252...), or None when unknown."""
    name = (charset or "").strip().strip("\"'").split("*")[0].lower()
    name = _ALIASES.get(name, name)
    if not name:
        return None
    try:
        codec = codecs.lookup(name).name.replace("-", "_")
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    return _SUPERSETS.get(codec, codec)


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, str | None]:
    """(text, problem): the bytes read with the declared charset (as its superset) when it fits, else with
    the charset they really are in: UTF-8 when they are valid UTF-8, else charset-normalizer's guess.

    `problem` says what was wrong with the declaration, None when it was right. Never raises: the last
    resort replaces what cannot be read.
    """
    declared = codec_name(charset)
    if data.isascii():
        if b"\x1b" in data and (declared or "").startswith("iso2022") or _ISO2022_ESCAPE.search(data):
            return decode_iso2022(data, declared), None
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
    if declared:
        try:
            text = data.decode(declared)
        except UnicodeDecodeError:
            pass
        else:
            if not (_single_byte(declared) and _MOJIBAKE.search(text)):
                return text, f"declared {charset}, read as cp1252" if _is_ascii_label(charset) else None
            # Garbled Polish (ł as ³, "się" as "siê"): a Polish text under a Western label.
            if (polish := _polish_codepage(data)) is not None:
                return data.decode(polish, errors="replace"), f"declared {charset}, read as {polish}"
    guess = _guess(data)
    problem = f"declared {charset}, read as {guess}" if charset else None
    return data.decode(guess, errors="replace"), problem


def _is_ascii_label(charset: str | None) -> bool:
    """True for a US-ASCII label (which 8-bit text never fits: a mislabel, not a choice)."""
    try:
        return codecs.lookup((charset or "").strip().strip("\"'").split("*")[0]).name == "ascii"
    except (LookupError, ValueError):
        return False


def _single_byte(codec: str) -> bool:
    return codec.startswith(("iso8859", "cp12", "latin", "koi8", "mac", "cp874"))


def _guess(data: bytes) -> str:
    """The charset the bytes most likely are in, by charset-normalizer. A short text fits many code pages,
    and a Polish shop's mail is mostly Polish: when a Polish code page is among its candidates and reads the
    bytes as clean Polish (Polish letters, no other accented ones, no mojibake), it wins; it also decides
    between Windows-1250 and ISO-8859-2, which charset-normalizer cannot tell apart."""
    sample = data[:_SAMPLE]  # the start of a long text tells as much, in a fraction of the time
    matches = [codec_name(m.encoding) for m in charset_normalizer.from_bytes(sample, cp_isolation=_GUESSES)]
    if not matches or "cp1250" in matches or "iso8859_2" in matches:
        polish = _polish_codepage(sample)
        if polish is not None:
            return polish
    return matches[0] if matches else "cp1252"


def _polish_codepage(data: bytes) -> str | None:
    """Windows-1250 or ISO-8859-2, whichever reads the bytes as clean Polish; None when neither does."""
    sample = data[:_SAMPLE]
    scores = {codec: _polish_score(sample.decode(codec, errors="replace")) for codec in ("cp1250", "iso8859_2")}
    best = max(scores, key=lambda codec: scores[codec])  # ties go to Windows-1250, the commoner one
    return best if scores[best] > 0 else None


def _polish_score(text: str) -> int:
    polish = sum(ch in _POLISH for ch in text)
    foreign = sum(1 for ch in text if ch.isalpha() and not ch.isascii() and ch not in _POLISH and ch not in "óÓ")
    return polish - foreign - 3 * len(_MOJIBAKE.findall(text)) - 3 * text.count("\ufffd")


def decode_iso2022(data: bytes, declared: str | None = None) -> str:
    """ISO-2022-JP text (7-bit, switched by escape sequences) as Microsoft's and Japanese mail programs
    write it: JIS X 0208 with the NEC and IBM extensions (read through CP932), half-width katakana
    (`ESC ( I`), JIS X 0212 and 0213. Other ISO-2022 charsets (KR, CN) go to Python's codec."""
    if declared and declared.startswith("iso2022") and not declared.startswith("iso2022_jp"):
        return data.decode(declared, errors="replace")
    out: list[str] = []
    mode = b"\x1b(B"
    for piece in _ISO2022_SEGMENT.split(data):
        if _ISO2022_SEGMENT.fullmatch(piece):
            mode = piece
            continue
        if not piece:
            continue
        if mode in (b"\x1b(B", b"\x1b(J"):
            out.append(piece.decode("ascii", errors="replace"))
        elif mode == b"\x1b(I":
            out.append(bytes(b | 0x80 for b in piece).decode("cp932", errors="replace"))
        elif mode in (b"\x1b$B", b"\x1b$@", b"\x1b$(B", b"\x1b$(@"):
            out.append(_jis_to_sjis(piece).decode("cp932", errors="replace"))
        elif mode == b"\x1b$(D":
            out.append(b"".join(b"\x8f" + bytes(b | 0x80 for b in piece[i:i + 2])
                                for i in range(0, len(piece) - 1, 2)).decode("euc_jp", errors="replace"))
        else:  # JIS X 0213
            out.append(bytes(b | 0x80 for b in piece).decode("euc_jis_2004", errors="replace"))
    return "".join(out)


def _jis_to_sjis(piece: bytes) -> bytes:
    """JIS X 0208 byte pairs as Shift_JIS, so that CP932 (which holds the vendors' extra characters) reads them."""
    out = bytearray()
    for i in range(0, len(piece) - 1, 2):
        j1, j2 = piece[i], piece[i + 1]
        if j1 in (0x0a, 0x0d):  # a line break inside a two-byte run: broken, but keep the line
            out.append(j1)
            continue
        s1 = (j1 + 1) // 2 + 0x70
        s1 += 0x40 if s1 >= 0xA0 else 0
        s2 = j2 + (0x1F + (j2 >= 0x60) if j1 % 2 else 0x7E)
        out += bytes((s1 & 0xFF, s2 & 0xFF))
    return bytes(out)


def unescape_8bit(value: str, charset: str | None = None) -> str:
    """A header value as the parser gave it, with raw 8-bit bytes (kept as surrogates) decoded: with
    `charset` (the body's declared one, which the sender's program also wrote the headers in) before any
    guess; and raw ISO-2022-JP (escape sequences without encoded words, as Japanese programs send it)."""
    if "\x1b" in value:
        value = _unescape_iso2022(value)
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return decode_bytes(value.encode("ascii", "surrogateescape"), charset)[0]


def _unescape_iso2022(value: str) -> str:
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # already decoded text around the escapes: leave it
        return value
    if not data.isascii() or not _ISO2022_ESCAPE.search(data):  # 8-bit bytes: not ISO-2022
        return value
    return decode_iso2022(data)


def decode_words(value: str, charset: str | None = None) -> str:
    """A header value with its RFC 2047 encoded words decoded (also the broken ones real mail has:
    words inside quotes, UTF-8 characters split across two words, missing base64 padding, bad charsets);
    raw 8-bit text outside them read as `unescape_8bit` does."""
    value = unescape_8bit(value, charset)
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


def header_param(value: str | None, name: str, charset: str | None = None) -> str | None:
    """A parameter of a structured header (`filename` of Content-Disposition, `name` of Content-Type),
    decoded: RFC 2231 (`filename*=utf-8''...`, continuations), RFC 2047 words, raw 8-bit (in `charset`, the
    body's, before any guess)."""
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
        return _rfc2231([(params[name + "*"], True)], charset)
    sections = sorted(
        (int(m[2]), raw, bool(m[3])) for key, raw in params.items() if (m := _SECTION.match(key)) and m[1] == name
    )
    if sections:
        return _rfc2231([(raw, encoded) for _, raw, encoded in sections], charset)
    if name in params:
        return decode_words(params[name], charset).strip()
    return None


def _rfc2231(pieces: list[tuple[str, bool]], fallback: str | None = None) -> str:
    """Join RFC 2231 sections; the first encoded one carries `charset'language'`."""
    charset, data = None, b""
    for index, (raw, encoded) in enumerate(pieces):
        if encoded:
            if index == 0 and raw.count("'") >= 2:
                charset, _language, raw = raw.split("'", 2)
            data += unquote_to_bytes(raw.encode("ascii", "surrogateescape"))
        else:
            data += raw.encode("ascii", "surrogateescape")
    return decode_words(decode_bytes(data, charset or fallback)[0]).strip()
