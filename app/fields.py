"""The rules every free-text input obeys, wherever it comes from (staff pages, the panel, the API, the CLI).

Each text has a length limit (docs/features.md, "Limits of texts"), and no control characters: a multi-line text (a message,
a note, a description) keeps only line breaks and tabs; a single-line value (a name, a subject, an address line, a
sender name) not even those, since it ends up in mail headers, SMS greetings and one-line layouts, where a line break
starts a new header or breaks every outgoing mail. Refusals are ValidationFailed naming the field.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

from .errors import ValidationFailed

LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on
TEXT_ALLOWED = "\n\t"  # the only control characters a multi-line text keeps


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # Unicode's Cc category, and the line/paragraph separators


def _control(value: str, allowed: str) -> str | None:
    """The first control character of `value` not in `allowed` (or a Unicode line or paragraph separator)."""
    for match in _CONTROLS.finditer(value):
        if match.group() not in allowed:
            return match.group()
    return None


def _as_text(raw, field: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValidationFailed({field: _("Must be text.")})
    return raw


def _checked(value: str, field: str, max_length: int, required) -> str:
    if required is not None and not value:
        raise ValidationFailed({field: str(required)})
    if len(value) > max_length:
        raise ValidationFailed({field: _("At most %(max)s characters.", max=max_length)})
    return value


def clean_text(raw, field: str, max_length: int, required=None) -> str:
    """A multi-line text: line endings made "\\n", stripped, at most `max_length` long, no control characters but
    line breaks and tabs. `required` is the (lazy) message when it is empty; None allows empty."""
    value = _checked(_as_text(raw, field).replace("\r\n", "\n").replace("\r", "\n").strip(), field, max_length,
                     required)
    if (char := _control(value, TEXT_ALLOWED)) is not None:
        raise ValidationFailed({field: _("Contains a control character (U+%(code)04X); remove it.", code=ord(char))})
    return value


def clean_line(raw, field: str, max_length: int, required=None) -> str:
    """A single-line value: stripped, inner runs of spaces made one, at most `max_length` long; refuses line breaks
    and every other control character (a tab included) rather than quietly joining what was meant as two lines."""
    value = _as_text(raw, field)
    if len(value) > 4 * max_length:  # no need to look through megabytes to refuse them
        raise ValidationFailed({field: _("At most %(max)s characters.", max=max_length)})
    if (char := _control(value, "")) is not None:
        if char in LINE_BREAKS:
            raise ValidationFailed({field: _("Must be on one line.")})
        raise ValidationFailed({field: _("Contains a control character (U+%(code)04X); remove it.", code=ord(char))})
    return _checked(" ".join(value.split()), field, max_length, required)


def text_field(field: str, max_length: int, required=None) -> Callable[[object], str]:
    """clean_text as a cleaner of one field, for tables of cleaners."""
    return lambda raw: clean_text(raw, field, max_length, required)


def line_field(field: str, max_length: int, required=None) -> Callable[[object], str]:
    """clean_line as a cleaner of one field, for tables of cleaners."""
    return lambda raw: clean_line(raw, field, max_length, required)


def gather(errors: dict[str, str], clean: Callable[..., str], *args) -> str:
    """`clean(*args)` for a function that lists every problem at once: a refusal's messages go into `errors` and ""
    comes back (the caller raises ValidationFailed(errors) before using it)."""
    try:
        return clean(*args)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        return ""


# Checking a whole set of fields at once, for the domain functions that take keyword fields.


def cleaned_fields(cleaners: dict[str, Callable], fields: dict) -> dict:
    """The fields checked and normalised; every problem at once in one ValidationFailed."""
    unknown = set(fields) - set(cleaners)
    if unknown:
        raise TypeError(f"unknown fields: {', '.join(sorted(unknown))}")
    cleaned, errors = {}, {}
    for field, raw in fields.items():
        try:
            cleaned[field] = cleaners[field](raw)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def flag_field(field: str) -> Callable[[object], bool]:
    def clean(raw) -> bool:
        if not isinstance(raw, bool):
            raise ValidationFailed({field: _("Must be true or false.")})
        return raw

    return clean


def choice_field(field: str, allowed: tuple[str, ...]) -> Callable[[object], str]:
    def clean(raw) -> str:
        if raw not in allowed:
            raise ValidationFailed({field: _("Choose one of: %(values)s.", values=", ".join(allowed))})
        return raw

    return clean
