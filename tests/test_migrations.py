"""The migrations build the schema from nothing, match the models exactly, and go down and up again."""
from __future__ import annotations

import pprint

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from app.extensions import db
from app.models import Customer, RepairStatus, Shop
from app.search import include_name
from helpers import run_flask


def tables() -> set[str]:
    return set(inspect(db.engine).get_table_names())


def assert_full_schema_with_seed_rows() -> None:
    missing = set(db.metadata.tables) - tables()
    assert not missing, f"tables the models have but the database lacks: {sorted(missing)}"
    assert db.session.scalar(select(func.count()).select_from(Shop)) == 1
    assert db.session.scalar(select(func.count()).select_from(RepairStatus)) > 0
    db.session.remove()  # no open transaction may hold the tables a later migration drops


def test_db_upgrade_builds_the_schema_on_an_empty_database(empty_app):
    assert tables() == set()

    run_flask(empty_app, "db", "upgrade")

    assert "alembic_version" in tables()
    assert_full_schema_with_seed_rows()


def test_models_and_migrations_do_not_drift_apart(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "models differ from the migrated schema:\n" + pprint.pformat(differences)


def test_flask_db_check_finds_nothing_to_generate(app):
    run_flask(app, "db", "check")  # exits with 1 when autogenerate would write a migration


def test_downgrade_to_base_and_upgrade_again(app):
    run_flask(app, "db", "downgrade", "base")
    assert tables() <= {"alembic_version"}

    run_flask(app, "db", "upgrade")
    assert_full_schema_with_seed_rows()


def test_upgrading_gives_the_oldest_kept_copy_of_each_mail_its_copy_key(empty_app):
    from sqlalchemy import text

    from app.inbound.batch import copy_key
    from app.inbound.parse import ParsedMail

    run_flask(empty_app, "db", "upgrade", "0011")
    items = [  # (id, status, Message-ID, content hash): two copies a race stored twice, a held mail, a duplicate
        (1, "accepted", "a@example.com", "h1"), (2, "accepted", "a@example.com", "h1"),
        (3, "held", None, "h2"), (4, "duplicate", "a@example.com", "h1"),
    ]
    with db.engine.begin() as connection:
        for item_id, status, message_id, content_hash in items:
            connection.execute(text(
                "INSERT INTO inbound_items (id, source, status, message_id_header, content_hash, sender, subject,"
                " received_at) VALUES (:id, 'email', :status, :mid, :hash, '', '', CURRENT_TIMESTAMP)"),
                {"id": item_id, "status": status, "mid": message_id, "hash": content_hash})
    db.session.remove()

    run_flask(empty_app, "db", "upgrade")

    keys = dict(db.session.execute(text("SELECT id, copy_key FROM inbound_items ORDER BY id")).tuples().all())
    mail = ParsedMail.__new__(ParsedMail)
    mail.message_id, mail.content_hash = "a@example.com", "h1"
    first = copy_key(mail)
    mail.message_id, mail.content_hash = "", "h2"
    assert keys == {1: first, 2: None, 3: copy_key(mail), 4: None}
    db.session.remove()


def _row_counts() -> dict[str, int]:
    tables = [name for name in inspect(db.engine).get_table_names() if name != "alembic_version"]
    counts = {name: db.session.scalar(select(func.count()).select_from(db.table(name))) for name in tables}
    db.session.remove()  # no open transaction: PostgreSQL's next ALTER TABLE would wait for it
    return counts


def test_no_upgrade_step_loses_a_row(empty_app):
    """Each migration, one at a time, keeps every row the shop had (here those the migrations themselves write: the
    shop, statuses, ready-made templates and their notices). On SQLite a batch step copies a table and drops the
    old one, and with foreign keys on that deletes the rows pointing at it: one such step once emptied every
    automatic notification."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(empty_app.extensions["migrate"].migrate.get_config())
    revisions = [revision.revision for revision in reversed(list(script.walk_revisions()))]
    run_flask(empty_app, "db", "upgrade", revisions[0])
    before = _row_counts()
    for revision in revisions[1:]:
        run_flask(empty_app, "db", "upgrade", revision)
        after = _row_counts()
        lost = {table: (count, after.get(table, 0)) for table, count in before.items() if after.get(table, 0) < count}
        assert not lost, f"upgrading to {revision} lost rows (before, after): {lost}"
        before = after
    assert before["status_notifications"] >= 2 and before["message_templates"] >= 6  # the check had rows to keep


def test_going_down_from_company_customers_drops_the_nip_from_the_search_and_coming_back_finds_it(app):
    from app.customers import create_customer
    from app.messaging.threads import open_thread
    from app.search import search_thread_ids

    company = create_customer(name="Serwis Biurowy", kind="company", nip="1234563218")
    thread = open_thread(company, subject="Toner")
    db.session.commit()
    thread_id, company_id = thread.id, company.id

    def found(text: str) -> list[int]:
        return list(db.session.scalars(search_thread_ids(text)))

    assert found("1234563218") == [thread_id]
    db.session.remove()

    run_flask(app, "db", "downgrade", "0021")
    assert found("1234563218") == [] and found("biurowy") == [thread_id]
    db.session.remove()

    run_flask(app, "db", "upgrade")
    db.session.execute(Customer.__table__.update().where(Customer.id == company_id).values(nip="1234563218"))
    db.session.commit()
    assert found("1234563218") == [thread_id]
    db.session.remove()
