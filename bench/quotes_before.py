"""The hand-written quote splitter the parser used before mail-parser-reply (Polish and English only), kept for
bench/quotes.py to compare against."""
from __future__ import annotations

import re

from app.inbound.html import QUOTE_MARK

# The line a mail program writes above the quote. Gmail wraps it over two or three lines in text/plain,
# so it is also tried on joined lines.
_ATTRIBUTION = re.compile(
    r"""^(?:
        on\s.{4,300}\swrote\s?:                       # Gmail, Apple, Thunderbird in English
      | w\sdniu\s.{4,300}\s(?:pisze|napisał(?:\(-?a\)|a)?)\s?:   # Thunderbird PL, older Gmail PL
      | dnia\s.{4,300}\snapisał(?:\(-?a\)|a)?\s?:          # iOS, WP, Onet, Interia
      | .{0,300}\d.{0,300}\snapisał(?:\(-?a\)|a)?\s?:      # Gmail PL "pon., 12 mar 2024 o 10:15 X <x> napisał(a):"
      | wiadomość\snapisana\sprzez\s.{4,300}\sw\sdniu\s.{4,120}:   # Apple Mail PL
      | am\s.{4,300}\sschrieb\s.{0,100}:
      | le\s.{4,300}\sa\sécrit\s?:
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_SEPARATOR = re.compile(
    r"^-{2,}\s*(?:original message|wiadomość oryginalna|oryginalna wiadomość|ursprüngliche nachricht)\s*-{2,}$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^_{10,}$")
_FORWARD = re.compile(
    r"""^(?:-{2,}\s*(?:forwarded\smessage|wiadomość\sprzekazana(?:\sdalej)?|przekazana\swiadomość
                      |przesłana\swiadomość|weitergeleitete\snachricht)\s*-{2,}
        | (?:begin\sforwarded\smessage|początek\sprzekazywanej\swiadomości|początek\sprzekazanej\swiadomości):)$""",
    re.IGNORECASE | re.VERBOSE,
)
# Outlook's header block, in English and Polish: "From: …" then Sent/To/Subject (Od:/Wysłano:/Do:/Temat:).
_HEADER_FROM = re.compile(r"^\*?(?:from|od|de|von)\s?:\*?\s*\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(
    r"^\*?(sent|date|to|cc|subject|wysłano|wysłane|wysłany|data|do|dw|temat|gesendet|an|betreff)\s?:\*?",
    re.IGNORECASE,
)
_HEADER_SUBJECT = {"subject", "temat", "betreff"}
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|pd|pw|tr|wg)\s*:", re.IGNORECASE)


def split_reply(text: str) -> tuple[str, str]:
    """(new part, quoted history) of a plain-text reply; the history is "" when none is found.

    Interleaved answers (quote, answer, quote) and mails that are only a quote are kept whole as the
    new part: hiding something the customer wrote is worse than showing some history.
    """
    lines = text.splitlines()
    cut = _quote_start(lines)
    if cut is None:
        return text.strip(), ""
    return _settle(lines[:cut], lines[cut:], text)


def split_at_mark(text: str) -> tuple[str, str]:
    """(new part, quoted history) of html_to_text's output: cut where the mail program's quote element
    starts, taking along an attribution line just above it (Apple writes it outside the blockquote);
    without a mark, by the text patterns."""
    lines = text.splitlines()
    if QUOTE_MARK not in lines:
        return split_reply(text)
    cut = lines.index(QUOTE_MARK)
    new, quoted = lines[:cut], [line for line in lines[cut:] if line != QUOTE_MARK]
    while new and not new[-1].strip():
        new.pop()
    if new and _attribution_at(new, len(new) - 1):
        quoted.insert(0, new.pop())
    elif len(new) > 1 and _ATTRIBUTION.match(f"{new[-2].strip()} {new[-1].strip()}"):
        quoted[:0] = new[-2:]
        del new[-2:]
    whole = "\n".join(line for line in lines if line != QUOTE_MARK)
    return _settle(new, quoted, whole)


def is_forward(subject: str) -> bool:
    """True for a forwarded mail's subject (Fwd:, FW:, PD:...): its "quote" is the point, not history."""
    return bool(_FORWARD_SUBJECT.match(subject or ""))


def _settle(new: list[str], quoted: list[str], whole: str) -> tuple[str, str]:
    new_text, quoted_text = "\n".join(new).strip(), "\n".join(quoted).strip()
    forwarded = any(_FORWARD.match(line.strip()) for line in [*new, *quoted[:3]])
    if not new_text or not quoted_text or forwarded:
        return whole.strip(), ""
    return new_text, quoted_text


def _quote_start(lines: list[str]) -> int | None:
    """Index of the first line of the quoted history, or None."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            return i if _only_quotes_follow(lines, i) else None
        if _SEPARATOR.match(stripped) or _outlook_header(lines, i):
            return i
        if _UNDERSCORES.match(stripped) and any(_HEADER_FROM.match(x.strip()) for x in lines[i + 1 : i + 3]):
            return i
        if _attribution_at(lines, i):
            following = next((j for j in range(i + 1, len(lines)) if lines[j].strip() and not _continues(lines[j])), i)
            if lines[following].lstrip().startswith(">") and not _only_quotes_follow(lines, following):
                return None  # bottom-posted or interleaved answer
            return i
    return None


def _attribution_at(lines: list[str], i: int) -> bool:
    """True when an attribution line ("On … wrote:") starts at line i, alone or wrapped onto the next lines.

    A wrapped match only counts when the later lines do not match on their own: otherwise the customer's
    last line would be swallowed into the quote.
    """
    stripped = [line.strip() for line in lines[i : i + 3]]
    if not stripped[0] or stripped[0].startswith(">"):
        return False
    for size in (1, 2, 3):
        if len(stripped) < size or not stripped[size - 1]:
            return False
        if _ATTRIBUTION.match(" ".join(stripped[:size])):
            return size == 1 or not any(
                _ATTRIBUTION.match(" ".join(stripped[start:size])) for start in range(1, size)
            )
    return False


def _continues(line: str) -> bool:
    """Lines of a wrapped attribution after its first (they end with the verb)."""
    return bool(re.search(r"(?:wrote|pisze|napisał(?:\(-?a\)|a)?)\s?:\s*$", line.strip(), re.IGNORECASE))


def _only_quotes_follow(lines: list[str], start: int) -> bool:
    """True when every non-blank line from `start` on is `>`-quoted (a trailing quote, not interleaved)."""
    return all(line.lstrip().startswith(">") for line in lines[start:] if line.strip())


def _outlook_header(lines: list[str], i: int) -> bool:
    """True at the "From:" line of Outlook's header block: a subject and another header label follow
    (so a customer's "Od: 10:00 / Do: 18:00" stays their text)."""
    if not _HEADER_FROM.match(lines[i].strip()):
        return False
    labels = {m[1].lower() for line in lines[i + 1 : i + 7] if (m := _HEADER_OTHER.match(line.strip()))}
    return len(labels) >= 2 and bool(labels & _HEADER_SUBJECT)
