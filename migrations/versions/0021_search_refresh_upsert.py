"""PostgreSQL: a thread's search document is refreshed one transaction at a time and written with an upsert, so two
messages stored at once in one thread (two SMS, an SMS and a mail, on two web machines) no longer fail with a
duplicate key in thread_search

Revision ID: 0021
Revises: 0020
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def _search_migration():
    """The document's expression as migration 0004 defined it (this one changes how it is written, not what)."""
    spec = importlib.util.spec_from_file_location("search_0004", Path(__file__).with_name("0004_search.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _document(search) -> str:
    return (f"to_tsvector('simple', left(translate({search._document('postgresql')}, '{search.FOLD_FROM}', "
            f"'{search.FOLD_TO}'), {search.PG_DOCUMENT_CHARS}))")


def upgrade():
    """Before: DELETE then INSERT. Two transactions refreshing one thread both deleted the old row, and the second's
    INSERT then met the first's new row (READ COMMITTED): a unique violation, and the message was lost with a 500.

    Now the thread's row is locked first (FOR NO KEY UPDATE: it waits for the other refresh to commit and does not
    conflict with the foreign-key locks of inserted messages), so the document is built from a snapshot that sees
    the other transaction's message, and written with INSERT ... ON CONFLICT DO UPDATE."""
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite writes one transaction at a time
    search = _search_migration()
    op.execute(f"""
CREATE OR REPLACE FUNCTION thread_search_refresh(thread integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM threads WHERE id = thread FOR NO KEY UPDATE;
    INSERT INTO thread_search (thread_id, document) SELECT t.id, {_document(search)} {search.FROM_THREADS}
    WHERE t.id = thread
    ON CONFLICT (thread_id) DO UPDATE SET document = EXCLUDED.document;
END $$""")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    search = _search_migration()
    op.execute(f"""
CREATE OR REPLACE FUNCTION thread_search_refresh(thread integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM thread_search WHERE thread_id = thread;
    INSERT INTO thread_search (thread_id, document) SELECT t.id, {_document(search)} {search.FROM_THREADS}
    WHERE t.id = thread;
END $$""")
