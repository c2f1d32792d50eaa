"""inbox search and list: a full-text document per thread kept by triggers, and indexes for the inbox list

One search document per thread (subject, customer name, e-mail and phone, repair and ticket numbers, every
message's sender and text), rebuilt by database triggers whenever one of those changes, so every code path
that writes messages is searchable without knowing about search. SQLite keeps it in an FTS5 table, PostgreSQL
in a tsvector with a GIN index. Polish letters are folded on the way in: FTS5's unicode61 tokenizer removes
diacritics but keeps "ł", which the document replaces; PostgreSQL folds with translate() (no extension, so
no superuser needed). The query side folds the same way (app/search.py).

Revision ID: 0004
Revises: 0003
"""
import json
from datetime import timedelta

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Letters folded on PostgreSQL: Polish first, then those of neighbouring languages customers write in.
FOLD_FROM = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻäöüéèêëáàâíìîóòôúùûçñčřšžýůÄÖÜÉÈÁÍÓÚÇÑČŘŠŽÝŮ"
FOLD_TO = "acelnoszzACELNOSZZaoueeeeaaaiiiooouuucncrszyuAOUEEAIOUCNCRSZYU"
PG_DOCUMENT_CHARS = 200_000  # a tsvector must stay under 1 MB: the newest text of a huge thread is kept
PHONE_SUFFIXES = 10  # a phone is indexed with its digit suffixes, so "601 234 567" finds +48601234567


def _phone_words(digits: str) -> str:
    """SQL text: the phone's digits and their suffixes of six digits or more, space separated."""
    parts = [f"CASE WHEN length({digits}) >= {k + 6} THEN substr({digits}, {k + 1}) ELSE '' END"
             for k in range(PHONE_SUFFIXES)]
    return " || ' ' || ".join(parts)


def _document(dialect: str) -> str:
    """SQL text: the search document of thread `t` (joined to c, r, k), before folding."""
    digits = "replace(coalesce(c.phone, ''), '+', '')"
    if dialect == "postgresql":
        bodies = ("(SELECT string_agg(coalesce(m.sender, '') || ' ' || coalesce(m.body_text, ''), ' '"
                  " ORDER BY m.id DESC) FROM messages m WHERE m.thread_id = t.id)")
    else:
        bodies = ("(SELECT group_concat(coalesce(m.sender, '') || ' ' || coalesce(m.body_text, ''), ' ')"
                  " FROM messages m WHERE m.thread_id = t.id)")
    fields = ["t.subject", "c.name", "c.email", _phone_words(digits), "r.number", "r.device", "k.number", bodies]
    return " || ' ' || ".join(f"coalesce({field}, '')" for field in fields)


FROM_THREADS = ("FROM threads t LEFT JOIN customers c ON c.id = t.customer_id"
                " LEFT JOIN repairs r ON r.id = t.repair_id LEFT JOIN tickets k ON k.id = t.ticket_id")

# (trigger name, SQLite event, which threads to rebuild) for SQLite; PostgreSQL's triggers call a function.
SQLITE_TRIGGERS = [
    ("thread_search_message_insert", "AFTER INSERT ON messages", ["t.id = NEW.thread_id"]),
    ("thread_search_message_update", "AFTER UPDATE OF body_text, sender, thread_id ON messages",
     ["t.id = NEW.thread_id", "t.id = OLD.thread_id"]),
    ("thread_search_message_delete", "AFTER DELETE ON messages", ["t.id = OLD.thread_id"]),
    ("thread_search_thread_insert", "AFTER INSERT ON threads", ["t.id = NEW.id"]),
    ("thread_search_thread_update", "AFTER UPDATE OF subject, customer_id, repair_id, ticket_id ON threads",
     ["t.id = NEW.id"]),
    ("thread_search_customer_update", "AFTER UPDATE OF name, email, phone ON customers",
     ["t.customer_id = NEW.id"]),
    ("thread_search_repair_update", "AFTER UPDATE OF number, device ON repairs", ["t.repair_id = NEW.id"]),
    ("thread_search_ticket_update", "AFTER UPDATE OF number ON tickets", ["t.ticket_id = NEW.id"]),
]


def _sqlite_index(where: str) -> str:
    document = f"replace(replace({_document('sqlite')}, 'ł', 'l'), 'Ł', 'L')"
    return f"INSERT INTO thread_search (rowid, document) SELECT t.id, {document} {FROM_THREADS} WHERE {where}"


def _sqlite_rebuild(where: str) -> str:
    return (f"DELETE FROM thread_search WHERE rowid IN (SELECT t.id FROM threads t WHERE {where});\n"
            f"{_sqlite_index(where)};\n")


def _upgrade_sqlite():
    op.execute("CREATE VIRTUAL TABLE thread_search USING fts5("
               "document, tokenize = \"unicode61 remove_diacritics 2\", prefix = '2 4')")
    for name, event, wheres in SQLITE_TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {event} BEGIN\n{''.join(map(_sqlite_rebuild, wheres))}END")
    op.execute("CREATE TRIGGER thread_search_thread_delete AFTER DELETE ON threads BEGIN\n"
               "DELETE FROM thread_search WHERE rowid = OLD.id;\nEND")
    op.execute(_sqlite_index("1 = 1"))  # index what is already there


def _upgrade_postgresql():
    op.execute("CREATE TABLE thread_search (thread_id integer PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,"
               " document tsvector NOT NULL)")
    op.execute("CREATE INDEX ix_thread_search_document ON thread_search USING gin (document)")
    document = (f"to_tsvector('simple', left(translate({_document('postgresql')}, '{FOLD_FROM}', '{FOLD_TO}'),"
                f" {PG_DOCUMENT_CHARS}))")
    op.execute(f"""
CREATE FUNCTION thread_search_refresh(thread integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM thread_search WHERE thread_id = thread;
    INSERT INTO thread_search (thread_id, document) SELECT t.id, {document} {FROM_THREADS} WHERE t.id = thread;
END $$""")
    op.execute("""
CREATE FUNCTION thread_search_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN PERFORM thread_search_refresh(NEW.thread_id); END IF;
    IF TG_OP = 'DELETE' OR OLD.thread_id <> NEW.thread_id THEN PERFORM thread_search_refresh(OLD.thread_id); END IF;
    RETURN NULL;
END $$""")
    op.execute("""
CREATE FUNCTION thread_search_on_context() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'threads' THEN PERFORM thread_search_refresh(NEW.id);
    ELSIF TG_TABLE_NAME = 'customers' THEN PERFORM thread_search_refresh(id) FROM threads WHERE customer_id = NEW.id;
    ELSIF TG_TABLE_NAME = 'repairs' THEN PERFORM thread_search_refresh(id) FROM threads WHERE repair_id = NEW.id;
    ELSE PERFORM thread_search_refresh(id) FROM threads WHERE ticket_id = NEW.id;
    END IF;
    RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER thread_search_message AFTER INSERT OR DELETE OR UPDATE OF body_text, sender, thread_id"
               " ON messages FOR EACH ROW EXECUTE FUNCTION thread_search_on_message()")
    for table, columns in (("threads", "subject, customer_id, repair_id, ticket_id"),
                           ("customers", "name, email, phone"), ("repairs", "number, device"),
                           ("tickets", "number")):
        event = "INSERT OR UPDATE" if table == "threads" else "UPDATE"
        op.execute(f"CREATE TRIGGER thread_search_{table} AFTER {event} OF {columns} ON {table}"
                   f" FOR EACH ROW EXECUTE FUNCTION thread_search_on_context()")
    op.execute(f"INSERT INTO thread_search (thread_id, document) SELECT t.id, {document} {FROM_THREADS}")


def _backfill_due_times():
    """Threads already waiting for the shop get their answer's due time (the app keeps it from now on)."""
    bind = op.get_bind()
    times = bind.execute(sa.text("SELECT response_times FROM shop ORDER BY id LIMIT 1")).scalar()
    times = json.loads(times) if isinstance(times, str) else (times or {})
    threads = sa.table("threads", sa.column("id", sa.Integer), sa.column("priority", sa.String),
                       sa.column("status", sa.String), sa.column("last_inbound_at", sa.DateTime),
                       sa.column("due_at", sa.DateTime))
    waiting = bind.execute(sa.select(threads.c.id, threads.c.priority, threads.c.last_inbound_at).where(
        threads.c.status == "waiting_us", threads.c.last_inbound_at.is_not(None))).all()
    for thread_id, priority, last_inbound_at in waiting:
        hours = times.get(priority, times.get("normal", 8))
        hours = hours if isinstance(hours, (int, float)) and not isinstance(hours, bool) and hours > 0 else 8
        bind.execute(threads.update().where(threads.c.id == thread_id).values(
            due_at=last_inbound_at + timedelta(hours=hours)))


def upgrade():
    _backfill_due_times()
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.create_index('ix_threads_activity', ['last_activity_at', 'id'], unique=False)
        batch_op.create_index('ix_threads_counts',
                              ['status', 'queue_id', 'assignee_id', 'deleted_at', 'merged_into_id'], unique=False)
        batch_op.create_index('ix_threads_overdue', ['status', 'due_at', 'deleted_at', 'merged_into_id'], unique=False)
        batch_op.create_index('ix_threads_unread', ['unread', 'deleted_at'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE thread_search")
        for table in ("messages", "threads", "customers", "repairs", "tickets"):
            name = "thread_search_message" if table == "messages" else f"thread_search_{table}"
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION thread_search_on_message(), thread_search_on_context(), thread_search_refresh(integer)")
    else:
        for name, _event, _wheres in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TRIGGER thread_search_thread_delete")
        op.execute("DROP TABLE thread_search")
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.drop_index('ix_threads_unread')
        batch_op.drop_index('ix_threads_overdue')
        batch_op.drop_index('ix_threads_counts')
        batch_op.drop_index('ix_threads_activity')
