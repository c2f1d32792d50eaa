"""The background jobs, in one place: what runs, how often, and how the scheduler is started.

One process runs the jobs: the web process itself (SCHEDULER_ENABLED=1, the default for a small shop), or,
with several web workers, a separate `flask --app wsgi scheduler run` while the workers set SCHEDULER_ENABLED=0.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import delete

from . import sign_in_sessions
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


def start_scheduler(app: Flask):
    """Start the jobs in this process, when the configuration says this process runs them."""
    if not app.config["SCHEDULER_ENABLED"]:
        return None
    scheduler = build_scheduler(app)
    scheduler.start()
    log.info("scheduler started with %d jobs", len(JOBS))
    return scheduler


@click.group("scheduler")
def scheduler_cli():
    """Run the background jobs."""


@scheduler_cli.command("run")
@with_appcontext
def scheduler_run():
    """Run the jobs in the foreground (for deployments whose web workers set SCHEDULER_ENABLED=0)."""
    app = current_app._get_current_object()
    scheduler = build_scheduler(app)
    scheduler.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"scheduler running {len(JOBS)} jobs; Ctrl+C to stop")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    scheduler.shutdown()
