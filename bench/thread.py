"""Thread view benchmark: server time of the staff page of one long, mixed thread (200 messages by default).

    .venv/bin/python bench/thread.py [--database sqlite|postgresql] [--messages 200] [--requests 200]
                                     [--profile FILE]

Builds a fresh shop (a SQLite file in a temporary directory, or PostgreSQL in a throwaway cluster made the way
the tests make theirs) through the migrations and the shop's own functions, and fills one repair thread the
way a real one fills up: Markdown e-mails from staff, some also sent by SMS, some with a file, their
deliveries sent or delivered (a few failed, a few still scheduled); the customer's replies from real mail
clients (the sample mails of tests/mail: Gmail, Outlook with a cid: signature image, Thunderbird, iPhone,
Onet, Interia, a mail with an attachment; quoted history and HTML included) recorded as the poller records
them; SMS replies received as the Twilio webhook receives them; internal notes.

Then it times `--requests` GETs of the thread's page (its latest messages) and of the whole thread (`?all=1`,
where a link to an old message leads) through Flask's test client signed in as a member of staff, and prints
the median and p95 in milliseconds (wall-clock and this process's CPU time) and the SQL statements per
request. `--profile` writes the cProfile of the timed requests of the page to FILE.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the app, the tests' PostgreSQL cluster and sample mail

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402

from app import create_app  # noqa: E402
from app.attachments import store  # noqa: E402
from app.extensions import db  # noqa: E402
from app.inbound.sms import IncomingSms, receive_sms  # noqa: E402
from app.messaging.compose import compose  # noqa: E402
from app.models import Message, MessageRef, Shop, User, utcnow  # noqa: E402
from app.models.users import hash_password  # noqa: E402
from app.accounts.sms import configure_sms  # noqa: E402
from helpers import free_port, sign_in  # noqa: E402
from plugins.database import PostgresCluster, _postgres_bindir  # noqa: E402
from inbound_helpers import make_customer, make_mailbox, make_repair, our_id, receive, sample  # noqa: E402

SEED = 200
PASSWORD = "bench password 123"
MOBILE = "+48600100200"
SHOP_NUMBER = "+48500100200"
# Replies as real clients write them; each names its own sender, swapped for the customer's address.
REPLIES = {
    "gmail_pl_reply.eml": "jan.kowalski@example.com",
    "gmail_en_reply.eml": "jan.kowalski@example.com",
    "outlook_pl_reply.eml": "M.Wisniewska@example.com",
    "outlook_com_reply.eml": None,
    "thunderbird_pl_reply.eml": None,
    "apple_iphone_pl_reply.eml": None,
    "onet_pl_reply.eml": "t.wojcik@example.com",
    "interia_pl_reply.eml": None,
    "attachment_rfc2231_pl.eml": "jan.kowalski@example.com",
}
OUR_TEXT = [
    "Dzień dobry,\n\ntechnik sprawdził urządzenie i potwierdził **uszkodzenie złącza ładowania**. "
    "Koszt naprawy:\n\n"
    "- wymiana złącza: 250 zł\n- czyszczenie płyty: 80 zł\n- *razem:* **330 zł brutto**\n\n"
    "Prosimy o potwierdzenie wyceny odpowiedzią na tę wiadomość.\n\nPozdrawiamy,\nSerwis GSM Kowalczyk",
    "Część została zamówiona u dostawcy, spodziewamy się jej w czwartek. Status naprawy można sprawdzić na "
    "[naszej stronie](https://shop.example/status).",
    "Telefon jest gotowy do odbioru, zapraszamy od poniedziałku do piątku w godzinach 9–18.",
    "Hello,\n\nwe replaced the battery and tested the device for an hour. Details:\n\n1. battery: 199 zł\n"
    "2. labour: 50 zł\n\nYou can pay by card or BLIK when you collect it.",
    "Przypominamy o odbiorze urządzenia. Po 30 dniach naliczamy opłatę za przechowywanie (`5 zł` za dzień).",
]
SMS_REPLIES = ["Dobrze, zgadzam się na naprawę.", "Będę jutro po 15.", "Ok dziękuję", "A ile to potrwa?",
               "Czy mogę zapłacić kartą?", "Super, dzięki! Odbiorę w sobotę."]
NOTES = ["Klient dzwonił, prosi o kontakt po 16.", "**Uwaga:** gwarancja kończy się w marcu, sprawdzić fakturę.",
         "Część zamówiona w hurtowni, nr zamówienia 48213.", "Wycena zatwierdzona telefonicznie."]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# ---------------------------------------------------------------- the data


def fill(count: int) -> dict:
    """One customer with a repair whose thread gets `count` messages; returns the staff user and thread id."""
    rng = random.Random(SEED)
    shop = Shop.current()
    shop.undo_seconds = 0
    staff = [User(email=f"staff{n}@shop.example", name=name, role="staff", password_hash=hash_password(PASSWORD))
             for n, name in enumerate(["Anna Nowak", "Piotr Zieliński", "Ewa Mazur"])]
    db.session.add_all(staff)
    mailbox = make_mailbox()
    configure_sms("AC" + "0" * 32, "bench-token", from_number=SHOP_NUMBER, actor="bench")
    customer = make_customer(phone="600 100 200")
    repair = make_repair(customer)
    made, last_mail, sms_out = 0, None, 0
    while made < count:
        roll = rng.random()
        author = rng.choice(staff)
        if roll < .35 or last_mail is None:  # staff write: e-mail, some also by SMS, some with a file
            channels = ["email", "sms"] if rng.random() < .4 else ["email"]
            files = [store(io.BytesIO(PDF), "wycena.pdf")] if rng.random() < .1 else []
            message = compose(customer=customer, channels=channels, body=rng.choice(OUR_TEXT), author=author,
                              repair=repair, attachments=files)
            for delivery in message.deliveries:
                delivery.status = rng.choices(["delivered", "sent", "failed", "scheduled"], [60, 30, 5, 5])[0]
                if delivery.status == "failed":
                    delivery.error = "The mail server refused the recipient: 550 5.1.1 mailbox unavailable"
                delivery.sent_at = utcnow() if delivery.status in ("sent", "delivered") else None
            if "email" in channels:
                db.session.add(MessageRef(ref=our_id(message), message_id=message.id, thread_id=message.thread_id))
                last_mail = message
            sms_out += "sms" in channels
            db.session.commit()
        elif roll < .70:  # the customer answers the last mail from their mail program
            name = rng.choice(list(REPLIES))
            raw = sample(name, last_mail, **({REPLIES[name]: customer.email} if REPLIES[name] else {}))
            raw = re.sub(rb"(?im)^Message-ID:.*$", b"Message-ID: <bench.%d@example.com>" % made, raw, count=1)
            if receive(mailbox, raw).status != "threaded":
                continue
        elif roll < .85 and sms_out:  # or by SMS
            receive_sms(IncomingSms(sid=f"SM{made:032x}", sender=MOBILE, to=SHOP_NUMBER, body=rng.choice(SMS_REPLIES)))
            db.session.commit()
        else:  # an internal note
            db.session.add(Message(thread_id=last_mail.thread_id, kind="note", direction="internal",
                                   author_user_id=author.id, body_text=rng.choice(NOTES), body_format="markdown",
                                   visible_to_customer=False))
            db.session.commit()
        made += 1
    thread_id = last_mail.thread_id
    spread_over_weeks(thread_id)
    counted = db.session.scalar(select(func.count()).select_from(Message).where(Message.thread_id == thread_id))
    assert counted == count, f"the thread has {counted} messages, not {count}"
    return {"user": staff[0].email, "thread": thread_id}


def spread_over_weeks(thread_id: int) -> None:
    """Give the messages the times of a conversation over some weeks, in the order they were made."""
    messages = db.session.scalars(select(Message).where(Message.thread_id == thread_id).order_by(Message.id)).all()
    start = utcnow() - timedelta(days=40)
    for n, message in enumerate(messages):
        message.created_at = start + timedelta(hours=4.5 * n)
    db.session.commit()


# ---------------------------------------------------------------- the timing


class StatementCounter:
    """Counts the SQL statements the app's engine runs."""

    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1


def measure(app, info: dict, url: str, requests: int, profile: str | None) -> tuple[list, list, list]:
    """Milliseconds (wall-clock, CPU) and SQL statements of `requests` GETs of `url` as the bench's member of
    staff; every answer must be 200."""
    client = app.test_client()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == info["user"]))
        counter = StatementCounter(db.engine)
    sign_in(client, user, PASSWORD)
    profiler = cProfile.Profile() if profile else None
    wall, cpu, statements = [], [], []
    for n in range(requests + 5):  # the first five warm the caches and the templates
        counter.count = 0
        if profiler and n >= 5:
            profiler.enable()
        began, cpu_began = time.perf_counter(), time.process_time()
        response = client.get(url)
        elapsed, cpu_elapsed = (time.perf_counter() - began) * 1000, (time.process_time() - cpu_began) * 1000
        if profiler:
            profiler.disable()
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}")
        if n >= 5:
            wall.append(elapsed)
            cpu.append(cpu_elapsed)
            statements.append(counter.count)
    if profiler:
        profiler.dump_stats(profile)
    return wall, cpu, statements


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", metavar="FILE", help="write the cProfile of the timed requests to FILE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-thread-") as workdir:
        cluster = None
        if args.database == "postgresql":
            cluster = PostgresCluster(_postgres_bindir(), free_port())
            cluster.start()
        try:
            url = cluster.url if cluster else f"sqlite:///{Path(workdir) / 'thread.db'}"
            app = create_app({"INSTANCE_PATH": str(Path(workdir) / "instance"), "DATABASE_URL": url,
                              "SCHEDULER_ENABLED": False, "SECRET_KEY": "bench",
                              "PUBLIC_BASE_URL": "http://shop.example"})
            with app.app_context():
                upgrade()
                began = time.perf_counter()
                info = fill(args.messages)
                print(f"{args.database}: a thread of {args.messages} messages made in "
                      f"{time.perf_counter() - began:.0f} s", flush=True)
                db.session.remove()
            page = f"/threads/{info['thread']}"
            results = {"the page (latest messages)": measure(app, info, page, args.requests, args.profile),
                       "the whole thread (?all=1)": measure(app, info, page + "?all=1", args.requests, None)}
            with app.app_context():
                db.engine.dispose()
        finally:
            if cluster is not None:
                cluster.stop()
    print(f"\nGET /threads/<id>, {args.messages} messages, {args.requests} requests each; server time in ms "
          "(Flask test client)\n")
    print("| database | request | median | p95 | CPU median | CPU p95 | SQL statements |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (wall, cpu, statements) in results.items():
        print(f"| {args.database} | {name} | {statistics.median(wall):.1f} | {p95(wall):.1f} "
              f"| {statistics.median(cpu):.1f} | {p95(cpu):.1f} | {min(statements)}–{max(statements)} |")


if __name__ == "__main__":
    main()
