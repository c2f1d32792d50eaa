"""IMAP: connecting to a mailbox's folder, listing and fetching mail by UID as the exact bytes the server holds,
the after-fetch action (seen, move, delete), "Test connection", and every failure told in plain words."""
from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import (
    MailboxFolderSelectError, MailboxFolderStatusError, MailboxLoginError, MailboxMoveError,
    UnexpectedCommandStatusError,
)
from imap_tools.mailbox import BaseMailBox

from ..crypto import SecretUnreadable, decrypt
from ..models import Mailbox
from ..accounts.oauth import TokenUnavailable, access_token

_FETCH_UID = re.compile(rb"\bUID (\d+)")
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ImapFailure(Exception):
    """Talking to the mailbox's IMAP server failed; `str()` says what happened in the shop's words and `code`
    names the kind: dns, refused, timeout, tls, auth, folder, disconnected, protocol, connect."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Listed:
    """One mail above the cursor: its UID and its size as the server reports it (RFC822.SIZE)."""

    uid: int
    size: int


class ImapFolder:
    """A signed-in connection with the mailbox's folder selected. Raises ImapFailure for every server trouble."""

    def __init__(self, mailbox: Mailbox, box: BaseMailBox, uidvalidity: int, count: int):
        self.mailbox = mailbox
        self._box = box
        self.uidvalidity = uidvalidity
        self.count = count

    def list_after(self, last_uid: int) -> list[Listed]:
        """The mail with a UID above `last_uid`, lowest UID first, with sizes (no bodies: a cheap listing).

        `UID n:*` names the highest UID even when it is below n (RFC 3501), so the range is filtered here.
        """
        return [listed for listed in self._list(f"{last_uid + 1}:*") if listed.uid > last_uid]

    def list_upto(self, last_uid: int) -> list[Listed]:
        """The mail the folder still holds with a UID of at most `last_uid`, lowest UID first."""
        return self._list(f"1:{last_uid}") if last_uid else []

    def _list(self, uid_range: str) -> list[Listed]:
        with _told(self.mailbox):
            typ, data = self._box.client.uid("FETCH", uid_range, "(UID RFC822.SIZE)")
            _expect_ok(typ, data)
        listed = {}
        for line in data:
            meta = (line[0] if isinstance(line, tuple) else line) or b""
            uid, size = _FETCH_UID.search(meta), _FETCH_SIZE.search(meta)
            if uid:
                listed[int(uid[1])] = Listed(int(uid[1]), int(size[1]) if size else 0)
        return [listed[uid] for uid in sorted(listed)]

    def fetch(self, uids: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        """(UID, the exact bytes of the mail) for `uids`, in one FETCH; never marks anything as seen.

        A UID the server no longer has (another client deleted it meanwhile) is simply not returned.
        """
        uids = list(uids)
        with _told(self.mailbox):
            typ, data = self._box.client.uid("FETCH", uid_set(uids), "(UID BODY.PEEK[])")
            _expect_ok(typ, data)
        pending: bytes | None = None
        for item in data:
            if isinstance(item, tuple):  # (b'7 (UID 12 BODY[] {2048}', the literal)
                meta, pending = item
                uid = _FETCH_UID.search(meta)
                if uid:
                    yield int(uid[1]), pending
                    pending = None
            elif pending is not None and item:  # some servers send the UID after the literal: b' UID 12)'
                uid = _FETCH_UID.search(item)
                if uid:
                    yield int(uid[1]), pending
                pending = None

    def mark_seen(self, uids: list[int]) -> None:
        """Flag the mail as read, quietly and without EXPUNGE (imap-tools' flag() would also expunge mail
        another client marked as deleted)."""
        self._store(uids, r"(\Seen)")

    def move(self, uids: list[int], folder: str) -> None:
        """Move the mail to `folder` (MOVE, or copy + delete on servers without it); refuses a missing folder."""
        if not uids:
            return
        with _told(self.mailbox, folder=folder):
            self._box.move([str(uid) for uid in uids], folder)

    def delete(self, uids: list[int]) -> None:
        """Delete the mail for good: flagged \\Deleted, then expunged (only these UIDs where the server can)."""
        if not uids:
            return
        self._store(uids, r"(\Deleted)")
        with _told(self.mailbox):
            if "UIDPLUS" in self._box.client.capabilities:
                typ, data = self._box.client.uid("EXPUNGE", uid_set(uids))
            else:
                typ, data = self._box.client.expunge()
            _expect_ok(typ, data)

    def folder_exists(self, folder: str) -> bool:
        with _told(self.mailbox):
            return self._box.folder.exists(folder)

    def _store(self, uids: list[int], flags: str) -> None:
        if not uids:
            return
        with _told(self.mailbox):
            typ, data = self._box.client.uid("STORE", uid_set(uids), "+FLAGS.SILENT", flags)
            _expect_ok(typ, data)


@contextmanager
def open_folder(mailbox: Mailbox, *, readonly: bool = False) -> Iterator[ImapFolder]:
    """Connect as the mailbox says (security, certificate check, IMAP_TIMEOUT on every read), sign in, select its
    folder and read its UIDVALIDITY; signs out at the end. Raises ImapFailure, never a library's exception."""
    box = None
    with _told(mailbox, folder=mailbox.imap_folder):
        box = _connect(mailbox)
    try:
        with _told(mailbox, folder=mailbox.imap_folder):
            _login(box, mailbox)
            box.folder.set(mailbox.imap_folder, readonly=readonly)
            status = box.folder.status(mailbox.imap_folder, ["MESSAGES", "UIDVALIDITY"])
        yield ImapFolder(mailbox, box, status["UIDVALIDITY"], status["MESSAGES"])
    finally:
        _logout(box)


def test_connection(mailbox: Mailbox) -> tuple[bool, str]:
    """Sign in, open the folder and say what is there; (True, what worked) or (False, what failed).

    With "move to a folder" after fetching, the target folder has to exist too (a missing one would only
    show up after the first mail was fetched).
    """
    if not mailbox.imap_host:
        return False, _("Receiving is not set up: enter the IMAP server first.")
    try:
        with open_folder(mailbox, readonly=True) as folder:
            values = {"host": mailbox.imap_host, "port": mailbox.imap_port, "security": security_name(mailbox),
                      "user": mailbox.username, "folder": mailbox.imap_folder, "count": folder.count,
                      "uidvalidity": folder.uidvalidity}
            if mailbox.after_fetch == "move" and not folder.folder_exists(mailbox.after_fetch_folder or ""):
                return False, _("Signed in, but the folder %(folder)s for fetched mail does not exist on the "
                                "server: create it in your mail program or choose another one.",
                                folder=mailbox.after_fetch_folder or "")
    except ImapFailure as exc:
        return False, str(exc)
    return True, _("Connected to %(host)s:%(port)s (%(security)s) and signed in as %(user)s. The folder "
                   "%(folder)s has %(count)s messages (UIDVALIDITY %(uidvalidity)s).", **values)


def uid_set(uids: Iterable[int]) -> str:
    """An IMAP UID set with runs folded: [1, 2, 3, 7, 9, 10] → "1:3,7,9:10" (keeps commands short)."""
    runs: list[list[int]] = []
    for uid in sorted(set(uids)):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(first) if first == last else f"{first}:{last}" for first, last in runs)


def security_name(mailbox: Mailbox) -> str:
    return {"tls": "TLS", "starttls": "STARTTLS"}.get(mailbox.imap_security) or _("no encryption")


def timeout() -> int:
    return current_app.config.get("IMAP_TIMEOUT", 30)


# --- connecting ---------------------------------------------------------------------------------


def _ssl_context(mailbox: Mailbox) -> ssl.SSLContext:
    """Certificates are verified unless the mailbox says not to (a private server with a self-signed one);
    IMAP_CA_FILE names a CA to trust instead of the system's."""
    context = ssl.create_default_context(cafile=current_app.config.get("IMAP_CA_FILE"))
    if not mailbox.imap_validate_cert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect(mailbox: Mailbox) -> BaseMailBox:
    host, port = mailbox.imap_host, mailbox.imap_port
    if mailbox.imap_security == "tls":
        return MailBox(host, port, timeout=timeout(), ssl_context=_ssl_context(mailbox))
    if mailbox.imap_security == "starttls":
        if port == 993:  # imap-tools refuses it with a ValueError: the port speaks TLS from the first byte
            raise ImapFailure(_("Port 993 speaks TLS from the start: choose TLS, or port 143 for STARTTLS."), "tls")
        return MailBoxStartTls(host, port, timeout=timeout(), ssl_context=_ssl_context(mailbox))
    return MailBoxUnencrypted(host, port, timeout=timeout())


def _login(box: BaseMailBox, mailbox: Mailbox) -> None:
    """Sign in: OAuth mailboxes with XOAUTH2, the others with their password; LOGIN takes ASCII only, so a Polish
    letter in the login or password goes as AUTHENTICATE PLAIN."""
    if mailbox.uses_oauth:
        _login_xoauth2(box, mailbox)
        return
    password = decrypt(mailbox.password_enc) if mailbox.password_enc else ""
    user = mailbox.username or ""
    if (user + password).isascii():
        box.login(user, password, initial_folder=None)
    else:
        box.login_utf8(user, password, initial_folder=None)


def _login_xoauth2(box: BaseMailBox, mailbox: Mailbox) -> None:
    """AUTHENTICATE XOAUTH2 with the mailbox's access token. A refused token is renewed once and tried again:
    it may have been cut short, and when the consent was revoked the provider's refusal of the refresh token
    says so in words (TokenUnavailable)."""
    try:
        box.xoauth2(mailbox.username, access_token(mailbox), initial_folder=None)
        return
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        pass
    try:
        box.xoauth2(mailbox.username, access_token(mailbox, renew=True), initial_folder=None)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise ImapFailure(_("The IMAP server rejected the OAuth sign-in of %(user)s: %(reply)s",
                            user=mailbox.username, reply=exc), "auth") from exc


def _logout(box: BaseMailBox | None) -> None:
    """Say goodbye; a server that went away meanwhile is no error."""
    if box is None:
        return
    try:
        box.logout()
    except (imaplib.IMAP4.error, UnexpectedCommandStatusError, OSError):
        try:
            box.client.shutdown()
        except OSError:
            pass


def _expect_ok(typ: str, data: list) -> None:
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{typ} {_text(data)}")


# --- failures in words --------------------------------------------------------------------------


@contextmanager
def _told(mailbox: Mailbox, folder: str | None = None) -> Iterator[None]:
    """Turn what imaplib, imap-tools, ssl and socket raise into an ImapFailure in plain words."""
    try:
        yield
    except ImapFailure:
        raise
    except (imaplib.IMAP4.error, UnexpectedCommandStatusError, OSError, SecretUnreadable, TokenUnavailable) as exc:
        raise describe_failure(exc, mailbox, folder) from exc


def describe_failure(exc: BaseException, mailbox: Mailbox, folder: str | None = None) -> ImapFailure:
    """What went wrong talking to the mailbox's IMAP server, in the shop's words."""
    where = {"host": mailbox.imap_host, "port": mailbox.imap_port}
    if isinstance(exc, MailboxLoginError):
        return ImapFailure(_("The IMAP server rejected the login %(user)s: %(reply)s", user=mailbox.username,
                             reply=_server_text(exc)), "auth")
    if isinstance(exc, MailboxMoveError):
        return ImapFailure(_("The IMAP server could not move fetched mail to the folder %(folder)s: %(reply)s",
                             folder=folder, reply=_server_text(exc)), "folder")
    if isinstance(exc, (MailboxFolderSelectError, MailboxFolderStatusError)):
        return ImapFailure(_("The folder %(folder)s cannot be opened on the IMAP server: %(reply)s",
                             folder=folder, reply=_server_text(exc)), "folder")
    if isinstance(exc, TokenUnavailable):
        return ImapFailure(str(exc), "auth")
    if isinstance(exc, SecretUnreadable):
        return ImapFailure(_("The stored password cannot be read (the app's secret key changed): enter it again."),
                           "auth")
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return ImapFailure(_("The IMAP server %(host)s:%(port)s did not answer: timed out after %(seconds)s s.",
                             seconds=timeout(), **where), "timeout")
    if isinstance(exc, socket.gaierror):
        return ImapFailure(_("The IMAP server %(host)s was not found (DNS lookup failed).", **where), "dns")
    if isinstance(exc, ConnectionRefusedError):
        return ImapFailure(_("The IMAP server %(host)s:%(port)s refused the connection: check the host and port.",
                             **where), "refused")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ImapFailure(_("The secure connection (TLS) to %(host)s failed: its certificate is not trusted "
                             "(%(reason)s). Turn off the certificate check only for a server you trust.",
                             reason=exc.verify_message, **where), "tls")
    if isinstance(exc, ssl.SSLError):
        return ImapFailure(_("The secure connection (TLS) to %(host)s:%(port)s failed (%(reason)s): check the "
                             "port and the security setting.", reason=exc.reason or exc, **where), "tls")
    if isinstance(exc, (imaplib.IMAP4.abort, ConnectionError, EOFError)):
        return ImapFailure(_("The IMAP server %(host)s:%(port)s closed the connection unexpectedly.", **where),
                           "disconnected")
    if isinstance(exc, (imaplib.IMAP4.error, UnexpectedCommandStatusError)):
        return ImapFailure(_("The IMAP server %(host)s:%(port)s refused a command: %(reply)s",
                             reply=_server_text(exc), **where), "protocol")
    return ImapFailure(_("Could not connect to the IMAP server %(host)s:%(port)s: %(reason)s",
                         reason=getattr(exc, "strerror", None) or exc, **where), "connect")


def _server_text(exc: BaseException) -> str:
    """The server's own words from a failed command (e.g. "[AUTHENTICATIONFAILED] Authentication failed.")."""
    if isinstance(exc, UnexpectedCommandStatusError):
        return _text(exc.command_result[1]) or str(exc.command_result[0])
    return str(exc)


def _text(data) -> str:
    if isinstance(data, (list, tuple)):
        return " ".join(_text(item) for item in data if item)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
