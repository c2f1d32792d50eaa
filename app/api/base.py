"""What every resource of the API shares: the blueprint, bearer tokens, JSON bodies and errors."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, g, jsonify, request
from flask_babel import gettext as _

from ..errors import ValidationFailed
from ..extensions import db
from ..models import ApiToken
from ..request_input import json_id

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error(status: int, message: str, fields: dict | None = None):
    body = {"error": message}
    if fields is not None:
        body["fields"] = fields
    return jsonify(body), status


@bp.errorhandler(ValidationFailed)
def _validation_failed(exc: ValidationFailed):
    db.session.rollback()
    return error(422, "validation failed", exc.fields)


def token_required(view):
    """Bearer token auth: 401 when it is missing or wrong; the token row is in g.api_token."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        scheme, _, plain = request.headers.get("Authorization", "").partition(" ")
        token = ApiToken.authenticate(plain.strip()) if scheme.lower() == "bearer" and plain.strip() else None
        if token is None:
            return error(401, "missing or invalid bearer token")
        g.api_token = token
        return view(*args, **kwargs)

    return wrapped


def json_body(fields: tuple[str, ...]) -> dict:
    """The request's JSON object, or a 422 naming the problem; a misspelt or unsupported field is refused
    rather than silently ignored (a typo must not change what the call does), and so is an id (a field named
    `..._id`) that is not a JSON integer a row could have."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed({"body": "expected a JSON object"})
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValidationFailed({name: "unknown field" for name in unknown})
    wrong_ids = {name: _("No such id.") if isinstance(value, int) and not isinstance(value, bool)
                 else _("Must be a whole number (a JSON integer).")
                 for name, value in data.items() if name.endswith("_id") and value is not None and json_id(value) is None}
    if wrong_ids:  # ids are JSON integers: "7" or true would be guessed at, and a huge number overflows a column
        raise ValidationFailed(wrong_ids)
    return data


def api_actor() -> str:
    return f"api:{g.api_token.name}"

