"""No input gives a server error: every registered route, as every role, with hostile values in its path, its
query string and its body answers 404, 400/422 with a message, a redirect, or the page (any status below 500).

How the routes and names are found, so that a new route or field is covered without anyone remembering it:
- routes: `app.url_map` (staff pages, the customer panel, the API, webhooks, assets); every method of each;
- path parameters: each rule's own, each replaced in turn by the hostile values while the others name an
  existing row (ids from a seeded shop, the shop's slug); an id parameter only by roles the route lets in;
- query and form field names: read from the code and templates (`QUERY_AND_FORM_NAMES`): every string literal
  in `request.args/form/values` and `args/form/values/data.get(...)` calls under app/, every WTForms field of a
  form class, every `name="..."` in templates/; each hostile value is sent in all names at once;
- forms shown by the route's own GET page (parsed from its HTML; as owner and panel customer, staff see the
  owner's forms) are sent back with one field at a time
  replaced by a hostile value, so a field's check is reached with the others valid;
- JSON bodies (the API): the field names (`JSON_NAMES`: every `..._FIELDS` tuple in app/api/) that the endpoint
  does not refuse as unknown, all at once with each hostile JSON value, then one at a time in `BASE_JSON` (a valid
  body per API endpoint; {} for a new one), and bodies that are not JSON objects.
Webhooks get `WEBHOOK_BASES` signed with the seeded SMS account's token, each field replaced in turn.
POST bodies carry the role's valid CSRF token (else only the CSRF check would be tested). Where a route refuses
the role (the sign-in page, 401, 403), a few values show the refusal comes first, and the rest are skipped.
"""
from __future__ import annotations

import re
import traceback
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter

from route_helpers import (ROLES, SMS_SID, TWILIO_TOKEN, WRITE_METHODS, RoleClient, build_path, good_value,
                           in_safe_order, methods_of, refused, routes, set_up_sms, shops_per_role)

ROOT = Path(__file__).resolve().parent.parent

HUGE = "99999999999999999999"
# Sent in every query and form name at once: kept short, as 150 names times 5,000 characters cost more to parse
# than the rest of the sweep. A page's own form fields also get FIELD_ONLY, one field at a time.
HOSTILE_TEXT = [
    HUGE, str(2**31), "²", "٣", "9999-12-31", "0001-01-01", "\x00", "x" * 300,
    "{% autoescape false %}{{ 7*7 }}{% endautoescape %}",
]
FIELD_ONLY = ["x" * 5000, "9999-12-31T23:59", "1e400", "-1", "", "Zażółć 🙂"]
# For a role the route refuses (sign-in page, 401, 403) a few values show that the refusal comes before the input.
REFUSED_TEXT = [HUGE, "²", "\x00"]
# In a path: numbers no id column holds, digits that are not ASCII ("٣" was Arabic-Indic 3 to Werkzeug's `\\d`),
# NUL and a long segment. An id parameter is routed alike for every role, so only roles the route lets in send these
# to id parameters; text parameters (the panel's slug, tokens) get them from every role.
HOSTILE_PATH = [HUGE, str(2**31), "٣", "\x00", "x" * 2000]
HOSTILE_JSON = [
    int(HUGE), 2**31, -1, True, None, "1", "٣", "9999-12-31", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "\x00", "x" * 5000, "{% autoescape false %}", [], [1, "a", None], {"id": 1}, 1.5,
]
NOT_OBJECTS = [b"", b"null", b"[]", b"42", b'"text"', b"{", b'{"a": 1e999}', b"\xff\xfe"]

# Valid calls of the provider's webhooks; sent signed, with each field replaced in turn (and all at once).
WEBHOOK_BASES = {
    "webhooks.twilio_sms": {"MessageSid": "SM" + "2" * 32, "From": "+48600100200", "To": "+48500100200",
                            "Body": "Is it ready?", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m/1"},
    "webhooks.twilio_status": {"MessageSid": SMS_SID, "MessageStatus": "undelivered", "ErrorCode": "30003"},
}

# Valid bodies of the API's write endpoints: each field is replaced in turn, so its own check is reached.
# `{name}` values are filled from the seeded shop's ids.
BASE_JSON = {
    "api.post_customer": {"name": "Jan Kowalski", "email": "jan@example.com", "phone": "+48600700800"},
    "api.patch_customer": {"name": "Jan Kowalski", "email": "jan@example.com"},
    "api.post_repair": {"customer_id": "{customer_id}", "device": "Laptop", "description": "Fan",
                        "pickup_date": "2026-03-01"},
    "api.patch_repair": {"status": "ready"},
    "api.post_message": {"customer_id": "{customer_id}", "repair_id": "{repair_id}", "channels": ["portal"],
                         "subject": "Hello", "body": "Ready", "send_at": "2026-03-01T10:00:00+01:00"},
}


def _names_in_code() -> list[str]:
    names = set()
    call = re.compile(r"""\b(?:args|form|values|data|body)\.get(?:list)?\(\s*f?["']([A-Za-z_][\w-]*)["']""")
    wtforms_field = re.compile(r"^\s+([a-z_]\w*)\s*=\s*\w*Field\(", re.M)
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text()
        names.update(call.findall(text))
        names.update(wtforms_field.findall(text))
    for path in (ROOT / "templates").rglob("*.html"):
        names.update(re.findall(r"""\bname=["']([A-Za-z_][\w-]*)["']""", path.read_text()))
    names.discard("csrf_token")
    return sorted(names)


def _json_names() -> list[str]:
    """The API's JSON field names: the string literals of every `..._FIELDS = (...)` tuple in app/api/."""
    names = set()
    for path in (ROOT / "app" / "api").glob("*.py"):
        for body in re.findall(r"\w*FIELDS\w*\s*=\s*\(([^)]*)\)", path.read_text()):
            names.update(re.findall(r"""["'](\w+)["']""", body))
    return sorted(names)


QUERY_AND_FORM_NAMES = _names_in_code()
JSON_NAMES = _json_names()


class _Forms(HTMLParser):
    """The POST forms of a page: (action, [(name, value)]) with each field's shown value."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._current = None
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = (attrs.get("action") or "", [])
            if (attrs.get("method") or "get").lower() == "post":
                self.forms.append(self._current)
            return
        if self._current is None or not attrs.get("name"):
            if tag == "option" and self._select is not None and ("selected" in attrs or not self._select[2]):
                self._select[2] = attrs.get("value") or ""
            return
        name = attrs["name"]
        if tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            if kind not in ("submit", "button", "file", "image", "reset"):
                self._current[1].append((name, attrs.get("value") or ""))
        elif tag == "select":
            self._select = [name, None, ""]
        elif tag == "textarea":
            self._textarea = [name, ""]

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None
        elif tag == "select" and self._select is not None:
            if self._current is not None:
                self._current[1].append((self._select[0], self._select[2]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            if self._current is not None:
                self._current[1].append(tuple(self._textarea))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data


def _forms_posting_to(html: str, path: str) -> list[list[tuple[str, str]]]:
    parser = _Forms()
    parser.feed(html)
    return [fields for action, fields in parser.forms if (urlsplit(action).path or path) == path]


@pytest.fixture(scope="module")
def shopfronts(databases, tmp_path_factory):
    """One seeded shop (own app and database) per role, for the whole module."""
    with shops_per_role(databases, tmp_path_factory, "sweep") as fronts:
        yield fronts


class Sweep:
    """Sends the requests of one role and collects every 5xx, one line per route, method and kind of error."""

    def __init__(self, front, role: str):
        self.front = front
        self.role = role
        self.user = RoleClient(front, role)
        self.failures: dict[tuple, str] = {}
        self.sent = 0
        self.webhook_answers: set[int] = set()

    def send(self, rule, method: str, path: str, what: str, **kwargs):
        """The response, or None (and a line in the report) when it was a server error."""
        self.sent += 1
        try:
            response = self.user.open(method, path, **kwargs)
        except Exception as exc:  # TESTING propagates exceptions: that is a 500 in production
            from app.extensions import db

            db.session.rollback()
            where = next((f"{Path(frame.filename).name}:{frame.lineno}" for frame in
                          reversed(traceback.extract_tb(exc.__traceback__)) if f"{ROOT}/app/" in frame.filename), "")
            problem = f"{type(exc).__name__} at {where}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        else:
            if response.status_code < 500:
                return response
            problem = str(response.status_code)
        key = (rule.endpoint, method, problem.split(":")[0])
        self.failures.setdefault(key, f"{method} {rule.endpoint} ({rule.rule}) with {what[:80]}: {problem}")
        return None

    def route(self, rule) -> None:
        good = {name: good_value(self.front, rule, name) for name in rule.arguments}
        for method in methods_of(rule):
            path = build_path(rule, good)
            plain = self.send(rule, method, path, "no input")
            allowed = plain is not None and not refused(plain)
            for name in rule.arguments:
                if allowed or not isinstance(rule._converters[name], IntegerConverter):
                    for value in HOSTILE_PATH:
                        self.send(rule, method, build_path(rule, {**good, name: value}), f"path {name}={value!r}")
            token = self.user.token_for(path)
            for index, value in enumerate(HOSTILE_TEXT if allowed else REFUSED_TEXT):
                everywhere = {name: value for name in QUERY_AND_FORM_NAMES}
                htmx = {"HX-Request": "true"} if index % 2 else {}
                if method in WRITE_METHODS:
                    self.send(rule, method, path, f"every query and form name={value!r}", headers=htmx,
                              query_string=everywhere, data={"csrf_token": token, **everywhere})
                else:
                    self.send(rule, method, path, f"every query name={value!r}", headers=htmx, query_string=everywhere)
            # Staff see the same forms as the owner, whose sweep sends them back field by field.
            if allowed and method in WRITE_METHODS and "GET" in rule.methods and self.role != "staff":
                page = self.user.open("GET", path)
                if page.status_code == 200:
                    for fields in _forms_posting_to(page.get_data(as_text=True), path):
                        self.form_fields(rule, method, path, fields, token)
            if rule.rule.startswith("/api/") and method in WRITE_METHODS:
                self.json_bodies(rule, method, path, allowed)
            if rule.endpoint in WEBHOOK_BASES:
                self.signed_webhooks(rule, method, path)

    def form_fields(self, rule, method: str, path: str, fields: list[tuple[str, str]], token: str) -> None:
        values = HOSTILE_TEXT + FIELD_ONLY
        names = [name for name, _value in fields if name != "csrf_token"]
        for position, name in enumerate(dict.fromkeys(names)):
            for value in values[position % 3::3]:  # a third of the values per field, rotating
                data = [(n, value if n == name else v) for n, v in fields if n != "csrf_token"]
                self.send(rule, method, path, f"the page's form with {name}={value!r}",
                          data=MultiDict([("csrf_token", token), *data]))

    def signed_webhooks(self, rule, method: str, path: str) -> None:
        """Twilio's calls carry a signature over the URL and fields; signed, the hostile fields reach the view."""
        set_up_sms()
        base = WEBHOOK_BASES[rule.endpoint]
        bodies = [dict.fromkeys(base, value) for value in HOSTILE_TEXT]
        bodies += [{**base, name: value} for position, name in enumerate(base)
                   for value in (HOSTILE_TEXT + FIELD_ONLY)[position % 2::2]]
        for body in bodies:
            signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://shop.example" + path, body)
            response = self.send(rule, method, path, f"a signed call with {body}", data=body,
                                 headers={"X-Twilio-Signature": signature})
            if response is not None:
                self.webhook_answers.add(response.status_code)

    def json_bodies(self, rule, method: str, path: str, allowed: bool) -> None:
        for raw in NOT_OBJECTS:
            self.send(rule, method, path, f"JSON body {raw!r}", data=raw, content_type="application/json")
        if not allowed:
            return
        # The endpoint names the fields it does not know; the others it reads.
        probe = self.user.open(method, path, json=dict.fromkeys(JSON_NAMES))
        unknown = set((probe.get_json(silent=True) or {}).get("fields") or {}) if probe.status_code == 422 else set()
        known = [name for name in JSON_NAMES if name not in unknown]
        for value in HOSTILE_JSON:
            self.send(rule, method, path, f"JSON with every field={value!r}", json=dict.fromkeys(known, value))
        base = {name: value.format(**self.front.ids) if isinstance(value, str) and "{" in value else value
                for name, value in BASE_JSON.get(rule.endpoint, {}).items()}
        base = {name: int(value) if name.endswith("_id") else value for name, value in base.items()}
        for position, name in enumerate(known):
            for value in HOSTILE_JSON[position % 2::2]:  # half the values per field, rotating
                self.send(rule, method, path, f"a valid JSON body with {name}={value!r}", json={**base, name: value})


@pytest.mark.parametrize("role", ROLES)
def test_no_route_answers_a_server_error(shopfronts, role):
    front = shopfronts[role]
    with front.app.app_context():
        sweep = Sweep(front, role)
        for rule in in_safe_order(routes(front.app)):
            sweep.route(rule)
    assert sweep.sent > 500  # the walk did walk
    assert {200, 204} <= sweep.webhook_answers, "the signed webhook calls were not let in"
    assert not sweep.failures, f"server errors ({sweep.sent} requests sent):\n" + "\n".join(sweep.failures.values())


def test_the_names_read_from_the_code_include_the_known_ones():
    """The name collection itself works: a few names the app is known to read."""
    for name in ("page", "q", "status", "repair_id", "customer_id", "thread_id", "before", "next", "body",
                 "pickup_date", "send_at"):
        assert name in QUERY_AND_FORM_NAMES, name
