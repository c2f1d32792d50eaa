"""One log line per request (request id, method, path, status, duration, staff member), as text or, with
LOG_FORMAT=json, as one JSON object per line; and the request id in the X-Request-ID response header."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

log = logging.getLogger("app.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's request id may look like (UUIDs, nginx's $request_id, Heroku's...): anything else is replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")
# Path segments that carry a secret (the panel's sign-in links) are logged as <name>.
_SECRET_ARGUMENTS = re.compile(r"token|code|secret|key|password", re.IGNORECASE)
LOG_FORMATS = ("text", "json")
_HANDLER_MARK = "_repair_inbox_handler"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time, level, logger, message, the request's fields, any exception."""

    FIELDS = ("request_id", "method", "path", "status", "duration_ms", "user")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if "request_id" not in entry and has_request_context() and g.get("request_id"):
            entry["request_id"] = g.request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


JsonFormatter.converter = time.gmtime
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(app: Flask) -> None:
    """Log INFO and up to stderr in LOG_FORMAT, unless something already set logging up (pytest, gunicorn's
    --log-config, an instance's own dictConfig): the root logger's handlers are then left alone."""
    form = str(app.config.get("LOG_FORMAT") or "text").strip().lower()
    if form not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {LOG_FORMATS}, not {form!r}")
    formatter = JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT)
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _HANDLER_MARK, False)]
    if root.handlers and not ours:
        return
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
        ours = [handler]
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
            logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per job run every few seconds
    for handler in ours:
        handler.setFormatter(formatter)


def init_request_log(app: Flask) -> None:
    """The request id and clock start before any other handler (so an early answer is logged too), and the line
    is written after every other after-request handler has shaped the response."""
    trusted_proxy = int(app.config.get("TRUSTED_PROXIES") or 0) > 0

    def start():
        incoming = request.headers.get(REQUEST_ID_HEADER, "") if trusted_proxy else ""
        g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    def finish(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
        user = g.get("_login_user")  # set by Flask-Login when the request looked at the signed-in person
        user_id = str(user.id) if user is not None and getattr(user, "is_authenticated", False) else "-"
        path = loggable_path()
        log.info("request %s %s %s %s %sms user=%s", request_id, request.method, path, response.status_code,
                 duration_ms, user_id,
                 extra={"request_id": request_id, "method": request.method, "path": path,
                        "status": response.status_code, "duration_ms": duration_ms, "user": user_id})
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request_funcs.setdefault(None, []).insert(0, finish)  # after-request handlers run last-added first


def loggable_path() -> str:
    """The request's path without what may be personal or secret: query string values are left out (their
    names stay), and path segments of secret arguments (the panel's sign-in token) show as <name>."""
    path = request.path
    if request.url_rule is not None and request.view_args:
        for name, value in request.view_args.items():
            if _SECRET_ARGUMENTS.search(name) and isinstance(value, str) and value:
                path = path.replace(value, f"<{name}>")
    names = list(dict.fromkeys(request.args.keys()))
    return path + ("?" + "&".join(names) if names else "")
