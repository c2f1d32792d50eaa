"""The ids that let replies find their thread: signed Message-IDs, reply tokens and Outlook's Thread-Index.

Our Message-IDs carry an HMAC of the thread and message ids made with the app secret, so an inbound
`In-Reply-To`/`References` naming one can be trusted without a lookup and cannot be forged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timezone
from email.utils import parseaddr
from functools import lru_cache

from flask import current_app

SIGNATURE_HEX = 16
INSTANCE_HEADER = "X-Repair-Inbox-Instance"

_ID_TOKEN = re.compile(r"<([^<>]+)>")
_OUR_LOCAL_PART = re.compile(r"ri\.(\d+)\.(\d+)\.([0-9a-f]{%d})" % SIGNATURE_HEX, re.IGNORECASE)
_TOKEN = re.compile(r"[0-9a-z]{8,32}", re.IGNORECASE)
_REPLY_PREFIXES = re.compile(r"^(?:\s*(?:re|odp|fwd?|pd|aw)\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE)

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_REPLY_STEP = 60 * 10**7  # one minute in FILETIME units (100 ns)
_MAX_CHILD_BLOCKS = 100  # keeps the header well under the 998 characters a mail header line may have


def _secrets() -> list[str]:
    """The current app secret first, then the fallbacks still accepted after a rotation."""
    return [current_app.config["SECRET_KEY"], *(current_app.config.get("SECRET_KEY_FALLBACKS") or [])]


def _sign(secret: str, text: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(text.encode())
    return mac.hexdigest()[:SIGNATURE_HEX]


@lru_cache(maxsize=8)  # keyed on the secret: the current one and its fallbacks
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC with the secret as its key and nothing signed yet, to copy for each signature: preparing the key
    is half the work of signing a short text, and every mail signs its Message-ID."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


# --- Message-IDs ------------------------------------------------------------------------------


def make_message_id(thread_id: int, message_id: int, domain: str) -> str:
    """Our Message-ID for a message, with angle brackets: `<ri.{thread}.{message}.{signature}@{domain}>`."""
    signature = _sign(_secrets()[0], f"{thread_id}.{message_id}")
    return f"<ri.{thread_id}.{message_id}.{signature}@{domain}>"


def parse_message_id(ref: str | None) -> tuple[int, int] | None:
    """(thread id, message id) when `ref` is one of our Message-IDs with a valid signature, else None.

    Angle brackets and surrounding whitespace are optional; the domain is not checked (providers and
    clients change its case, and the signature does not cover it). Signatures made with a fallback
    secret are accepted, so replies to mail sent before a key rotation still find their thread.
    """
    if not ref:
        return None
    local, at, domain = ref.strip().strip("<>").strip().rpartition("@")
    match = _OUR_LOCAL_PART.fullmatch(local)
    if not at or not domain or match is None:
        return None
    thread_id, message_id, signature = int(match[1]), int(match[2]), match[3].lower()
    if any(hmac.compare_digest(signature, _sign(secret, f"{thread_id}.{message_id}")) for secret in _secrets()):
        return thread_id, message_id
    return None


def extract_ids(header_value: str | None) -> list[str]:
    """Every `<...>` id in a Message-ID, In-Reply-To or References header, without brackets, newest first.

    References lists the oldest first, so the result is reversed: the parent of a reply comes first.
    Whitespace inside an id (broken folding) is dropped; never compare raw header strings.
    """
    if not header_value:
        return []
    ids = ["".join(found.split()) for found in _ID_TOKEN.findall(str(header_value))]
    return [ref for ref in reversed(ids) if ref]


# --- reply addresses ----------------------------------------------------------------------------


def reply_address(mailbox_email: str, thread_token: str) -> str:
    """The address a reply goes to: the mailbox's own address with the thread token, `local+token@domain`."""
    local, _at, domain = mailbox_email.rpartition("@")
    return f"{local}+{thread_token}@{domain}"


def token_from_address(address: str | None) -> str | None:
    """The thread token of a `local+token@domain` address (a display name around it is fine), or None.

    Thread tokens are lower-case hex; the result is lower-cased because some mail systems change the
    case of the local part.
    """
    address = address or ""
    # Most addresses come bare from the parsed mail's recipients; parseaddr is only needed around a name.
    addr_spec = parseaddr(address)[1] if any(char in address for char in '<"( ') else address
    local, at, _domain = addr_spec.rpartition("@")
    _base, plus, token = local.rpartition("+")
    if not at or not plus or not _TOKEN.fullmatch(token):
        return None
    return token.lower()


# --- our own mail coming back -----------------------------------------------------------------


def instance_id() -> str:
    """The value of our instance header: tells our own mail apart when it comes back in (loops, CCs to us)."""
    return _instance_id(_secrets()[0])


@lru_cache(maxsize=8)  # keyed on the secret it is signed with, its only input
def _instance_id(secret: str) -> str:
    return _sign(secret, "repair-inbox-instance")


def is_our_instance(header_value: str | None) -> bool:
    """True when an instance header was written by this installation (with the current or an old secret)."""
    value = (header_value or "").strip().lower()
    return any(hmac.compare_digest(value, _sign(secret, "repair-inbox-instance")) for secret in _secrets())


# --- Outlook conversation headers --------------------------------------------------------------


def thread_index(thread_token: str, created_at: datetime, reply_number: int = 0) -> str:
    """Outlook's `Thread-Index` for the `reply_number`-th mail of a thread (0 for the first), base64.

    The 22-byte header block (6 high bytes of the thread's creation FILETIME, then a GUID derived from
    the token) is the same for every mail of the thread: that is what Outlook groups by. Each reply adds
    a 5-byte child block; those only order the replies, so the reply's position stands in for its time
    (up to 100 of them, as a mail header line has a length limit).
    """
    delta = created_at.astimezone(timezone.utc) - _FILETIME_EPOCH
    filetime = (delta.days * 86_400 + delta.seconds) * 10**7 + delta.microseconds * 10
    guid = hashlib.sha256(thread_token.encode()).digest()[:16]
    blocks = [filetime.to_bytes(8, "big")[:6] + guid]
    for number in range(1, min(reply_number, _MAX_CHILD_BLOCKS) + 1):
        # DeltaCode 0: the time difference in units of 2**18 FILETIME ticks, 31 bits; then
        # four random bits (taken from the GUID, to stay deterministic) and a 4-bit sequence count.
        time_delta = ((number * _REPLY_STEP) >> 18) & 0x7FFFFFFF
        blocks.append(time_delta.to_bytes(4, "big") + bytes([(guid[0] & 0xF0) | (number & 0x0F)]))
    return base64.b64encode(b"".join(blocks)).decode("ascii")


def thread_topic(subject: str) -> str:
    """Outlook's `Thread-Topic`: the subject without reply and forward prefixes (Re:, Odp:, Fwd:, PD:...)."""
    return _REPLY_PREFIXES.sub("", subject or "").strip()
