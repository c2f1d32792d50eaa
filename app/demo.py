"""The demo shop (`flask demo seed`): a Kraków repair shop with staff, customers, repairs and conversations."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .customers import create_customer
from .extensions import db
from .messaging.compose import PREVIEW_CHARS
from .models import Customer, Delivery, Message, Repair, Shop, Thread, User, utcnow
from .repairs import add_queue, create_repair, create_ticket, repair_log
from .shop import update_shop
from .staff.users import create_user

OWNER_EMAIL = "anna@naprawaplus.example"
STAFF_EMAIL = "piotr@naprawaplus.example"
ACTOR = "cli"  # the audit trail shows the seed as a command, not as something Anna did

SHOP = {
    "name": "Serwis Naprawa Plus",
    "slug": "naprawaplus",
    "address": "ul. Długa 12\n31-146 Kraków",
    "phone": "+48 12 345 67 89",
    "opening_hours": "pn–pt 9:00–18:00, sob 10:00–14:00",
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

# customer index, device, fault, status, price estimate, days since it came in
REPAIRS = [
    (0, "iPhone 12", "Pęknięty wyświetlacz, dotyk nie działa", "w naprawie", "450.00", 3),
    (1, "Lenovo ThinkPad T14", "Nie ładuje się, dioda zasilania nie świeci", "diagnoza", None, 1),
    (2, "Samsung Galaxy S21", "Bateria szybko się rozładowuje, telefon mocno się nagrzewa", "gotowa do odbioru",
     "220.00", 6),
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


@dataclass
class Entry:
    """One message of a demo thread: who, how, what, and how many hours ago."""

    direction: str  # in | out | internal
    channel: str
    text: str
    hours_ago: float
    author: User | None = None
    automatic: bool = False


def seed(password: str) -> None:
    """Fill an empty database with the demo shop; both staff accounts get `password`. Flushed, the caller commits."""
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

    iphone, dell = repairs[0], repairs[7]
    # The customer's question is still unanswered: the inbox shows it as unread.
    _thread(customers[0], f"Naprawa {iphone.device}", repair=iphone, status="waiting_us", unread=True, entries=[
        Entry("out", "email", f"Dzień dobry, potwierdzamy przyjęcie telefonu iPhone 12 (zlecenie {iphone.number}). "
              "Wymiana wyświetlacza potrwa około 3 dni roboczych, koszt 450 zł.\n\n"
              "Pozdrawiamy\nPiotr Nowak, Serwis Naprawa Plus", 70, author=piotr),
        Entry("in", "email", "Dzień dobry, czy telefon będzie gotowy do piątku? W sobotę rano wyjeżdżam "
              "i bardzo go potrzebuję.\n\nPozdrawiam\nKatarzyna Wiśniewska", 0.8),
    ])
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
    db.session.flush()


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


def _thread(customer: Customer, subject: str, *, entries: list[Entry], status: str, **context) -> Thread:
    """A thread with its messages; inbound ones from the customer, outbound ones already sent."""
    now = utcnow()
    thread = Thread(customer=customer, subject=subject, status=status, source_channel=entries[0].channel,
                    created_at=now - timedelta(hours=entries[0].hours_ago), **context)
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
            thread.last_message_preview = " ".join(entry.text.split())[:PREVIEW_CHARS]
            thread.last_activity_at = at
    return thread
