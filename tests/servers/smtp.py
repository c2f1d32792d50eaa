"""A real SMTP server for tests: aiosmtpd on loopback with STARTTLS required, AUTH (also XOAUTH2, checked at an
OAuth server's introspection endpoint), a self-signed certificate, switches to refuse or misbehave, and a silent
server that never answers (for timeouts)."""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import errno
import ipaddress
import json
import logging
import socket
import ssl
import threading
import urllib.parse
import urllib.request
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
USERNAME = "serwis@shop.example"
PASSWORD = "smtp secret ąę"


def free_port() -> int:
    """A loopback port nobody listens on (connecting to it is refused until someone binds it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1; returns (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    """One mail as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class SmtpServer:
    """What a test sees of the server: where it is, what it received, and switches to make it misbehave.

    `port` asks for STARTTLS before anything else, `tls_port` speaks TLS from the first byte; both
    require the login `username`/`password` and share the same mail list and switches.
    """

    host: str
    port: int
    tls_port: int
    cafile: str
    username: str = USERNAME
    password: str = PASSWORD
    messages: list[Received] = field(default_factory=list)
    connections: int = 0  # SMTP sessions opened by clients
    logins: int = 0  # AUTH attempts
    reject_next_rcpt_with: str | None = None  # e.g. "550 5.1.1 no such user": the next RCPT gets this reply
    reject_auth: bool = False  # refuse every login, even with the right password
    introspection_url: str | None = None  # where XOAUTH2 bearer tokens are checked (RFC 7662); None: refused
    oauth_logins: list[str] = field(default_factory=list)  # the users XOAUTH2 let in
    stall_at: int | None = None  # the mail with this number (1: the first) is taken in, its answer held (stall)
    stalled: threading.Event = field(default_factory=threading.Event, repr=False)  # set once that mail came in
    _resume: threading.Event = field(default_factory=threading.Event, repr=False)
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _sessions: list = field(default_factory=list, repr=False)  # (event loop, SMTP protocol) per connection

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The first `count` mails, waiting for them to arrive; fails the test when they do not."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                pytest.fail(f"expected {count} mail(s) on the SMTP server, got {len(self.messages)}")
            return self.messages[:count]

    def stall(self, number: int) -> None:
        """Take in mail `number` (counting every mail this server got, 1 for the first) and then answer nothing
        until `resume()` (or a minute): a server that hangs after DATA. `stalled` is set when it came in."""
        self.stall_at = number

    def resume(self) -> None:
        self._resume.set()

    def drop_connections(self) -> None:
        """Close every open client connection from the server's side, as servers do with idle clients."""
        for loop, protocol in self._sessions:
            if protocol.transport is not None:
                loop.call_soon_threadsafe(protocol.transport.close)
        self._sessions.clear()

    # aiosmtpd calls these from its own thread.

    def _connected(self, loop, protocol) -> None:
        self.connections += 1
        self._sessions.append((loop, protocol))

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins += 1
        accepted = (
            not self.reject_auth
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self.username.encode()
            and auth_data.password == self.password.encode()
        )
        return AuthResult(success=accepted, handled=False)

    async def auth_XOAUTH2(self, server, args) -> AuthResult:
        """AUTH XOAUTH2 as Google and Microsoft speak it: base64 of "user=U^Aauth=Bearer T^A^A", at once or after
        an empty challenge; a refused token gets a 334 challenge with a JSON reason, answered empty, then 535."""
        self.logins += 1
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        active_user = await asyncio.get_running_loop().run_in_executor(None, self._introspect, token)
        if user and active_user == user:
            self.oauth_logins.append(user)
            return AuthResult(success=True, handled=False, auth_data=user)
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "Bearer"}))
        return AuthResult(success=False, handled=False)

    def _introspect(self, token: str) -> str | None:
        """The user an active token speaks for, asked of the OAuth server as Dovecot asks it (POST token=...)."""
        if not self.introspection_url or not token:
            return None
        form = urllib.parse.urlencode({"token": token}).encode()
        request = urllib.request.Request(self.introspection_url, data=form, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.load(answer)
        return body.get("username") if body.get("active") else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.reject_next_rcpt_with:
            reply, self.reject_next_rcpt_with = self.reject_next_rcpt_with, None
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._arrived:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            number = len(self.messages)
            self._arrived.notify_all()
        if number == self.stall_at:
            self.stalled.set()
            await asyncio.get_running_loop().run_in_executor(None, self._resume.wait, 60)
        return "250 Message accepted for delivery"


class _CountingController(Controller):
    """aiosmtpd makes one SMTP protocol object per client connection: counting them counts connections."""

    def __init__(self, server: SmtpServer, **kwargs):
        super().__init__(server, hostname=HOST, **kwargs)
        self._server = server

    def factory(self):
        with warnings.catch_warnings():
            # The implicit TLS port does not require STARTTLS before AUTH, and aiosmtpd warns about that.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            protocol = SMTP(self.handler, **self.SMTP_kwargs)
        self._server._connected(self.loop, protocol)
        return protocol


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@contextmanager
def running_smtp_server(cert: Path, key: Path):
    """An SmtpServer on free loopback ports (STARTTLS and implicit TLS, AUTH required) while the block runs."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns on every AUTH about old APIs

    server, started = _start_smtp_server(cert, context)
    try:
        server.connections = 0  # start() opens a connection of its own to check the server is up
        server._sessions.clear()
        yield server
    finally:
        server.resume()
        for controller in started:
            controller.stop()


def _start_smtp_server(cert: Path, context: ssl.SSLContext, attempts: int = 5):
    """Start the server's two controllers on fresh ports; a port another process took between free_port() and
    the bind (other servers of the run, a parallel run) means new ports, not a failed test."""
    for attempt in range(attempts):
        server = SmtpServer(host=HOST, port=free_port(), tls_port=free_port(), cafile=str(cert))
        common = {"authenticator": server._authenticate, "auth_required": True}
        controllers = [
            _CountingController(server, port=server.port, tls_context=context, require_starttls=True,
                                auth_require_tls=True, **common),
            # On implicit TLS the whole session is encrypted; aiosmtpd only knows about STARTTLS for this check.
            _CountingController(server, port=server.tls_port, ssl_context=context, auth_require_tls=False,
                                **common),
        ]
        started = []
        try:
            for controller in controllers:
                controller.start()
                started.append(controller)
            return server, started
        except OSError as exc:
            for controller in started:
                controller.stop()
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise


@pytest.fixture
def smtp_server(smtp_certificate):
    """A running SMTP server for one test (STARTTLS and implicit TLS ports, AUTH required)."""
    with running_smtp_server(*smtp_certificate) as server:
        yield server


@dataclass
class SilentServer:
    host: str
    port: int
    accepted: list[socket.socket] = field(default_factory=list)  # the connections it holds, unanswered

    def hang_up(self) -> None:
        """Close every connection held so far (its clients see the connection end at once)."""
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_smtp_server():
    """A server that accepts connections and never says a word: a client waits until its timeout."""
    listener = socket.create_server((HOST, 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_forever, name="silent-smtp", daemon=True)
    thread.start()
    try:
        yield SilentServer(HOST, listener.getsockname()[1], accepted)
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in accepted:
            connection.close()
        listener.close()


@dataclass
class AnswerlessServer:
    """A plain SMTP server (no TLS, no login) that takes every mail in and then, instead of its final answer,
    stays silent (`hang_up` False) or closes the connection (`hang_up` True)."""

    host: str
    port: int
    hang_up: bool = False
    mails: int = 0  # mails received up to their final dot
    connections: int = 0


@pytest.fixture
def answerless_smtp_server():
    """An AnswerlessServer on loopback for one test; set `hang_up` before sending to choose how it misbehaves."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.05)
    server = AnswerlessServer(HOST, listener.getsockname()[1])
    stop = threading.Event()
    open_sockets: list[socket.socket] = []

    def converse(connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        connection.sendall(b"220 answerless.example ESMTP\r\n")
        in_data = False
        for line in reader:
            if in_data:
                if line != b".\r\n":
                    continue
                server.mails += 1
                if server.hang_up:
                    connection.shutdown(socket.SHUT_RDWR)
                return  # silent: the connection stays open, unanswered, until the test ends
            command = line[:4].upper()
            if command == b"EHLO":
                connection.sendall(b"250-answerless.example\r\n250 8BITMIME\r\n")
            elif command == b"DATA":
                in_data = True
                connection.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif command == b"QUIT":
                connection.sendall(b"221 Bye\r\n")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                connection.sendall(b"250 OK\r\n")

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                connection = listener.accept()[0]
            except TimeoutError:
                continue
            server.connections += 1
            open_sockets.append(connection)
            threading.Thread(target=converse, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept_forever, name="answerless-smtp", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in open_sockets:
            connection.close()
        listener.close()
