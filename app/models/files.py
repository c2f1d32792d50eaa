"""Stored files kept in the database (ATTACHMENT_STORAGE=database): each file once by SHA-256, its bytes in chunks."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class StoredBlob(db.Model):
    """One stored file's header: its digest (the name every attachment, template file and logo uses) and size.
    Its content is in `stored_blob_chunks`, numbered from 0."""

    __tablename__ = "stored_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoredBlobChunk(db.Model):
    """A piece of a stored file's content (bytea on PostgreSQL, BLOB on SQLite): read one at a time, so no
    download holds a whole file in memory."""

    __tablename__ = "stored_blob_chunks"

    sha256: Mapped[str] = mapped_column(ForeignKey("stored_blobs.sha256", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class KeptDraft(db.Model):
    """What Undo took back from a message, kept for the person who took it until they send it again: in the
    database, so that whichever web machine serves the next page finds it."""

    __tablename__ = "kept_drafts"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Whose message it was: erasing the customer deletes the draft too.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    data: Mapped[str] = mapped_column(db.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
