"""A local stand-in for Twilio's REST API (the Messages resource, as the official client calls it), with
programmable faults, plus helpers to post status callbacks and incoming SMS to the app signed the way Twilio
signs them."""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from app.channels.sms_text import count

from .loopback import LoopbackHttpServer

HOST = "127.0.0.1"
MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json")
BALANCE_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Balance\.json")
# Twilio's errors as its API answers them: (HTTP status, message); "{to}" is the number asked for.
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number {to} is not a valid mobile number"),
}


def error_body(code: int, **words) -> tuple[int, dict]:
    """Twilio's error JSON for `code`: (status, {"code", "message", "more_info", "status"})."""
    status, message = ERRORS[code]
    return status, {"code": code, "message": message.format(**words),
                    "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


@dataclass
class Recorded:
    """One request as the server got it; `form` holds the last value of each field, `peer` the client's
    (host, port), which stays the same while the client reuses its connection."""

    peer: tuple[str, int]
    method: str
    path: str
    auth: tuple[str, str] | None
    form: dict[str, str]


@dataclass
class Forced:
    """An answer given to the next request whatever it asks, after `delay` seconds."""

    status: int
    body: dict | None = None
    delay: float = 0.0


@dataclass
class TwilioServer(LoopbackHttpServer):
    """What a test sees of the server: its URL and credentials, what it got, and switches for faults.

    Numbers in `invalid_numbers`, `unsubscribed` or `landlines` are refused with 21211, 21610 or 21614;
    `force()` queues answers for the next requests (a 500, a slow answer); every request is in `requests`
    and every message created in `messages` (the JSON resources as answered).
    """

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    invalid_numbers: set[str] = field(default_factory=set)
    unsubscribed: set[str] = field(default_factory=set)
    landlines: set[str] = field(default_factory=set)
    balance: str = "20.00"  # what the Balance resource says, in USD
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    hold_at: int | None = None  # the request with this number (1: the first) is taken in, its answer held (hold)
    holding: threading.Event = field(default_factory=threading.Event)  # set once that request came in
    _release: threading.Event = field(default_factory=threading.Event)
    _forced: deque[Forced] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    thread_name = "twilio-server"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def force(self, status: int, body: dict | None = None, delay: float = 0.0) -> None:
        """Answer the next request not yet answered with `status` and `body` (JSON), after `delay` seconds."""
        with self._lock:
            self._forced.append(Forced(status, body, delay))

    def hold(self, number: int) -> None:
        """Take in request `number` (counting every request, 1 for the first) and keep it open without an answer
        until `release()` (or a minute): an SMS whose request reached Twilio. `holding` is set when it came in."""
        self.hold_at = number

    def release(self) -> None:
        self._release.set()

    def fail_next(self, status: int = 500, code: int | None = None, message: str = "Internal Server Error") -> None:
        """The next request fails with `status` and Twilio's error JSON (code defaults to 20000 + status)."""
        code = code or 20000 + status
        self.force(status, {"code": code, "message": message, "status": status,
                            "more_info": f"https://www.twilio.com/docs/errors/{code}"})

    def message(self, sid: str) -> dict:
        return next(message for message in self.messages if message["sid"] == sid)

    # -------------------------------------------------------- what the app gets back from Twilio

    def status_params(self, sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
        """The fields of Twilio's status callback for message `sid` reaching `status`."""
        message = self.message(sid)
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid, "SmsSid": sid,
            "MessageStatus": status, "SmsStatus": status, "To": message["to"], "From": message["from"] or "",
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def report(self, client, sid: str, status: str, error_code: int | None = None):
        """Do what Twilio does when message `sid` reaches `status`: POST the signed callback to the
        StatusCallback URL the app gave when creating the message (through the Flask test client)."""
        callback = self.message(sid)["status_callback"]
        assert callback, f"message {sid} was sent without a StatusCallback"
        params = self.status_params(sid, status, error_code)
        return post_callback(client, callback, params, sign(self.auth_token, callback, params))

    def incoming_params(self, sender: str, body: str, to: str, media_urls: tuple[str, ...] = (),
                        sid: str | None = None) -> dict[str, str]:
        """The fields Twilio posts to a number's "A message comes in" webhook when `sender` texts `to`."""
        sid = sid or ("MM" if media_urls else "SM") + secrets.token_hex(16)
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid, "SmsMessageSid": sid,
            "SmsSid": sid, "SmsStatus": "received", "From": sender, "To": to, "Body": body,
            "NumMedia": str(len(media_urls)), "NumSegments": str(max(count(body).parts, 1)),
            "FromCountry": "PL", "ToCountry": "PL",
        }
        for index, url in enumerate(media_urls):
            params[f"MediaUrl{index}"] = url
            params[f"MediaContentType{index}"] = "image/jpeg"
        return params

    def text(self, client, url: str, sender: str, body: str, to: str, **fields):
        """Do what Twilio does when `sender` texts the shop's number `to`: POST the signed SMS to the app's
        webhook `url` (through the Flask test client). `fields` go to incoming_params (media_urls, sid)."""
        params = self.incoming_params(sender, body, to, **fields)
        return post_callback(client, url, params, sign(self.auth_token, url, params))

    # -------------------------------------------------------- answering requests

    def _answer(self, request: Recorded) -> tuple[int, dict | None]:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            forced = self._forced.popleft() if self._forced else None
        if number == self.hold_at:
            self.holding.set()
            self._release.wait(60)
        if forced is not None:
            time.sleep(forced.delay)
            return forced.status, forced.body
        balance = BALANCE_PATH.fullmatch(request.path)
        if request.method == "GET" and balance is not None:
            if request.auth != (self.account_sid, self.auth_token) or balance["account"] != self.account_sid:
                return error_body(20003)
            return 200, {"account_sid": self.account_sid, "balance": self.balance, "currency": "USD"}
        match = MESSAGES_PATH.fullmatch(request.path)
        if request.method != "POST" or match is None:
            return error_body(20404, path=request.path)
        if request.auth != (self.account_sid, self.auth_token) or match["account"] != self.account_sid:
            return error_body(20003)
        return self._create_message(request.form)

    def _create_message(self, form: dict[str, str]) -> tuple[int, dict]:
        to, body = form.get("To", ""), form.get("Body", "")
        if not to:
            return error_body(21604)
        if not body:
            return error_body(21602)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return error_body(21603)
        for numbers, code in ((self.invalid_numbers, 21211), (self.unsubscribed, 21610), (self.landlines, 21614)):
            if to in numbers:
                return error_body(code, to=to)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid, "account_sid": self.account_sid, "status": "queued", "to": to,
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"), "body": body,
            "direction": "outbound-api", "num_segments": str(count(body).parts), "num_media": "0",
            "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
            "api_version": "2010-04-01", "date_created": format_datetime(datetime.now(timezone.utc)),
            "date_sent": None, "date_updated": format_datetime(datetime.now(timezone.utc)),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "status_callback": form.get("StatusCallback"),  # kept for report(); Twilio does not show it
        }
        with self._lock:
            self.messages.append(message)
        return 201, {key: value for key, value in message.items() if key != "status_callback"}


def _handler_for(server: TwilioServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK wait

        def do_POST(self):
            self._handle()

        def do_GET(self):
            self._handle()

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = {name: values[-1] for name, values in parse_qs(raw, keep_blank_values=True).items()}
            request = Recorded(peer=self.client_address[:2], method=self.command, path=urlsplit(self.path).path,
                               auth=_basic_auth(self.headers), form=form)
            status, body = server._answer(request)
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # noqa: A002 (the base class's name) - quiet test output
            pass

    return Handler


def _basic_auth(headers) -> tuple[str, str] | None:
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user, password


@pytest.fixture
def twilio_server():
    """A Twilio stand-in on a free loopback port, for one test."""
    server = TwilioServer()
    server.start()
    try:
        yield server
    finally:
        server.release()
        server.stop()


# ------------------------------------------------------------ the app's side


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature that Twilio sends with `params` posted to `url`, for an account's auth `token`."""
    return RequestValidator(token).compute_signature(url, params)


def post_callback(client, url: str, params: dict[str, str], signature: str):
    """POST `params` with `signature` to the app at `url` (absolute, as Twilio calls it), via the test client."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.post(path, data=params, base_url=f"{parts.scheme}://{parts.netloc}",
                       headers={"X-Twilio-Signature": signature})
