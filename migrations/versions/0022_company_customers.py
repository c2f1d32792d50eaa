"""company customers: a customer's kind, NIP and address, a company's contact people, a repair's contact person,
and the NIP in the thread search document

Revision ID: 0022
Revises: 0021
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


# The threads whose search document names a NIP.
WITH_NIP = "t.customer_id IN (SELECT id FROM customers WHERE nip IS NOT NULL)"


def _search_migration():
    """Migration 0004, which built the thread search index: its document and triggers are redefined from it."""
    spec = importlib.util.spec_from_file_location("search_0004", Path(__file__).with_name("0004_search.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rebuild_search(with_nip: bool):
    """Redefine the search document (with or without the customer's NIP) and the triggers that keep it; the
    customers' trigger also fires on a changed NIP. Going up, no NIP exists yet, so the documents stay as they are;
    going down, those naming a NIP are rebuilt without it. The refresh keeps 0021's form: the thread locked first,
    the document written with an upsert, so two messages stored at once in one thread both land."""
    old = _search_migration()
    document = old._document
    if with_nip:
        old._document = lambda dialect: document(dialect) + " || ' ' || coalesce(c.nip, '')"
    customer_columns = "name, email, phone, nip" if with_nip else "name, email, phone"
    if op.get_bind().dialect.name == "postgresql":
        folded = (f"to_tsvector('simple', left(translate({old._document('postgresql')}, '{old.FOLD_FROM}',"
                  f" '{old.FOLD_TO}'), {old.PG_DOCUMENT_CHARS}))")
        op.execute(f"""
CREATE OR REPLACE FUNCTION thread_search_refresh(thread integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM threads WHERE id = thread FOR NO KEY UPDATE;
    INSERT INTO thread_search (thread_id, document) SELECT t.id, {folded} {old.FROM_THREADS} WHERE t.id = thread
    ON CONFLICT (thread_id) DO UPDATE SET document = EXCLUDED.document;
END $$""")
        op.execute("DROP TRIGGER thread_search_customers ON customers")
        op.execute(f"CREATE TRIGGER thread_search_customers AFTER UPDATE OF {customer_columns} ON customers"
                   " FOR EACH ROW EXECUTE FUNCTION thread_search_on_context()")
        if not with_nip:
            op.execute(f"SELECT thread_search_refresh(t.id) FROM threads t WHERE {WITH_NIP}")
        return
    for name, event, wheres in old.SQLITE_TRIGGERS:
        if name == "thread_search_customer_update":
            event = f"AFTER UPDATE OF {customer_columns} ON customers"
        op.execute(f"DROP TRIGGER {name}")
        op.execute(f"CREATE TRIGGER {name} {event} BEGIN\n{''.join(map(old._sqlite_rebuild, wheres))}END")
    if not with_nip:
        for statement in old._sqlite_rebuild(WITH_NIP).split(";\n"):
            if statement.strip():
                op.execute(statement)


def upgrade():
    """Every existing customer becomes a person. Plain ADD COLUMN on the existing tables, never a recreated
    table (see 0017); for that reason the repair's contact has no foreign key (SQLite cannot add one in place)."""
    op.add_column("customers", sa.Column("kind", sa.String(length=16), nullable=False, server_default="person"))
    op.add_column("customers", sa.Column("nip", sa.String(length=10), nullable=True))
    op.add_column("customers", sa.Column("address", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_customers_nip", "customers", ["nip"], unique=False)
    op.create_table(
        "contact_people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contact_people_customer_id", "contact_people", ["customer_id"], unique=False)
    op.create_index("ix_contact_people_email", "contact_people", ["email"], unique=False)
    op.create_index("ix_contact_people_phone", "contact_people", ["phone"], unique=False)
    op.add_column("repairs", sa.Column("contact_id", sa.Integer(), nullable=True))
    op.create_index("ix_repairs_contact_id", "repairs", ["contact_id"], unique=False)
    _rebuild_search(with_nip=True)


def downgrade():
    _rebuild_search(with_nip=False)
    op.drop_index("ix_repairs_contact_id", table_name="repairs")
    op.drop_column("repairs", "contact_id")
    op.drop_index("ix_contact_people_phone", table_name="contact_people")
    op.drop_index("ix_contact_people_email", table_name="contact_people")
    op.drop_index("ix_contact_people_customer_id", table_name="contact_people")
    op.drop_table("contact_people")
    op.drop_index("ix_customers_nip", table_name="customers")
    for column in ("address", "nip", "kind"):
        op.drop_column("customers", column)
