"""Configuration: defaults, then instance/config.py, then the environment, then the caller's overrides."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # None: SQLite file instance/repair-inbox.db
    "SECRET_KEY": None,  # None: generated once into instance/secret_key
    "SECRET_KEY_FALLBACKS": [],  # old keys, still accepted for sessions and stored secrets
    "SCHEDULER_ENABLED": True,
    # The process running the jobs holds a database lease this long and renews it every third of it; a second
    # scheduler takes over this long after the first one died.
    "SCHEDULER_LEASE_SECONDS": 60,
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    # Reverse proxies in front of the app (Caddy, nginx...): how many hops' X-Forwarded-For/-Proto/-Host headers
    # to believe. 0 (no proxy) ignores them all: a client could write anything there.
    "TRUSTED_PROXIES": 0,
    "RATELIMIT_ENABLED": True,  # set, not left out: the limiter object is shared and keeps the last app's choice
    "RATELIMIT_STORAGE_URI": "memory://",
    "LOGIN_LIMIT_PER_IP": "20 per minute",
    "LOGIN_LIMIT_PER_ACCOUNT": "5 per minute",
    # The public request form (/p/<slug>/zapytanie): requests per address and per e-mail or phone number given.
    "REQUEST_LIMIT_PER_IP": "10 per hour",
    "REQUEST_LIMIT_PER_CONTACT": "3 per hour",
    "MAX_CONTENT_LENGTH": 110 * 1024 * 1024,  # one request: a message with a few large attachments
    "ATTACHMENT_MAX_BYTES": 25 * 1024 * 1024,  # one file
    # Where stored files go: "filesystem" (instance/attachments/: one machine, or a volume all machines share) or
    # "database" (the database's stored_blob_chunks table: every machine reaches them). `flask files move` moves
    # the existing ones; reads look in both, so nothing goes missing in between.
    "ATTACHMENT_STORAGE": "filesystem",
    "SQLALCHEMY_ECHO": False,
    "SMTP_TIMEOUT": 30,  # seconds for every read from a mail server
    "SMTP_CA_FILE": None,  # extra CA bundle for mail servers with a private certificate
    "IMAP_TIMEOUT": 30,  # seconds for every read from an IMAP server
    "IMAP_CA_FILE": None,  # extra CA bundle for IMAP servers with a private certificate
    "MAIL_PARSER_PROCESSES": 1,  # processes parsing a backlog of received mail beside the poller; 0: none
    "MAILBOX_BROKEN_AFTER": 3,  # failed passes in a row before a mailbox is flagged broken
    # Mailboxes signing in with OAuth2 (app/accounts/oauth.py): the providers' endpoints and mail servers, so that tests
    # and unusual tenants can point elsewhere. Servers are HOST:PORT.
    "OAUTH_TIMEOUT": 30,  # seconds for every request to a provider's sign-in server
    "OAUTH_REFRESH_MARGIN": 300,  # an access token is renewed when it has less than this many seconds left
    "OAUTH_GOOGLE_AUTHORIZE_URL": "https://accounts.google.com/o/oauth2/v2/auth",
    "OAUTH_GOOGLE_TOKEN_URL": "https://oauth2.googleapis.com/token",
    "OAUTH_GOOGLE_USERINFO_URL": "https://openidconnect.googleapis.com/v1/userinfo",
    "OAUTH_GOOGLE_IMAP_SERVER": "imap.gmail.com:993",
    "OAUTH_GOOGLE_SMTP_SERVER": "smtp.gmail.com:587",
    "OAUTH_MICROSOFT_TENANT": "common",  # or the shop's tenant id / domain ({tenant} in the URLs below)
    "OAUTH_MICROSOFT_AUTHORIZE_URL": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
    "OAUTH_MICROSOFT_TOKEN_URL": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    "OAUTH_MICROSOFT_USERINFO_URL": "",  # the address comes from the ID token (its token is for Outlook, not Graph)
    "OAUTH_MICROSOFT_IMAP_SERVER": "outlook.office365.com:993",
    "OAUTH_MICROSOFT_SMTP_SERVER": "smtp.office365.com:587",
    "OUTBOX_BACKOFF_BASE": 60,  # seconds before the first retry; doubles each time
    "OUTBOX_BACKOFF_CAP": 3600,  # the longest wait between two attempts
    # A claim older than this with no result was left by a dead dispatcher: queued again if its hand-over never
    # started, else uncertain.
    "OUTBOX_SENDING_STALE": 600,
    "BACKUP_DIR": None,  # a directory turns the daily backup on
    "BACKUP_KEEP": 7,  # the daily backup keeps this many newest files in BACKUP_DIR
    "POSTGRES_BIN_DIR": None,  # where pg_dump, pg_restore and psql are; default: the newest installed
    "METRICS_TOKEN": None,  # set: GET /metrics answers Prometheus with this bearer token; unset: 404
    "LOG_FORMAT": "text",  # or "json": one JSON object per log line
    "DEFAULT_LOCALE": "pl",
    "DEFAULT_TIMEZONE": "Europe/Warsaw",
}

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _from_env(name: str, current: object) -> object:
    """The environment's value for `name`, parsed as the type of its default; `current` when unset."""
    raw = os.environ.get(name)
    if raw is None:
        return current
    default = DEFAULTS[name]
    if isinstance(default, bool):
        try:
            return _BOOL_WORDS[raw.strip().lower()]
        except KeyError:
            raise ValueError(f"{name} must be one of {sorted(_BOOL_WORDS)}, not {raw!r}") from None
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, list):
        return [part for part in raw.split(",") if part]
    return raw


def database_uri(url: str | None, instance_path: str) -> str:
    """SQLAlchemy URI for DATABASE_URL; plain postgres:// URLs get the psycopg 3 driver."""
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "repair-inbox.db")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret_key(instance_path: str) -> str:
    """The app secret from instance/secret_key, made on first start (mode 0600)."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def configure(app, overrides: dict | None = None) -> None:
    """Fill app.config from the layers above, then derive what depends on them."""
    for key, default in DEFAULTS.items():
        if app.config.get(key) is None:  # Flask predefines some keys (SECRET_KEY_FALLBACKS) as None
            app.config[key] = list(default) if isinstance(default, list) else default
    app.config.from_pyfile("config.py", silent=True)
    for key in DEFAULTS:
        app.config[key] = _from_env(key, app.config[key])
    if overrides:
        app.config.update(overrides)

    if app.config["ATTACHMENT_STORAGE"] not in ("filesystem", "database"):
        raise ValueError(f"ATTACHMENT_STORAGE must be filesystem or database, not {app.config['ATTACHMENT_STORAGE']!r}")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(app.instance_path)
    app.config.setdefault(
        "SQLALCHEMY_DATABASE_URI", database_uri(app.config["DATABASE_URL"], app.instance_path)
    )
    secure = str(app.config["PUBLIC_BASE_URL"]).startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="ri_staff",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_NAME="ri_staff_remember",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_DURATION=60 * 60 * 24 * 30,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        BABEL_DEFAULT_LOCALE=app.config["DEFAULT_LOCALE"],
        BABEL_DEFAULT_TIMEZONE=app.config["DEFAULT_TIMEZONE"],
        BABEL_TRANSLATION_DIRECTORIES=str(Path(app.root_path) / "translations"),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
