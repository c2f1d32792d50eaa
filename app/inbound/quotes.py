"""The new part of a reply told apart from the quoted history, in the languages a Polish shop's customers write.

Where the history starts is found by mail-parser-reply's patterns (attribution lines such as "On … wrote:",
"W dniu … pisze:", "Am … schrieb …:", "… пише:", and Outlook's header blocks "From:/Sent:", "Od:/Wysłano:",
"Von:/Gesendet:", "Fra:/Sendt:", "Від:/Надіслано:"), with the languages it lacks added in quote_languages.
What is cut stays this module's rule: interleaved answers, mails that are only a quote and forwards are kept
whole, since hiding something the customer wrote is worse than showing some history.
"""
from __future__ import annotations

import re
from bisect import bisect_right

from mailparser_reply.parser import EmailMessage

from . import quote_languages
from .html import QUOTE_MARK

quote_languages.register()
# Built once per process: the library builds it per mail.
_HEADER = EmailMessage(text="", languages=list(quote_languages.LANGUAGES)).HEADER_REGEX
# The first line of a header block: a label and its value ("Od: Jan", "From: Jan <jan@…>").
_LABEL = re.compile(r"^[*>\s]*([^\W\d_]+(?: [^\W\d_]+)?)\s?:\*?(?:\s|$)")
_UNDERSCORES = re.compile(r"^_{10,}$")
# How far a pattern may look from where it starts (an attribution wraps over two or three lines, a header block
# has a handful), and how many places are tried in one mail: a customer's own text has a few lines ending
# with a colon, not hundreds; a mail built to have them is kept whole rather than read for seconds.
_WINDOW_LINES = 12
_MAX_CANDIDATES = 300
_FORWARD = re.compile(
    r"""^(?:-{2,}\s*(?:forwarded\smessage|wiadomość\sprzekazana(?:\sdalej)?|przekazana\swiadomość
                      |przesłana\swiadomość|weitergeleitete\snachricht|пересланное\sсообщение
                      |переслане\sповідомлення|přeposlaná\szpráva)\s*-{2,}
        | (?:begin\sforwarded\smessage|początek\sprzekazywanej\swiadomości|początek\sprzekazanej\swiadomości):)$""",
    re.IGNORECASE | re.VERBOSE,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|pd|pw|tr|wg|пер|пересл)\s*:", re.IGNORECASE)


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
    tail = max(0, len(new) - 3)
    headers = _headers(new[tail:])
    start = next((tail + i for i, end in sorted(headers.items()) if tail + end == len(new) - 1), None)
    if start is not None:
        quoted[:0] = new[start:]
        del new[start:]
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
    # Nothing after the first ">" line is looked at: patterns are only tried above it.
    first_quote = next((i for i, line in enumerate(lines) if line.lstrip().startswith(">")), len(lines))
    headers = _headers(lines, first_quote, first_only=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            return i if _only_quotes_follow(lines, i) else None
        if i in headers:
            if _LABEL.match(stripped):  # a header block
                return i
            following = next((j for j in range(headers[i] + 1, len(lines)) if lines[j].strip()), None)
            if following is not None and lines[following].lstrip().startswith(">") \
                    and not _only_quotes_follow(lines, following):
                return None  # bottom-posted or interleaved answer
            return i
        if _UNDERSCORES.match(stripped) and any(j in headers for j in (i + 1, i + 2)):
            return i
    return None


def _headers(lines: list[str], limit: int | None = None, first_only: bool = False) -> dict[int, int]:
    """First line -> last line of each attribution line or header block in `lines` that counts:

    - a wrapped attribution ("W dniu … Jan Kowalski <jan@…>" / "napisał(a):") starts at its latest line that
      matches on its own, so the customer's last line above it is never swallowed into the quote;
    - a header block needs a subject among its labels and another one besides From (so that a customer's
      "Od: 10:00 / Do: 18:00" stays their text).

    Only those starting at or above line `limit` are looked for; with `first_only`, only the first one.
    """
    flat = "\n".join(line.strip() for line in lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line.strip()) + 1)
    found: dict[int, int] = {}
    def match_at(line: int) -> re.Match | None:
        end = starts[line + _WINDOW_LINES] - 1 if line + _WINDOW_LINES < len(starts) else len(flat)
        return _HEADER.match(flat, starts[line], end)

    for first in _candidates(lines[: len(lines) if limit is None else limit + 1])[:_MAX_CANDIDATES]:
        if first in found or (match := match_at(first)) is None:
            continue
        end = match.end() - (len(match[0]) - len(match[0].rstrip("\n")))
        last = bisect_right(starts, max(starts[first], end - 1)) - 1
        if _LABEL.match(lines[first].strip()):
            if _header_block(lines, first):
                found.setdefault(first, last)
        else:
            while first < last and (own := match_at(first + 1)) and own.end() >= end:
                first += 1
            found.setdefault(first, last)
        if found and first_only:
            break
    return found


def _candidates(lines: list[str]) -> list[int]:
    """Lines where an attribution or header block may start, in order: the library's patterns are tried there
    only, not at every character of the mail (a tenth of the time on a long thread). An attribution ends with
    a colon, on its own line or two lines further down when wrapped; a header block starts with a label and a
    colon; separators start with dashes or underscores."""
    starts: set[int] = set()
    for i, line in enumerate(lines):
        stripped = line.strip().lstrip("> ")
        if not stripped:
            continue
        if stripped.endswith((":", "：")):
            starts.update(range(max(0, i - 2), i + 1))
        elif ":" in stripped[:40] or stripped[0] in "-_*":
            starts.add(i)
    return sorted(starts)


def _header_block(lines: list[str], i: int) -> bool:
    """True at the first line of Outlook's header block: a subject and another label follow."""
    labels = {m[1].lower() for line in lines[i + 1 : i + 7] if (m := _LABEL.match(line.strip()))}
    return len(labels) >= 2 and bool(labels & quote_languages.SUBJECT_LABELS)


def _only_quotes_follow(lines: list[str], start: int) -> bool:
    """True when every non-blank line from `start` on is `>`-quoted (a trailing quote, not interleaved)."""
    return all(line.lstrip().startswith(">") for line in lines[start:] if line.strip())
