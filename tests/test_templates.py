"""Message templates: every tag renders, hostile or broken templates are refused at save with the line, a
marketing template needs the customer's consent, and the acceptance receipt prints Polish letters."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest

from app.attachments import path_for, store
from app.customers import create_customer
from app.errors import ValidationFailed
from app.extensions import db
from app.messaging.compose import compose
from app.messaging.receipt import acceptance_receipt
from app.messaging.templates import TAGS, render, save_template, tag_values
from app.models import Attachment, Message, Shop
from app.repairs import create_repair

MOBILE = "+48600100200"
EVERY_TAG = "\n".join(f"{name}=[{{{{ {name} }}}}]" for name in TAGS)


# Not the shared `customer`: Polish letters in the name and e-mail, for the placeholders filled in.
@pytest.fixture
def customer(app):
    customer = create_customer(name="Łucja Żółkiewska", email="lucja@example.com", phone=MOBILE)
    db.session.commit()
    return customer


# Not the shared `repair`: a price and a pickup date, for the placeholders filled in.
@pytest.fixture
def repair(customer):
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty wyświetlacz",
                           price_estimate="1234,50", pickup_date="2026-03-05")
    db.session.commit()
    return repair


@pytest.fixture
def shop(app):
    shop = Shop.current()
    shop.name, shop.address, shop.phone = "Serwis Łatka", "ul. Długa 1, Gdańsk", "+48 58 123 45 67"
    shop.opening_hours = "pn-pt 9-17"
    db.session.commit()
    return shop


def make_template(body: str, *, subject: str = "", channels=("email",), marketing=False, kind="message",
                  language="pl", name="Gotowa do odbioru", **extra):
    template = save_template(None, actor="test", name=name, channels=list(channels), subject=subject, body=body,
                             language=language, marketing=marketing, kind=kind, **extra)
    db.session.commit()
    return template


@pytest.mark.shop_locale("pl")
def test_every_tag_renders_the_repair_customer_and_shop_in_the_shops_locale(shop, customer, repair, sms_account):
    template = make_template(EVERY_TAG, subject="Naprawa {{ repair_number }}")
    rendered = render(template, shop=shop, customer=customer, repair=repair)
    values = dict(line.split("=", 1) for line in rendered.body.splitlines())
    assert values["customer_first_name"] == "[Łucja]"
    assert values["customer_name"] == "[Łucja Żółkiewska]"
    assert values["repair_number"] == f"[{repair.number}]"
    assert values["device"] == "[iPhone 12]"
    assert values["fault"] == "[Pęknięty wyświetlacz]"
    assert values["status"] == f"[{repair.status.name}]"
    assert values["price_estimate"] == "[1\xa0234,50\xa0zł]"  # Polish grouping, decimal comma, currency after
    assert values["pickup_date"] == "[5.03.2026]"  # as every page, mail and SMS writes a date
    assert values["shop_name"] == "[Serwis Łatka]"
    assert values["shop_address"] == "[ul. Długa 1, Gdańsk]"
    assert values["shop_phone"] == "[+48 58 123 45 67]"
    assert values["opening_hours"] == "[pn-pt 9-17]"
    assert values["panel_link"].startswith("[http") and f"/p/{shop.slug}/sign-in" in values["panel_link"]
    assert values["sms_reply_hint"] not in ("[]", "")
    assert rendered.subject == f"Naprawa {repair.number}"


def test_missing_values_render_empty_and_if_blocks_choose_the_text(shop, customer):
    template = make_template("A{{ price_estimate }}B{% if pickup_date %}odbiór {{ pickup_date }}"
                             "{% else %}termin podamy{% endif %}{% if not device %}!{% endif %}")
    assert render(template, shop=shop, customer=customer, repair=None).body == "ABtermin podamy!"
    values = tag_values(shop, None, None, "pl")
    assert values["customer_name"] == "" and values["sms_reply_hint"] == ""  # no SMS account: no reply hint


@pytest.mark.parametrize("body, line", [
    ("{{ ''.__class__ }}", 1),
    ("Dzień dobry\n{{ customer_name.__class__.__mro__ }}", 2),
    ("{% for x in range(10**9) %}x{% endfor %}", 1),
    ("{{ 'a' * 10**9 }}", 1),
    ("{{ customer_name|upper }}", 1),
    ("{{ lipsum() }}", 1),
    ("{% set x = 1 %}", 1),
    ("{% if customer_name == 'x' %}{% endif %}", 1),
    ("{{ config }}", 1),
    ("one\ntwo\n{{ repair_numer }}", 3),
    ("{{ repair_number", 1),
    ("ok\n{% if device %}never closed", 2),
])
def test_hostile_broken_and_unknown_templates_are_refused_at_save_naming_the_line(app, body, line):
    with pytest.raises(ValidationFailed) as refused:
        make_template(body)
    assert f"Line {line}:" in refused.value.fields["body"]
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)) == 0


def test_thousands_of_nested_blocks_are_refused_not_crashed_on(app):
    with pytest.raises(ValidationFailed) as refused:
        make_template("{%if device%}" * 850 + "x" + "{%endif%}" * 850)  # within the 20,000 characters
    assert "nested too deeply" in refused.value.fields["body"]
    with pytest.raises(ValidationFailed):
        make_template("{{ " + "(" * 9000 + "device" + ")" * 9000 + " }}")


def test_a_broken_subject_is_refused_on_the_subject(app):
    with pytest.raises(ValidationFailed) as refused:
        make_template("Treść", subject="{{ shop_name.upper() }}")
    assert set(refused.value.fields) == {"subject"}


def test_one_reply_header_per_language(app):
    make_template("Dzień dobry {{ customer_first_name }},", kind="header", channels=(), name="Powitanie")
    make_template("Hello {{ customer_first_name }},", kind="header", channels=(), language="en", name="Greeting")
    with pytest.raises(ValidationFailed) as refused:
        make_template("Witam,", kind="header", channels=(), name="Drugie powitanie")
    assert "Powitanie" in refused.value.fields["kind"]


def test_a_marketing_template_is_refused_for_a_customer_without_consent(shop, customer, mailbox):
    template = make_template("Promocja na baterie!", marketing=True, name="Promocja")
    with pytest.raises(ValidationFailed) as refused:
        compose(customer=customer, channels=["email"], body="Promocja na baterie!", template=template)
    assert "marketing" in refused.value.fields["template_id"] and customer.name in refused.value.fields["template_id"]
    customer.marketing_consent = True
    assert compose(customer=customer, channels=["email"], body="Promocja", template=template).meta["template_id"]


def test_template_files_and_the_receipt_go_with_the_message(app, shop, customer, repair, mailbox):
    leaflet = store(io.BytesIO(b"%PDF-1.4\n% cennik\n"), "cennik.pdf")
    template = make_template("W załączniku potwierdzenie.", files=[leaflet], receipt=True)
    assert {a.kind for a in template.attachments} == {"file", "document"}

    message = compose(customer=customer, channels=["email"], body="W załączniku potwierdzenie.", repair=repair,
                      template=template)
    names = sorted(a.filename for a in message.attachments)
    assert names == ["cennik.pdf", f"receipt-{repair.number}.pdf"]
    receipt = next(a for a in message.attachments if a.filename.startswith("receipt"))
    assert receipt.content_type == "application/pdf" and path_for(receipt.sha256).exists()

    with pytest.raises(ValidationFailed) as refused:  # the receipt needs a repair
        compose(customer=customer, channels=["email"], body="Bez naprawy", template=template)
    assert "receipt" in refused.value.fields["template_id"]
    assert db.session.scalar(db.select(db.func.count(Attachment.id))) == 2


@pytest.mark.shop_locale("pl")
def test_the_acceptance_receipt_embeds_a_unicode_font_and_names_the_repair(shop, customer, repair):
    pdf = acceptance_receipt(repair, shop)
    assert pdf.startswith(b"%PDF-")
    assert b"DejaVu" in pdf  # the embedded TrueType font that has ł, ż, ę (fpdf2's core fonts refuse them)


def test_price_and_date_tags_follow_an_english_shop(shop, customer, repair):
    shop.locale = "en"
    values = tag_values(shop, customer, repair, "en")
    assert values["price_estimate"] == "PLN1,234.50"
    assert values["pickup_date"] == "3/5/2026"
    assert repair.price_estimate == Decimal("1234.50") and repair.pickup_date == date(2026, 3, 5)
