"""Inbox benchmark: server time of the inbox's pages over 100,000 threads and 1,000,000 messages.

    .venv/bin/python bench/inbox.py [--database sqlite|postgresql|both] [--threads 100000] [--messages 1000000]
                                    [--requests 200] [--keep DIR]

With `--keep DIR` the filled database stays in DIR (SQLite: DIR/inbox.db; PostgreSQL: its data directory
DIR/postgresql) and a later run with the same DIR measures it again without filling: pending migrations are
applied to it first, so a new index is timed on the same data as before it.

Fills a fresh database (a SQLite file in a temporary directory; PostgreSQL in a throwaway cluster made the way
the tests make theirs) through the migrations, then in bulk: customers, repairs, staff, queues, threads with
realistic status, assignee, queue and due times, and messages of realistic lengths (a line of SMS to a long
e-mail; Polish and English), one thread of exactly 200 messages among them. The search index is built by the
database's own triggers and functions from migration 0004, as in production: on SQLite the messages go in
before their threads so each thread's document is built once; on PostgreSQL the rows are copied with triggers
off and every thread's document is then built by the same function the triggers call.

Then it times, through Flask's test client signed in as a member of staff, `--requests` requests each of: the
inbox's first page, a filtered page, a search (a rotating set of words, names, phones and repair numbers), and
the 200-message thread. It prints the median and p95 in milliseconds as a markdown table, wall-clock and the
process's CPU time (which the machine's other load cannot inflate).
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the app, and the tests' throwaway PostgreSQL cluster

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Customer, Message, Queue, Repair, RepairStatus, Thread, User, utcnow  # noqa: E402
from app.models.users import hash_password  # noqa: E402
from helpers import free_port, sign_in  # noqa: E402
from plugins.database import PostgresCluster, _postgres_bindir  # noqa: E402

SEED = 6
PASSWORD = "bench password 123"
LONG_THREAD = 200
BATCH = 20_000
FIRST_NAMES = ["Anna", "Katarzyna", "Małgorzata", "Agnieszka", "Ewa", "Zofia", "Jan", "Piotr", "Krzysztof",
               "Tomasz", "Paweł", "Łukasz", "Michał", "Grzegorz", "Jakub", "Wojciech", "John", "Emma", "Oliver"]
LAST_NAMES = ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Szymański",
              "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk", "Piotrowski", "Grabowski",
              "Smith", "Brown", "Taylor", "Łęcki", "Żak", "Ślusarczyk"]
DEVICES = ["iPhone 12", "Samsung Galaxy S21", "Lenovo ThinkPad T14", "MacBook Air M1", "Xiaomi Redmi Note 10",
           "Pralka Bosch Serie 4", "Rower Kross Hexagon 5.0", "iPad 9. generacji", "Dell XPS 13", "Pixel 7"]
# Each thread is about one part of one device, as a repair is; the other sentences are the trade's small talk.
PARTS = ["wyświetlacz", "bateria", "złącze ładowania", "płyta główna", "klawiatura", "głośnik", "mikrofon",
         "aparat", "obudowa", "zawias", "wentylator", "dysk", "grzałka", "łożysko", "hamulec", "przerzutka",
         "screen", "battery", "charging port", "keyboard", "speaker", "hinge", "fan"]
ABOUT_PART = [
    "Uszkodzony element: {part}, wymiana potrwa około dwóch dni roboczych.",
    "Technik sprawdził {part} i potwierdził usterkę.",
    "Koszt naprawy ({part}) wyniesie {price} zł brutto, w tym robocizna.",
    "Czy {part} jest na gwarancji? Kupiłem urządzenie w {month}.",
    "Zamówiliśmy {part} u dostawcy; spodziewamy się części w {day}.",
    "The {part} has stopped working, could you check it?",
    "We replaced the {part} and tested the device for an hour.",
]
SMALL_TALK = [
    "Dzień dobry, dziękujemy za pozostawienie urządzenia w naszym serwisie.",
    "Prosimy o potwierdzenie wyceny odpowiedzią na tę wiadomość albo telefonicznie.",
    "Urządzenie jest gotowe do odbioru od poniedziałku do piątku w godzinach 9–18.",
    "Czy mogę odebrać sprzęt jutro po południu? Będę w Łodzi dopiero w {day}.",
    "Na wymienione części udzielamy dwunastu miesięcy gwarancji.",
    "Dziękuję, proszę o fakturę na firmę, NIP podam przy odbiorze.",
    "Pozdrawiamy serdecznie i życzymy miłego dnia!",
    "Thank you, I will pick it up on {day} afternoon.",
    "Please send me the quote by e-mail before you start the repair.",
]
DAYS = ["poniedziałek", "wtorek", "środę", "czwartek", "piątek", "sobotę", "Monday", "Friday"]
MONTHS = ["styczniu", "lutym", "marcu", "kwietniu", "maju", "czerwcu", "lipcu", "sierpniu", "wrześniu"]
SEARCHES = ["wyswietlacz", "lodz", "zlacze ladowania", "Kowalski bateria", "battery", "lozysko", "hinge",
            "slusarczyk", "601 0", "R-2026-01234", "klient123@example.com", "wentylator", "przerzut", "faktur"]


# ---------------------------------------------------------------- the data


def text_of(rng: random.Random, sms: bool, part: str) -> str:
    """A message about `part`: a line or two for SMS, 2-10 sentences for e-mail, in Polish or English."""
    count = rng.randint(1, 2) if sms else rng.randint(2, 10)
    sentences = [rng.choice(ABOUT_PART if n == 0 or rng.random() < .3 else SMALL_TALK) for n in range(count)]
    return " ".join(sentence.format(part=part, price=rng.randrange(90, 1500, 10), day=rng.choice(DAYS),
                                    month=rng.choice(MONTHS)) for sentence in sentences)


def message_counts(rng: random.Random, threads: int, messages: int) -> list[int]:
    """How many messages each thread gets: mostly a few, some long, the first exactly LONG_THREAD; sums up."""
    counts = [LONG_THREAD] + [max(1, int(rng.expovariate(1 / 9))) for _ in range(threads - 1)]
    total = sum(counts)
    scale = (messages - LONG_THREAD) / (total - LONG_THREAD)
    counts = [LONG_THREAD] + [max(1, round(c * scale)) for c in counts[1:]]
    surplus = sum(counts) - messages  # rounding: take from (or give to) the longest threads after the first
    for index in sorted(range(1, threads), key=lambda i: -counts[i])[:abs(surplus)]:
        counts[index] -= 1 if surplus > 0 else -1
    return counts


def fill(threads: int, messages: int) -> dict:
    """Bulk-load the shop; returns what the requests need (the staff user, the long thread's id)."""
    rng = random.Random(SEED)
    now = utcnow()
    status_id = db.session.scalar(select(RepairStatus.id).order_by(RepairStatus.position).limit(1))
    staff = [User(email=f"staff{n}@shop.example", name=f"{rng.choice(FIRST_NAMES)} S{n}", role="staff",
                  password_hash=hash_password(PASSWORD)) for n in range(6)]
    queues = [Queue(name=name, position=n) for n, name in enumerate(["Przyjęcia", "Warsztat", "Gwarancje"])]
    db.session.add_all(staff + queues)
    db.session.commit()
    staff_ids, queue_ids = [u.id for u in staff], [q.id for q in queues]

    customers = threads // 5
    insert(Customer, ({"id": n, "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                       "email": f"klient{n}@example.com", "phone": f"+48601{n:06d}", "crm_note": "",
                       "sms_informational": True, "marketing_consent": False, "panel_state": "none",
                       "panel_session_version": 1, "created_at": now, "updated_at": now}
                      for n in range(1, customers + 1)))
    repairs = threads // 2
    insert(Repair, ({"id": n, "number": f"R-2026-{n:05d}", "customer_id": 1 + n % customers,
                     "device": rng.choice(DEVICES), "description": "", "status_id": status_id,
                     "status_changed_at": now, "created_at": now, "updated_at": now}
                    for n in range(1, repairs + 1)))

    counts = message_counts(rng, threads, messages)
    thread_rows, last = [], {}
    for thread_id, count in enumerate(counts, start=1):
        created = now - timedelta(minutes=rng.randint(10, 60 * 24 * 365))
        status = rng.choices(["open", "waiting_us", "waiting_customer", "closed"], [10, 10, 15, 65])[0]
        priority = rng.choices(["low", "normal", "high", "urgent"], [10, 70, 15, 5])[0]
        channel = rng.choices(["email", "sms", "portal", "phone"], [60, 25, 10, 5])[0]
        last_activity = created + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        last_activity = min(last_activity, now)
        inbound = last_activity if status == "waiting_us" else None
        hours = {"urgent": 1, "high": 4, "normal": 8, "low": 24}[priority]
        thread_rows.append({
            "id": thread_id, "token": f"{thread_id:016x}", "customer_id": 1 + thread_id % customers,
            "repair_id": thread_id // 2 if thread_id % 2 == 0 and thread_id // 2 <= repairs else None,
            "ticket_id": None, "subject": f"{rng.choice(DEVICES)} – {rng.choice(['naprawa', 'pytanie', 'repair'])}",
            "status": status, "priority": priority, "queue_id": rng.choice(queue_ids + [None]), "category": "",
            "assignee_id": rng.choice(staff_ids + [None, None]) if status != "closed" or rng.random() < .9 else None,
            "source_channel": channel, "private": rng.random() < 0.03, "unread": status == "waiting_us" and rng.random() < .5,
            "last_message_preview": "", "last_activity_at": last_activity, "last_inbound_at": inbound,
            "first_response_at": created + timedelta(minutes=rng.randint(5, 60 * 30)) if status != "waiting_us" else None,
            "due_at": inbound + timedelta(hours=hours) if inbound else None, "merged_into_id": None,
            "created_by_id": None, "created_at": created, "closed_at": last_activity if status == "closed" else None,
            "deleted_at": None,
        })
        last[thread_id] = (created, last_activity, channel)

    def message_rows():
        message_id = 0
        for thread_id, count in enumerate(counts, start=1):
            created, last_activity, channel = last[thread_id]
            part = rng.choice(PARTS)
            step = (last_activity - created) / max(count, 1)
            for n in range(count):
                message_id += 1
                inbound = n % 2 == 0
                body = text_of(rng, sms=channel == "sms", part=part)
                if n == count - 1:
                    thread_rows[thread_id - 1]["last_message_preview"] = body[:200]
                yield {"id": message_id, "thread_id": thread_id, "kind": "message", "direction": "in" if inbound else "out",
                       "channel": channel if inbound else None, "author_user_id": None if inbound else staff_ids[n % 6],
                       "author_customer_id": None, "sender": f"klient{1 + thread_id % customers}@example.com" if inbound else "",
                       "recipients": {}, "subject": "", "body_text": body, "body_html": None, "quoted_text": "",
                       "body_format": "text", "visible_to_customer": True, "automatic": False, "meta": {},
                       "send_at": None, "created_at": created + step * n, "read_by_customer_at": None,
                       "redacted_at": None}

    if db.engine.dialect.name == "sqlite":
        # Messages before their threads: each thread's search document is then built once, by the thread's
        # insert trigger, instead of once per message.
        with foreign_keys_off():
            insert(Message, message_rows())
            insert(Thread, iter(thread_rows))
    else:
        with triggers_off():
            insert(Thread, iter(thread_rows))
            insert(Message, message_rows())
        print("  indexing for search…", flush=True)
        db.session.execute(text("SELECT thread_search_refresh(id) FROM threads"))
        db.session.execute(text("SELECT setval(pg_get_serial_sequence(t, 'id'), 10000000) FROM "
                                "unnest(ARRAY['threads', 'messages', 'customers', 'repairs']) AS t"))
        db.session.commit()
        db.session.connection().exec_driver_sql("COMMIT")
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    return {"user": staff[0].email, "long_thread": 1}


# What `fill` returns, for a kept database that is measured again without filling it.
FILLED = {"user": "staff0@shop.example", "long_thread": 1}


def insert(model, rows) -> None:
    """Insert `rows` (dicts) into `model`'s table in batches, bypassing the ORM."""
    table = model.__table__
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            db.session.execute(table.insert(), batch)
            batch = []
    if batch:
        db.session.execute(table.insert(), batch)
    db.session.commit()


class foreign_keys_off:
    def __enter__(self):
        db.session.commit()
        db.session.connection().exec_driver_sql("PRAGMA foreign_keys=OFF")

    def __exit__(self, *exc):
        db.session.commit()
        db.session.connection().exec_driver_sql("PRAGMA foreign_keys=ON")


class KeptCluster(PostgresCluster):
    """A PostgreSQL server whose data directory lives in `root` and outlives the run (`--keep`)."""

    def __init__(self, bindir: Path, port: int, root: Path):
        super().__init__(bindir, port)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = root
        self.filled = (root / "data" / "PG_VERSION").exists()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.filled:  # initdb only makes a new data directory; start the kept one
            data = self.root / "data"
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            self._run("pg_ctl", "-D", data, "-l", self.root / "server.log", "-w", "-o", options, "start")
            self.running = True
        else:
            super().start()

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._run("pg_ctl", "-D", self.root / "data", "-m", "fast", "-w", "stop")


class triggers_off:
    """PostgreSQL: no triggers (search index, foreign keys) while copying; the caller indexes afterwards."""

    def __enter__(self):
        db.session.execute(text("SET session_replication_role = replica"))

    def __exit__(self, *exc):
        db.session.commit()
        db.session.execute(text("SET session_replication_role = DEFAULT"))


# ---------------------------------------------------------------- the timing


def timed(client, urls: list[str]) -> tuple[list[float], list[float]]:
    """Milliseconds per request, wall-clock and this process's CPU; every answer must be 200.

    CPU time leaves out waiting for the machine's other load (and, on PostgreSQL, the server's own work).
    """
    wall, cpu = [], []
    for url in urls:
        began, cpu_began = time.perf_counter(), time.process_time()
        response = client.get(url)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - cpu_began) * 1000)
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}")
    return wall, cpu


def measure(app, info: dict, requests: int) -> dict[str, tuple[list[float], list[float]]]:
    client = app.test_client()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == info["user"]))
    sign_in(client, user, PASSWORD)
    scenarios = {
        "inbox first page": ["/"] * requests,
        "filtered page (unassigned, waiting for us, e-mail)": ["/?view=unassigned&status=waiting_us&channel=email"] * requests,
        "search": [f"/?q={SEARCHES[n % len(SEARCHES)]}" for n in range(requests)],
        f"thread view ({LONG_THREAD} messages)": [f"/threads/{info['long_thread']}"] * requests,
    }
    results = {}
    for name, urls in scenarios.items():
        timed(client, urls[:5])  # warm the caches and the templates
        results[name] = timed(client, urls)
    return results


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def run(kind: str, args) -> tuple[str, dict, float]:
    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as workdir:
        cluster = None
        if kind == "postgresql":
            if args.keep:
                cluster = KeptCluster(_postgres_bindir(), free_port(), Path(args.keep).resolve() / "postgresql")
                filled = cluster.filled
            else:
                cluster, filled = PostgresCluster(_postgres_bindir(), free_port()), False
            cluster.start()
            url = cluster.url
        else:
            path = Path(args.keep or workdir) / "inbox.db"
            url, filled = f"sqlite:///{path.resolve()}", path.exists()
        try:
            app = create_app({"INSTANCE_PATH": str(Path(workdir) / "instance"), "DATABASE_URL": url,
                              "SCHEDULER_ENABLED": False, "SECRET_KEY": "bench"})
            with app.app_context():
                upgrade()
                fill_seconds = None
                if filled:
                    info = FILLED
                else:
                    print(f"{kind}: filling {args.threads} threads, {args.messages} messages…", flush=True)
                    began = time.perf_counter()
                    info = fill(args.threads, args.messages)
                    fill_seconds = time.perf_counter() - began
                counted = (db.session.scalar(select(func.count()).select_from(Thread)),
                           db.session.scalar(select(func.count()).select_from(Message)))
                print(f"  {'kept' if filled else f'filled in {fill_seconds:.0f} s'}: {counted[0]} threads,"
                      f" {counted[1]} messages", flush=True)
                db.session.remove()
            results = measure(app, info, args.requests)
            with app.app_context():
                db.engine.dispose()
        finally:
            if cluster is not None:
                cluster.stop()
    return kind, results, fill_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the filled database in DIR, or measure the one kept there by an earlier run")
    args = parser.parse_args(argv)
    if args.threads < 10 or args.messages < args.threads + LONG_THREAD:
        parser.error("at least 10 threads, and more messages than threads + 200")
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    runs = [run(kind, args) for kind in kinds]
    print(f"\n{args.threads:,} threads, {args.messages:,} messages; {args.requests} requests each; "
          "server time in ms (Flask test client)\n")
    print("| database | request | median | p95 | CPU median | CPU p95 |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, results, _fill in runs:
        for name, (wall, cpu) in results.items():
            print(f"| {kind} | {name} | {statistics.median(wall):.1f} | {p95(wall):.1f} "
                  f"| {statistics.median(cpu):.1f} | {p95(cpu):.1f} |")
    for kind, _results, fill_seconds in runs:
        if fill_seconds is not None:
            print(f"\n{kind}: filled in {fill_seconds:.0f} s")


if __name__ == "__main__":
    main()
