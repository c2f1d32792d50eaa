"""Company customers: a NIP checked by its check digit, contact people whose mail threads to the company, messages
to a chosen contact person, search by NIP and name, the API, the data export and erasure."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from helpers import csrf_token
from inbound_helpers import make_mailbox, plain_mail, receive, sample, send_mail
from sqlalchemy import select

from app.accounts.sms import configure_sms
from app.channels.sms import opt_out_number
from app.customers import add_contact_person, create_customer, update_contact_person
from app.extensions import db
from app.models import AuditEvent, ContactPerson, Customer, Delivery, Message, Repair, Shop
from app.messaging.compose import channel_problems
from app.outbox import dispatch_pass
from app.privacy.erasure import erase_customer
from app.privacy.redaction import redact_message
from app.repairs import create_repair

SHOP_NUMBER = "+48500100200"
INBOUND_URL = "http://shop.example/webhooks/twilio/sms"  # PUBLIC_BASE_URL of the tests + the path
VALID_NIP = "1234563218"  # its check digit matches
BAD_CHECKSUM = "1234563219"


@pytest.fixture
def company(app):
    """Serwis Biurowy sp. z o.o. with two contact people: Ewa (e-mail and phone) and Piotr (e-mail only)."""
    company = create_customer(name="Serwis Biurowy sp. z o.o.", kind="company", nip=VALID_NIP,
                              email="biuro@serwis-biurowy.pl", address="ul. Długa 1\n00-001 Warszawa")
    add_contact_person(company, name="Ewa Zielińska", email="Ewa@Serwis-Biurowy.pl", phone="601 234 567",
                       actor="test")
    add_contact_person(company, name="Piotr Wiśniewski", email="piotr@serwis-biurowy.pl", actor="test")
    db.session.commit()
    return company


def contact(name: str) -> ContactPerson:
    return db.session.scalars(select(ContactPerson).where(ContactPerson.name == name)).one()


def customer_form(client, path: str, **fields) -> dict:
    data = {"kind": "person", "name": "", "nip": "", "address": "", "email": "", "phone": "", "crm_note": "",
            "sms_informational": "y"}
    data.update(fields)
    data["csrf_token"] = csrf_token(client, path)
    return data


# The NIP


@pytest.mark.parametrize("typed", [VALID_NIP, "123-456-32-18", "PL 123-456-32-18", "pl1234563218", " 123 456 32 18 "])
def test_staff_add_a_company_with_its_nip_however_it_is_typed(staff_client, typed):
    data = customer_form(staff_client, "/customers/new", kind="company", name="Serwis Biurowy", nip=typed,
                         address="ul. Długa 1, Warszawa")
    response = staff_client.post("/customers/new", data=data)

    assert response.status_code == 302, response.get_data(as_text=True)
    customer = db.session.scalars(select(Customer)).one()
    assert (customer.kind, customer.nip, customer.address) == ("company", VALID_NIP, "ul. Długa 1, Warszawa")
    card = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "123-456-32-18" in card and "Company" in card and "Contact people" in card


@pytest.mark.parametrize("typed, message", [(BAD_CHECKSUM, "check digit"), ("12345", "ten digits"),
                                            ("123456321A", "ten digits")])
def test_a_nip_with_a_wrong_check_digit_or_length_is_refused_at_the_field(staff_client, typed, message):
    data = customer_form(staff_client, "/customers/new", kind="company", name="Serwis Biurowy", nip=typed)
    response = staff_client.post("/customers/new", data=data)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="nip-error"' in page and message in page
    assert db.session.scalar(select(Customer.id)) is None


def test_existing_customers_are_people_and_a_person_keeps_no_nip(staff_client, customer):
    assert customer.kind == "person" and customer.nip is None
    data = customer_form(staff_client, f"/customers/{customer.id}/edit", name=customer.name, email=customer.email,
                         nip=VALID_NIP)
    assert staff_client.post(f"/customers/{customer.id}/edit", data=data).status_code == 302

    db.session.expire_all()
    assert db.session.get(Customer, customer.id).nip is None
    assert "Contact people" not in staff_client.get(f"/customers/{customer.id}").get_data(as_text=True)


# Contact people on the card


def test_staff_add_edit_and_remove_a_companys_contact_people(staff_client, company):
    path = f"/customers/{company.id}/contacts"
    response = staff_client.post(path, data={"name": "Adam Nowy", "email": "adam@serwis-biurowy.pl",
                                             "phone": "602 000 111", "csrf_token": csrf_token(staff_client, "/")})
    assert response.status_code == 302
    adam = contact("Adam Nowy")
    assert (adam.email, adam.phone, adam.customer_id) == ("adam@serwis-biurowy.pl", "+48602000111", company.id)
    card = staff_client.get(f"/customers/{company.id}").get_data(as_text=True)
    assert "Adam Nowy" in card and "+48 602 000 111" in card

    edit = f"/customers/{company.id}/contacts/{adam.id}"
    assert "Adam Nowy" in staff_client.get(edit).get_data(as_text=True)
    refused = staff_client.post(edit, data={"name": "Adam Nowy", "email": "not an address", "phone": "",
                                            "csrf_token": csrf_token(staff_client, edit)})
    assert refused.status_code == 422 and 'id="email-error"' in refused.get_data(as_text=True)
    saved = staff_client.post(edit, data={"name": "Adam Stary", "email": "", "phone": "602 000 111",
                                          "csrf_token": csrf_token(staff_client, edit)})
    assert saved.status_code == 302
    db.session.expire_all()
    assert (contact("Adam Stary").email, contact("Adam Stary").phone) == (None, "+48602000111")

    removed = staff_client.post(f"{edit}/remove", data={"csrf_token": csrf_token(staff_client, "/")})
    assert removed.status_code == 302
    db.session.expire_all()
    assert db.session.get(ContactPerson, adam.id) is None
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"customer.contact_add", "customer.contact_update", "customer.contact_remove"} <= actions


def test_a_contact_person_needs_a_name_and_a_person_has_none(staff_client, company, customer):
    token = csrf_token(staff_client, "/")
    nameless = staff_client.post(f"/customers/{company.id}/contacts", data={"name": "", "email": "", "phone": "",
                                                                           "csrf_token": token})
    assert nameless.status_code == 422 and 'id="name-error"' in nameless.get_data(as_text=True)
    person = staff_client.post(f"/customers/{customer.id}/contacts", data={"name": "Ktoś", "email": "", "phone": "",
                                                                          "csrf_token": token})
    assert person.status_code == 422 and "Only a company has contact people." in person.get_data(as_text=True)
    assert db.session.scalar(select(ContactPerson.id).where(ContactPerson.customer_id == customer.id)) is None


def test_another_customers_contact_person_is_not_found_through_this_customer(staff_client, company, customer):
    ewa = contact("Ewa Zielińska")
    assert staff_client.get(f"/customers/{customer.id}/contacts/{ewa.id}").status_code == 404
    response = staff_client.post(f"/customers/{customer.id}/contacts/{ewa.id}/remove",
                                 data={"csrf_token": csrf_token(staff_client, "/")})
    assert response.status_code == 404
    assert db.session.get(ContactPerson, ewa.id) is not None


def test_contact_people_need_a_signed_in_member_of_staff(client, company):
    ewa = contact("Ewa Zielińska")
    response = client.post(f"/customers/{company.id}/contacts/{ewa.id}/remove")
    assert response.status_code in (302, 400)  # the sign-in page, or the missing CSRF token
    assert db.session.get(ContactPerson, ewa.id) is not None


# Mail from a contact person


def test_mail_from_a_contact_person_threads_to_the_company_and_shows_who_wrote(staff_client, company):
    mailbox = make_mailbox()
    outcome = receive(mailbox, plain_mail(sender="ewa@serwis-biurowy.pl", subject="Drukarka nie drukuje"))

    assert outcome.status == "new_thread" and outcome.thread.customer_id == company.id
    message = db.session.scalars(select(Message).where(Message.direction == "in")).one()
    assert message.author_customer_id == company.id
    assert message.meta["contact_name"] == "Ewa Zielińska"
    page = staff_client.get(f"/threads/{outcome.thread.id}").get_data(as_text=True)
    assert "contact person: Ewa Zielińska" in page

    reply = receive(mailbox, plain_mail(sender="Piotr <PIOTR@serwis-biurowy.pl>", subject="Re: Drukarka nie drukuje",
                                        message_id="<q2@example.com>", extra="In-Reply-To: <q1@example.com>"))
    assert reply.status == "threaded" and reply.thread.id == outcome.thread.id


def test_an_sms_from_a_contact_person_joins_the_companys_thread_and_names_them(staff_client, company,
                                                                                twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                  api_base_url=twilio_server.url, actor="test")
    Shop.current().undo_seconds = 0
    repair = create_repair(customer=company, device="HP LaserJet")
    db.session.commit()
    response = staff_client.post("/compose", data={
        "repair_id": repair.id, "contact_id": contact("Ewa Zielińska").id, "channels": "sms", "body": "Gotowe.",
        "csrf_token": csrf_token(staff_client, "/")})
    assert response.status_code == 302 and dispatch_pass()["sent"] == 1
    sent = db.session.scalars(select(Delivery)).one()
    assert sent.recipient == "+48601234567"

    twilio_server.text(staff_client, INBOUND_URL, "+48601234567", "Dziękuję, odbiorę jutro.", SHOP_NUMBER)

    db.session.expire_all()
    received = db.session.scalars(select(Message).where(Message.direction == "in")).one()
    assert received.thread_id == sent.message.thread_id and received.meta["contact_name"] == "Ewa Zielińska"
    page = staff_client.get(f"/threads/{received.thread_id}").get_data(as_text=True)
    assert "Ewa Zielińska (Serwis Biurowy sp. z o.o.)" in page

    twilio_server.text(staff_client, INBOUND_URL, "+48601234567", "STOP", SHOP_NUMBER)
    db.session.expire_all()
    assert db.session.get(Customer, company.id).sms_informational is True  # a contact's STOP is not the company's


# Writing to a contact person


def test_staff_write_to_the_contact_person_they_choose(staff_client, company):
    piotr = contact("Piotr Wiśniewski")
    make_mailbox()
    page = staff_client.get(f"/compose?customer_id={company.id}").get_data(as_text=True)
    assert 'name="contact_id"' in page and "Piotr Wiśniewski" in page

    response = staff_client.post("/compose", data={
        "customer_id": company.id, "contact_id": piotr.id, "channels": "email", "body": "Drukarka gotowa.",
        "csrf_token": csrf_token(staff_client, "/")})

    assert response.status_code == 302, response.get_data(as_text=True)
    delivery = db.session.scalars(select(Delivery)).one()
    assert delivery.recipient == "piotr@serwis-biurowy.pl"
    assert delivery.message.meta["contact_name"] == "Piotr Wiśniewski"


def test_a_message_about_a_repair_goes_to_its_contact_person_unless_staff_choose_the_company(staff_client, company):
    ewa = contact("Ewa Zielińska")
    make_mailbox()
    repair = create_repair(customer=company, device="HP LaserJet")
    db.session.commit()
    edit = f"/repairs/{repair.id}/edit"
    assert staff_client.post(edit, data={"device": "HP LaserJet", "contact_id": ewa.id,
                                         "csrf_token": csrf_token(staff_client, edit)}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Repair, repair.id).contact_id == ewa.id
    assert "Contact person" in staff_client.get(f"/repairs/{repair.id}").get_data(as_text=True)
    page = staff_client.get(f"/compose?repair_id={repair.id}").get_data(as_text=True)
    assert f'<option value="{ewa.id}" selected>' in page

    token = csrf_token(staff_client, "/")
    staff_client.post("/compose", data={"repair_id": repair.id, "channels": "email",  # no choice: the repair's
                                        "body": "Gotowe.", "csrf_token": token})
    staff_client.post("/compose", data={"repair_id": repair.id, "contact_id": "", "channels": "email",
                                        "body": "Faktura.", "csrf_token": token})
    recipients = [(d.channel, d.recipient) for d in db.session.scalars(select(Delivery).order_by(Delivery.id))]
    assert recipients == [("email", "ewa@serwis-biurowy.pl"), ("email", "biuro@serwis-biurowy.pl")]


def test_a_contact_person_without_an_address_for_the_channel_is_refused(staff_client, company, customer):
    piotr, make = contact("Piotr Wiśniewski"), make_mailbox()
    token = csrf_token(staff_client, "/")
    no_phone = staff_client.post("/compose", data={"customer_id": company.id, "contact_id": piotr.id,
                                                   "channels": "sms", "body": "Hej", "csrf_token": token})
    assert no_phone.status_code == 422
    stranger = staff_client.post("/compose", data={"customer_id": customer.id, "contact_id": piotr.id,
                                                   "channels": "email", "body": "Hej", "csrf_token": token})
    assert stranger.status_code == 422 and "Not a contact person of this customer." in stranger.get_data(as_text=True)
    assert db.session.scalar(select(Delivery.id)) is None and make is not None


# Search


@pytest.mark.parametrize("query", ["1234563218", "123-456-32-18", "PL 123-456-32-18", "biurowy", "Zielińska"])
def test_the_customer_list_finds_a_company_by_nip_name_or_contact_person(staff_client, company, customer, query):
    page = staff_client.get("/customers/", query_string={"q": query}).get_data(as_text=True)
    assert "Serwis Biurowy sp. z o.o." in page and customer.name not in page


def test_the_customer_picker_finds_a_company_by_nip_and_shows_it(staff_client, company):
    options = staff_client.get("/customers/options", query_string={"q": "PL 123-456-32-18"}).get_data(as_text=True)
    assert f'data-customer-id="{company.id}"' in options and "NIP 123-456-32-18" in options


@pytest.mark.parametrize("query", ["1234563218", "PL 123-456-32-18", "biurowy"])
def test_the_inbox_search_finds_a_companys_threads_by_nip_and_name(staff_client, company, query):
    thread = receive(make_mailbox(), plain_mail(sender="ewa@serwis-biurowy.pl", subject="Toner")).thread
    page = staff_client.get("/", query_string={"q": query}).get_data(as_text=True)
    assert f"/threads/{thread.id}" in page


def test_a_nip_added_later_is_searchable_in_the_inbox(staff_client, customer):
    thread = receive(make_mailbox(), plain_mail(sender=customer.email, subject="Toner")).thread
    customer.kind, customer.nip = "company", VALID_NIP
    db.session.commit()
    assert f"/threads/{thread.id}" in staff_client.get("/", query_string={"q": VALID_NIP}).get_data(as_text=True)


# The API


def test_the_api_creates_and_changes_a_company_with_its_contact_people(api):
    created = api.post("/api/v1/customers", json={
        "name": "Serwis Biurowy", "kind": "company", "nip": "PL 123-456-32-18", "address": "ul. Długa 1",
        "contacts": [{"name": "Ewa", "email": "ewa@serwis-biurowy.pl"}, {"name": "Piotr", "phone": "601234567"}]})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["kind"], body["nip"], body["address"]) == ("company", VALID_NIP, "ul. Długa 1")
    ewa, piotr = body["contacts"]
    assert (ewa["name"], ewa["email"], piotr["phone"]) == ("Ewa", "ewa@serwis-biurowy.pl", "+48601234567")

    changed = api.patch(f"/api/v1/customers/{body['id']}", json={
        "contacts": [{"id": ewa["id"], "name": "Ewa Zielińska", "email": "ewa@serwis-biurowy.pl"},
                     {"name": "Adam", "email": "adam@serwis-biurowy.pl"}]})
    assert changed.status_code == 200, changed.get_json()
    assert [(c["name"], c["id"] == ewa["id"]) for c in changed.get_json()["contacts"]] == \
        [("Ewa Zielińska", True), ("Adam", False)]
    assert api.get(f"/api/v1/customers/{body['id']}").get_json()["contacts"] == changed.get_json()["contacts"]


@pytest.mark.parametrize("body, field", [
    ({"name": "X", "kind": "company", "nip": BAD_CHECKSUM}, "nip"),
    ({"name": "X", "kind": "company", "nip": 1234563218}, "nip"),
    ({"name": "X", "kind": "robot"}, "kind"),
    ({"name": "X", "kind": "company", "contacts": [{"name": "", "email": "x"}]}, "contacts.0.name"),
    ({"name": "X", "kind": "company", "contacts": "Ewa"}, "contacts"),
    ({"name": "X", "contacts": [{"name": "Ewa"}]}, "contacts"),
    ({"name": "X", "kind": "company", "contacts": [{"name": "Ewa", "mail": "ewa@example.com"}]}, "contacts.0.mail"),
    ({"name": "X", "kind": "company", "contacts": [{"id": [1], "name": "Ewa"}]}, "contacts.0.id"),
    ({"name": "X", "kind": ["company"]}, "kind"),
])
def test_the_api_refuses_a_bad_nip_kind_or_contact_with_a_422_naming_the_field(api, body, field):
    response = api.post("/api/v1/customers", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["fields"]
    assert db.session.scalar(select(Customer.id)) is None


def test_the_api_refuses_another_customers_contact_id(api, company, customer):
    customer.kind = "company"
    db.session.commit()
    response = api.patch(f"/api/v1/customers/{customer.id}",
                         json={"contacts": [{"id": contact("Ewa Zielińska").id, "name": "Ewa"}]})
    assert response.status_code == 422 and "contacts.0.id" in response.get_json()["fields"]


def test_the_api_writes_to_the_chosen_contact_person_and_refuses_another_customers(api, company, customer):
    make_mailbox()
    piotr = contact("Piotr Wiśniewski")
    sent = api.post("/api/v1/messages", json={"customer_id": company.id, "contact_id": piotr.id,
                                              "channels": ["email"], "body": "Faktura w załączniku."})
    assert sent.status_code == 201, sent.get_json()
    delivery_id = sent.get_json()["deliveries"][0]["id"]
    assert api.get(f"/api/v1/deliveries/{delivery_id}").get_json()["recipient"] == "piotr@serwis-biurowy.pl"

    refused = api.post("/api/v1/messages", json={"customer_id": customer.id, "contact_id": piotr.id,
                                                 "channels": ["email"], "body": "Hej"})
    assert refused.status_code == 422 and "contact_id" in refused.get_json()["fields"]


# Privacy


def test_the_export_includes_the_contact_people_and_who_wrote(owner_client, company):
    receive(make_mailbox(), plain_mail(sender="ewa@serwis-biurowy.pl"))
    opt_out_number("+48601234567", "21610")  # Ewa's number said STOP at the provider
    db.session.commit()
    response = owner_client.get(f"/customers/{company.id}/export")
    data = json.loads(zipfile.ZipFile(io.BytesIO(response.get_data())).read("customer.json"))

    assert data["customer"]["nip"] == VALID_NIP and data["customer"]["kind"] == "company"
    assert [(c["name"], c["email"], c["phone"]) for c in data["customer"]["contacts"]] == [
        ("Ewa Zielińska", "ewa@serwis-biurowy.pl", "+48601234567"), ("Piotr Wiśniewski", "piotr@serwis-biurowy.pl", None)]
    assert data["threads"][0]["messages"][0]["contact_person"] == "Ewa Zielińska"
    assert [c["sms_stopped_at"] is not None for c in data["customer"]["contacts"]] == [True, False]
    assert [c["email_bounced_at"] for c in data["customer"]["contacts"]] == [None, None]


def test_erasing_a_company_removes_its_contact_people_and_nip(owner, company):
    receive(make_mailbox(), plain_mail(sender="ewa@serwis-biurowy.pl"))
    repair = create_repair(customer=company, device="HP")
    repair.contact_id = contact("Ewa Zielińska").id
    db.session.commit()

    erase_customer(company, actor=owner, confirmation=company.name)

    db.session.expire_all()
    erased = db.session.get(Customer, company.id)
    assert (erased.nip, erased.address) == (None, "")
    assert db.session.scalar(select(ContactPerson.id)) is None
    assert db.session.get(Repair, repair.id).contact_id is None
    assert all("contact_name" not in (m.meta or {}) for m in db.session.scalars(select(Message)))
    details = json.dumps([e.details for e in db.session.scalars(select(AuditEvent))], ensure_ascii=False)
    assert "Ewa" not in details and "serwis-biurowy" not in details


def test_redacting_a_contact_persons_name_reaches_the_name_kept_on_their_message(staff, company):
    receive(make_mailbox(), plain_mail(sender="ewa@serwis-biurowy.pl", body="Proszę o kontakt, Ewa Zielińska"))
    message = db.session.scalars(select(Message).where(Message.direction == "in")).one()

    redact_message(message, "Zielińska", staff)
    db.session.commit()

    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert "Zielińska" not in message.body_text and message.meta["contact_name"] == "Ewa [redacted]"


# A contact person's own STOP and bouncing address


def test_a_contact_persons_stop_stops_sms_to_their_number_alone_until_start(staff_client, company, twilio_server):
    """The number that said STOP gets no SMS again (by any company listing it) until it says START; the company
    and its other contact people still get theirs, and the card and its history show it."""
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                  api_base_url=twilio_server.url, actor="test")
    Shop.current().undo_seconds = 0
    adam = add_contact_person(company, name="Adam Nowy", phone="602 000 111", actor="test")
    repair = create_repair(customer=company, device="HP LaserJet")
    db.session.commit()
    ewa = contact("Ewa Zielińska")

    def text_to(person):
        return staff_client.post("/compose", data={
            "repair_id": repair.id, "contact_id": person.id, "channels": "sms", "body": "Gotowe.",
            "csrf_token": csrf_token(staff_client, "/")})

    assert text_to(ewa).status_code == 302 and dispatch_pass()["sent"] == 1
    twilio_server.text(staff_client, INBOUND_URL, "+48601234567", "Stop", SHOP_NUMBER)
    db.session.expire_all()
    assert contact("Ewa Zielińska").sms_stopped_at is not None and contact("Adam Nowy").sms_stopped_at is None
    assert db.session.get(Customer, company.id).sms_informational is True

    refused = text_to(contact("Ewa Zielińska"))
    assert refused.status_code == 422 and "turned SMS off" in refused.get_data(as_text=True)
    assert text_to(contact("Adam Nowy")).status_code == 302
    # another company listing the same number does not get round it
    other = create_customer(name="Druga Firma", kind="company")
    twin = add_contact_person(other, name="Ewa Z.", phone="601 234 567", actor="test")
    db.session.commit()
    problems = channel_problems(other, ["sms"], Shop.current(), twin)
    assert "turned SMS off" in problems["channels.sms"]

    card = staff_client.get(f"/customers/{company.id}").get_data(as_text=True)
    assert "data-contact-sms-off" in card.split(f'id="contact-{ewa.id}"')[1].split("</tr>")[0]
    assert "data-contact-sms-off" not in card.split(f'id="contact-{adam.id}"')[1].split("</tr>")[0]
    history = staff_client.get(f"/customers/{company.id}?tab=history&kind=contacts").get_data(as_text=True)
    assert "SMS to the contact person turned off: Ewa Zielińska" in history

    twilio_server.text(staff_client, INBOUND_URL, "+48601234567", "START", SHOP_NUMBER)
    db.session.expire_all()
    assert contact("Ewa Zielińska").sms_stopped_at is None
    assert text_to(contact("Ewa Zielińska")).status_code == 302


def test_the_providers_opt_out_of_a_contacts_number_stops_their_sms(company):
    opt_out_number("+48601234567", "21610")
    db.session.commit()
    assert contact("Ewa Zielińska").sms_stopped_at is not None
    assert db.session.get(Customer, company.id).sms_informational is True


def test_a_bounce_to_a_contact_persons_address_flags_that_contact_not_the_company(staff_client, company):
    mailbox = make_mailbox()
    ewa = contact("Ewa Zielińska")
    update_contact_person(ewa, actor="test", name=ewa.name, email="jan.nieistniejacy@example.com", phone=ewa.phone)
    Shop.current().undo_seconds = 0
    db.session.commit()
    sent = send_mail(company, contact=contact("Ewa Zielińska"))

    outcome = receive(mailbox, sample("bounce_postfix.eml", sent))

    assert outcome.status == "threaded"
    db.session.expire_all()
    ewa, piotr = contact("Ewa Zielińska"), contact("Piotr Wiśniewski")
    assert ewa.email_bounced_at is not None and "5.1.1" in ewa.email_bounce_reason
    assert piotr.email_bounced_at is None and db.session.get(Customer, company.id).email_bounced_at is None
    card = staff_client.get(f"/customers/{company.id}").get_data(as_text=True)
    assert "data-contact-bounced" in card.split(f'id="contact-{ewa.id}"')[1].split("</tr>")[0]
    compose_page = staff_client.get(f"/compose?customer_id={company.id}").get_data(as_text=True)
    assert "e-mail bounced" in compose_page
    # a new address has not bounced yet
    update_contact_person(ewa, actor="test", name=ewa.name, email="ewa@serwis-biurowy.pl", phone=ewa.phone)
    db.session.commit()
    assert contact("Ewa Zielińska").email_bounced_at is None


def test_an_sms_to_a_contact_written_before_their_stop_is_not_sent_after_it(staff_client, company, twilio_server):
    configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                  api_base_url=twilio_server.url, actor="test")
    Shop.current().undo_seconds = 0
    repair = create_repair(customer=company, device="HP LaserJet")
    db.session.commit()
    token = csrf_token(staff_client, "/")
    for body in ("Gotowe.", "Faktura w załączniku."):
        assert staff_client.post("/compose", data={
            "repair_id": repair.id, "contact_id": contact("Ewa Zielińska").id, "channels": "sms", "body": body,
            "csrf_token": token}).status_code == 302
    [first, second] = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert dispatch_pass(limit=1)["sent"] == 1  # the first goes; she answers STOP before the second
    twilio_server.text(staff_client, INBOUND_URL, "+48601234567", "STOP", SHOP_NUMBER)

    dispatch_pass()

    db.session.expire_all()
    assert db.session.get(Delivery, second.id).status == "failed"
    assert "replied STOP" in db.session.get(Delivery, second.id).error
    assert len(twilio_server.messages) == 1
