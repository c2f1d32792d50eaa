"""The demo shop (`flask demo seed`): a Kraków repair shop with staff, customers, repairs and conversations."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from sqlalchemy import select

from .customers import add_contact_person, create_customer
from .extensions import db
from .inbound.sms import IncomingSms, receive_sms
from .inbound.trusted import add_trusted_domain
from .mail_ids import reply_address
from .accounts.mailboxes import create_mailbox
from .messaging.compose import compose
from .inbound.record import record_mail
from .messaging.notifications import save_rules
from .messaging.reminders import switch_reminder
from .messaging.starter_templates import PICKUP_REMINDER_DAYS, add_starter_templates
from .messaging.templates import save_template
from .models import (
    Customer, Delivery, Mailbox, Message, Repair, RepairStatus, Shop, Thread, User, preview_of, utcnow,
)
from .models.templates import MessageTemplate, StatusReminder
from .outbox import dispatch_pass
from .panel.credentials import set_panel_state
from .repairs import create_repair, create_ticket, repair_log
from .shop.settings import update_shop
from .shop.users import create_user
from .shop.workflow import add_queue

OWNER_EMAIL = "anna@naprawaplus.example"
STAFF_EMAIL = "piotr@naprawaplus.example"
ACTOR = "cli"  # the audit trail shows the seed as a command, not as something Anna did

SHOP = {
    "name": "Serwis Naprawa Plus",
    "slug": "naprawaplus",
    "address": "ul. Długa 12\n31-146 Kraków",
    "phone": "+48 12 345 67 89",
    "opening_week": [["09:00", "18:00"]] * 5 + [["10:00", "14:00"], None],  # the text is made from these
}

# name, e-mail, phone, informational SMS, marketing consent
CUSTOMERS = [
    ("Katarzyna Wiśniewska", "k.wisniewska@example.com", "+48 601 234 567", True, False),
    ("Tomasz Zieliński", "tomasz.zielinski@example.com", "+48 512 345 678", True, True),
    ("Magdalena Wójcik", "magda.wojcik@example.net", "+48 698 765 432", False, False),
    ("Krzysztof Kamiński", None, "+48 723 456 789", True, False),
    ("Agnieszka Lewandowska", "agnieszka.lewandowska@example.org", "+48 884 123 456", True, False),
    ("Marcin Dąbrowski", "marcin.dabrowski@example.com", "+48 531 987 654", True, False),
    ("Ewa Szymańska", "ewa.szymanska@example.com", "+48 662 111 222", True, False),
    ("Paweł Woźniak", "pawel.wozniak@example.net", "+48 790 333 444", True, False),
]

# The demo company's contact people: name, e-mail, phone.
COMPANY_CONTACTS = [
    ("Joanna Mazur", "j.mazur@saldo.example.pl", "+48 605 400 300"),
    ("Robert Krawczyk", "r.krawczyk@saldo.example.pl", None),
]

# customer index, device, fault, status, price estimate, days since it came in
REPAIRS = [
    (0, "iPhone 12", "Pęknięty wyświetlacz, dotyk nie działa", "w naprawie", "450.00", 3),
    (1, "Lenovo ThinkPad T14", "Nie ładuje się, dioda zasilania nie świeci", "diagnoza", None, 1),
    # Ready for 11 days: past the 7 opening days of the reminder, so Settings → Notifications → Reminders shows it.
    (2, "Samsung Galaxy S21", "Bateria szybko się rozładowuje, telefon mocno się nagrzewa", "gotowa do odbioru",
     "220.00", 11),
    (3, "Rower Kross Hexagon 5.0",
     "Przegląd po sezonie: skrzypi suport, przerzutki nie wchodzą na najmniejszą zębatkę",
     "przyjęta", "180.00", 0),
    (4, "Pralka Bosch Serie 4 WAN28", "Nie odpompowuje wody, na wyświetlaczu błąd E18", "czeka na części",
     "380.00", 8),
    (5, "MacBook Air M1", "Zalana klawiatura, część klawiszy nie reaguje", "diagnoza", None, 2),
    (6, "Xiaomi Redmi Note 10", "Luźne gniazdo ładowania, kabel wypada", "wydana", "150.00", 16),
    (7, "Dell XPS 13", "Wymiana dysku na SSD 1 TB i przeniesienie danych", "gotowa do odbioru", "520.00", 4),
    (0, "iPad 9. generacji", "Nie działa przycisk Home", "przyjęta", None, 0),
    (1, "Motorola moto g54", "Nie włącza się po upadku na beton", "czeka na części", "290.00", 5),
]

SUPPLIER_DOMAIN = "hurtownia-gsm.example"  # a trusted domain: its mail starts threads without a customer

IPHONE_CONFIRMATION = ("Dzień dobry, potwierdzamy przyjęcie telefonu iPhone 12 (zlecenie {number}). Wymiana "
                       "wyświetlacza potrwa około 3 dni roboczych, koszt 450 zł.\n\n"
                       "Pozdrawiamy\nPiotr Nowak, Serwis Naprawa Plus")
IPHONE_QUESTION = ("Dzień dobry, czy telefon będzie gotowy do piątku? W sobotę rano wyjeżdżam i bardzo go "
                   "potrzebuję.\n\nPozdrawiam\nKatarzyna Wiśniewska")
STRANGER_QUESTION = ("Dzień dobry,\n\nmój ekspres DeLonghi Magnifica S przestał mielić kawę, młynek tylko buczy. "
                     "Ile mniej więcej kosztowałaby naprawa i jak długo trwa?\n\nZ poważaniem\nJan Malinowski")
SUPPLIER_CONFIRMATION = ("Dzień dobry,\n\npotwierdzamy zamówienie ZAM/2026/1187:\n"
                         "- wyświetlacz iPhone 12 OLED, 1 szt.\n- płyta główna moto g54 128 GB, 1 szt.\n\n"
                         "Wysyłka jutro kurierem DPD.\n\nDział zamówień\nHurtownia Części GSM")


@dataclass
class Entry:
    """One message of a demo thread: who, how, what, and how many hours ago."""

    direction: str  # in | out | internal
    channel: str
    text: str
    hours_ago: float
    author: User | None = None
    automatic: bool = False


def _company() -> None:
    """A company customer: its NIP, address and the contact people whose mail threads to it."""
    company = create_customer(name="Biuro Rachunkowe Saldo sp. z o.o.", kind="company", nip="PL 525-000-12-79",
                              email="biuro@saldo.example.pl", address="ul. Marszałkowska 10/4\n00-590 Warszawa",
                              actor=ACTOR, source="cli")
    for name, email, phone in COMPANY_CONTACTS:
        add_contact_person(company, name=name, email=email, phone=phone, actor=ACTOR, source="cli")


def seed(password: str) -> None:
    """Fill an empty database with the demo shop; both staff accounts get `password`. Commits (see
    _panel_conversation)."""
    update_shop(Shop.current(), actor=ACTOR, **SHOP)
    anna = create_user(email=OWNER_EMAIL, name="Anna Kowalska", role="owner", password=password, actor=ACTOR)
    piotr = create_user(email=STAFF_EMAIL, name="Piotr Nowak", role="staff", password=password, actor=ACTOR)
    front_desk, workshop = add_queue("Lada", actor=ACTOR), add_queue("Warsztat", actor=ACTOR)

    customers = [
        create_customer(name=name, email=email, phone=phone, sms_informational=sms, marketing_consent=marketing,
                        actor=ACTOR, source="cli")
        for name, email, phone, sms, marketing in CUSTOMERS
    ]
    repairs = [_repair(customers[index], *rest) for index, *rest in REPAIRS]
    _company()

    complaint = create_ticket(
        customer=customers[6], subject="Reklamacja: gniazdo ładowania znowu luźne", queue=front_desk,
        category="reklamacja", priority="high", actor=ACTOR, source="cli",
        description=f"Dotyczy naprawy {repairs[6].number}. Po dwóch tygodniach kabel znowu wypada z gniazda.",
    )
    complaint.created_at = utcnow() - timedelta(hours=26)  # when the customer wrote (the thread below)
    create_ticket(
        customer=customers[4], subject="Wycena naprawy zmywarki Bosch", queue=workshop, category="wycena",
        actor=ACTOR, source="cli",
        description="Zmywarka nie grzeje wody. Klientka pyta, czy opłaca się naprawa, czy kupić nową.",
    )

    mailbox = _demo_mailbox()
    add_trusted_domain(SUPPLIER_DOMAIN, actor=anna)
    iphone, dell = repairs[0], repairs[7]
    # The customer's e-mail reply (quoting ours) is still unanswered: the inbox shows it as unread.
    iphone_thread = _thread(customers[0], f"Naprawa {iphone.device}", repair=iphone, status="waiting_customer",
                            assignee=piotr, entries=[Entry("out", "email", IPHONE_CONFIRMATION.format(
                                number=iphone.number), 70, author=piotr)])
    db.session.flush()  # the thread's reply token
    _mail(mailbox, 1, customers[0], reply_address(mailbox.email, iphone_thread.token), f"Re: {iphone_thread.subject}",
          IPHONE_QUESTION + _quoted(iphone_thread.messages[0]))
    _thread(customers[7], f"{dell.device} gotowy do odbioru", repair=dell, status="open", entries=[
        Entry("out", "sms", f"Dzień dobry, laptop Dell XPS 13 (zlecenie {dell.number}) jest gotowy do odbioru. "
              "Zapraszamy pn–pt 9–18, sob 10–14. Serwis Naprawa Plus", 5, automatic=True),
        Entry("in", "sms", "Dziękuję, odbiorę jutro po pracy, koło 17.", 4),
    ])
    warranty_note = f"To nasza naprawa {repairs[6].number} sprzed dwóch tygodni, obejmuje ją gwarancja."
    _thread(customers[6], complaint.subject, ticket=complaint, queue_id=front_desk.id, assignee=anna,
            status="waiting_customer", entries=[
                Entry("in", "email", "Dzień dobry, gniazdo ładowania po naprawie znowu jest luźne i kabel wypada. "
                      "Co mogę zrobić?\n\nEwa Szymańska", 26),
                Entry("internal", "", warranty_note, 25, author=anna),
                Entry("out", "email", "Dzień dobry, przepraszamy za kłopot. Proszę przynieść telefon w godzinach "
                      "otwarcia, sprawdzimy go od ręki w ramach gwarancji.\n\n"
                      "Anna Kowalska, Serwis Naprawa Plus", 24, author=anna),
            ])
    _closed_threads(customers, repairs, anna, piotr)

    # Mail the shop cannot tie to anyone waits on the held list; a trusted supplier's starts a thread.
    _mail(mailbox, 2, None, mailbox.email, "Wycena naprawy ekspresu DeLonghi", STRANGER_QUESTION,
          sender=("Jan Malinowski", "jan.malinowski@example.com"), hours_ago=3)
    _mail(mailbox, 3, None, mailbox.email, "Potwierdzenie zamówienia ZAM/2026/1187", SUPPLIER_CONFIRMATION,
          sender=("Hurtownia Części GSM", f"zamowienia@{SUPPLIER_DOMAIN}"), hours_ago=6)
    with force_locale(Shop.current().locale):  # the held reason is written for the shop, as the webhook does
        receive_sms(IncomingSms(sid="SMdemo0000000000000000000000000001", sender="+48605777888", to=SHOP["phone"],
                                body="Dzień dobry, czy naprawiacie hulajnogi elektryczne Xiaomi? "
                                     "Nie włącza się po deszczu."))
    db.session.flush()
    _templates()
    _panel_conversation(customers[1], repairs[9], piotr)


# name, channels, subject, body, kind, marketing
TEMPLATES = [
    ("Powitanie", [], "", "Dzień dobry {{ customer_first_name_vocative }},", "header", False),
    ("Podpis", [], "", "Pozdrawiamy,\n{{ shop_name }}\n{{ shop_address }} · tel. {{ shop_phone }}\n{{ opening_hours }}",
     "footer", False),
    ("Przegląd sezonowy", ["email"], "Przegląd przed sezonem -20%",
     "Dzień dobry {{ customer_first_name_vocative }}, do końca miesiąca przegląd roweru lub hulajnogi taniej o 20%. "
     "Zapraszamy: {{ shop_address }}.", "message", True),
]

# "Gotowa do odbioru" in Ukrainian (the ready-made templates bring Polish and English): the notification picks
# the customer's version.
READY_VERSIONS = [
    ("uk", "{{ device }} готовий до видачі",
     "Вітаємо, {{ customer_first_name }}! Ваш {{ device }} (замовлення {{ repair_number }}) готовий до видачі. "
     "{{ shop_name }}, {{ opening_hours }}"),
]


def _templates() -> None:
    """The ready-made texts (a fresh shop has them already), the reply header and footer, a marketing text, an
    SMS + panel notice switched on when a repair is ready for pickup, and the ready-made reminder switched on for a
    repair still waiting for pickup after 7 opening days."""
    add_starter_templates(language="pl", actor=ACTOR)
    for name, channels, subject, body, kind, marketing in TEMPLATES:
        save_template(None, actor=ACTOR, name=name, channels=channels, subject=subject, body=body, language="pl",
                      kind=kind, marketing=marketing)
    ready_text = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == "Gotowa do odbioru",
                                                                 MessageTemplate.language == "pl"))
    for language, subject, body in READY_VERSIONS:  # the same message for customers who read Ukrainian
        save_template(None, actor=ACTOR, name="Gotowa do odbioru", channels=["email", "sms", "portal"],
                      subject=subject, body=body, language=language, kind="message")
    ready = next(s for s in RepairStatus.ordered() if s.name == "gotowa do odbioru")
    save_rules({ready.id: (ready_text.id, ["sms", "portal"])}, actor=ACTOR)
    pickup = db.session.scalar(select(StatusReminder).where(StatusReminder.status_id == ready.id,
                                                            StatusReminder.days == PICKUP_REMINDER_DAYS))
    pickup.channels = ["sms", "portal"]  # as the notice: the demo's mailbox sends nothing
    switch_reminder(pickup, True, actor=ACTOR)


def _demo_mailbox() -> Mailbox:
    """The shop's mailbox, with example servers; inactive, so nothing polls or sends through servers that do not
    exist (and the owner gets no "mailbox broken" banner). The demo mail below is recorded as if it came from it."""
    mailbox = create_mailbox(name="Serwis (demo)", email="serwis@naprawaplus.example", display_name=SHOP["name"],
                             smtp_host="smtp.naprawaplus.example", smtp_port=587, smtp_security="starttls",
                             username="serwis@naprawaplus.example", password="demo",
                             imap_host="imap.naprawaplus.example", actor=ACTOR)
    mailbox.active = False
    return mailbox


def _mail(mailbox: Mailbox, uid: int, customer: Customer | None, to: str, subject: str, body: str, *,
          sender: tuple[str, str] | None = None, hours_ago: float = 0.8) -> None:
    """A mail as a customer's mail program sends it, received by `mailbox` like a fetched one."""
    name, address = sender or (customer.name, customer.email)
    mail = EmailMessage()
    mail["From"] = f"{name} <{address}>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(utcnow() - timedelta(hours=hours_ago))
    mail["Message-ID"] = make_msgid(domain=address.rpartition("@")[2])
    mail.set_content(body)
    outcome = record_mail(mailbox, mail.as_bytes(), uidvalidity=1, uid=uid)
    at = outcome.item.received_at = utcnow() - timedelta(hours=hours_ago)  # fetched soon after it was sent
    if outcome.thread is not None:
        thread, message = outcome.thread, db.session.get(Message, outcome.item.message_id)
        message.created_at = thread.last_activity_at = thread.last_inbound_at = at
        thread.created_at = min(thread.created_at, at)


def _quoted(message: Message) -> str:
    """Our message quoted below a reply, the way Gmail and Thunderbird do it."""
    when = message.created_at.astimezone(ZoneInfo(Shop.current().timezone)).strftime("%d.%m.%Y o %H:%M")
    lines = "\n".join(f"> {line}" if line else ">" for line in message.body_text.splitlines())
    return f"\n\nW dniu {when} Serwis Naprawa Plus <serwis@naprawaplus.example> napisał(a):\n{lines}\n"


def _closed_threads(customers: list[Customer], repairs: list[Repair], anna: User, piotr: User) -> None:
    """Conversations answered and closed in the last days: the statistics page has something to count."""
    samsung, macbook, xiaomi, lenovo, washer = repairs[2], repairs[5], repairs[6], repairs[1], repairs[4]
    _thread(customers[4], f"Naprawa {washer.device}", repair=washer, status="closed", assignee=anna,
            closed_hours_ago=160, entries=[
                Entry("in", "email", "Dzień dobry, czy naprawa pralki się opłaca? Ma sześć lat.\n\n"
                      "Agnieszka Lewandowska", 190),
                Entry("out", "email", "Dzień dobry, błąd E18 to zwykle zatkana pompa odpływowa. Wymiana pompy to "
                      "380 zł z robocizną, więc naprawa się opłaca.\n\nAnna Kowalska, Serwis Naprawa Plus", 186,
                      author=anna),
                Entry("in", "email", "Dobrze, proszę zamówić pompę.\n\nAgnieszka Lewandowska", 170),
            ])
    _thread(customers[2], f"Naprawa {samsung.device}", repair=samsung, status="closed", assignee=piotr,
            closed_hours_ago=20, entries=[
                Entry("in", "sms", "Czy mogę odebrać telefon w sobotę przed 12?", 27),
                Entry("out", "sms", "Tak, zapraszamy w sobotę 10–14. Serwis Naprawa Plus", 26.5, author=piotr),
                Entry("in", "sms", "Super, dziękuję!", 26),
            ])
    _thread(customers[5], f"Naprawa {macbook.device}", repair=macbook, status="closed", assignee=anna,
            closed_hours_ago=40, entries=[
                Entry("in", "email", "Dzień dobry, czy dane z dysku będą bezpieczne? Mam tam zdjęcia z wakacji."
                      "\n\nMarcin Dąbrowski", 47),
                Entry("out", "email", "Dzień dobry, naprawa klawiatury nie dotyka dysku, dane zostaną na miejscu. "
                      "Na wszelki wypadek warto mieć kopię.\n\nAnna Kowalska, Serwis Naprawa Plus", 45, author=anna),
            ])
    _thread(customers[6], f"Naprawa {xiaomi.device}", repair=xiaomi, status="closed", assignee=piotr,
            closed_hours_ago=75, entries=[
                Entry("in", "email", "Dzień dobry, ile kosztuje wymiana gniazda ładowania?\n\nEwa Szymańska", 90),
                Entry("out", "email", "Dzień dobry, wymiana gniazda w Redmi Note 10 to 150 zł, około godziny.\n\n"
                      "Piotr Nowak, Serwis Naprawa Plus", 86, author=piotr),
            ])
    _thread(customers[1], f"Naprawa {lenovo.device}", repair=lenovo, status="waiting_customer", assignee=piotr,
            entries=[
                Entry("in", "email", "Dzień dobry, kiedy będzie wiadomo, co z laptopem?\n\nTomasz Zieliński", 9),
                Entry("out", "email", "Dzień dobry, najpewniej uszkodzone gniazdo zasilania. Pełną diagnozę "
                      "i wycenę wyślemy jutro do południa.\n\nPiotr Nowak, Serwis Naprawa Plus", 7, author=piotr),
            ])


def _panel_conversation(customer: Customer, repair: Repair, author: User) -> None:
    """A customer using the panel, with a message staff published there (delivered by the outbox, as in the shop).
    Commits: the outbox sends only what is committed."""
    set_panel_state(customer, "active", actor=ACTOR)
    message = compose(customer=customer, channels=["portal"], repair=repair, author=author,
                      body=f"Dzień dobry, części do telefonu {repair.device} (zlecenie {repair.number}) dotarły. "
                           "Wymiana płyty głównej kosztuje **290 zł**, telefon będzie gotowy w czwartek. "
                           "Czy robimy?\n\nPiotr Nowak, Serwis Naprawa Plus")
    db.session.commit()
    dispatch_pass(now=message.send_at)


def _repair(customer: Customer, device: str, fault: str, status: str, price: str | None, days_ago: int) -> Repair:
    # Created straight in its status: change_status would also notify the (fictional) customer.
    repair = create_repair(customer=customer, device=device, description=fault, status=status,
                           price_estimate=price, actor=ACTOR, source="cli")
    if status == "gotowa do odbioru":
        repair.pickup_date = date.today() + timedelta(days=3)
    came_in = utcnow() - timedelta(days=days_ago, hours=2)
    repair.created_at = repair.status_changed_at = came_in
    for event in repair_log(repair):
        event.created_at = came_in
    return repair


def _thread(customer: Customer, subject: str, *, entries: list[Entry], status: str,
            closed_hours_ago: float | None = None, **context) -> Thread:
    """A thread with its messages; inbound ones from the customer, outbound ones already sent."""
    now = utcnow()
    thread = Thread(customer=customer, subject=subject, status=status, source_channel=entries[0].channel,
                    created_at=now - timedelta(hours=entries[0].hours_ago), **context)
    if closed_hours_ago is not None:
        thread.closed_at = now - timedelta(hours=closed_hours_ago)
    db.session.add(thread)
    for entry in entries:
        at = now - timedelta(hours=entry.hours_ago)
        message = Message(thread=thread, direction=entry.direction, subject=subject, body_text=entry.text,
                          created_at=at, automatic=entry.automatic, author=entry.author)
        if entry.direction == "in":
            message.channel = entry.channel
            message.author_customer_id = customer.id
            message.sender = customer.email if entry.channel == "email" else (customer.phone or "")
            thread.last_inbound_at = at
        elif entry.direction == "internal":
            message.kind = "note"
            message.visible_to_customer = False
        else:
            recipient = customer.email if entry.channel == "email" else (customer.phone or "")
            message.recipients = {"to": [recipient]}
            message.deliveries = [Delivery(channel=entry.channel, status="sent", recipient=recipient, attempts=1,
                                           created_at=at, sent_at=at)]
            if thread.last_inbound_at and not thread.first_response_at:
                thread.first_response_at = at
        db.session.add(message)
        if entry.direction != "internal":
            thread.last_message_preview = preview_of(entry.text)
            thread.last_activity_at = at
    return thread
