"""Files on messages: stored once by SHA-256 under instance/attachments/, their type taken from the content.

The name a sender gives a file says nothing about what it is; the bytes do. Executables are refused
whatever they are called, and downloads always go out as attachments with `nosniff`.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import puremagic
from flask import current_app
from flask_babel import gettext as _

from .errors import ValidationFailed

CHUNK = 1024 * 1024
SNIFF_BYTES = 8192
BLOCKED_TYPES = {
    "application/vnd.microsoft.portable-executable",
    "application/x-dosexec",
    "application/x-msdownload",
    "application/x-ms-installer",
    "application/x-msi",
    "application/x-executable",
    "application/x-elf",
    "application/x-sharedlib",
    "application/x-mach-binary",
    "application/x-mach-o-executable",
    "application/java-archive",
    "application/x-java-applet",
}


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str
    filename: str


def storage_root() -> Path:
    return Path(current_app.instance_path) / "attachments"


def path_for(sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return storage_root() / sha256[:2] / sha256


def max_bytes() -> int:
    return int(current_app.config.get("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024))


def safe_filename(name: str | None) -> str:
    """A file name fit to store and show: no directories, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:200]
    return name or "attachment"


def sniff(head: bytes) -> str:
    """The content type the bytes show; readable text is text/plain, anything unknown octet-stream."""
    if head:
        try:
            return puremagic.from_string(head, mime=True) or "application/octet-stream"
        except puremagic.PureError:
            pass
    if b"\x00" not in head:
        for encoding in ("utf-8", "cp1250"):
            try:
                head.decode(encoding)
                return "text/plain"
            except UnicodeDecodeError:
                continue
    return "application/octet-stream"


def store(stream: BinaryIO, filename: str | None, limit: int | None = None) -> StoredFile:
    """Save a file from a stream; refuses files over the size limit (`limit` bytes, default the upload limit)
    and executables (ValidationFailed)."""
    limit = max_bytes() if limit is None else limit
    root = storage_root()
    root.mkdir(parents=True, exist_ok=True)
    digest, size, head = hashlib.sha256(), 0, b""
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(
                        {"attachments": _("%(name)s is larger than %(limit)d MB.", name=safe_filename(filename),
                                          limit=limit // (1024 * 1024))}
                    )
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                digest.update(chunk)
                tmp.write(chunk)
        content_type = sniff(head)
        if content_type in BLOCKED_TYPES:
            raise ValidationFailed(
                {"attachments": _("%(name)s is a program; programs cannot be attached.", name=safe_filename(filename))}
            )
        sha = digest.hexdigest()
        final = path_for(sha)
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp_name, final)  # same content, same name: a second copy simply replaces the first
        return StoredFile(sha, size, content_type, safe_filename(filename))
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
