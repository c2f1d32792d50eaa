"""The public request form: a stranger's request becomes a new customer's ticket; a request naming a customer's
contact waits for the code sent there; robots, floods, odd numbers and files are refused; only the form may be
framed."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from panel_helpers import dispatch_now, mail_text, panel_csrf, panel_customer, panel_path

from app.attachments import is_stored
from app.customers import create_customer
from app.extensions import db
from app.models import ConsentEvent, Customer, Delivery, Message, Shop, Thread, Ticket, WebRequest, utcnow
from app.privacy.erasure import erase_customer
from app.web_requests import expire_requests

MOBILE = "+48600100200"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture(autouse=True)
def form_open(app):
    shop = Shop.current()
    shop.request_form_enabled = True
    db.session.commit()


def fields(**overrides) -> dict:
    values = {"name": "Jan Kowalski", "email": "jan@example.com", "phone": "", "device": "iPhone 12",
              "problem": "The screen is cracked.", "consent": "y", "website": ""}
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def send(client, **overrides):
    data = fields(**overrides)
    data["csrf_token"] = panel_csrf(client, "/zapytanie")
    return client.post(panel_path("/zapytanie"), data=data, content_type="multipart/form-data")


def type_code(client, code: str):
    return client.post(panel_path("/zapytanie/kod"), data={"code": code,
                                                            "csrf_token": panel_csrf(client, "/zapytanie/kod")})


def request_threads() -> list[Thread]:
    return list(db.session.scalars(db.select(Thread).where(Thread.source_channel == "request_form")))


def test_a_new_contacts_request_becomes_a_new_customers_ticket_marked_in_the_inbox(client, staff_client):
    response = send(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/zapytanie/kod")
    assert "the shop has your request" in client.get(panel_path("/zapytanie/kod")).get_data(as_text=True)
    [thread] = request_threads()
    customer = thread.customer
    assert (customer.name, customer.email) == ("Jan Kowalski", "jan@example.com")
    assert thread.ticket is not None and thread.ticket.subject == "iPhone 12" and thread.unread
    [message] = thread.messages
    assert message.direction == "in" and "The screen is cracked." in message.body_text
    consent = db.session.scalar(db.select(ConsentEvent).where(ConsentEvent.customer_id == customer.id,
                                                              ConsentEvent.kind == "contact"))
    assert consent.value and consent.source == "request_form"
    assert db.session.scalar(db.select(db.func.count(Delivery.id)).where(Delivery.purpose != "shop_notice")) == 0
    inbox = staff_client.get("/?channel=request_form").get_data(as_text=True)
    assert "Website request" in inbox and "iPhone 12" in inbox
    other = staff_client.get("/?channel=email").get_data(as_text=True)
    assert "iPhone 12" not in other


def test_an_existing_customers_email_waits_for_the_code_then_joins_their_history(client, mailbox, smtp_server):
    anna = panel_customer("Anna Nowak", "anna@example.com")
    response = send(client, name="Anna", email="Anna@Example.com", problem="Battery drains.")
    assert response.status_code == 303
    assert request_threads() == []  # nothing attached before the code
    dispatch_now()
    text = mail_text(smtp_server.wait_for(1)[0])
    code = re.search(r"\b(\d{6})\b", text).group(1)
    wrong = type_code(client, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 400 and "wrong or has expired" in wrong.get_data(as_text=True)
    assert request_threads() == []
    right = type_code(client, code)
    assert right.status_code == 200 and "in your history" in right.get_data(as_text=True)
    [thread] = request_threads()
    assert thread.customer_id == anna.id and thread.ticket.customer_id == anna.id
    assert "Battery drains." in thread.messages[0].body_text
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1
    assert client.get(panel_path("/zapytanie/kod")).status_code == 302  # done: the page starts again


def test_a_code_from_another_browser_or_after_its_time_does_not_attach(app, client, mailbox, smtp_server):
    panel_customer("Anna Nowak", "anna@example.com")
    send(client, email="anna@example.com")
    dispatch_now()
    code = re.search(r"\b(\d{6})\b", mail_text(smtp_server.wait_for(1)[0])).group(1)
    stranger = app.test_client()
    send(stranger, email="someone@example.com")
    assert type_code(stranger, code).status_code == 400
    waiting = db.session.scalar(db.select(WebRequest))
    waiting.code_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert type_code(client, code).status_code == 400
    assert [t.customer.email for t in request_threads()] == ["someone@example.com"]


def test_an_unconfirmed_request_expires_into_the_inbox_attached_to_nobody(client, mailbox):
    anna = panel_customer("Anna Nowak", "anna@example.com")
    send(client, email="anna@example.com", problem="Please call me.")
    assert expire_requests(now=utcnow() + timedelta(minutes=59)) == 0
    assert expire_requests(now=utcnow() + timedelta(hours=2)) == 1
    [thread] = request_threads()
    assert thread.customer_id is None and thread.ticket_id is None and thread.unread
    texts = [m.body_text for m in thread.messages]
    assert any("Please call me." in t for t in texts)
    assert any("did not confirm" in t and anna.name in t for t in texts)
    assert db.session.scalar(db.select(Delivery.status).where(Delivery.purpose == "panel_request")) == "cancelled"


def test_a_robot_filling_the_hidden_field_is_thanked_and_nothing_is_kept(client):
    response = send(client, website="http://spam.example")
    assert response.status_code == 303
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Thread.id))) == 0


@pytest.mark.app_config(REQUEST_LIMIT_PER_CONTACT="2 per hour", REQUEST_LIMIT_PER_IP="100 per hour")
def test_requests_are_limited_per_contact(app, client):
    codes = [send(app.test_client(), email="Jan@Example.com").status_code for _ in range(3)]
    assert codes == [303, 303, 429]
    assert send(client, email="other@example.com").status_code == 303


@pytest.mark.app_config(REQUEST_LIMIT_PER_CONTACT="100 per hour", REQUEST_LIMIT_PER_IP="2 per hour")
def test_requests_are_limited_per_address(client):
    codes = [send(client, email=f"p{n}@example.com").status_code for n in range(3)]
    assert codes == [303, 303, 429]


def test_required_fields_consent_and_a_contact(client):
    response = send(client, email="", phone="", consent=None, device="")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter an e-mail address or a phone number." in page
    assert "agree to be contacted" in page and "Enter the device." in page
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0


def test_a_number_outside_the_shops_sms_countries_is_refused(client):
    response = send(client, email="", phone="+1 202 555 0143")
    assert response.status_code == 400 and "Leave an e-mail address instead." in response.get_data(as_text=True)
    assert send(client, email="", phone="600 100 200").status_code == 303


def test_a_customers_number_gets_the_code_by_sms_and_nothing_else(client, sms_account, twilio_server):
    create_customer(name="Ola", phone=MOBILE)
    db.session.commit()
    send(client, email="", phone="600 100 200")
    dispatch_now()
    [sms] = twilio_server.messages
    code = re.search(r"\b(\d{6})\b", sms["body"]).group(1)
    assert type_code(client, code).status_code == 200
    assert request_threads()[0].customer.phone == MOBILE
    assert len(twilio_server.messages) == 1


def test_photos_follow_the_panels_upload_rules(client):
    ok = send(client, attachments=(io.BytesIO(PNG), "screen.png"))
    assert ok.status_code == 303
    assert [a.filename for a in request_threads()[0].messages[0].attachments] == ["screen.png"]
    program = send(client, email="b@example.com", attachments=(io.BytesIO(b"MZ" + b"\0" * 200), "setup.exe"))
    assert program.status_code == 400
    shop = Shop.current()
    shop.panel_attachment_max_mb = 1
    db.session.commit()
    big = send(client, email="c@example.com", attachments=(io.BytesIO(b"a" * (1024 * 1024 + 1)), "big.txt"))
    assert big.status_code == 400 and "larger than 1 MB" in big.get_data(as_text=True)
    shop.panel_allows_attachments = False
    db.session.commit()
    none = send(client, email="d@example.com", attachments=(io.BytesIO(PNG), "screen.png"))
    assert none.status_code == 400 and "does not accept files" in none.get_data(as_text=True)
    assert len(request_threads()) == 1


@pytest.mark.parametrize("refusal", ["no consent", "no contact", "files not taken"])
def test_a_refused_request_stores_none_of_its_files(client, refusal):
    """Strangers' failed attempts leave nothing on the disk or in the database for anyone to clean up."""
    photo = PNG + refusal.encode()  # a file of this test alone
    overrides = {"no consent": {"consent": None}, "no contact": {"email": ""}}.get(refusal, {})
    if refusal == "files not taken":
        Shop.current().panel_allows_attachments = False
        db.session.commit()
    response = send(client, attachments=(io.BytesIO(photo), "screen.png"), **overrides)
    assert response.status_code == 400
    assert not is_stored(hashlib.sha256(photo).hexdigest())
    assert send(client, attachments=(io.BytesIO(photo), "screen.png")).status_code == (
        400 if refusal == "files not taken" else 303)  # the same file is taken with a request that is right
    assert is_stored(hashlib.sha256(photo).hexdigest()) is (refusal != "files not taken")


def test_only_the_form_may_be_framed(client, staff_client):
    form = client.get(panel_path("/zapytanie"))
    assert "X-Frame-Options" not in form.headers
    assert "frame-ancestors *" in form.headers["Content-Security-Policy"]
    for response in (client.get(panel_path("/sign-in")), staff_client.get("/"), client.get("/login")):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_form_keeps_its_own_cookie_apart_from_the_panels(client):
    response = client.get(panel_path("/zapytanie"))
    cookies = response.headers.getlist("Set-Cookie")
    assert any(c.startswith("ri_request=") for c in cookies) and not any(c.startswith("ri_panel=") for c in cookies)


def test_a_shop_with_the_form_off_says_so(client):
    Shop.current().request_form_enabled = False
    db.session.commit()
    response = client.get(panel_path("/zapytanie"))
    assert response.status_code == 404 and "does not take requests" in response.get_data(as_text=True)


@pytest.mark.parametrize("language, words", [("uk", "Надіслати запит"), ("pl", "Wyślij zapytanie"),
                                             ("en", "Send a request")])
def test_the_form_speaks_the_customers_language(client, language, words):
    assert words in client.get(panel_path(f"/zapytanie?lang={language}")).get_data(as_text=True)


def test_the_owner_turns_the_form_on_and_finds_the_link_and_frame_to_paste(owner_client):
    Shop.current().request_form_enabled = False
    db.session.commit()
    page = owner_client.get("/settings/panel/").get_data(as_text=True)
    assert "&lt;iframe src=" in page and "/zapytanie" in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = owner_client.post("/settings/panel/", data={"csrf_token": token, "brand_colour": "#1f6feb",
                                                           "allows_attachments": "y", "request_form_enabled": "y"})
    assert response.status_code == 302
    assert Shop.current().request_form_enabled


@pytest.mark.shop_locale("pl")
def test_polish_staff_see_zapytanie_ze_strony(client, staff_client):
    send(client)
    assert "Zapytanie ze strony" in staff_client.get("/").get_data(as_text=True)


def test_done_requests_are_forgotten_a_day_later_their_threads_stay(client, mailbox):
    panel_customer("Anna Nowak", "anna@example.com")
    send(client, email="anna@example.com")
    expire_requests(now=utcnow() + timedelta(hours=2))
    assert db.session.scalar(db.select(db.func.count(WebRequest.id))) == 1
    expire_requests(now=utcnow() + timedelta(days=2))
    assert db.session.scalar(db.select(db.func.count(WebRequest.id))) == 0
    assert len(request_threads()) == 1


@pytest.mark.app_config(PUBLIC_BASE_URL="https://shop.example")
def test_over_https_the_forms_cookie_may_travel_in_a_frame_but_the_panels_may_not(app):
    client = app.test_client()
    form_cookie = client.get(panel_path("/zapytanie"), base_url="https://shop.example").headers["Set-Cookie"]
    assert form_cookie.startswith("ri_request=")
    assert "SameSite=None" in form_cookie and "Secure" in form_cookie and "Partitioned" in form_cookie
    panel_cookie = client.get(panel_path("/sign-in"), base_url="https://shop.example").headers["Set-Cookie"]
    assert panel_cookie.startswith("ri_panel=") and "SameSite=Lax" in panel_cookie and "Partitioned" not in panel_cookie


def test_the_shop_is_told_of_a_new_request_and_the_sender_gets_nothing(client, mailbox, smtp_server):
    Shop.current().notification_email = "shop@shop.example"
    db.session.commit()
    send(client, problem="Cracked back glass.")
    dispatch_now()
    [notice] = smtp_server.wait_for(1)
    assert notice.rcpt_tos == ["shop@shop.example"]
    assert "sent a request through the website form" in mail_text(notice)
    assert "Cracked back glass." in mail_text(notice)


def test_erasing_a_customer_forgets_requests_waiting_on_their_contact(client, mailbox, staff):
    anna = panel_customer("Anna Nowak", "anna@example.com")
    send(client, email="anna@example.com")
    erase_customer(anna, actor=staff, confirmation="Anna Nowak")
    assert db.session.scalar(db.select(db.func.count(WebRequest.id))) == 0


def test_erasing_a_customer_cuts_them_out_of_an_expired_request_that_named_them(client, mailbox, staff,
                                                                                 staff_client):
    """The expired request's thread is nobody's, but its note names the customer and its text carries their
    address: erasing the customer takes both out and leaves the rest of the request for staff."""
    anna = panel_customer("Anna Nowak", "anna@example.com")
    send(client, email="anna@example.com", name="Anna N.", problem="Please call me.")
    expire_requests(now=utcnow() + timedelta(hours=2))
    [thread] = request_threads()
    assert any("Anna Nowak" in m.body_text for m in thread.messages)

    erase_customer(anna, actor=staff, confirmation="Anna Nowak")

    db.session.expire_all()
    texts = " ".join(m.body_text + m.sender + m.subject for m in db.session.get(Thread, thread.id).messages)
    assert "Anna Nowak" not in texts and "anna@example.com" not in texts
    assert "Please call me." in texts and "did not confirm" in texts
    page = staff_client.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "anna@example.com" not in page and "Anna Nowak" not in page


def test_a_companys_contact_person_confirms_with_the_code_sent_to_them_and_the_ticket_is_the_companys(
        client, mailbox, smtp_server):
    """A contact person's address is the company's contact: the request waits for the code sent to that person,
    then becomes the company's ticket naming who wrote; no second customer is made of them."""
    from app.customers import add_contact_person
    company = create_customer(name="Serwis Biurowy sp. z o.o.", kind="company", nip="1234563218")
    add_contact_person(company, name="Ewa Zielińska", email="ewa@serwis-biurowy.pl", actor="test")
    db.session.commit()
    send(client, name="Ewa", email="Ewa@Serwis-Biurowy.pl", problem="The printer jams.")
    assert request_threads() == []
    dispatch_now()
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["ewa@serwis-biurowy.pl"]
    code = re.search(r"\b(\d{6})\b", mail_text(mail)).group(1)

    assert type_code(client, code).status_code == 200

    [thread] = request_threads()
    assert thread.customer_id == company.id and thread.ticket.customer_id == company.id
    assert thread.messages[0].meta["contact_name"] == "Ewa Zielińska"
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 1
