"""The app deployed as docs/deploy/ sets it up: PostgreSQL, Redis, two web instances run as the web unit and the
compose file run them (`gunicorn -c gunicorn.conf.py wsgi:app`, two workers each, SCHEDULER_ENABLED=0) with the
settings of docs/deploy/repair-inbox.env (one secret key, ATTACHMENT_STORAGE=database, RATELIMIT_STORAGE_URI on
Redis, TRUSTED_PROXIES=1) and an instance directory each, as separate machines have; one `flask scheduler run`
and a second one started by mistake. Real processes, real SMTP and IMAP servers; every wait polls a condition
against a deadline. PostgreSQL runs only."""
from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest

from app.customers import create_customer
from app.extensions import db
from app.models import Delivery, Message, Shop
from app.panel import credentials
from helpers import PASSWORD, TEST_CONFIG, make_user
from inbound_helpers import plain_mail
from plugins.database import DATABASE_CHOICE
from topology_helpers import Deployment, LeaseReader, StaffBrowser, app_environment, wait_until

# What docs/deploy/repair-inbox.env and the web unit set (tests/test_deploy_files.py checks these names there).
DEPLOYED_SETTINGS = {"ATTACHMENT_STORAGE": "database", "TRUSTED_PROXIES": "1"}
WEB_WORKERS = 2

LEASE_SECONDS = 3
CUSTOMER = "jan.kowalski@example.com"
ATTACHMENT = bytes(range(256)) * 64 + "zdjęcie ekranu".encode()


@pytest.fixture(autouse=True)
def postgresql_only(pytestconfig):
    if not pytestconfig.stash[DATABASE_CHOICE].is_postgresql:
        pytest.skip("the deployment of several machines runs on PostgreSQL: the PostgreSQL run covers it")


def compose(browser: StaffBrowser, customer_id: int, body: str, files=None) -> int:
    """Write to the customer by e-mail through the compose form; returns the thread's id."""
    token = browser.csrf(f"/compose?customer_id={customer_id}")
    response = browser.post("/compose", data={"csrf_token": token, "customer_id": str(customer_id),
                                              "channels": "email", "body": body}, files=files or {"_": ("", b"")})
    assert response.status_code == 302, response.text[:1000]
    return int(re.search(r"/threads/(\d+)", response.headers["Location"]).group(1))


def shows(browser: StaffBrowser, path: str, text: str) -> bool:
    return text in browser.get(path).text


def same_browser_on(browser: StaffBrowser, base_url: str) -> StaffBrowser:
    """The same browser (its cookies) sent to another instance, as a load balancer does."""
    other = StaffBrowser(base_url)
    other.session.cookies.update(browser.session.cookies)
    return other


def test_two_web_instances_and_one_scheduler_share_limits_files_mail_and_survive_a_killed_scheduler(
        app, database_url, tmp_path, redis_server, smtp_server, imap_server):
    shop = Shop.current()
    shop.undo_seconds = 0  # a written message is due at once
    staff = make_user("staff@shop.example")
    smtp_server.username, smtp_server.password = imap_server.user, imap_server.password  # one login for both
    imap_server.make_mailbox(security="none", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                             smtp_security="starttls", poll_interval=15)
    customer = create_customer(name="Jan Kowalski", email=CUSTOMER, actor="test", source="staff")
    customer.panel_state = "active"
    db.session.commit()
    env = app_environment(
        database_url, app.instance_path, TEST_CONFIG["SECRET_KEY"], RATELIMIT_STORAGE_URI=redis_server.url,
        SMTP_CA_FILE=smtp_server.cafile, SCHEDULER_LEASE_SECONDS=LEASE_SECONDS, OUTBOX_SENDING_STALE=5,
        PUBLIC_BASE_URL="http://shop.example", LOGIN_LIMIT_PER_ACCOUNT="5 per minute", **DEPLOYED_SETTINGS)
    lease = LeaseReader(database_url)
    with Deployment(env, tmp_path, own_instance_dirs=True) as deployment:
        web_a, web_b = deployment.add_webs(2, workers=WEB_WORKERS)
        first = deployment.add_scheduler()
        wait_until(lambda: lease.holder_pid() == first.pid, 60, "the scheduler never took its lease", [first])
        mistake = deployment.add_scheduler()
        wait_until(lambda: "another scheduler holds the lease" in mistake.output(), 60,
                   "the second scheduler did not wait", [mistake])
        a, b = StaffBrowser(web_a.url), StaffBrowser(web_b.url)

        # Sign-in limits count across both instances: three failures on A and two on B use up five a minute.
        failures = [browser.sign_in(staff.email, "wrong password").status_code for browser in (a, a, a, b, b)]
        assert 429 not in failures
        assert a.sign_in(staff.email, "wrong password").status_code == 429
        assert b.sign_in(staff.email, PASSWORD).status_code == 429
        redis_server.flush()  # a minute later, as far as the limits know
        assert a.sign_in(staff.email, PASSWORD).status_code == 302
        assert b.sign_in(staff.email, PASSWORD).status_code == 302

        # A session started on A works on B; signing out on B ends it on A too (the sessions are in the database).
        elsewhere = StaffBrowser(web_a.url)
        assert elsewhere.sign_in(staff.email, PASSWORD).status_code == 302
        on_b = same_browser_on(elsewhere, web_b.url)
        assert on_b.get("/").status_code == 200
        assert on_b.post("/logout", data={"csrf_token": on_b.csrf("/")}).status_code == 302
        assert elsewhere.get("/").status_code == 302  # back to the sign-in page
        # Likewise a customer's panel session: signed in through a one-time link on A, signed out on B.
        panel = f"/p/{shop.slug}"
        link = credentials.issue_link(customer, "login")
        db.session.commit()
        customer_a = StaffBrowser(web_a.url)
        assert customer_a.post(f"{panel}/s/{link}", data={"csrf_token": customer_a.csrf(f"{panel}/s/{link}")}
                               ).status_code == 302
        customer_b = same_browser_on(customer_a, web_b.url)
        assert customer_b.get(f"{panel}/").status_code == 200
        assert customer_b.post(f"{panel}/sign-out", data={"csrf_token": customer_b.csrf(f"{panel}/")}
                               ).status_code == 302
        assert customer_a.get(f"{panel}/").status_code == 302

        # A file uploaded through A downloads through B from the thread page's link (kept in the database, no
        # instance directory holds it); the message written on A is sent once, with the file.
        thread_id = compose(a, customer.id, "Wycena w załączniku.",
                            files={"attachments": ("wycena.bin", ATTACHMENT, "application/octet-stream")})
        link = re.search(r'<a href="([^"]+/attachments/\d+)">wycena.bin</a>', b.get(f"/threads/{thread_id}").text)
        assert link, "no download link on B's thread page"
        download = b.get(link.group(1))
        assert download.status_code == 200 and download.content == ATTACHMENT
        assert not [path for path in tmp_path.glob("instance-*/attachments/**/*") if path.is_file()]

        [sent] = smtp_server.wait_for(1, timeout=60)
        assert sent.rcpt_tos == [CUSTOMER]
        attached = [part.get_content() for part in message_from_bytes(sent.data, policy=policy.default)
                    .iter_attachments()]
        assert attached == [ATTACHMENT]

        def delivery_states():
            db.session.rollback()
            return sorted(db.session.scalars(db.select(Delivery.status)))

        wait_until(lambda: delivery_states() == ["sent"], 60, "the delivery was never marked sent",
                   deployment.schedulers)
        assert len(smtp_server.messages) == 1

        # The customer's reply, polled by the scheduler, shows on both instances.
        our_id = message_from_bytes(sent.data, policy=policy.default)["Message-ID"]
        imap_server.append(plain_mail(sender=f"Jan Kowalski <{CUSTOMER}>", subject="Re: wycena",
                                      body="Dziękuję, proszę naprawiać.", message_id="<reply-1@example.com>",
                                      extra=f"In-Reply-To: {our_id}\nReferences: {our_id}"))
        for browser in (a, b):
            wait_until(lambda: shows(browser, f"/threads/{thread_id}", "proszę naprawiać"), 90,
                       "the reply never showed", deployment.schedulers, every=0.5)

        # kill -9 the scheduler while it hands a mail to the SMTP server: three more messages written on B, the
        # second mail's answer held by the server until the holder is dead.
        holder = deployment.scheduler_with_pid(lease.holder_pid())
        smtp_server.stall(3)
        bodies = [f"Wiadomość numer {number}." for number in range(1, 4)]
        for body in bodies:
            compose(b, customer.id, body)
        assert smtp_server.stalled.wait(60), "the dispatcher never reached the SMTP server"
        holder.kill()
        smtp_server.resume()
        again = deployment.add_scheduler()  # started again; the one started by mistake may win the lease
        wait_until(lambda: deployment.scheduler_with_pid(lease.holder_pid()) is not None, 60,
                   "no scheduler took over", deployment.schedulers)
        imap_server.append(plain_mail(sender=f"Jan Kowalski <{CUSTOMER}>", subject="Re: wycena",
                                      body="Jeszcze jedno pytanie.", message_id="<reply-2@example.com>",
                                      extra=f"In-Reply-To: {our_id}\nReferences: {our_id}"))

        def settled():
            """Every delivery sent, or in doubt (its hand-over had started when the scheduler died)."""
            db.session.rollback()
            rows = db.session.execute(db.select(Delivery.status, Delivery.uncertain)).all()
            done = len(rows) == 4 and all(status == "sent" or (status == "sending" and uncertain)
                                          for status, uncertain in rows)
            return done and [status for status, _uncertain in rows]

        states = wait_until(settled, 120, "the deliveries never settled after the kill", [again, mistake],
                            every=0.2)
        for browser in (a, b):
            wait_until(lambda: shows(browser, f"/threads/{thread_id}", "Jeszcze jedno pytanie"), 90,
                       "the reply after the restart never showed", [again, mistake], every=0.5)

        # Nothing lost, nothing doubled: every message reached the SMTP server exactly once. Those whose hand-over
        # had started when the scheduler died are in doubt (the server has them): marked uncertain for staff, not
        # sent again; the rest went back to the queue and were sent by the scheduler that took over.
        texts = [message_from_bytes(mail.data, policy=policy.default).get_body(("plain",)).get_content()
                 for mail in smtp_server.messages]
        assert len(texts) == 4
        for body in bodies:
            assert sum(body in text for text in texts) == 1, body
        db.session.rollback()
        assert states.count("sent") >= 2 and "sending" in states  # the stalled one at least is in doubt
        replies = db.session.scalars(db.select(Message.id).where(Message.direction == "in")).all()
        assert len(replies) == 2
        assert sum(lease.holder_pid() == scheduler.pid for scheduler in deployment.schedulers) == 1
    lease.close()
