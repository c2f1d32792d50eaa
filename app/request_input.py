"""Reading raw request input safely, app-wide: ids a database column can hold, dates a calendar can shift, and no
NUL characters anywhere (PostgreSQL refuses them in text). Malformed input becomes a 404 (no such row), a 400
naming the field, or a filter that is ignored; never a 500 from deep inside a query."""
from __future__ import annotations

from datetime import date, datetime

from flask import Flask, request
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

# Ids are 32-bit integers on PostgreSQL (and pages end long before); a larger number names no row.
LARGEST_ID = 2**31 - 1
# Dates a repair shop can mean; outside this range adding a day or converting a time zone overflows Python's
# calendar (year 1 and year 9999 are its ends).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: ASCII digits only (Werkzeug's `\\d` also matches "٣" and "²") and at most
    LARGEST_ID, so a URL with any other number is a 404 like any unknown id."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, LARGEST_ID if max is None else max, signed)
        if signed:
            self.min = -LARGEST_ID if min is None else min


def whole_number(raw) -> int:
    """An id or a count from a query string or form: ASCII digits from 0 to LARGEST_ID, else ValueError.

    Meant as `request.args.get(name, type=whole_number)`: Werkzeug then answers the default for anything else,
    where `type=int` would take "٣", " 7 ", "1_000" and numbers no column holds.
    """
    text = raw if isinstance(raw, str) else ""
    if not (text.isascii() and text.isdecimal() and len(text) <= 10) or int(text) > LARGEST_ID:
        raise ValueError(f"not a whole number from 0 to {LARGEST_ID}: {raw!r}")
    return int(text)


def uploads(data) -> list[FileStorage]:
    """The files of a form's file field that were really uploaded (with a name). A text value sent under the
    field's name, or what a form filled from a row put there, is not a file and is left out."""
    items = data if isinstance(data, list | tuple) else [data]
    return [item for item in items if isinstance(item, FileStorage) and item.filename]


def json_id(raw) -> int | None:
    """An id from a JSON body: a JSON integer (not a string, not true/false) from 1 to LARGEST_ID, else None."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= LARGEST_ID:
        return raw
    return None


def iso_date(raw) -> date:
    """A calendar date written as 2026-03-01, between EARLIEST_DATE and LATEST_DATE; else ValueError."""
    day = date.fromisoformat(raw.strip()) if isinstance(raw, str) else None
    if day is None or not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(f"not a date from {EARLIEST_DATE} to {LATEST_DATE}: {raw!r}")
    return day


def iso_datetime(raw) -> datetime:
    """A moment in ISO 8601 (2026-03-01T14:30:00+01:00) whose date is in the range of iso_date; else ValueError.
    The offset, if any, is kept: the caller decides whether a time without one is acceptable."""
    moment = datetime.fromisoformat(raw.strip()) if isinstance(raw, str) else None
    if moment is None or not EARLIEST_DATE <= moment.date() <= LATEST_DATE:
        raise ValueError(f"not a time from {EARLIEST_DATE} to {LATEST_DATE}: {raw!r}")
    return moment


def _nul_field() -> str | None:
    """The name of the first part of the request that holds a NUL character (path, query, form, file name or
    JSON body), or None."""
    if "\x00" in request.path:
        return "path"
    for source in (request.args, request.form):
        for name, values in source.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return name.replace("\x00", "")
    for name, upload in request.files.items(multi=True):
        if "\x00" in name or "\x00" in (upload.filename or ""):
            return name.replace("\x00", "")
    if request.is_json:
        return _nul_in_json(request.get_json(silent=True), "body")
    return None


def _nul_in_json(value, where: str) -> str | None:
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, list):
        return next((found for item in value if (found := _nul_in_json(item, where))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return key.replace("\x00", "")
            if found := _nul_in_json(item, key):
                return found
    return None


class UnreadableInput(BadRequest):
    """A 400 whose description people may read: the error pages and the API show it (it names the field)."""

    @property
    def explanation(self) -> str:
        return self.description


def without_nul(form: MultiDict) -> MultiDict:
    """A copy of `form` with NUL characters removed, for webhooks (see SELF_CLEANING)."""
    return MultiDict((name.replace("\x00", ""), value.replace("\x00", "")) for name, value in form.items(multi=True))


# Blueprints whose views clean NULs themselves: a provider's webhook cannot correct a message, so refusing would
# lose it (and the signature must be checked on the fields exactly as sent).
SELF_CLEANING = ("webhooks",)


def _refuse_nul(endpoint, values) -> None:
    if endpoint and endpoint.split(".")[0] in SELF_CLEANING:
        return
    field = _nul_field()
    if field is not None:
        raise UnreadableInput(_("The field %(field)s contains a NUL character, which no text may hold.",
                                field=field))


def init_request_input(app: Flask) -> None:
    """Before any route is added: the bounded `int` converter. Before every request: the NUL rule, as the app's
    URL value preprocessor because those run first (the panel's looks its shop up by the slug in the path)."""
    app.url_map.converters["int"] = IdConverter
    app.url_value_preprocessor(_refuse_nul)
