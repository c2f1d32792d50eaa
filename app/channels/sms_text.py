"""What an SMS says and costs: how a text is encoded (GSM-7 or UCS-2) and split into parts, its variant without
Polish letters, and the text of a message. The compose form's live counter and the sender both use it."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..formatting import markdown_to_text

if TYPE_CHECKING:
    from ..models import Message

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + septet: two each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE_LIMIT = {"GSM-7": 160, "UCS-2": 70}
PART_LIMIT = {"GSM-7": 153, "UCS-2": 67}  # the rest of each part carries the concatenation header
MAX_BODY = 1600  # characters Twilio accepts in one message body

POLISH_TO_ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")
# Typographic characters that word processors and phones put in, with plain equivalents.
TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
     "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ", "\u2022": "-", "\t": " "}
)


@dataclass(frozen=True)
class SmsCount:
    characters: int  # as a person counts them
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int
    per_part: int  # capacity of one part at this length (160/153 or 70/67)
    remaining: int  # units left in the last part before another part starts


def encoding_of(text: str) -> str:
    return "GSM-7" if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else "UCS-2"


def _unit_costs(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # astral characters (emoji) take a surrogate pair


def count(text: str) -> SmsCount:
    """Encoding, length and number of parts of `text`, splitting as handsets do.

    An extension character's escape pair or an emoji's surrogate pair is never split between parts,
    so a part may carry one unit less than its capacity.
    """
    encoding = encoding_of(text)
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    if units <= SINGLE_LIMIT[encoding]:
        return SmsCount(len(text), encoding, units, 1 if text else 0, SINGLE_LIMIT[encoding],
                        SINGLE_LIMIT[encoding] - units)
    capacity = PART_LIMIT[encoding]
    parts, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            parts, used = parts + 1, 0
        used += cost
    return SmsCount(len(text), encoding, units, parts, capacity, capacity - used)


def without_polish_letters(text: str) -> str:
    """The text rewritten to fit GSM-7 where it can: ą→a, ł→l, curly quotes → straight, other accents dropped.

    Characters that GSM-7 has (é, ü, ö, Ä …) are kept; what cannot be rewritten (emoji) stays and keeps UCS-2.
    """
    text = text.translate(POLISH_TO_ASCII).translate(TYPOGRAPHY)
    out = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
            continue
        stripped = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(stripped if stripped and all(c in GSM7_BASIC for c in stripped) else ch)
    return "".join(out)


def sms_body(markdown: str, plain: bool = False) -> str:
    """What an SMS of this message body says: the words without Markdown markers, and without Polish
    letters when the author chose so. The compose form's counter and the sender both use it."""
    text = markdown_to_text(markdown)
    return without_polish_letters(text) if plain else text


def sms_text(message: "Message") -> str:
    """What the SMS of `message` says: its own SMS text when it has one (a template's), else its text."""
    meta = message.meta or {}
    if own := (meta.get("texts") or {}).get("sms"):
        return sms_body(own, bool(meta.get("sms_plain")))
    if message.body_format != "markdown":
        text = (message.body_text or "").strip()
        return without_polish_letters(text) if (message.meta or {}).get("sms_plain") else text
    return sms_body(message.body_text or "", bool((message.meta or {}).get("sms_plain")))
