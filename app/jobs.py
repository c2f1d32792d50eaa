"""The background jobs, in one place: what runs, how often, and how the scheduler is started.

One process runs the jobs: the web process itself (SCHEDULER_ENABLED=1, the default for a small shop), or,
with several web workers, a separate `flask --app wsgi scheduler run` while the workers set SCHEDULER_ENABLED=0.

Whichever it is, the jobs run only while the process holds the database lease "scheduler" (SchedulerRole): a
second scheduler started by mistake waits, and takes over once the holder stopped renewing it (died, hung, lost
the database) and the lease expired. Every job is also safe to run twice at once anyway: deliveries are claimed
one by one, mailbox polls and backups hold their own leases, and the rest are updates that a second run finds
done.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import timedelta

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import delete

from . import leases, sign_in_sessions
from .backups import daily_backup
from .extensions import db
from .inbound.poll import poll_due_mailboxes
from .mailbox_health import notify_broken_mailboxes
from .messaging.reminders import send_due_reminders
from .models import Lease, PanelToken, utcnow
from .outbox import dispatch_pass, purge_outbox
from .sms_balance import check_sms_balance
from .web_requests import expire_requests

log = logging.getLogger(__name__)


def purge_expired_credentials() -> int:
    """Delete panel sign-in tokens and leases that expired more than a day ago, and finished sign-in sessions."""
    cutoff = utcnow() - timedelta(days=1)
    removed = db.session.execute(delete(PanelToken).where(PanelToken.expires_at < cutoff)).rowcount
    removed += sign_in_sessions.purge()
    removed += db.session.execute(delete(Lease).where(Lease.expires_at < cutoff)).rowcount
    db.session.commit()
    return removed


# (function, trigger arguments); each runs inside an app context, never two at once.
JOBS = [
    (purge_expired_credentials, {"trigger": "interval", "hours": 6}),
    (dispatch_pass, {"trigger": "interval", "seconds": 5}),
    # Every mailbox on its own polling interval: checked often, so changed settings apply without rescheduling.
    (poll_due_mailboxes, {"trigger": "interval", "seconds": 15}),
    (purge_outbox, {"trigger": "interval", "days": 1}),
    (notify_broken_mailboxes, {"trigger": "interval", "seconds": 60}),
    # The SMS balance, for Settings → SMS and the low-balance notice; SMSAPI's and Twilio's are one cheap GET.
    (check_sms_balance, {"trigger": "interval", "minutes": 30}),
    # Checked hourly, backs up when the newest backup is a day old: a daily interval would restart with every
    # restart of the process and might never come round. Off unless BACKUP_DIR is set.
    (daily_backup, {"trigger": "interval", "hours": 1}),
    # Reminders after days in a status: checked hourly for the same reason; each goes once per repair whatever
    # runs it (a unique row per repair and reminder), so restarts and a second scheduler send nothing twice.
    (send_due_reminders, {"trigger": "interval", "hours": 1}),
    # Requests from the public form whose code was not typed in time go to the inbox, attached to nobody.
    (expire_requests, {"trigger": "interval", "minutes": 1}),
]


def _in_app_context(app: Flask, func):
    def run():
        with app.app_context():
            try:
                func()
            except Exception:  # a failing job must never stop the scheduler
                log.exception("job %s failed", func.__name__)
                db.session.rollback()

    run.__name__ = func.__name__
    return run


def build_scheduler(app: Flask, scheduler_class=BackgroundScheduler):
    scheduler = scheduler_class(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for func, trigger in JOBS:
        seconds = timedelta(**{k: v for k, v in trigger.items() if k != "trigger"}).total_seconds()
        scheduler.add_job(
            _in_app_context(app, func), id=func.__name__, misfire_grace_time=int(seconds), **trigger
        )
    return scheduler


LEASE = "scheduler"


class SchedulerRole:
    """The jobs of one process, run only while it holds the lease LEASE.

    `run()` (in the foreground or in a thread of its own) takes the lease when it is free or expired, starts the
    jobs, and renews it every third of SCHEDULER_LEASE_SECONDS. It stops the jobs when the lease was taken over
    (the process hung past its expiry) or could not be renewed in time (the database was out of reach), and waits
    to take it again. `stop()` ends `run()`: the jobs finish their pass, and the lease is given up at once so a
    waiting scheduler need not wait for it to expire.
    """

    def __init__(self, app: Flask, scheduler_class=BackgroundScheduler, echo=None):
        self.app = app
        self.scheduler_class = scheduler_class
        self.owner = leases.new_owner()
        self.ttl = timedelta(seconds=int(app.config["SCHEDULER_LEASE_SECONDS"]))
        self.interval = max(self.ttl.total_seconds() / 3, 0.2)
        self.stopping = threading.Event()
        self.scheduler = None
        self.thread: threading.Thread | None = None  # the thread start_scheduler() runs it in
        self._echo = echo or log.info
        self._said_waiting = False

    @property
    def running_jobs(self) -> bool:
        return self.scheduler is not None

    def run(self) -> None:
        renewed = None  # time.monotonic() just before the last renewal that went through
        try:
            while not self.stopping.is_set():
                attempt = time.monotonic()  # the lease runs from no earlier than this
                held = self._take_or_renew()
                now = time.monotonic()
                if held:
                    renewed = attempt
                    if self.scheduler is None:
                        self._start_jobs()
                elif self.scheduler is not None and (held is False or now - renewed >= self.ttl.total_seconds()):
                    # Taken over, or unrenewed for a whole lease: another scheduler may be running the jobs now.
                    self._echo("scheduler: lease lost, jobs stopped; waiting to take it again")
                    self._stop_jobs()
                elif self.scheduler is None and not self._said_waiting:
                    self._echo("scheduler: another scheduler holds the lease; waiting for it")
                    self._said_waiting = True
                self.stopping.wait(self.interval)
        finally:
            if self.scheduler is not None:
                self._stop_jobs()
                with self.app.app_context():
                    try:
                        leases.release(LEASE, self.owner)
                    except Exception:
                        log.exception("scheduler: could not give up the lease")

    def stop(self, wait: float | None = None) -> None:
        """End `run()`; with `wait`, wait up to that many seconds for it to stop the jobs and give the lease up."""
        self.stopping.set()
        if wait is not None and self.thread is not None:
            self.thread.join(wait)

    def _take_or_renew(self) -> bool | None:
        """True: the lease is ours until now + ttl; False: someone else holds it; None: the database failed."""
        with self.app.app_context():
            try:
                return leases.acquire(LEASE, self.owner, self.ttl)
            except Exception:
                log.exception("scheduler: could not take or renew the lease")
                db.session.rollback()
                return None

    def _start_jobs(self) -> None:
        self.scheduler = build_scheduler(self.app, self.scheduler_class)
        self.scheduler.start()
        self._said_waiting = False
        self._echo(f"scheduler: holding the lease as {self.owner}; running {len(JOBS)} jobs")

    def _stop_jobs(self) -> None:
        scheduler, self.scheduler = self.scheduler, None
        scheduler.shutdown(wait=True)


def start_scheduler(app: Flask):
    """Start the jobs in this process (in a thread that takes the scheduler lease first), when the configuration
    says this process runs them; returns the SchedulerRole."""
    if not app.config["SCHEDULER_ENABLED"]:
        return None
    role = SchedulerRole(app)
    role.thread = threading.Thread(target=role.run, name="scheduler-role", daemon=True)
    role.thread.start()
    return role


@click.group("scheduler")
def scheduler_cli():
    """Run the background jobs."""


@scheduler_cli.command("run")
@with_appcontext
def scheduler_run():
    """Run the jobs in the foreground (for deployments whose web workers set SCHEDULER_ENABLED=0).

    Only one scheduler runs the jobs at a time: a second one waits on the database lease and takes over when the
    first stops renewing it (SCHEDULER_LEASE_SECONDS)."""
    app = current_app._get_current_object()
    role = SchedulerRole(app, echo=lambda line: click.echo(line, err=False))
    signal.signal(signal.SIGTERM, lambda *_: role.stop())
    signal.signal(signal.SIGINT, lambda *_: role.stop())
    click.echo("scheduler started; Ctrl+C to stop")
    role.run()
