"""Files on messages: stored once by SHA-256 under instance/attachments/, their type taken from the content.

The name a sender gives a file says nothing about what it is; the bytes do. Yet the name is what Windows and
mail clients act on when someone double-clicks. So `refusal()`, the one policy every path asks (staff compose,
panel uploads, template files, received mail, downloads), refuses programs and scripts both by their content and
by their name; downloads always go out as attachments with `nosniff`.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import olefile
import puremagic
from flask import Response, current_app, request, send_file
from flask_babel import gettext as _
from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from .errors import ValidationFailed
from .extensions import db
from .models import StoredBlob, StoredBlobChunk, utcnow

CHUNK = 1024 * 1024
DB_CHUNK = 256 * 1024  # one row of stored_blob_chunks: what a download from the database holds in memory
_DIGEST = re.compile(r"[0-9a-f]{64}")
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
        with open_stored(sha256) as fh:
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
    """Where the filesystem store keeps (or would keep) the file `sha256`."""
    return storage_root() / _checked(sha256)[:2] / sha256


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
    """Save a file from a stream into the configured store; refuses files over the size limit (`limit` bytes,
    default the upload limit) and programs and scripts, by name or content (`refusal()`), with ValidationFailed."""
    limit = max_bytes() if limit is None else limit
    digest, size, head = hashlib.sha256(), 0, b""
    with _scratch_file() as (tmp, tmp_name):
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
        tmp.flush()
        content_type = sniff(head)
        with open(tmp_name, "rb") as saved:
            refused = refusal(filename, saved) is not None
        if refused:
            raise ValidationFailed({"attachments": refusal_message(filename)})
        sha = digest.hexdigest()
        configured_store().keep(sha, Path(tmp_name), size)
        return StoredFile(sha, size, content_type, safe_filename(filename))


# ---------------------------------------------------------------- the two stores and the one way to use them


class FileStore:
    """Where stored files live. Each file is named by the SHA-256 of its content, so a second copy of the same
    bytes is the same file, and keeping it again changes nothing."""

    kind = ""

    def has(self, sha256: str) -> bool:
        raise NotImplementedError

    def size(self, sha256: str) -> int | None:
        """The file's size in bytes, None when this store has no such file."""
        raise NotImplementedError

    def open(self, sha256: str, *, detached: bool = False) -> BinaryIO:
        """A seekable stream of the file (FileNotFoundError when absent). `detached`: for a download that outlives
        the request's database session (each piece read on a connection of its own)."""
        raise NotImplementedError

    def keep(self, sha256: str, source: Path, size: int) -> None:
        """Keep the verified content at `source` (a `_scratch_file()`, which this may take over) under `sha256`;
        once this returns the file is stored (see DatabaseStore.keep for the one exception)."""
        raise NotImplementedError

    def delete(self, sha256: str) -> None:
        raise NotImplementedError

    def digests(self) -> Iterator[str]:
        """Every file this store holds, by name, in order."""
        raise NotImplementedError


class FilesystemStore(FileStore):
    """instance/attachments/<first two hex digits>/<sha256>: one machine, or a volume every machine mounts."""

    kind = "filesystem"

    path = staticmethod(path_for)

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, sha256: str, *, detached: bool = False) -> BinaryIO:
        return self.path(sha256).open("rb")

    def keep(self, sha256: str, source: Path, size: int) -> None:
        final = self.path(sha256)
        final.parent.mkdir(exist_ok=True)
        os.replace(source, final)  # same content, same name: a second copy simply replaces the first

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        root = storage_root()
        if not root.is_dir():
            return
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and re.fullmatch(r"[0-9a-f]{2}", folder.name):
                for path in sorted(folder.iterdir()):
                    if _DIGEST.fullmatch(path.name) and path.name.startswith(folder.name) and path.is_file():
                        yield path.name


_blobs = StoredBlob.__table__
_chunks = StoredBlobChunk.__table__
_CHUNK_OF = select(_chunks.c.data).where(_chunks.c.sha256 == bindparam("sha"), _chunks.c.seq == bindparam("seq"))


class DatabaseStore(FileStore):
    """Chunks of DB_CHUNK bytes in `stored_blob_chunks` (bytea on PostgreSQL, BLOB on SQLite) under a header row
    in `stored_blobs`: every web machine reaches every file, and the database's backup holds them."""

    kind = "database"

    def has(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def size(self, sha256: str) -> int | None:
        return db.session.scalar(select(_blobs.c.size).where(_blobs.c.sha256 == _checked(sha256)))

    def open(self, sha256: str, *, detached: bool = False) -> BinaryIO:
        size = self.size(sha256)
        if size is None:
            raise FileNotFoundError(sha256)
        if detached:
            engine = db.engine

            def piece(seq: int) -> bytes:
                with engine.connect() as connection:  # held only while one piece is read, not for the download
                    return connection.execute(_CHUNK_OF, {"sha": sha256, "seq": seq}).scalar_one()
        else:
            def piece(seq: int) -> bytes:
                return db.session.execute(_CHUNK_OF, {"sha": sha256, "seq": seq}).scalar_one()
        return io.BufferedReader(_ChunkedFile(size, piece), buffer_size=SNIFF_BYTES)

    def keep(self, sha256: str, source: Path, size: int) -> None:
        """Written and committed on a connection of its own, so a file stays stored when the request that stored
        it rolls back, as on disk (a form shown again with its errors keeps its files). On SQLite, when the
        session has already written in its transaction (receiving mail), the file goes into that transaction,
        since a second writer would wait for it."""
        try:
            with self._writer() as connection:
                if connection.execute(select(_blobs.c.size).where(_blobs.c.sha256 == sha256)).first() is not None:
                    return
                connection.execute(insert(_blobs).values(sha256=sha256, size=size, chunks=-(-size // DB_CHUNK),
                                                         created_at=utcnow()))
                with source.open("rb") as fh:
                    for seq, piece in enumerate(iter(lambda: fh.read(DB_CHUNK), b"")):
                        connection.execute(insert(_chunks).values(sha256=sha256, seq=seq, data=piece))
        except IntegrityError:
            # Two machines keeping the same new file at once: the second waits on the first's key, then fails
            # here; the first's copy is the same bytes.
            if not self.has(sha256):
                raise

    @staticmethod
    @contextmanager
    def _writer() -> Iterator[Connection]:
        session_connection = db.session.connection()
        if (session_connection.dialect.name == "sqlite"
                and session_connection.connection.dbapi_connection.in_transaction):
            yield session_connection
            return
        with db.engine.begin() as connection:
            yield connection

    def delete(self, sha256: str) -> None:
        db.session.execute(delete(_chunks).where(_chunks.c.sha256 == _checked(sha256)))
        db.session.execute(delete(_blobs).where(_blobs.c.sha256 == sha256))

    def digests(self) -> Iterator[str]:
        last = ""
        while True:  # in pages, so a large store is never listed whole
            page = db.session.scalars(select(_blobs.c.sha256).where(_blobs.c.sha256 > last)
                                      .order_by(_blobs.c.sha256).limit(500)).all()
            if not page:
                return
            yield from page
            last = page[-1]


class _ChunkedFile(io.RawIOBase):
    """A stored file's content read piece by piece (`piece(seq)` returns piece `seq`), one piece in memory."""

    def __init__(self, size: int, piece: Callable[[int], bytes]):
        super().__init__()
        self._size, self._piece, self._pos = size, piece, 0
        self._seq, self._data = -1, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size:
            return 0
        seq, offset = divmod(self._pos, DB_CHUNK)
        if seq != self._seq:
            self._data, self._seq = self._piece(seq), seq
        count = min(len(buffer), len(self._data) - offset)
        buffer[:count] = self._data[offset:offset + count]
        self._pos += count
        return count


_STORES = {store.kind: store for store in (FilesystemStore(), DatabaseStore())}
STORAGE_KINDS = tuple(_STORES)


def configured_store() -> FileStore:
    """The store new files go to (ATTACHMENT_STORAGE)."""
    kind = current_app.config.get("ATTACHMENT_STORAGE") or "filesystem"
    try:
        return _STORES[kind]
    except KeyError:
        raise ValueError(f"ATTACHMENT_STORAGE must be one of {', '.join(STORAGE_KINDS)}, not {kind!r}") from None


def store_of_kind(kind: str) -> FileStore:
    return _STORES[kind]


def _stores() -> list[FileStore]:
    first = configured_store()
    return [first, *(other for other in _STORES.values() if other is not first)]


def _holder(sha256: str) -> FileStore | None:
    _checked(sha256)
    return next((candidate for candidate in _stores() if candidate.has(sha256)), None)


def is_stored(sha256: str | None) -> bool:
    try:
        return bool(sha256) and _holder(sha256) is not None
    except ValueError:
        return False


def stored_size(sha256: str) -> int:
    """A stored file's size; FileNotFoundError when no store has it."""
    for candidate in _stores():
        size = candidate.size(sha256)
        if size is not None:
            return size
    raise FileNotFoundError(sha256)


def open_stored(sha256: str, *, detached: bool = False) -> BinaryIO:
    """A seekable stream of a stored file from whichever store has it; FileNotFoundError when none has."""
    holder = _holder(sha256)
    if holder is None:
        raise FileNotFoundError(sha256)
    return holder.open(sha256, detached=detached)


def read_stored(sha256: str) -> bytes:
    """A stored file whole: only for what needs it whole anyway (a mail being built, a PDF's logo)."""
    with open_stored(sha256) as fh:
        return fh.read()


def delete_stored(sha256: str) -> None:
    """Forget a stored file in every store (the caller has checked that nothing uses it)."""
    for candidate in _stores():
        candidate.delete(sha256)


def send_stored(sha256: str, *, mimetype: str, as_attachment: bool = False, download_name: str | None = None,
                max_age: int | None = None) -> Response:
    """A response streaming a stored file in pieces (never whole in memory) from whichever store has it;
    FileNotFoundError when none has. From disk, with ranges and conditional requests; from the database, each
    piece read on its own short connection, so a slow client holds no connection between pieces."""
    holder = _holder(sha256)
    if holder is None:
        raise FileNotFoundError(sha256)
    if isinstance(holder, FilesystemStore):
        return send_file(holder.path(sha256), mimetype=mimetype, as_attachment=as_attachment,
                         download_name=download_name, max_age=max_age)
    size = holder.size(sha256)
    response = send_file(holder.open(sha256, detached=True), mimetype=mimetype, as_attachment=as_attachment,
                         download_name=download_name, max_age=max_age, conditional=False)
    response.content_length = size
    response.set_etag(sha256)  # the name is the content's digest: the best validator there is
    # Conditional and range requests as from disk; send_file knows no size for a stream, so this asks here.
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)


def digest_of(reference: str | None) -> str | None:
    """The digest a stored reference names: a digest itself, or a path ending in one (the shop's logo is kept
    as attachments/xx/<sha256>)."""
    name = (reference or "").replace("\\", "/").rsplit("/", 1)[-1]
    return name if _DIGEST.fullmatch(name) else None


def logo_reference(sha256: str) -> str:
    return f"attachments/{_checked(sha256)[:2]}/{sha256}"


@contextmanager
def _scratch_file() -> Iterator[tuple[BinaryIO, str]]:
    """A temporary file next to the stored files (moved into place from there), removed unless taken over."""
    root = storage_root()
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, name
    finally:
        if os.path.exists(name):
            os.unlink(name)


def _checked(sha256: str) -> str:
    if not isinstance(sha256, str) or not _DIGEST.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return sha256


# ---------------------------------------------------------------- moving files between the stores


@dataclass
class MoveReport:
    moved: int = 0
    already: int = 0  # in the target before (an earlier, interrupted run): only the source copy was removed
    damaged: list[str] = field(default_factory=list)  # a copy whose content does not match its name: left alone


def move_files(to: str, progress: Callable[[str, str], None] | None = None) -> MoveReport:
    """Move every stored file into the store `to`. Each file: copied, committed, read back from the target and
    its SHA-256 checked, and only then removed from the source. Interrupted, it is run again: files already in
    the target (and checked) only lose their source copy, so a rerun after a complete one changes nothing."""
    target = store_of_kind(to)
    report = MoveReport()
    for source in (candidate for candidate in _STORES.values() if candidate is not target):
        for sha256 in list(source.digests()):
            outcome = _move_one(sha256, source, target)
            if outcome == "damaged":
                report.damaged.append(sha256)
            elif outcome == "moved":
                report.moved += 1
            else:
                report.already += 1
            if progress:
                progress(sha256, outcome)
    return report


def _move_one(sha256: str, source: FileStore, target: FileStore) -> str:
    if not (target.has(sha256) and _digest_of_stored(target, sha256) == sha256):
        with _scratch_file() as (tmp, tmp_name):
            with source.open(sha256) as fh:
                digest, size = hashlib.sha256(), 0
                while piece := fh.read(CHUNK):
                    digest.update(piece)
                    size += len(piece)
                    tmp.write(piece)
            tmp.flush()
            os.fsync(tmp.fileno())
            if digest.hexdigest() != sha256:
                return "damaged"
            if target.has(sha256):  # a damaged copy in the target: replaced by the good one
                target.delete(sha256)
                db.session.commit()
            target.keep(sha256, Path(tmp_name), size)
            db.session.commit()
        if _digest_of_stored(target, sha256) != sha256:
            return "damaged"
        outcome = "moved"
    else:
        outcome = "already"
    source.delete(sha256)  # only now: the target's copy is committed and checked
    db.session.commit()
    return outcome


def _digest_of_stored(holder: FileStore, sha256: str) -> str:
    digest = hashlib.sha256()
    with holder.open(sha256) as fh:
        while piece := fh.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()
