"""Getting into the customer panel: invitations, passwordless links and codes, passwords, a receipt's access code,
and sessions kept apart from the staff app's."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from panel_helpers import (dispatch_now, link_in, mail_text, open_link, panel_csrf, panel_customer, panel_path,
                           publish, sign_in_customer)
from pypdf import PdfReader

from app.attachments import store
from app.customers import create_customer
from app.extensions import db
from app.models import Delivery, PanelToken, Shop, ShopSlug, utcnow
from app.panel import credentials
from app.messaging.receipt import acceptance_receipt
from app.repairs import create_repair
from helpers import count_password_checks, csrf_token, sign_in

MOBILE = "+48600100200"


def test_an_invitation_by_email_opens_the_panel_once(app, staff_client, mailbox, smtp_server, customer):
    card = staff_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert "Invite by e-mail" in card
    response = staff_client.post(f"/customers/{customer.id}/panel/invite",
                                 data={"channel": "email", "csrf_token": csrf_token(staff_client, f"/customers/{customer.id}")})
    assert response.status_code == 302
    assert customer.panel_state == "invited"
    invitation = db.session.scalars(db.select(Delivery).where(Delivery.purpose == "panel_invite")).one()
    assert invitation.channel == "email" and invitation.recipient == "jan@example.com"
    assert "http" not in invitation.message.body_text  # staff and the database never hold a working link

    assert dispatch_now()["sent"] == 1
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["jan@example.com"]
    path = link_in(mail_text(mail))
    assert db.session.scalars(db.select(PanelToken)).one().token_hash not in path  # only the hash is stored

    customer_client = app.test_client()
    scanned = customer_client.get(path)  # what a mail scanner sees: a button, the link stays unused
    assert scanned.status_code == 200 and customer.panel_state == "invited"
    assert open_link(customer_client, path).status_code == 302
    assert customer.panel_state == "active"
    assert customer_client.get(panel_path("/")).status_code == 200

    again = open_link(app.test_client(), path)
    assert again.status_code == 410
    assert "This link has expired" in again.get_data(as_text=True)
    assert 'href="/p/serwis/sign-in' in again.get_data(as_text=True)


def test_an_invitation_link_stops_working_after_seven_days(app, customer):
    token = credentials.issue_link(customer, "invite")
    customer.panel_state = "invited"
    db.session.commit()
    row = db.session.scalars(db.select(PanelToken)).one()
    assert timedelta(days=6, hours=23) < row.expires_at - utcnow() <= timedelta(days=7)
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = open_link(app.test_client(), panel_path(f"/s/{token}"))
    assert response.status_code == 410
    assert customer.panel_state == "invited"


def test_an_sms_invitation_carries_the_link(app, staff_client, sms_account, twilio_server, customer):
    staff_client.post(f"/customers/{customer.id}/panel/invite",
                      data={"channel": "sms", "csrf_token": csrf_token(staff_client, f"/customers/{customer.id}")})
    assert dispatch_now()["sent"] == 1
    [sms] = twilio_server.messages
    assert sms["to"] == MOBILE
    assert open_link(app.test_client(), link_in(sms["body"])).status_code == 302


def test_passwordless_sign_in_sends_a_link_and_a_code_and_the_code_signs_in(app, client, mailbox, smtp_server):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    response = client.post(panel_path("/sign-in"), data={"login": "Anna@Example.com",
                                                          "csrf_token": panel_csrf(client, "/sign-in")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in/code")
    dispatch_now()
    text = mail_text(smtp_server.wait_for(1)[0])
    code = re.search(r"\b(\d{6})\b", text).group(1)
    link_in(text)  # the link is there too

    page = client.get(panel_path("/sign-in/code")).get_data(as_text=True)
    assert "anna@example.com" in page.lower()
    wrong = client.post(panel_path("/sign-in/code"), data={"code": "000000" if code != "000000" else "111111",
                                                           "csrf_token": panel_csrf(client, "/sign-in/code")})
    assert "wrong or has expired" in wrong.get_data(as_text=True)
    right = client.post(panel_path("/sign-in/code"), data={"code": code, "csrf_token": panel_csrf(client, "/sign-in/code")})
    assert right.status_code == 302
    assert client.get(panel_path("/")).status_code == 200
    assert customer.panel_last_sign_in_at is not None
    # A code works once.
    other = app.test_client()
    other.post(panel_path("/sign-in"), data={"login": "anna@example.com", "csrf_token": panel_csrf(other, "/sign-in")})
    other.post(panel_path("/sign-in/code"), data={"code": code, "csrf_token": panel_csrf(other, "/sign-in/code")})
    assert other.get(panel_path("/")).status_code == 302


def test_the_sign_in_form_answers_the_same_for_unknown_addresses(client, mailbox):
    panel_customer("Anna Nowak", "anna@example.com")
    answers = []
    for login in ("anna@example.com", "nobody@example.com", "+48 600 999 999"):
        other = client.application.test_client()
        response = other.post(panel_path("/sign-in"), data={"login": login, "csrf_token": panel_csrf(other, "/sign-in")})
        answers.append((response.status_code, response.headers["Location"]))
    assert len(set(answers)) == 1
    assert db.session.scalar(db.select(db.func.count(Delivery.id))) == 1  # only the customer's sign-in goes out


def test_a_sign_in_code_by_sms(app, client, sms_account, twilio_server):
    panel_customer("Anna Nowak", "anna@example.com", phone=MOBILE)
    client.post(panel_path("/sign-in"), data={"login": "600 100 200", "csrf_token": panel_csrf(client, "/sign-in")})
    dispatch_now()
    code = re.search(r"\b(\d{6})\b", twilio_server.messages[0]["body"]).group(1)
    client.post(panel_path("/sign-in/code"), data={"code": code, "csrf_token": panel_csrf(client, "/sign-in/code")})
    assert client.get(panel_path("/")).status_code == 200


@pytest.mark.app_config(LOGIN_LIMIT_PER_ACCOUNT="3 per minute")
def test_sign_in_attempts_are_limited_per_address(client):
    panel_customer("Anna Nowak", "anna@example.com")
    token = panel_csrf(client, "/sign-in")
    codes = [client.post(panel_path("/sign-in"), data={"login": "anna@example.com", "password": "wrong password!",
                                                       "csrf_token": token}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_password_signs_in_and_ends_other_sessions(app, client):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    first, second = app.test_client(), app.test_client()
    sign_in_customer(first, customer)
    sign_in_customer(second, customer)
    response = second.post(panel_path("/account"), data={"password": "a long secret phrase",
                                                         "csrf_token": panel_csrf(second, "/account")})
    assert response.status_code == 302
    assert second.get(panel_path("/")).status_code == 200
    assert first.get(panel_path("/")).status_code == 302  # the other device is signed out

    response = client.post(panel_path("/sign-in"), data={"login": "anna@example.com", "password": "a long secret phrase",
                                                         "csrf_token": panel_csrf(client, "/sign-in")})
    assert response.status_code == 302 and client.get(panel_path("/")).status_code == 200


def test_disabling_panel_access_signs_the_customer_out(app, staff_client):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    panel = app.test_client()
    sign_in_customer(panel, customer)
    staff_client.post(f"/customers/{customer.id}/panel/disable",
                      data={"csrf_token": csrf_token(staff_client, f"/customers/{customer.id}")})
    assert customer.panel_state == "disabled"
    assert panel.get(panel_path("/")).status_code == 302
    token = credentials.issue_link(customer, "login")
    db.session.commit()
    assert open_link(panel, panel_path(f"/s/{token}")).status_code == 410


def test_a_staff_session_is_no_customer_and_a_customer_session_is_no_staff(app, staff):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    thread_id = publish(customer, "Gotowe", author=staff).thread_id
    browser = app.test_client()
    sign_in(browser, staff, remember=True)
    assert browser.get("/").status_code == 200
    for path in ("/", f"/threads/{thread_id}"):
        response = browser.get(panel_path(path))
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]

    browser = app.test_client()
    sign_in_customer(browser, customer)
    assert browser.get(panel_path("/")).status_code == 200
    for path in ("/", f"/threads/{thread_id}", f"/customers/{customer.id}"):
        response = browser.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert browser.get_cookie("ri_panel", path="/p/") is not None  # the panel's cookie never goes to staff pages


def test_a_receipt_access_code_and_phone_digits_open_that_repairs_threads_only(app, client, staff):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    other_repair = create_repair(customer=customer, device="iPad")
    code = credentials.ensure_access_code(repair)
    customer.panel_state = "active"
    db.session.commit()
    mine = publish(customer, "Ekran wymieniony", repair=repair, author=staff)
    other = publish(customer, "iPad czeka na część", repair=other_repair, author=staff)

    token = panel_csrf(client, "/sign-in")
    wrong = client.post(panel_path("/access"), data={"code": code, "digits": "999", "csrf_token": token})
    assert wrong.status_code == 400
    right = client.post(panel_path("/access"), data={"code": code.lower(), "digits": "200", "csrf_token": token})
    assert right.status_code == 302
    assert client.get(panel_path(f"/threads/{mine.thread_id}")).status_code == 200
    assert client.get(panel_path(f"/threads/{other.thread_id}")).status_code == 404
    assert "iPad" not in client.get(panel_path("/")).get_data(as_text=True)


def test_an_old_slug_redirects_to_the_current_one(client):
    shop = Shop.current()
    db.session.add(ShopSlug(slug="stary-serwis"))
    shop.slug = "nowy-serwis"
    db.session.commit()
    response = client.get("/p/stary-serwis/sign-in?next=/p/stary-serwis/")
    assert response.status_code == 301
    assert response.headers["Location"] == "/p/nowy-serwis/sign-in?next=/p/stary-serwis/"
    assert client.get("/p/nowy-serwis/sign-in").status_code == 200
    assert client.get("/p/no-such-shop/sign-in").status_code == 404


def test_panel_link_prints_a_one_time_sign_in_url(app, customer):
    result = app.test_cli_runner().invoke(args=["panel", "link", str(customer.id)])
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith("http://shop.example/p/serwis/s/")
    assert customer.panel_state == "invited"
    client = app.test_client()
    assert open_link(client, url.removeprefix("http://shop.example")).status_code == 302
    assert client.get(panel_path("/")).status_code == 200
    assert app.test_cli_runner().invoke(args=["panel", "link", "999"]).exit_code == 1


def test_panel_pages_are_never_cached(client):
    response = client.get(panel_path("/sign-in"))
    assert response.headers["Cache-Control"] == "no-store"
    css = client.get(panel_path("/brand.css"))
    assert css.mimetype == "text/css" and "--brand: #1f6feb" in css.get_data(as_text=True)


@pytest.mark.app_config(LOGIN_LIMIT_PER_ACCOUNT="100 per minute", LOGIN_LIMIT_PER_IP="100 per minute")
def test_no_more_than_five_sign_in_messages_an_hour_go_to_one_customer(client, mailbox):
    panel_customer("Anna Nowak", "anna@example.com")
    for _ in range(7):
        client.post(panel_path("/sign-in"), data={"login": "anna@example.com", "csrf_token": panel_csrf(client, "/sign-in")})
    assert db.session.scalar(db.select(db.func.count(Delivery.id)).where(Delivery.purpose == "panel_sign_in")) == 5


def test_after_an_expired_notice_link_the_code_sign_in_opens_the_thread(app, client, mailbox, smtp_server, staff):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    thread_id = publish(customer, "Gotowe", author=staff).thread_id
    path = panel_path(f"/sign-in?next=/p/serwis/threads/{thread_id}")
    client.post(path, data={"login": "anna@example.com", "csrf_token": panel_csrf(client, "/sign-in")})
    dispatch_now()
    code = next(re.search(r"\b(\d{6})\b", mail_text(mail)).group(1) for mail in smtp_server.wait_for(2)
                if "code" in mail_text(mail))
    response = client.post(panel_path("/sign-in/code"), data={"code": code, "csrf_token": panel_csrf(client, "/sign-in/code")})
    assert response.headers["Location"] == f"/p/serwis/threads/{thread_id}"


def test_an_unknown_panel_address_shows_the_panels_own_not_found_page(client):
    response = client.get(panel_path("/no-such-page"))
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert 'href="' + panel_path("/") in html  # "Back to my messages", in the panel's frame
    assert "/login" not in html and "/settings" not in html  # nothing of the staff's pages


# --- holes an adversarial review found -----------------------------------------------------------------------


def _scoped_setup(staff):
    """A customer with two repairs (a file in the other one's thread) and a thread about no repair."""
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    other_repair = create_repair(customer=customer, device="iPad")
    code = credentials.ensure_access_code(repair)
    customer.panel_state = "active"
    db.session.commit()
    mine = publish(customer, "Ekran wymieniony", repair=repair, author=staff)
    invoice = store(io.BytesIO(b"%PDF-1.4\n% faktura\n"), "faktura.pdf")
    other = publish(customer, "Faktura za iPada", repair=other_repair, author=staff, attachments=[invoice])
    general = publish(customer, "Zapraszamy po odbiór kabli", author=staff)
    return customer, repair, other_repair, code, mine, other, general


def _access_code_sign_in(client, code: str, digits: str = MOBILE[-3:]):
    return client.post(panel_path("/access"), data={"code": code, "digits": digits,
                                                    "csrf_token": panel_csrf(client, "/sign-in")})


def test_an_access_code_session_reads_and_writes_only_its_repair_and_cannot_set_a_password(app, client, staff):
    customer, repair, other_repair, code, mine, other, general = _scoped_setup(staff)
    real = app.test_client()
    sign_in_customer(real, customer)

    assert _access_code_sign_in(client, code).status_code == 302
    assert client.get(panel_path(f"/threads/{mine.thread_id}")).status_code == 200
    attachment_id = other.attachments[0].id
    for path in (f"/threads/{other.thread_id}", f"/threads/{general.thread_id}", f"/attachments/{attachment_id}",
                 f"/new?repair_id={other_repair.id}"):
        assert client.get(panel_path(path)).status_code == 404, path
    inbox = client.get(panel_path("/")).get_data(as_text=True)
    assert "iPad" not in inbox and "kabli" not in inbox
    csrf = panel_csrf(client, "/")
    assert client.post(panel_path(f"/threads/{other.thread_id}/reply"),
                       data={"body": "Podmiana", "csrf_token": csrf}).status_code == 404
    assert client.post(panel_path(f"/new?repair_id={other_repair.id}"),
                       data={"body": "Podmiana", "csrf_token": csrf}).status_code == 404

    # The receipt is no proof of owning the account: no password, no way out of the repair.
    assert "link or code" in client.get(panel_path("/account")).get_data(as_text=True)
    response = client.post(panel_path("/account"), data={"password": "a long secret phrase", "csrf_token": csrf})
    assert response.status_code == 403
    db.session.expire_all()
    assert customer.panel_password_hash is None
    assert client.get(panel_path(f"/threads/{other.thread_id}")).status_code == 404
    assert real.get(panel_path(f"/threads/{other.thread_id}")).status_code == 200  # the customer stays signed in
    # The sign-in page stays open to a full sign-in.
    assert client.get(panel_path("/sign-in")).status_code == 200


def test_changing_a_panel_password_takes_the_current_one(app, client):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    sign_in_customer(client, customer)
    assert client.post(panel_path("/account"), data={"password": "a long secret phrase",
                                                      "csrf_token": panel_csrf(client, "/account")}).status_code == 302
    page = client.get(panel_path("/account")).get_data(as_text=True)
    assert 'name="current_password"' in page
    refused = client.post(panel_path("/account"), data={"password": "another long phrase", "current_password": "guess",
                                                         "csrf_token": panel_csrf(client, "/account")})
    assert refused.status_code == 200 and "current password is wrong" in refused.get_data(as_text=True)
    assert credentials.check_password("anna@example.com", "a long secret phrase") is not None
    changed = client.post(panel_path("/account"), data={"password": "another long phrase",
                                                        "current_password": "a long secret phrase",
                                                        "csrf_token": panel_csrf(client, "/account")})
    assert changed.status_code == 302 and client.get(panel_path("/")).status_code == 200
    assert credentials.check_password("anna@example.com", "another long phrase") is not None


def test_an_access_code_never_opens_a_disabled_panel_and_opens_one_never_activated(app, client, staff):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    code = credentials.ensure_access_code(repair)
    customer.panel_state = "disabled"
    db.session.commit()
    assert _access_code_sign_in(client, code).status_code == 400
    assert customer.panel_state == "disabled"

    customer.panel_state = "none"
    db.session.commit()
    assert _access_code_sign_in(client, code).status_code == 302
    assert customer.panel_state == "active" and client.get(panel_path("/")).status_code == 200


def test_the_receipt_does_not_print_the_phone_number_next_to_the_access_code(app):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    code = credentials.ensure_access_code(repair)
    db.session.commit()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(acceptance_receipt(repair, Shop.current()))).pages)
    assert code in text and "Jan Kowalski" in text
    digits = re.sub(r"\D", "", text)
    assert MOBILE[-9:] not in digits and MOBILE[-3:] not in digits


def _ask_for_code(client, login: str = "anna@example.com"):
    return client.post(panel_path("/sign-in"), data={"login": login, "csrf_token": panel_csrf(client, "/sign-in")})


def _type_code(client, code: str, **extra):
    return client.post(panel_path("/sign-in/code"), data={"code": code, "csrf_token": panel_csrf(client, "/sign-in/code"),
                                                          **extra})


@pytest.mark.app_config(LOGIN_LIMIT_PER_ACCOUNT="3 per minute", LOGIN_LIMIT_PER_IP="100 per minute")
def test_the_code_page_limit_cannot_be_reset_by_a_made_up_login_field(client):
    panel_customer("Anna Nowak", "anna@example.com")
    _ask_for_code(client)
    answers = [_type_code(client, "000000", login=f"x{n}@example.com").status_code for n in range(4)]
    assert answers == [200, 200, 200, 429]


@pytest.mark.app_config(LOGIN_LIMIT_PER_ACCOUNT="3 per minute", LOGIN_LIMIT_PER_IP="100 per minute")
def test_every_spelling_of_a_phone_number_shares_one_sign_in_limit(client):
    panel_customer("Anna Nowak", "anna@example.com", phone=MOBILE)
    token = panel_csrf(client, "/sign-in")
    answers = [client.post(panel_path("/sign-in"), data={"login": login, "password": "wrong password!",
                                                         "csrf_token": token}).status_code
               for login in ("600 100 200", "+48600100200", "0048 600-100-200", "(+48) 600100200")]
    assert answers == [200, 200, 200, 429]


def test_only_the_newest_sign_in_code_works(app, client):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    _ask_for_code(client)
    first = credentials.issue_code(customer)
    second = credentials.issue_code(customer)
    db.session.commit()
    if first != second:
        assert "wrong or has expired" in _type_code(client, first).get_data(as_text=True)
    assert _type_code(client, second).status_code == 302
    assert client.get(panel_path("/")).status_code == 200


@pytest.mark.app_config(LOGIN_LIMIT_PER_ACCOUNT="100 per minute", LOGIN_LIMIT_PER_IP="100 per minute")
def test_a_sign_in_code_dies_after_five_wrong_tries(app, client):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    _ask_for_code(client)
    code = credentials.issue_code(customer)
    db.session.commit()
    wrong = f"{(int(code) + 1) % 10 ** credentials.CODE_DIGITS:06d}"
    for _ in range(5):
        assert "wrong or has expired" in _type_code(client, wrong).get_data(as_text=True)
    assert "wrong or has expired" in _type_code(client, code).get_data(as_text=True)
    assert client.get(panel_path("/")).status_code == 302


def test_the_right_code_on_the_last_try_still_signs_in(app, client):
    customer = panel_customer("Anna Nowak", "anna@example.com")
    _ask_for_code(client)
    code = credentials.issue_code(customer)
    db.session.commit()
    wrong = f"{(int(code) + 1) % 10 ** credentials.CODE_DIGITS:06d}"
    for _ in range(credentials.CODE_TRIES - 1):
        _type_code(client, wrong)
    assert _type_code(client, code).status_code == 302


def _copy_cookie(source, target, name: str, path: str = "/") -> None:
    cookie = source.get_cookie(name, path=path)
    assert cookie is not None, name
    target.set_cookie(name, cookie.value, path=path)


def test_signing_out_of_the_panel_ends_the_session_also_for_a_copied_cookie(app, client, staff):
    customer, repair, other_repair, code, mine, other, general = _scoped_setup(staff)
    for how in ("link", "access code"):
        browser, thief = app.test_client(), app.test_client()
        if how == "link":
            sign_in_customer(browser, customer)
        else:
            assert _access_code_sign_in(browser, code).status_code == 302
        _copy_cookie(browser, thief, "ri_panel", path="/p/")
        assert thief.get(panel_path("/")).status_code == 200
        browser.post(panel_path("/sign-out"), data={"csrf_token": panel_csrf(browser, "/")})
        db.session.rollback()  # only what the sign-out committed counts (other processes see nothing else)
        assert browser.get(panel_path("/")).status_code == 302
        assert thief.get(panel_path("/")).status_code == 302, how
    other_device = app.test_client()
    sign_in_customer(other_device, customer)
    assert other_device.get(panel_path("/")).status_code == 200  # signing out ends that session only


def test_a_wrong_panel_password_for_an_unknown_address_is_checked_all_the_same(app, client, monkeypatch):
    calls = count_password_checks(monkeypatch)
    panel_customer("Anna Nowak", "anna@example.com")  # no password set
    token = panel_csrf(client, "/sign-in")
    for login in ("nobody@example.com", "anna@example.com", "+48 600 999 999"):
        before = len(calls)
        response = client.post(panel_path("/sign-in"), data={"login": login, "password": "wrong password!",
                                                             "csrf_token": token})
        assert response.status_code == 200
        assert len(calls) == before + 1, login


@pytest.mark.app_config(LOGIN_LIMIT_PER_ACCOUNT="3 per minute", LOGIN_LIMIT_PER_IP="100 per minute")
def test_phone_digits_for_one_access_code_are_limited_however_the_code_is_typed(app, client, staff):
    customer = create_customer(name="Jan Kowalski", email="jan@example.com", phone=MOBILE)
    repair = create_repair(customer=customer, device="iPhone 12")
    code = credentials.ensure_access_code(repair)
    db.session.commit()
    answers = [_access_code_sign_in(app.test_client(), spelling, digits).status_code
               for spelling, digits in ((code, "111"), (code.lower(), "222"), (f"{code[:4]} {code[4:]}", "333"),
                                        (code, "200"))]
    assert answers == [400, 400, 400, 429]
