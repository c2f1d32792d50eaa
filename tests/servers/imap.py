"""A real IMAP server for tests: Dovecot on loopback (plain and TLS ports, self-signed certificate), one passwd-file
user per test with its own Maildir, and helpers to APPEND mail, look at what the server holds, change a folder's
UIDVALIDITY and stop the server."""
from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted

from .smtp import HOST, free_port, make_certificate

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
PASSWORD = "imap secret"

CONFIG = """\
protocols = imap
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
instance_name = dovecot-{name}
log_path = {root}/dovecot.log
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_uid = {mail_user}
mail_gid = {mail_group}
first_valid_uid = 0
mail_fsync = never
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
imap_capability = +MOVE
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
{oauth_passdb}userdb {{
  driver = static
  args = home={root}/mail/%d/%n
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No growing delay after failed logins: tests fail logins on purpose.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
# With an OAuth server: XOAUTH2 logins whose bearer token the server's introspection says is active for that user.
OAUTH_PASSDB = """\
auth_failure_delay = 0
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
"""
OAUTH_CONFIG = """\
introspection_mode = post
introspection_url = {introspection_url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""


@dataclass(frozen=True)
class ServerMail:
    """One mail as the IMAP server holds it."""

    uid: int
    flags: tuple[str, ...]
    message_id: str
    subject: str


class Dovecot:
    """One Dovecot process for the test run: started from a config file in its own temp directory.

    As root, Dovecot's login and mail processes run as dovenull/nobody, so the directory tree is made
    traversable for them (pytest's tmp_path lives under a 0700 directory, hence a temp root of our own).
    With `introspection_url` it also takes XOAUTH2 logins, checking each token at that introspection endpoint.
    """

    def __init__(self, introspection_url: str | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="ri-dovecot-"))
        self.root.chmod(0o755)
        self.host, self.port, self.tls_port = HOST, free_port(), free_port()
        self.cafile = str(make_certificate(self.root)[0])
        (self.root / "users").mkdir()
        mail = self.root / "mail"
        mail.mkdir()
        root_user = os.geteuid() == 0
        if root_user:
            shutil.chown(mail, "nobody", "nogroup")
        me = pwd_name()
        if introspection_url:
            (self.root / "dovecot-oauth2.conf.ext").write_text(OAUTH_CONFIG.format(introspection_url=introspection_url))
        self.config = self.root / "dovecot.conf"
        self.config.write_text(CONFIG.format(
            host=self.host, root=self.root, name=uuid.uuid4().hex[:8], port=self.port, tls_port=self.tls_port,
            internal_user="dovecot" if root_user else me, internal_group="dovecot" if root_user else me,
            login_user="dovenull" if root_user else me, mail_user="nobody" if root_user else me,
            mail_group="nogroup" if root_user else me,
            oauth_mechanisms=" xoauth2 oauthbearer" if introspection_url else "",
            oauth_passdb=OAUTH_PASSDB.format(root=self.root) if introspection_url else "",
        ))
        self.process: subprocess.Popen | None = None
        self._users = itertools.count(1)

    def start(self) -> None:
        """Start the server and wait until it greets on the plain port."""
        if self.running:
            return
        # A session of its own, so that stop() can end the client processes with the master in one signal.
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as connection:
                    if connection.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()}\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start in 10 s\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server and drop every client connection at once (the master alone would leave its IMAP
        processes serving their clients); the mail stays on disk for the next start()."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
            self.process.stderr.close()
            self.process = None
        deadline = time.monotonic() + 10
        while self._port_open() and time.monotonic() < deadline:  # child processes linger for a moment
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _port_open(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def add_user(self, password: str = PASSWORD) -> str:
        """A new account with an empty INBOX, in a passwd file of its own: Dovecot notices a changed file by its
        time stamp, which a second account added in the same second would not change."""
        user = f"shop{next(self._users)}-{uuid.uuid4().hex[:6]}@shop.example"
        (self.root / "users" / user).write_text(f"{user}:{{PLAIN}}{password}\n")
        return user

    def doveadm(self, *args: str) -> str:
        result = subprocess.run([DOVEADM, "-c", str(self.config), *args], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text() if path.exists() else ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def pwd_name() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass
class ImapAccount:
    """One test's account on the shared Dovecot: where it is, how to sign in, and what a test does to it."""

    server: Dovecot
    user: str
    password: str = PASSWORD

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int:
        return self.server.tls_port

    @property
    def cafile(self) -> str:
        return self.server.cafile

    def _connect(self, folder: str | None = "INBOX") -> MailBoxUnencrypted:
        return MailBoxUnencrypted(self.host, self.port, timeout=30).login(self.user, self.password,
                                                                        initial_folder=folder)

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> None:
        """APPEND the exact bytes to `folder` (created when missing), with `flags` such as "\\Seen"."""
        self.append_many([raw], folder, flags)

    def append_many(self, raws, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> None:
        """APPEND every mail of `raws` over one connection."""
        with self._connect(None) as box:
            if not box.folder.exists(folder):
                box.folder.create(folder)
            for raw in raws:
                box.append(raw, folder, flag_set=flags)

    def create_folder(self, folder: str) -> None:
        with self._connect(None) as box:
            box.folder.create(folder)

    def messages(self, folder: str = "INBOX") -> list[ServerMail]:
        """What `folder` holds now, in UID order (deleted mail gone); [] for a folder that does not exist."""
        with self._connect(None) as box:
            if not box.folder.exists(folder):
                return []
            box.folder.set(folder, readonly=True)
            return [
                ServerMail(int(mail.uid), tuple(flag for flag in mail.flags if flag != "\\Recent"),
                           (mail.headers.get("message-id") or ("",))[0].strip(), mail.subject)
                for mail in box.fetch("ALL", headers_only=True, mark_seen=False, bulk=True)
            ]

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self._connect(None) as box:
            return box.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"]

    def reset_uidvalidity(self, folder: str = "INBOX") -> int:
        """Give `folder` a new UIDVALIDITY, as a server does after restoring a backup; returns the new value.

        The mail stays with its UIDs; a client must take every UID it knew as meaningless.
        """
        new = self.uidvalidity(folder) + 1
        self.server.doveadm("mailbox", "update", "-u", self.user, "--uid-validity", str(new), folder)
        return new

    def clear(self, folder: str = "INBOX") -> None:
        """Delete every mail in `folder` (EXPUNGE)."""
        with self._connect(folder) as box:
            box.delete(box.uids("ALL"))

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def make_mailbox(self, *, security: str = "none", name: str = "Serwis", email: str = "serwis@shop.example",
                     **settings):
        """A Mailbox row that receives from this account (SMTP pointing nowhere useful unless given)."""
        from app.accounts.mailboxes import create_mailbox

        port = {"none": self.port, "starttls": self.port, "tls": self.tls_port}[security]
        values = {"smtp_host": "127.0.0.1", "smtp_port": 2525, "smtp_security": "none",
                  "imap_host": self.host, "imap_port": port, "imap_security": security,
                  "username": self.user, "password": self.password, **settings}
        return create_mailbox(name=name, email=email, **values)


@pytest.fixture(scope="session")
def dovecot():
    """One Dovecot for the test run (started once, ~0.05 s); tests each get an account of their own."""
    if not Path(DOVECOT).exists():
        pytest.fail(f"{DOVECOT} is missing: install dovecot-imapd")
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def imap_server(dovecot) -> ImapAccount:
    """A fresh account (own Maildir) on the running Dovecot; a test that stops the server gets it started again."""
    try:
        yield ImapAccount(dovecot, dovecot.add_user())
    finally:
        dovecot.start()


@pytest.fixture(scope="session")
def oauth_dovecot(oauth_provider):
    """A second Dovecot for the run that also takes XOAUTH2 logins, checked against the test OAuth server."""
    if not Path(DOVECOT).exists():
        pytest.fail(f"{DOVECOT} is missing: install dovecot-imapd")
    server = Dovecot(introspection_url=oauth_provider.introspection_url)
    try:
        server.start()
        yield server
    finally:
        server.remove()
