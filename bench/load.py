"""Load on the deployment of a bigger shop: PostgreSQL, Redis, two web instances (gunicorn, `--workers` workers of
8 threads each, SCHEDULER_ENABLED=0), one `flask scheduler run` and a second one waiting on its lease, with the
settings of docs/deploy/repair-inbox.env (files in the database, an instance directory per process), as
tests/test_topology.py starts them (tests/topology_helpers.py).

    .venv/bin/python bench/load.py [--duration 180] [--staff 30] [--sms-rate 10] [--backlog 1500]
                                   [--customers 300] [--threads 300] [--workers 2] [--keep-logs DIR] [--single]

`--single` runs the same load on the small shop's deployment instead, for comparison: SQLite, one gunicorn
instance (one worker of 8 threads) that also runs the jobs (SCHEDULER_ENABLED=1), sign-in limits in memory.

The shop: `--customers` customers with e-mail and mobile, `--threads` threads made of their mail (polled once
before the run), one mailbox (SMTP stand-in and Dovecot), a Twilio stand-in account. Then, for `--duration`
seconds, all together:
- `--staff` members of staff, each a thread with its own signed-in requests session on one of the instances
  (alternating), open the inbox, open a thread from it, and one time in six reply to it through the thread's reply
  form (its default channels: e-mail and/or SMS), thinking 0.5–2.5 s between requests;
- incoming SMS from the customers, signed as Twilio signs them, posted to the instances in turn at `--sms-rate`
  a second (open loop: a slow answer does not slow the rate);
- `--backlog` customer mails appended to the IMAP inbox at the start, which the scheduler's poller ingests.

It prints, as markdown, p50/p95/p99 in milliseconds per page, the throughput of each, the rate at which the
backlog was ingested (from the first to the last mail recorded), the SMS received, and the replies' deliveries
sent a second with their lag from written to sent. Requests that fail (5xx, refused) are counted and shown.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the app, the tests' servers and deployment helpers

import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402
from urllib3.util import Retry  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.sms import configure_sms  # noqa: E402
from app.customers import create_customer  # noqa: E402
from app.extensions import db  # noqa: E402
from app.inbound.poll import poll_due_mailboxes  # noqa: E402
from app.messaging.compose import compose  # noqa: E402
from app.models import Customer, Delivery, Message, Shop, User, utcnow  # noqa: E402
from app.outbox import dispatch_pass  # noqa: E402
from app.models.users import hash_password  # noqa: E402
from inbound_helpers import plain_mail  # noqa: E402
from plugins.database import PostgresCluster, _postgres_bindir  # noqa: E402
from helpers import free_port  # noqa: E402
from servers.imap import Dovecot, ImapAccount  # noqa: E402
from servers.redis import RedisServer  # noqa: E402
from servers.smtp import make_certificate, running_smtp_server  # noqa: E402
from servers.twilio import TwilioServer, sign  # noqa: E402
from test_topology import DEPLOYED_SETTINGS  # noqa: E402
from topology_helpers import Deployment, LeaseReader, StaffBrowser, app_environment, wait_until  # noqa: E402

PASSWORD = "bench password 123"
SECRET_KEY = "bench-secret-key"
PUBLIC_BASE_URL = "http://shop.example"
SHOP_NUMBER = "+48500100200"
SMS_PATH = "/webhooks/twilio/sms"
SEED = 7
SENTENCES = ["Dzień dobry, czy telefon jest już gotowy?", "Proszę o wycenę wymiany ekranu.",
             "Kiedy mogę odebrać laptopa?", "Zgadzam się na naprawę za podaną kwotę.",
             "Czy naprawa obejmuje gwarancję?", "Dziękuję za szybką odpowiedź!",
             "Pralka nadal przecieka po naprawie.", "Czy mogę zapłacić kartą przy odbiorze?"]


class Timings:
    """Latencies (seconds) and outcomes per page, from many threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.exceptions: dict[str, int] = defaultdict(int)  # "page: exception class" for requests that failed
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def timed(self, page: str, call, ok=(200, 302)):
        started = time.perf_counter()
        try:
            response = call()
        except requests.RequestException as exc:
            with self.lock:
                self.errors[page] += 1
                self.exceptions[f"{page}: {type(exc).__name__}"] += 1
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.times[page].append(elapsed)
            self.statuses[page][response.status_code] += 1
            if response.status_code not in ok:
                self.errors[page] += 1
        return response


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def mail_from(customer: int, body: str, number: int) -> bytes:
    return plain_mail(sender=f"Klient {customer} <klient{customer}@example.com>", subject=f"Zgłoszenie {number}",
                      body=body, message_id=f"<bench-{number}-{customer}@example.com>")


def prepare_shop(app, args, smtp, imap: ImapAccount, twilio: TwilioServer) -> None:
    """Migrate, then the shop: staff, customers, a mailbox, the SMS account and the first threads (polled once)."""
    with app.app_context():
        upgrade()
        shop = Shop.current()
        shop.undo_seconds = 0
        shop.locale = "pl"
        password_hash = hash_password(PASSWORD)
        for number in range(args.staff):
            db.session.add(User(email=f"staff{number}@shop.example", name=f"Pracownik {number}", role="staff",
                                password_hash=password_hash))
        for number in range(args.customers):
            create_customer(name=f"Klient {number}", email=f"klient{number}@example.com",
                            phone=f"+48600{number:06d}", actor="cli", source="cli")
        imap.make_mailbox(security="none", smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="starttls",
                          poll_interval=15, after_fetch="seen")
        configure_sms(twilio.account_sid, twilio.auth_token, from_number=SHOP_NUMBER, api_base_url=twilio.url,
                      actor="cli")
        db.session.commit()
        rng = random.Random(SEED)
        imap.append_many([mail_from(rng.randrange(args.customers), rng.choice(SENTENCES), number)
                          for number in range(args.threads)])
        poll_due_mailboxes()
        # An SMS from the shop to every customer, so that their texts during the run answer it (an SMS from a
        # number the shop has not texted lately is held for staff instead).
        for customer in db.session.scalars(select(Customer)):
            compose(customer=customer, channels=["sms"], body="Dzień dobry, Twoje zgłoszenie przyjęliśmy.",
                    source="staff")
        db.session.commit()
        while dispatch_pass().get("claimed"):
            pass
        db.session.remove()
        db.engine.dispose()


class FreshConnectionForPosts(HTTPAdapter):
    """Keep-alive as a browser does it, without losing a POST to it. gunicorn closes a connection idle for 2 s
    (its keep-alive) while a member of staff thinks for up to 2.5 s: a request sent on it meets a closed
    connection. A GET is then sent again on a new one (the adapter's Retry, GET only). A POST is never sent twice,
    as it may have reached the app; instead it goes out on a new connection each time, so that it cannot meet one
    closed while idle. A POST that fails on its own connection (refused, reset, timed out) is a real failure and
    is counted as one."""

    def send(self, request, **kwargs):
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.poolmanager.clear()  # drops the idle connections (this session is one staff thread's own)
        return super().send(request, **kwargs)


class Staff(threading.Thread):
    """One member of staff: inbox, a thread, sometimes a reply, with think time, until `stop_at`."""

    HIDDEN = re.compile(r'<input type="hidden" name="(customer_id|repair_id|ticket_id|thread_id|seen_message_id|'
                        r'csrf_token)" value="([^"]*)"')
    CHANNEL = re.compile(r'name="channels" value="(\w+)"[^>]*?\bchecked')

    def __init__(self, number: int, base_url: str, timings: Timings, stop_at: float):
        super().__init__(name=f"staff-{number}", daemon=True)
        self.number, self.timings, self.stop_at = number, timings, stop_at
        self.browser = StaffBrowser(base_url)
        self.browser.session.mount("http://", FreshConnectionForPosts(max_retries=Retry(
            total=1, connect=1, read=1, status=0, other=0, allowed_methods={"GET"}, raise_on_status=False)))
        self.rng = random.Random(SEED + number)
        self.replies = 0

    def sign_in(self) -> None:
        """Sign in, and open the inbox and a thread once (untimed: each process compiles its templates first)."""
        response = self.browser.sign_in(f"staff{self.number}@shop.example", PASSWORD)
        assert response.status_code == 302, f"staff{self.number} could not sign in: {response.status_code}"
        ids = re.findall(r'href="/threads/(\d+)"', self.browser.get("/").text)
        if ids:
            self.browser.get(f"/threads/{ids[0]}")

    def run(self) -> None:
        while time.monotonic() < self.stop_at:
            inbox = self.timings.timed("inbox", lambda: self.browser.get("/"))
            self.think()
            ids = re.findall(r'href="/threads/(\d+)"', inbox.text) if inbox is not None else []
            if not ids or time.monotonic() >= self.stop_at:
                continue
            thread_id = self.rng.choice(ids)
            page = self.timings.timed("thread", lambda: self.browser.get(f"/threads/{thread_id}"))
            self.think()
            if page is None or page.status_code != 200 or self.rng.random() >= 1 / 6:
                continue
            form = dict(self.HIDDEN.findall(page.text))
            channels = self.CHANNEL.findall(page.text) or ["email"]
            data = {**form, "channels": channels, "body": f"Dzień dobry, odpowiedź numer {self.replies} od "
                                                            f"pracownika {self.number}. Pozdrawiamy, serwis."}
            if "thread_id" in form and time.monotonic() < self.stop_at:
                self.timings.timed("reply (POST)", lambda: self.browser.post(
                    "/compose", data=data, files={"attachments": ("", b"")}), ok=(302, 409))
                self.replies += 1
                self.think()

    def think(self) -> None:
        time.sleep(self.rng.uniform(0.5, 2.5))  # a person reading: load shape, not synchronisation


def send_sms(webs, twilio: TwilioServer, timings: Timings, customers: int, rate: float, stop_at: float) -> int:
    """Signed incoming SMS at `rate` a second to the instances in turn, on a schedule that slow answers do not
    hold up; returns how many were posted."""
    rng = random.Random(SEED)
    url = PUBLIC_BASE_URL + SMS_PATH
    posted = 0
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="sms") as pool:
        next_at = time.monotonic()
        while next_at < stop_at:
            params = twilio.incoming_params(f"+48600{rng.randrange(customers):06d}", rng.choice(SENTENCES),
                                            SHOP_NUMBER)
            headers = {"X-Twilio-Signature": sign(twilio.auth_token, url, params)}
            target = webs[posted % len(webs)].url + SMS_PATH
            pool.submit(timings.timed, "SMS webhook (POST)",
                        lambda target=target, params=params, headers=headers: requests.post(
                            target, data=params, headers=headers, timeout=30), (200, 204))
            posted += 1
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
    return posted


class Counts:
    """Samples, once a second, how many received mails and SMS and how many sent deliveries the database holds."""

    def __init__(self, app):
        self.app = app
        self.samples: list[tuple[float, int, int, int]] = []  # (monotonic, mails in, SMS in, deliveries sent)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="counts", daemon=True)

    def sample(self) -> tuple[int, int, int]:
        with self.app.app_context():
            mails = db.session.scalar(select(func.count(Message.id)).where(Message.direction == "in",
                                                                           Message.channel == "email"))
            sms = db.session.scalar(select(func.count(Message.id)).where(Message.direction == "in",
                                                                         Message.channel == "sms"))
            sent = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.status == "sent"))
            db.session.remove()
        return mails, sms, sent

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append((time.monotonic(), *self.sample()))
            self.stopping.wait(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--staff", type=int, default=30)
    parser.add_argument("--sms-rate", type=float, default=10.0, help="incoming SMS a second")
    parser.add_argument("--backlog", type=int, default=1500, help="mails arriving at the start")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--threads", type=int, default=300, help="threads the shop has before the run")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers of each web instance (default 2, as docs/deploy/compose.yaml; "
                             "--single: always 1)")
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs here")
    parser.add_argument("--single", action="store_true",
                        help="one process on SQLite running the jobs too, instead of PostgreSQL, Redis, 2 web + 1 scheduler")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ri-load-"))
    bindir = _postgres_bindir()
    if bindir is None:
        sys.exit("needs the PostgreSQL server binaries (apt-get install postgresql)")
    cluster, redis, dovecot, twilio = PostgresCluster(bindir, free_port()), RedisServer(), Dovecot(), TwilioServer()
    try:
        if not args.single:
            cluster.start()
            redis.start()
        dovecot.start()
        twilio.start()
        imap = ImapAccount(dovecot, dovecot.add_user())
        with running_smtp_server(*make_certificate(work)) as smtp:
            smtp.username, smtp.password = imap.user, imap.password
            instance = work / "instance"
            database_url = f"sqlite:///{instance / 'repair-inbox.db'}" if args.single else cluster.url
            app = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance), "SECRET_KEY": SECRET_KEY,
                              "SCHEDULER_ENABLED": False, "PUBLIC_BASE_URL": PUBLIC_BASE_URL})
            print(f"preparing: {args.customers} customers, {args.threads} threads, {args.staff} staff", flush=True)
            prepare_shop(app, args, smtp, imap, twilio)
            env = app_environment(database_url, instance, SECRET_KEY, SMTP_CA_FILE=smtp.cafile,
                                  PUBLIC_BASE_URL=PUBLIC_BASE_URL, LOGIN_LIMIT_PER_IP="1000 per minute",
                                  **({"SCHEDULER_ENABLED": 1} if args.single else
                                     {"RATELIMIT_STORAGE_URI": redis.url, **DEPLOYED_SETTINGS}))
            logs = work / "logs"
            logs.mkdir()
            with Deployment(env, logs, own_instance_dirs=not args.single) as deployment:
                webs = deployment.add_webs(1) if args.single else deployment.add_webs(2, workers=args.workers)
                if not args.single:
                    deployment.add_scheduler()
                    deployment.add_scheduler()  # started by mistake: waits on the lease
                lease = LeaseReader(database_url)
                wait_until(lambda: lease.holder_pid() is not None, 60, "no scheduler took the lease",
                           deployment.processes)
                lease.close()
                timings = Timings()
                staff = [Staff(number, webs[number % len(webs)].url, timings, 0) for number in range(args.staff)]
                for member in staff:
                    member.sign_in()
                counts = Counts(app)
                mails_before, sms_before, sent_before = counts.sample()
                started_at = utcnow()
                start = time.monotonic()
                stop_at = start + args.duration
                counts.thread.start()
                print(f"load for {args.duration:.0f} s: {args.staff} staff, {args.sms_rate:g} SMS/s, "
                      f"{args.backlog} mails arriving", flush=True)
                rng = random.Random(SEED + 1)
                backlog = threading.Thread(target=imap.append_many, args=(
                    [mail_from(rng.randrange(args.customers), rng.choice(SENTENCES), args.threads + number)
                     for number in range(args.backlog)],), name="backlog", daemon=True)
                backlog.start()
                for member in staff:
                    member.stop_at = stop_at
                    member.start()
                sms_posted = send_sms(webs, twilio, timings, args.customers, args.sms_rate, stop_at)
                for member in staff:
                    member.join(timeout=120)
                backlog.join(timeout=600)
                elapsed = time.monotonic() - start
                # The deliveries written during the run, and the backlog, get a minute to finish.
                target_mails = mails_before + args.backlog
                wait_until(lambda: counts.samples and counts.samples[-1][1] >= target_mails, 300,
                           "the backlog was not ingested", deployment.schedulers, every=1)
                with app.app_context():
                    written = db.session.scalars(select(Delivery).join(Message).where(
                        Message.created_at >= started_at, Message.direction == "out")).all()
                    pending = [d.id for d in written]
                    db.session.remove()

                def replies_done():
                    with app.app_context():
                        left = db.session.scalar(select(func.count(Delivery.id)).where(
                            Delivery.id.in_(pending), Delivery.status.in_(("queued", "scheduled", "sending"))))
                        db.session.remove()
                    return left == 0

                wait_until(replies_done, 120, "the replies were not all sent", deployment.schedulers, every=1)
                counts.stopping.set()
                counts.thread.join()
                with app.app_context():
                    written = db.session.scalars(select(Delivery).join(Message).where(
                        Message.created_at >= started_at, Message.direction == "out")).all()
                    lags = [(d.sent_at - d.created_at).total_seconds() for d in written if d.sent_at]
                    sent_during = [d for d in written if d.sent_at and d.sent_at <= started_at + timedelta(
                        seconds=elapsed)]
                    states = defaultdict(int)
                    for delivery in written:
                        states[delivery.status] += 1
                    mail_times = db.session.execute(select(func.count(Message.id), func.min(Message.created_at),
                                                           func.max(Message.created_at)).where(
                        Message.direction == "in", Message.channel == "email", Message.created_at >= started_at)).one()
                    sms_in = db.session.scalar(select(func.count(Message.id)).where(
                        Message.direction == "in", Message.channel == "sms")) - sms_before
                    db.session.remove()
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for process in deployment.processes:
                        (args.keep_logs / process.log_path.name).write_text(process.output())
            report(args, timings, elapsed, started_at, mail_times, sms_posted, sms_in, lags, sent_during, states,
                   smtp, twilio)
    finally:
        for stop in (twilio.stop, dovecot.remove, redis.stop, cluster.stop):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001  (clean up the rest)
                print(f"clean-up: {exc}", file=sys.stderr)


def report(args, timings: Timings, elapsed, started_at, mail_times, sms_posted, sms_in, lags, sent_during, states,
           smtp, twilio) -> None:
    deployment = ("1 web instance x 1 worker x 8 threads running the jobs too, SQLite" if args.single else
                  f"2 web instances x {args.workers} workers x 8 threads, 1 scheduler (+1 waiting), PostgreSQL, "
                  "Redis, files in the database")
    print(f"\n{args.staff} staff, {args.sms_rate:g} SMS/s, backlog {args.backlog} mails, {elapsed:.0f} s "
          f"({deployment})\n")
    print("| Page | Requests | per second | p50 ms | p95 ms | p99 ms | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for page in ("inbox", "thread", "reply (POST)", "SMS webhook (POST)"):
        values = timings.times.get(page, [])
        if not values:
            print(f"| {page} | 0 | | | | | {timings.errors.get(page, 0)} |")
            continue
        print(f"| {page} | {len(values)} | {len(values) / elapsed:.1f} | {percentile(values, 50) * 1000:.0f} | "
              f"{percentile(values, 95) * 1000:.0f} | {percentile(values, 99) * 1000:.0f} | "
              f"{timings.errors.get(page, 0)} |")
    print()
    mails, first, last = mail_times
    if mails > 1:
        seconds = (last - first).total_seconds()
        print(f"- mail backlog: {mails} mails recorded in {seconds:.1f} s from the first to the last, "
              f"{mails / seconds:.1f} a second; the last {(last - started_at).total_seconds():.0f} s after the "
              "backlog began arriving (the poller looks every 15 s)")
    print(f"- SMS: {sms_posted} posted, {sms_in} recorded ({sms_in / elapsed:.1f} a second)")
    print(f"- replies' deliveries: {sum(states.values())} written ({dict(states)}), {len(sent_during)} sent during "
          f"the run ({len(sent_during) / elapsed:.2f} a second); written to sent p50 "
          f"{percentile(lags, 50):.1f} s, p95 {percentile(lags, 95):.1f} s" if lags else "- no replies sent")
    print(f"- SMTP server got {len(smtp.messages)} mails, Twilio stand-in {len(twilio.messages)} SMS")
    for page, codes in sorted(timings.statuses.items()):
        print(f"- {page}: answers {dict(sorted(codes.items()))}")
    for kind, number in sorted(timings.exceptions.items()):
        print(f"- {kind}: {number} requests got no answer")


if __name__ == "__main__":
    main()
