"""Inbound mail benchmark: times `flask mail poll` ingesting N customer replies from a local Dovecot, and a bare
pass over the same mail (imap-tools fetch and e-mail parsing, no database), and prints both rates and their ratio.

    .venv/bin/python bench/ingest.py [--count 5000] [--database URL] [--profile FILE]

Starts Dovecot as the tests do (tests/servers/imap.py), builds a fresh app on a temporary instance directory
(SQLite file unless --database names an empty PostgreSQL database), migrates it, and sets up the shop through
its own functions: customers, each with a repair thread holding a few messages to them (compose(), as staff
write them). The replies are what customers send back: to the thread's reply address with its token, with our
signed Message-ID in In-Reply-To and References, a text part and an HTML part quoting the shop's message,
2-50 KB each, one in ten with a photo attached. They are APPENDed to the mailbox's INBOX (not timed). Then the
bare pass runs (read-only, marks nothing), then `mail poll` as the command runs it; only these two are timed.
Every reply must end up fetched and threaded; the run fails otherwise. --profile polls in this thread and writes
its cProfile (the parser process, which parses a backlog beside the poller, is not in it).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import resource
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the app, and the test servers in tests/servers/

from flask_migrate import upgrade  # noqa: E402
from imap_tools import MailBoxUnencrypted  # noqa: E402
from servers.imap import Dovecot, ImapAccount  # noqa: E402

from app import create_app  # noqa: E402
from app.customers import create_customer  # noqa: E402
from app.extensions import db  # noqa: E402
from app.mail_ids import make_message_id, reply_address  # noqa: E402
from app.messaging.compose import compose  # noqa: E402
from app.models import Shop, utcnow  # noqa: E402
from app.repairs import create_repair  # noqa: E402

SEED = 20261
THREADS = 250  # customers with a repair thread each; the replies are spread over them
MESSAGES_PER_THREAD = 3  # what the shop wrote before the replies come in
PHOTO_EVERY = 10  # one reply in ten carries a photo
MAILBOX_EMAIL = "serwis@shop.example"
SENTENCES = [
    "Dzień dobry, dziękuję za informację.", "Zgadzam się na naprawę w podanej cenie.",
    "Czy mogę odebrać telefon w sobotę przed południem?", "Proszę o fakturę na firmę, dane poniżej.",
    "Ekran nadal migocze po podłączeniu ładowarki, czy to normalne?", "Pozdrawiam serdecznie, Anna.",
    "Wymiana baterii też byłaby mile widziana, jeśli to nie problem.", "Płatność zrobię BLIKIEM przy odbiorze.",
    "Załączam zdjęcie uszkodzenia obudowy, o którym wspominałem.", "Bardzo dziękuję za szybką diagnozę!",
]
QUOTED = ("Dzień dobry, technik sprawdził urządzenie i potwierdził uszkodzenie złącza ładowania. Koszt naprawy "
          "wyniesie 450 zł brutto. Prosimy o potwierdzenie wyceny odpowiedzią na tę wiadomość. ")


def set_up_shop(rng: random.Random) -> list[tuple]:
    """Customers with a repair thread each and the shop's messages in it; returns what a reply needs to know."""
    shop = Shop.current()
    shop.name, shop.undo_seconds = "Serwis Naprawa Plus", 0
    from app.accounts.mailboxes import create_mailbox

    create_mailbox(name="Serwis", email=MAILBOX_EMAIL, smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none",
                   actor="cli")
    db.session.commit()
    threads = []
    for number in range(THREADS):
        customer = create_customer(name=f"Klient {number}", email=f"klient{number}@example.com", actor="cli",
                                   source="import")
        repair = create_repair(customer=customer, device="iPhone 12", actor="cli", source="import")
        for _message in range(MESSAGES_PER_THREAD):
            message = compose(customer=customer, repair=repair, channels=["email"], subject="Wycena naprawy",
                              body=QUOTED, source="cli")
        db.session.flush()
        thread = message.thread
        threads.append((customer.email, customer.name, thread.token, thread.subject or "Wycena naprawy",
                        make_message_id(thread.id, message.id, "shop.example")))
        if number % 50 == 49:
            db.session.commit()
    db.session.commit()
    return threads


def reply(rng: random.Random, number: int, thread: tuple) -> bytes:
    """A customer's reply of 2-50 KB: text and HTML, the shop's message quoted, sometimes a photo."""
    email, name, token, subject, our_id = thread
    target = rng.randint(2_000, 50_000)
    mail = EmailMessage(policy=SMTP)
    mail["From"] = f"{name} <{email}>"
    mail["To"] = f"Serwis Naprawa Plus <{reply_address(MAILBOX_EMAIL, token)}>"
    mail["Subject"] = f"Re: {subject}"
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = f"<{uuid.UUID(int=rng.getrandbits(128))}.{number}@example.com>"
    mail["In-Reply-To"] = our_id
    mail["References"] = our_id
    photo = number % PHOTO_EVERY == 0
    # The HTML part is about as big again, base64 or quoted-printable adds a third, the photo takes the rest.
    text_size = target // 4 if photo else target // 3
    text, length = [], 0
    while length < text_size:
        text.append(rng.choice(SENTENCES))
        length += len(text[-1]) + 1
    new, quote = " ".join(text[:3]), "\n".join("> " + line for line in text[3:])
    mail.set_content(f"{new}\n\nW dniu 20.11.2026 o 10:15, Serwis Naprawa Plus pisze:\n> {QUOTED}\n{quote}\n")
    mail.add_alternative(f"<div>{new}</div><div class=\"gmail_quote\"><blockquote>{QUOTED}<br>"
                         + "<br>".join(text[3:]) + "</blockquote></div>", subtype="html")
    if photo:
        mail.add_attachment(rng.randbytes(target // 4), maintype="image", subtype="jpeg",
                            filename=f"zdjęcie {number}.jpg")
    return mail.as_bytes()


def bare_pass(account: ImapAccount) -> tuple[int, float]:
    """imap-tools fetch of everything plus the e-mail parsing a reader of the mail does; no database."""
    began = time.perf_counter()
    count = 0
    with MailBoxUnencrypted(account.host, account.port, timeout=60).login(account.user, account.password) as box:
        for message in box.fetch("ALL", mark_seen=False, bulk=100):
            _read = (message.subject, message.from_, message.to, message.headers.get("references"), message.text,
                     message.html, [attachment.payload for attachment in message.attachments])
            count += 1
    return count, time.perf_counter() - began


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--database", help="an empty PostgreSQL database URL; default a SQLite file")
    parser.add_argument("--profile", help="write the poll's cProfile stats to this file and print the top")
    args = parser.parse_args()
    rng = random.Random(SEED)

    server = Dovecot()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workdir:
            database = args.database or f"sqlite:///{workdir}/bench.db"
            app = create_app({"SCHEDULER_ENABLED": False, "SECRET_KEY": "bench", "INSTANCE_PATH": workdir,
                              "DATABASE_URL": database, "PUBLIC_BASE_URL": "http://shop.example"})
            with app.app_context():
                upgrade()
                threads = set_up_shop(rng)
                account = ImapAccount(server, server.add_user())
                from app.accounts.mailboxes import update_mailbox
                from app.models import Mailbox

                mailbox = db.session.scalars(db.select(Mailbox)).one()
                update_mailbox(mailbox, imap_host=account.host, imap_port=account.port, imap_security="none",
                               username=account.user, password=account.password)
                db.session.commit()

                began = time.perf_counter()
                replies = [reply(rng, number, rng.choice(threads)) for number in range(args.count)]
                built = time.perf_counter()
                account.append_many(replies)
                size = sum(map(len, replies)) / 2**20
                del replies
                print(f"{args.count} replies, {size:.1f} MiB: built in {built - began:.1f} s, appended in "
                      f"{time.perf_counter() - built:.1f} s ({'SQLite' if not args.database else 'PostgreSQL'})")

                bare_count, bare_seconds = bare_pass(account)
                assert bare_count == args.count, bare_count

                began = time.perf_counter()
                if args.profile:  # the command polls in a thread, out of the profiler's sight: poll right here
                    from app.inbound.poll import poll_mailbox

                    profiler = cProfile.Profile()
                    counts = profiler.runcall(poll_mailbox, mailbox).counts
                    output, exit_code = f"fetched {counts['fetched']}, threaded {counts['threaded']},", 0
                else:
                    result = app.test_cli_runner().invoke(args=["mail", "poll"])
                    output, exit_code = result.output, result.exit_code
                poll_seconds = time.perf_counter() - began
                print(output.strip())
    finally:
        server.remove()

    bare_rate, poll_rate = args.count / bare_seconds, args.count / poll_seconds
    print(f"bare pass (imap-tools fetch + parsing): {bare_seconds:6.2f} s  {bare_rate:7.0f} msg/s")
    print(f"mail poll (end to end, threaded):       {poll_seconds:6.2f} s  {poll_rate:7.0f} msg/s")
    print(f"ratio poll / bare: {poll_rate / bare_rate:.2f}   peak RSS {maxrss_mib():.0f} MiB")
    if args.profile:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)
    if exit_code or f"fetched {args.count}, threaded {args.count}," not in output:
        sys.exit(f"not every reply was fetched and threaded (exit {exit_code})")


if __name__ == "__main__":
    main()
