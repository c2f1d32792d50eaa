"""A local stand-in for SMSAPI.pl's REST API (sms.do and user.do, as the official `smsapi-client` calls them), with
programmable faults and a points balance, plus helpers that make SMSAPI's callbacks to the app: delivery reports
(to the notify_url given with each SMS) and incoming SMS (to the URL set in SMSAPI's panel)."""
from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from app.channels.sms_text import count

from .loopback import LoopbackHttpServer

HOST = "127.0.0.1"
PRICE_PER_PART = Decimal("0.16")  # an SMS PRO part, in points
# SMSAPI's errors as sms.do answers them (HTTP 200 with this JSON), except 101, which comes with 401.
ERRORS = {
    11: "Message too long or there is no message or parameter nounicode is set and special characters are used",
    13: "Lack of valid phone numbers (invalid or blacklisted numbers)",
    14: "Incorrect sender field",
    57: "Recipient's number is on blacklist",
    101: "Authorization failed",
    103: "Insufficient credits on Your account",
    201: "System internal error",
}
STATUS_NAMES = {402: "EXPIRED", 403: "SENT", 404: "DELIVERED", 405: "UNDELIVERED", 406: "FAILED", 407: "REJECTED",
                408: "UNKNOWN", 409: "QUEUED", 410: "ACCEPTED"}


@dataclass
class Recorded:
    method: str
    path: str
    token: str | None
    form: dict[str, str]


@dataclass
class SmsapiServer(LoopbackHttpServer):
    """What a test sees of the server: its URL and token, what it got, its points, and switches for faults.

    Numbers (without "+", as SMSAPI takes them) in `invalid_numbers` or `blacklisted` are refused with 13 or 57,
    senders not in `senders` with 14, and an SMS costing more points than are left with 103. `fail_next(code)` or
    `force(status, body)` answer the next request so. Every request is in `requests`, every SMS in `messages`.
    """

    token: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    username: str = "serwis@example.test"
    points: Decimal = Decimal("25.00")
    senders: set[str] = field(default_factory=lambda: {"SERWIS", "2way", "Test"})
    invalid_numbers: set[str] = field(default_factory=set)
    blacklisted: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    _forced: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    thread_name = "smsapi-server"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def force(self, status: int, body: dict | None = None, delay: float = 0.0) -> None:
        """Answer the next request with `status` and `body` (JSON), after `delay` seconds."""
        with self._lock:
            self._forced.append((status, body, delay))

    def fail_next(self, code: int) -> None:
        """The next request gets SMSAPI's error `code` (HTTP 200 with its error JSON, as sms.do answers)."""
        self.force(200, {"error": code, "message": ERRORS.get(code, "Error")})

    def message(self, msg_id: str) -> dict:
        return next(message for message in self.messages if message["id"] == msg_id)

    # -------------------------------------------------------- SMSAPI calling the app

    def report_params(self, msg_id: str, status: int) -> dict[str, str]:
        """The fields of SMSAPI's delivery report callback for SMS `msg_id` reaching `status` (403 SENT, 404
        DELIVERED, 405 UNDELIVERED…)."""
        message = self.message(msg_id)
        return {"MsgId": msg_id, "status": str(status), "status_name": STATUS_NAMES.get(status, "UNKNOWN"),
                "idx": message["idx"], "donedate": str(int(time.time())), "username": self.username,
                "points": str(message["points"]), "to": message["number"], "mcc": "260", "mnc": "3"}

    def report(self, client, msg_id: str, status: int, method: str = "GET"):
        """Do what SMSAPI does when SMS `msg_id` reaches `status`: call the notify_url the app gave with it (GET
        with the fields in the query string, as SMSAPI does by default; or POST) through the Flask test client."""
        url = self.message(msg_id)["notify_url"]
        assert url, f"SMS {msg_id} was sent without a notify_url"
        return call(client, url, self.report_params(msg_id, status), method)

    def incoming_params(self, sender: str, body: str, to: str, msg_id: str | None = None) -> dict[str, str]:
        """The fields SMSAPI posts to the callback for incoming SMS when `sender` texts the two-way number `to`."""
        return {"sms_to": to.lstrip("+"), "sms_from": sender.lstrip("+"), "sms_text": body,
                "sms_date": str(int(time.time())), "MsgId": msg_id or secrets.token_hex(12).upper(),
                "username": self.username}

    def text(self, client, url: str, sender: str, body: str, to: str, **fields):
        """Do what SMSAPI does when `sender` texts the shop's two-way number: POST the SMS to `url` (Flask test
        client)."""
        return call(client, url, self.incoming_params(sender, body, to, **fields), "POST")

    # -------------------------------------------------------- answering requests

    def _answer(self, request: Recorded) -> tuple[int, dict | None]:
        with self._lock:
            self.requests.append(request)
            forced = self._forced.popleft() if self._forced else None
        if forced is not None:
            status, body, delay = forced
            time.sleep(delay)
            return status, body
        if request.token != self.token:
            return 401, {"error": 101, "message": ERRORS[101]}
        if request.path == "/sms.do" and request.method == "POST":
            return self._send(request.form)
        if request.path == "/user.do" and request.method == "GET" and request.form.get("credits") == "1":
            return 200, {"points": float(self.points), "proCount": int(self.points / PRICE_PER_PART),
                         "ecoCount": int(self.points / Decimal("0.07")), "mmsCount": 0, "vmsGsmCount": 0,
                         "vmsLandCount": 0}
        return 404, {"error": 8, "message": "Error in request"}

    def _send(self, form: dict[str, str]) -> tuple[int, dict]:
        to, text, sender = form.get("to", ""), form.get("message", ""), form.get("from", "")
        if form.get("format") != "json":
            return 200, {"error": 8, "message": "Error in request"}
        if not text:
            return 200, {"error": 11, "message": ERRORS[11]}
        if sender not in self.senders:
            return 200, {"error": 14, "message": ERRORS[14]}
        if not to.isdigit() or to in self.invalid_numbers:
            return 200, {"error": 13, "message": ERRORS[13], "invalid_numbers": [
                {"number": to, "submitted_number": to, "message": "Invalid phone number"}]}
        if to in self.blacklisted:
            return 200, {"error": 57, "message": ERRORS[57]}
        parts = count(text).parts
        points = PRICE_PER_PART * parts
        with self._lock:
            if points > self.points:
                return 200, {"error": 103, "message": ERRORS[103]}
            self.points -= points
            msg_id = str(secrets.randbelow(10**18) + 10**18)
            message = {"id": msg_id, "points": float(points), "number": to, "date_sent": int(time.time()),
                       "submitted_number": to, "status": "QUEUE", "error": None, "idx": form.get("idx"),
                       "parts": parts}
            self.messages.append({**message, "text": text, "from": sender, "notify_url": form.get("notify_url"),
                                  "encoding": form.get("encoding")})
        return 200, {"count": 1, "list": [message]}


def _handler_for(server: SmsapiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self):
            self._handle()

        def do_GET(self):
            self._handle()

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else urlsplit(self.path).query
            form = {name: values[-1] for name, values in parse_qs(raw, keep_blank_values=True).items()}
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            request = Recorded(method=self.command, path=urlsplit(self.path).path,
                               token=token if scheme == "Bearer" else None, form=form)
            status, body = server._answer(request)
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # noqa: A002 - quiet test output
            pass

    return Handler


@pytest.fixture
def smsapi_server():
    """An SMSAPI.pl stand-in on a free loopback port, for one test."""
    server = SmsapiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def call(client, url: str, params: dict[str, str], method: str = "POST"):
    """Call the app at `url` (absolute, as SMSAPI calls it) with `params`, via the Flask test client: GET with the
    fields in the query string, or POST with them as a form."""
    parts = urlsplit(url)
    base_url = f"{parts.scheme}://{parts.netloc}"
    if method == "GET":
        query = "&".join(filter(None, [parts.query, urlencode(params)]))
        return client.get(f"{parts.path}?{query}", base_url=base_url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.post(path, data=params, base_url=base_url)
