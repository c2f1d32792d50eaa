"""The `flask` commands scripts rely on: accounts, customers, API tokens and the demo shop."""
import pytest
from helpers import sign_in
from sqlalchemy import func, select

from app.extensions import db
from app.inbound.trusted import trusted_domains
from app.inbound.record import held_items
from app.models import ApiToken, Customer, Delivery, Mailbox, Message, Repair, Shop, Thread, Ticket, User
from app.panel.loaders import threads_for_customer


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_users_create_adds_an_account_that_can_sign_in(cli, app):
    result = cli.invoke(args=["users", "create", "Anna@Shop.example", "--password", "dziesiec-znakow",
                              "--role", "owner", "--name", "Anna Kowalska"])
    assert result.exit_code == 0, result.output
    assert "created owner anna@shop.example" in result.output
    user = User.by_email("anna@shop.example")
    assert (user.name, user.role) == ("Anna Kowalska", "owner")
    sign_in(app.test_client(), user, password="dziesiec-znakow")


def test_users_create_refuses_a_taken_address_with_exit_status_1(cli):
    args = ["users", "create", "anna@shop.example", "--password", "dziesiec-znakow", "--role", "staff"]
    assert cli.invoke(args=args).exit_code == 0
    result = cli.invoke(args=args)
    assert result.exit_code == 1
    assert "already uses this e-mail" in result.output
    assert count(User) == 1


def test_users_create_explains_a_bad_address_and_a_short_password(cli):
    result = cli.invoke(args=["users", "create", "anna@", "--password", "short", "--role", "staff"])
    assert result.exit_code == 1
    assert "email:" in result.output and "at least 10 characters" in result.output
    assert count(User) == 0


def test_customers_add_prints_the_new_id(cli):
    result = cli.invoke(args=["customers", "add", "--name", "Jan Kowalski", "--email", "jan@example.com",
                              "--phone", "600 100 200"])
    assert result.exit_code == 0, result.output
    customer = db.session.get(Customer, int(result.output.strip()))
    assert (customer.name, customer.email, customer.phone) == ("Jan Kowalski", "jan@example.com", "+48600100200")


def test_customers_add_makes_a_company_with_its_nip_and_refuses_a_bad_one(cli):
    result = cli.invoke(args=["customers", "add", "--name", "Serwis Biurowy", "--company", "--nip", "PL 123-456-32-18"])
    assert result.exit_code == 0, result.output
    customer = db.session.get(Customer, int(result.output.strip()))
    assert (customer.kind, customer.nip) == ("company", "1234563218")

    refused = cli.invoke(args=["customers", "add", "--name", "Inna", "--company", "--nip", "1234563219"])
    assert refused.exit_code == 1 and "nip:" in refused.output
    assert count(Customer) == 1


def test_customers_add_refuses_a_bad_phone_number(cli):
    result = cli.invoke(args=["customers", "add", "--name", "Jan Kowalski", "--phone", "123"])
    assert result.exit_code == 1
    assert "phone:" in result.output
    assert count(Customer) == 0


def test_api_token_create_prints_a_working_token_once(cli):
    result = cli.invoke(args=["api-token", "create", "erp"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "shown only once" in result.stderr
    assert ApiToken.authenticate(token).name == "erp"
    assert db.session.scalars(select(ApiToken.token_hash)).one() != token  # only the hash is kept


def test_the_cli_refuses_names_with_line_breaks_or_over_the_limit(cli):
    for args in (["api-token", "create", "erp\nadmin"], ["api-token", "create", "x" * 121],
                 ["customers", "add", "--name", "Jan\r\nKowalski"], ["customers", "add", "--name", "x" * 201]):
        result = cli.invoke(args=args)
        assert result.exit_code == 1 and "name:" in result.output, (args, result.output)
    assert count(ApiToken) == 0 and count(Customer) == 0


def test_demo_seed_fills_an_empty_database_and_prints_the_login(cli, app, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-haslo-123")
    result = cli.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "anna@naprawaplus.example" in result.output and "demo-haslo-123" in result.output

    assert Shop.current().slug == "naprawaplus"
    assert count(User) == 2 and count(Customer) >= 8 and count(Repair) >= 10 and count(Ticket) == 2
    assert count(Thread) >= 8 and count(Message) >= 15
    assert db.session.scalar(select(func.count()).where(Thread.unread.is_(True))) >= 1
    assert db.session.scalar(select(func.count()).where(Thread.closed_at.is_not(None),
                                                        Thread.first_response_at.is_not(None))) >= 3
    assert len(set(db.session.scalars(select(Thread.assignee_id)))) >= 3  # Anna's, Piotr's and nobody's
    assert len({repair.status_id for repair in db.session.scalars(select(Repair))}) >= 5
    customers = db.session.scalars(select(Customer)).all()
    assert any(c.email is None for c in customers)
    assert any(not c.sms_informational for c in customers)
    assert any(c.marketing_consent for c in customers)

    owner = User.by_email("anna@naprawaplus.example")
    browser = app.test_client()
    sign_in(browser, owner, password="demo-haslo-123")
    assert "Serwis Naprawa Plus" in browser.get("/").get_data(as_text=True)


def test_demo_seed_shows_inbound_mail_held_items_trusted_domains_and_the_panel(cli, app):
    assert cli.invoke(args=["demo", "seed"]).exit_code == 0

    held = {item.source: item for item in held_items()}
    assert held["email"].sender == "jan.malinowski@example.com" and held["sms"].sender == "+48605777888"
    reply = db.session.scalar(select(Message).where(Message.direction == "in", Message.quoted_text != ""))
    assert reply.thread.unread and "Katarzyna" in reply.body_text and "450 zł" in reply.quoted_text
    supplier = db.session.scalar(select(Thread).where(Thread.customer_id.is_(None)))
    assert supplier.subject.startswith("Potwierdzenie zamówienia")  # a trusted domain's mail starts a thread
    assert [d.domain for d in trusted_domains()] == ["hurtownia-gsm.example"]
    # The demo mailbox has no real servers: it neither polls nor sends, and never shows up as broken.
    assert db.session.scalars(select(Mailbox)).one().active is False

    published = db.session.scalars(select(Delivery).where(Delivery.channel == "portal")).one()
    assert published.status == "delivered" and published.message.visible_to_customer
    panel_customer = published.message.thread.customer
    assert panel_customer.panel_active
    with app.test_request_context():  # the panel's listing reads its sign-in scope from the session
        # The panel conversation, among the customer's other conversations (the panel shows every channel's).
        assert published.message.thread_id in [t.thread.id for t in threads_for_customer(panel_customer)]


def test_demo_seed_generates_a_password_when_none_is_given(cli, app, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    result = cli.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    password = result.output.rsplit(":", 1)[1].strip()
    sign_in(app.test_client(), User.by_email("piotr@naprawaplus.example"), password=password)


def test_demo_seed_leaves_a_database_with_users_alone(cli):
    assert cli.invoke(args=["demo", "seed"]).exit_code == 0
    customers = count(Customer)
    result = cli.invoke(args=["demo", "seed"])
    assert result.exit_code == 0
    assert "database not empty, nothing seeded" in result.output
    assert count(Customer) == customers and count(User) == 2
