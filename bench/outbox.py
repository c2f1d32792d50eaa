"""Outbox benchmark: times one dispatcher draining N queued deliveries, e-mail to a local SMTP server and SMS to a
local Twilio stand-in, and reports deliveries per second per channel and peak memory.

    .venv/bin/python bench/outbox.py [--count 2000] [--channel both|email|sms] [--database URL] [--repeat 3]

Builds a fresh app on a temporary instance directory (SQLite file unless --database names an empty PostgreSQL
database), migrates it, sets up the shop, a default mailbox (STARTTLS + AUTH, as the test fixture) and an SMS
account through the app's own functions, and queues the deliveries with `compose()`: messages in Polish of
300-800 characters, a few with a PDF, several per repair thread so later mails carry References. Only the
drain is timed: repeated `dispatch_pass()` until nothing is due. The servers run in a child process, as real
servers would be elsewhere: they do not take the dispatcher's interpreter lock or count in its memory.
Afterwards every delivery must be `sent`, and the SMTP server must have got one mail per e-mail delivery and
the Twilio server one request per SMS; the run fails otherwise. In a mixed run each channel's seconds are the
shares of the drain its deliveries took (see TimedChannels).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import random
import resource
import ssl
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the app, and the test servers in tests/servers/

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from app import create_app  # noqa: E402
from app.attachments import store  # noqa: E402
from app.channels import get_channel  # noqa: E402
from app.customers import create_customer  # noqa: E402
from app.extensions import db  # noqa: E402
from app.accounts.mailboxes import create_mailbox  # noqa: E402
from app.messaging.compose import compose  # noqa: E402
from app.models import Delivery, Shop, utcnow  # noqa: E402
from app.outbox import dispatch_pass  # noqa: E402
from app.repairs import create_repair  # noqa: E402
from app.accounts.sms import configure_sms  # noqa: E402

CHANNELS = ("email", "sms")
MESSAGES_PER_THREAD = 4  # a repair's conversation: accepted, diagnosis, quote, ready for pickup
PDF_EVERY = 10  # one message in ten carries the repair protocol as a PDF
AUTOMATIC_EVERY = 5  # one in five is a status notification (Auto-Submitted)
SEED = 20260
STARTUP_TIMEOUT = 60  # seconds for the child process to import, make a certificate and start both servers


# ---------------------------------------------------------------- the servers, in a child process


def serve(conn, workdir: str) -> None:
    """Run the SMTP server (STARTTLS + AUTH) and the Twilio stand-in until told to stop; answers "counts"."""
    import logging

    from servers.smtp import HOST, SmtpServer, _CountingController, free_port, make_certificate
    from servers.twilio import TwilioServer

    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns on every AUTH about old APIs
    cert, key = make_certificate(Path(workdir))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    smtp = SmtpServer(host=HOST, port=free_port(), tls_port=0, cafile=str(cert))
    controller = _CountingController(smtp, port=smtp.port, tls_context=context, require_starttls=True,
                                     auth_require_tls=True, authenticator=smtp._authenticate, auth_required=True)
    controller.start()
    smtp.connections = 0  # start() opens a connection of its own to check the server is up
    twilio = TwilioServer()
    twilio.start()
    try:
        conn.send({"smtp_host": smtp.host, "smtp_port": smtp.port, "cafile": smtp.cafile,
                   "smtp_username": smtp.username, "smtp_password": smtp.password, "twilio_url": twilio.url,
                   "account_sid": twilio.account_sid, "auth_token": twilio.auth_token})
        while (command := conn.recv()) != "stop":
            if command == "counts":
                conn.send({"mails": len(smtp.messages), "smtp_sessions": smtp.connections,
                           "twilio_requests": len(twilio.requests), "sms": len(twilio.messages),
                           "twilio_connections": len({request.peer for request in twilio.requests})})
    finally:
        twilio.stop()
        controller.stop()


class Servers:
    """The child process running the servers: its addresses and credentials, and what it has received."""

    def __init__(self, workdir: str):
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=serve, args=(child_end, workdir), name="bench-servers", daemon=True)
        self._process.start()
        if not self._conn.poll(STARTUP_TIMEOUT):
            self._process.kill()
            raise RuntimeError(f"the servers did not start within {STARTUP_TIMEOUT} s "
                               f"(exit code {self._process.exitcode})")
        self.info: dict = self._conn.recv()

    def counts(self) -> dict[str, int]:
        self._conn.send("counts")
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


# ---------------------------------------------------------------- the shop and its queued messages

FIRST_NAMES = ["Anna", "Katarzyna", "Małgorzata", "Agnieszka", "Ewa", "Zofia", "Jan", "Piotr", "Krzysztof",
               "Tomasz", "Paweł", "Łukasz", "Michał", "Grzegorz", "Jakub", "Wojciech"]
LAST_NAMES = ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Szymański",
              "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk", "Piotrowski", "Grabowski"]
DEVICES = ["iPhone 12", "Samsung Galaxy S21", "Lenovo ThinkPad T14", "MacBook Air M1", "Xiaomi Redmi Note 10",
           "Pralka Bosch Serie 4", "Rower Kross Hexagon 5.0", "iPad 9. generacji", "Dell XPS 13"]
SUBJECTS = ["Przyjęliśmy Twoje urządzenie", "Wynik diagnozy", "Wycena naprawy", "Naprawa gotowa – zapraszamy"]
SENTENCES = [
    "Dzień dobry, dziękujemy za pozostawienie urządzenia w naszym serwisie.",
    "Technik sprawdził **płytę główną** i potwierdził uszkodzenie złącza ładowania.",
    "Wymiana wyświetlacza potrwa około dwóch dni roboczych, części mamy na miejscu.",
    "Koszt naprawy wyniesie 450 zł brutto, w tym robocizna i nowa bateria.",
    "Prosimy o potwierdzenie wyceny odpowiedzią na tę wiadomość albo telefonicznie.",
    "Urządzenie jest gotowe do odbioru od poniedziałku do piątku w godzinach 9–18.",
    "Przy odbiorze prosimy zabrać potwierdzenie przyjęcia lub podać numer zlecenia.",
    "Na wymienione części udzielamy *dwunastu miesięcy* gwarancji.",
    "Dane na dysku zostały skopiowane, a stary dysk oddamy razem z komputerem.",
    "Jeśli pojawią się pytania, chętnie odpowiemy — wystarczy odpisać na tę wiadomość.",
    "W trakcie diagnozy okazało się, że konieczna jest też wymiana głośnika rozmów.",
    "Płatność przyjmujemy gotówką, kartą lub BLIKIEM przy odbiorze.",
    "- ekran: wymieniony\n- bateria: sprawdzona, 92% pojemności\n- obudowa: wyczyszczona",
    "Zamówiliśmy część u dostawcy; spodziewamy się jej w czwartek rano.",
    "Pozdrawiamy serdecznie i życzymy miłego dnia!",
]
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 400 + b"%%EOF\n"


def polish_body(rng: random.Random) -> str:
    """A message as a shop writes it: 300-800 characters of Polish, with some Markdown."""
    target = rng.randint(300, 800)
    sentences: list[str] = []
    while True:
        sentence = rng.choice(SENTENCES)
        if len("\n\n".join([*sentences, sentence])) > target and len("\n\n".join(sentences)) >= 300:
            return "\n\n".join(sentences)
        sentences.append(sentence)


def plan(count: int, channel: str) -> list[list[str]]:
    """The channels of each message to queue, `count` deliveries in all: with both channels, each message goes
    by e-mail and SMS (the shop writes once, the customer reads where they read), an odd one by e-mail."""
    if channel != "both":
        return [[channel]] * count
    return [["email", "sms"]] * (count // 2) + [["email"]] * (count % 2)


def set_up_shop(servers: dict) -> None:
    """The shop's signature data, a default mailbox on the local SMTP server, the SMS account on the stand-in."""
    shop = Shop.current()
    shop.name, shop.phone = "Serwis Naprawa Plus", "+48 12 345 67 89"
    shop.address, shop.opening_hours = "ul. Długa 12\n31-146 Kraków", "pn–pt 9:00–18:00, sob 10:00–14:00"
    create_mailbox(name="Serwis", email=servers["smtp_username"], display_name="Serwis Naprawa Plus",
                   smtp_host=servers["smtp_host"], smtp_port=servers["smtp_port"], smtp_security="starttls",
                   username=servers["smtp_username"], password=servers["smtp_password"], actor="cli")
    configure_sms(servers["account_sid"], servers["auth_token"], from_number="+48732100200",
                  api_base_url=servers["twilio_url"], actor="cli", source="cli")
    db.session.commit()


def queue_deliveries(count: int, channel: str) -> dict[str, int]:
    """Messages through compose(), several per repair thread, then every delivery made due now (queued).

    Returns how many deliveries each channel got.
    """
    rng = random.Random(SEED)
    pdf = store(io.BytesIO(PDF), "protokół naprawy.pdf")
    messages = plan(count, channel)
    repair = customer = None
    for number, channels in enumerate(messages):
        if number % MESSAGES_PER_THREAD == 0:
            person = number // MESSAGES_PER_THREAD
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            customer = create_customer(name=name, email=f"klient{person}@example.com",
                                       phone=f"+4860{person:07d}", actor="cli", source="import")
            repair = create_repair(customer=customer, device=rng.choice(DEVICES), actor="cli", source="import")
        compose(customer=customer, repair=repair, channels=channels, body=polish_body(rng), source="cli",
                subject=SUBJECTS[number % MESSAGES_PER_THREAD], automatic=number % AUTOMATIC_EVERY == 0,
                attachments=[pdf] if number % PDF_EVERY == 0 else [])
        if number % 200 == 199:
            db.session.commit()
    db.session.execute(update(Delivery).values(status="queued", next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    return Counter(name for channels in messages for name in channels)


# ---------------------------------------------------------------- timing the drain


class TimedChannels(Mapping):
    """The app's channels for dispatch_pass(registry=...), noting when work on a delivery starts and its channel.

    The drain is cut at each start of a send, and for a channel that begins a send and reads its result later
    (e-mail), also where its result is asked for: each piece goes to the channel whose work starts it, up to the
    next cut (its send or the recording of its result, and checking the next claim); the first also carries the
    pass's claim. The pieces add up to the whole drain, so a mixed run splits its time between the channels
    without leaving anything out. (Cutting only at sends charged each e-mail's recording to the SMS sent next.)
    """

    def __init__(self) -> None:
        self.starts: list[tuple[float, str]] = []

    def __getitem__(self, name: str) -> "_TimedChannel":
        return _TimedChannel(get_channel(name), self.starts)

    def __iter__(self) -> Iterator[str]:
        return iter(CHANNELS)

    def __len__(self) -> int:
        return len(CHANNELS)

    def seconds_by_channel(self, began: float, ended: float) -> dict[str, float]:
        seconds: Counter[str] = Counter()
        edges = [began, *(at for at, _name in self.starts[1:]), ended]
        for (_at, name), start, end in zip(self.starts, edges, edges[1:]):
            seconds[name] += end - start
        return dict(seconds)


class _TimedChannel:
    def __init__(self, channel, starts: list[tuple[float, str]]):
        self._channel, self._starts = channel, starts

    def __getattr__(self, name: str):
        return getattr(self._channel, name)

    def open_session(self) -> "_TimedSession":
        return _TimedSession(self._channel.open_session(), self._channel.name, self._starts)


class _TimedSession:
    def __init__(self, session, name: str, starts: list[tuple[float, str]]):
        self._session, self._name, self._starts = session, name, starts

    def send(self, delivery):
        self._starts.append((time.perf_counter(), self._name))
        return self._session.send(delivery)

    def __getattr__(self, name: str):
        if name != "begin":
            raise AttributeError(name)
        begin = self._session.begin  # AttributeError for a session that cannot begin a send (it sends)

        def timed_begin(delivery):
            self._starts.append((time.perf_counter(), self._name))
            outcome = begin(delivery)

            def timed_outcome():
                self._starts.append((time.perf_counter(), self._name))
                return outcome()
            return timed_outcome
        return timed_begin

    def close(self) -> None:
        self._session.close()


@dataclass
class Drain:
    passes: int
    seconds: float
    cpu_seconds: float  # this process's user + system time: what the dispatcher costs whatever else runs
    seconds_by_channel: dict[str, float]
    counts: Counter
    tracemalloc_peak: int | None


def drain(limit: int, trace_memory: bool, profile: str | None) -> Drain:
    """Run dispatch passes until one claims nothing; only this is timed."""
    registry = TimedChannels()
    counts: Counter = Counter()
    profiler = cProfile.Profile() if profile else None
    if trace_memory:
        tracemalloc.start()
    cpu_began = time.process_time()
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    passes = 0
    while True:
        result = dispatch_pass(registry=registry, limit=limit)
        passes += 1
        counts.update(result)
        if not result["claimed"]:
            break
    if profiler:
        profiler.disable()
    ended = time.perf_counter()
    cpu_seconds = time.process_time() - cpu_began
    peak = None
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if profiler:
        profiler.dump_stats(profile)
    return Drain(passes, ended - began, cpu_seconds, registry.seconds_by_channel(began, ended), counts, peak)


# ---------------------------------------------------------------- the run


@dataclass
class Run:
    """One measured drain and what the servers got."""

    database: str
    queued: Counter
    drain: Drain
    rss_before: float  # MiB, this process's peak resident memory before the drain
    rss_after: float
    received: dict[str, int]

    def per_second(self, channel: str | None = None) -> float:
        """Deliveries per second of the channel (its share of the drain), or of the whole drain."""
        if channel is None:
            return sum(self.queued.values()) / self.drain.seconds
        return self.queued[channel] / self.drain.seconds_by_channel[channel]


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(args: argparse.Namespace) -> Run:
    """Set up a fresh shop with its servers, queue the deliveries, time the drain and check what arrived."""
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as workdir:
        servers = Servers(workdir)
        try:
            app = create_app({
                "INSTANCE_PATH": str(Path(workdir) / "instance"), "DATABASE_URL": args.database,
                "SCHEDULER_ENABLED": False, "SMTP_CA_FILE": servers.info["cafile"],
                "PUBLIC_BASE_URL": "https://serwis.example",
            })
            with app.app_context():
                upgrade()
                if db.session.scalar(select(func.count()).select_from(Delivery)):
                    sys.exit("the database already has deliveries: give the benchmark an empty database")
                set_up_shop(servers.info)
                queued = queue_deliveries(args.count, args.channel)
                database = db.engine.url.render_as_string(hide_password=True)
                db.session.remove()  # the drain starts with an empty session, as a scheduler job does

                rss_before = maxrss_mib()
                result = drain(args.limit, args.tracemalloc, args.profile)
                rss_after = maxrss_mib()
                statuses = dict(db.session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)).all())
                db.session.remove()
                db.engine.dispose()
            received = servers.counts()
        finally:
            servers.stop()
    run = Run(database, queued, result, rss_before, rss_after, received)
    check(run, statuses)
    return run


def check(run: Run, statuses: dict[str, int]) -> None:
    """Refuse a run in which not every delivery was sent, or the servers did not get exactly one each."""
    total, received = sum(run.queued.values()), run.received
    problems = []
    if statuses != {"sent": total}:
        problems.append(f"not every delivery was sent: {statuses}")
    if received["mails"] != run.queued["email"]:
        problems.append(f"the SMTP server got {received['mails']} mails, not {run.queued['email']}")
    if not received["twilio_requests"] == received["sms"] == run.queued["sms"]:
        problems.append(f"the Twilio server got {received['twilio_requests']} requests creating "
                        f"{received['sms']} SMS, not {run.queued['sms']}")
    if problems:
        sys.exit("; ".join(problems))


def report(run: Run, limit: int) -> None:
    total, result, received = sum(run.queued.values()), run.drain, run.received
    print(f"Outbox benchmark: {total} deliveries, one dispatcher, passes of up to {limit}, on {run.database}")
    print(f"{'channel':<8} {'deliveries':>10} {'seconds':>9} {'per second':>11}")
    for channel in CHANNELS:
        if run.queued[channel]:
            print(f"{channel:<8} {run.queued[channel]:>10} {result.seconds_by_channel[channel]:>9.2f} "
                  f"{run.per_second(channel):>11.1f}")
    print(f"{'total':<8} {total:>10} {result.seconds:>9.2f} {run.per_second():>11.1f}")
    print(f"dispatcher CPU time {result.cpu_seconds:.2f} s, {1000 * result.cpu_seconds / total:.2f} ms per delivery "
          f"(what the machine's other load cannot inflate)")
    traced = (f"{result.tracemalloc_peak / 2**20:.1f} MiB" if result.tracemalloc_peak is not None
              else "not traced (--tracemalloc, which slows the drain)")
    print(f"peak memory: maxrss {run.rss_after:.1f} MiB ({run.rss_before:.1f} MiB before the drain); "
          f"tracemalloc peak during the drain: {traced}")
    print(f"{result.passes} passes {dict(result.counts)}; SMTP sessions {received['smtp_sessions']}, "
          f"TCP connections to Twilio {received['twilio_connections']}")
    print(f"verified: {total}/{total} deliveries sent; the SMTP server received {received['mails']} mails, "
          f"the Twilio server {received['twilio_requests']} requests")


def summary(runs: list[Run]) -> None:
    """Best and median rates over repeated runs (the machine's other load makes single runs noisy)."""
    print(f"\n{len(runs)} runs, deliveries per second, best / median:")
    for channel in (*CHANNELS, None):
        if channel is None or runs[0].queued[channel]:
            rates = [run.per_second(channel) for run in runs]
            print(f"  {channel or 'total':<8} {max(rates):8.1f} / {statistics.median(rates):.1f}")
    print(f"  peak memory: maxrss {max(run.rss_after for run in runs):.1f} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="deliveries to queue (default 2000)")
    parser.add_argument("--channel", choices=("both", *CHANNELS), default="both",
                        help="both: half e-mail, half SMS (default); email or sms: all of them on one channel")
    parser.add_argument("--database", help="an empty PostgreSQL database (postgresql://...); default: a SQLite "
                                           "file in a temporary instance directory")
    parser.add_argument("--limit", type=int, default=200, help="deliveries claimed per pass (dispatch_pass's default)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs, each on a fresh database, then the best and median rates (SQLite only)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace Python allocations during the drain for their peak (the drain runs slower)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the drain to FILE")
    args = parser.parse_args(argv)
    if args.count < 1 or args.repeat < 1:
        parser.error("--count and --repeat must be at least 1")
    if args.repeat > 1 and args.database:
        parser.error("--repeat needs a fresh database for each run: use it without --database")
    runs = []
    for _ in range(args.repeat):
        runs.append(measure(args))
        report(runs[-1], args.limit)
    if len(runs) > 1:
        summary(runs)


if __name__ == "__main__":
    main()
