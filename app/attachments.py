"""Files on messages: stored once by SHA-256 under instance/attachments/, their type taken from the content.

The name a sender gives a file says nothing about what it is; the bytes do. Yet the name is what Windows and
mail clients act on when someone double-clicks. So `refusal()`, the one policy every path asks (staff compose,
panel uploads, template files, received mail, downloads), refuses programs and scripts both by their content and
by their name; downloads always go out as attachments with `nosniff`.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import olefile
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


# Names that run something when opened: Windows programs, installers and the scripts its shell runs, shortcuts
# and help files that can, Java and Android packages, Unix and macOS programs and scripts, and disk images
# (used to carry programs past Windows' "downloaded from the internet" mark). Office documents, PDF, images,
# text and zip archives of such files stay allowed.
PROGRAM_EXTENSIONS = frozenset("""
    exe dll scr com pif cpl sys drv ocx msi msp mst msix msixbundle appx appxbundle application gadget
    bat cmd ps1 ps1xml ps2 ps2xml psc1 psc2 psd1 psm1 vb vbs vbe js jse mjs wsf wsh wsc ws hta sct msc
    reg inf scf lnk url chm hlp xll jnlp settingcontent-ms
    jar apk xapk aab dex class
    sh bash zsh csh ksh fish command run appimage deb rpm pkg dmg app elf dylib so
    py pyw pyz pyc pl rb php
    iso img vhd vhdx
""".split())
_ELF, _MZ, _SHEBANG = b"\x7fELF", b"MZ", b"#!"
_MACH_O = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
           b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")  # the last two: universal binaries (and Java classes)
_LNK = b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Windows Installer package, patch and transform: the class of an OLE file's root entry (Word and Excel 97
# documents are OLE files too, with other classes, and stay allowed).
_INSTALLER_CLASSES = {"000C1084-0000-0000-C000-000000000046", "000C1086-0000-0000-C000-000000000046",
                      "000C1082-0000-0000-C000-000000000046"}
# Entries that make a zip a Java or Android program (or a Windows app package). Case matters: OpenDocument
# files carry META-INF/manifest.xml, and Office files carry no META-INF at all.
_PROGRAM_ZIP_ENTRIES = {"META-INF/MANIFEST.MF", "AndroidManifest.xml", "classes.dex", "AppxManifest.xml",
                        "AppxMetadata/AppxBundleManifest.xml"}


def extension(name: str | None) -> str:
    """The extension Windows would act on: after the last dot (".exe" alone counts), lower-case, trailing dots
    and spaces ignored."""
    name = unicodedata.normalize("NFKC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").rstrip(" .")
    _stem, dot, ext = name.rpartition(".")
    return ext.strip().lower() if dot else ""


def refusal(filename: str | None, content: BinaryIO) -> str | None:
    """Why a file may be neither kept nor served, or None when it may: "program" for a program or script by its
    content (Windows, Linux or macOS programs, shebang scripts, shortcuts, Windows Installer packages, Java and
    Android packages, zips carrying any of these by name), "program name" for a name that runs when opened.
    `content` is a seekable binary stream of the whole file; it is left at its start."""
    # The name as given and as it will be kept (shortened names keep another ending).
    if {extension(filename), extension(safe_filename(filename))} & PROGRAM_EXTENSIONS:
        return "program name"
    try:
        return "program" if _is_program(content) else None
    finally:
        content.seek(0)


def _is_program(content: BinaryIO) -> bool:
    content.seek(0)
    head = content.read(SNIFF_BYTES)
    if head.startswith((_MZ, _ELF, _SHEBANG, b"\xef\xbb\xbf#!", _LNK)) or head[:4] in _MACH_O:
        return True
    if sniff(head) in BLOCKED_TYPES:  # whatever else the content sniffer knows to be a program
        return True
    if head.startswith(_OLE):
        content.seek(0)
        try:
            with olefile.OleFileIO(content) as ole:
                return (ole.root.clsid or "").upper() in _INSTALLER_CLASSES
        except Exception:  # noqa: BLE001  (an OLE file too broken to read its class could still be an installer)
            return True
    content.seek(0)
    if zipfile.is_zipfile(content):
        content.seek(0)
        try:
            with zipfile.ZipFile(content) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return False  # unreadable as a zip: no program can be started from it either
        return any(name in _PROGRAM_ZIP_ENTRIES or name.endswith(".class") or extension(name) in PROGRAM_EXTENSIONS
                   for name in names)
    return False


def servable(filename: str | None, sha256: str | None) -> bool:
    """Whether a kept file may be downloaded: it exists and `refusal()` has nothing against it (files kept before
    the policy grew stay unreachable when they would be refused now)."""
    if not sha256:
        return False
    try:
        with path_for(sha256).open("rb") as fh:
            return refusal(filename, fh) is None
    except (OSError, ValueError):
        return False


def refusal_message(filename: str | None) -> str:
    return _("%(name)s is a program or script; those cannot be attached.", name=safe_filename(filename))


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
    and programs and scripts, by name or content (`refusal()`), with ValidationFailed."""
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
        with open(tmp_name, "rb") as saved:
            refused = refusal(filename, saved) is not None
        if refused:
            raise ValidationFailed({"attachments": refusal_message(filename)})
        sha = digest.hexdigest()
        final = path_for(sha)
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp_name, final)  # same content, same name: a second copy simply replaces the first
        return StoredFile(sha, size, content_type, safe_filename(filename))
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
