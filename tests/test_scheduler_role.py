"""One scheduler runs the jobs: a second `flask scheduler run` started by mistake waits on the database lease,
takes over once the first died (kill -9) and its lease expired, and a scheduler stopped cleanly gives the lease
up at once. Real processes on this run's database."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from app import mailbox_health
from app.extensions import db
from app.jobs import JOBS, SchedulerRole
from app.jobs import start_scheduler as start_in_process
from app.mailbox_health import notify_broken_mailboxes
from app.models import AuditEvent, Lease, Shop, utcnow
from helpers import TEST_CONFIG
from test_mailbox_health import broken_mailbox
from topology_helpers import Deployment, LeaseReader, app_environment, start_scheduler, wait_until

LEASE_SECONDS = 2
RUNNING = f"running {len(JOBS)} jobs"


def test_a_second_scheduler_waits_and_takes_over_after_the_first_is_killed(app, database_url, tmp_path):
    env = app_environment(database_url, app.instance_path, TEST_CONFIG["SECRET_KEY"],
                          SCHEDULER_LEASE_SECONDS=LEASE_SECONDS)
    lease = LeaseReader(database_url)
    first = start_scheduler("scheduler-1", env, tmp_path)
    second = None
    try:
        wait_until(lambda: lease.holder_pid() == first.pid, 30, "the first scheduler never took the lease", [first])
        wait_until(lambda: RUNNING in first.output(), 10, "the first scheduler never started its jobs", [first])

        second = start_scheduler("scheduler-2", env, tmp_path)
        wait_until(lambda: "another scheduler holds the lease" in second.output(), 30,
                   "the second scheduler did not say it waits", [second])
        # Several lease periods later, the first still renews it and the second has not started a job.
        expiry = db.session.scalar(db.select(Lease.expires_at).where(Lease.name == "scheduler"))

        def renewed_twice():
            db.session.rollback()
            current = db.session.scalar(db.select(Lease.expires_at).where(Lease.name == "scheduler"))
            return current is not None and (current - expiry).total_seconds() >= 2 * LEASE_SECONDS

        wait_until(renewed_twice, 30, "the first scheduler stopped renewing its lease", [first, second])
        assert lease.holder_pid() == first.pid
        assert RUNNING not in second.output()

        killed_at = utcnow()
        first.kill()
        wait_until(lambda: lease.holder_pid() == second.pid, 30, "the second scheduler never took over",
                   [first, second])
        wait_until(lambda: RUNNING in second.output(), 10, "the second scheduler never started the jobs", [second])
        db.session.rollback()
        taken = db.session.scalar(db.select(Lease.expires_at).where(Lease.name == "scheduler"))
        assert taken > killed_at  # a lease of its own, written after the kill

        # Stopped cleanly, it gives the lease up at once: the next scheduler need not wait for it to expire.
        second.stop()
        assert "Traceback" not in second.output()
        db.session.rollback()
        assert db.session.get(Lease, "scheduler") is None
    finally:
        for process in (first, second):
            if process is not None and process.alive:
                process.kill()
        lease.close()


def test_a_broken_mailbox_is_told_once_when_two_schedulers_run_the_job_at_once(app, mailbox, smtp_server,
                                                                                  monkeypatch):
    """Two processes both read the breakage as untold; the one that claims it second tells nothing."""
    Shop.current().notification_email = "szef@shop.example"
    broken = broken_mailbox()
    stale = mailbox_health._untold_breakages()  # what the other process read before this one told it

    assert notify_broken_mailboxes() == 1
    monkeypatch.setattr(mailbox_health, "_untold_breakages", lambda: stale)
    assert notify_broken_mailboxes() == 0
    assert len(smtp_server.wait_for(1)) == 1
    assert len(smtp_server.messages) == 1
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "mailbox.broken")).all()
    assert len(events) == 1 and "Sklep" in smtp_server.messages[0].data.decode()


@pytest.mark.app_config(SCHEDULER_ENABLED=True, SCHEDULER_LEASE_SECONDS=1)
def test_a_web_process_running_the_jobs_takes_the_same_lease(app):
    """SCHEDULER_ENABLED=1 in a web process: its jobs too run only while it holds the scheduler lease."""
    role = start_in_process(app)
    try:
        wait_until(lambda: role.running_jobs, 30, "the web process never started its jobs")
        db.session.rollback()
        assert db.session.get(Lease, "scheduler").owner == role.owner
    finally:
        role.stop()
    wait_until(lambda: not role.running_jobs, 30, "the jobs did not stop")
    wait_until(lambda: db.session.rollback() or db.session.get(Lease, "scheduler") is None, 30,
               "the lease was not given up")


def test_a_web_process_stopped_cleanly_gives_the_scheduler_lease_up(app, database_url, tmp_path):
    """gunicorn with SCHEDULER_ENABLED=1 (the small shop's single process): on SIGTERM its worker stops the jobs
    and gives the lease up, so the process that replaces it runs the jobs at once, not a lease period later."""
    env = app_environment(database_url, app.instance_path, TEST_CONFIG["SECRET_KEY"], SCHEDULER_ENABLED=1,
                          SCHEDULER_LEASE_SECONDS=600)
    lease = LeaseReader(database_url)
    try:
        with Deployment(env, tmp_path) as deployment:
            [web] = deployment.add_webs(1)
            wait_until(lambda: lease.holder_pid() is not None, 30, "the web process never took the lease", [web])
            assert lease.holder_pid() != web.pid  # its worker holds it, not gunicorn's master
            web.stop()
            assert "Traceback" not in web.output()
        db.session.rollback()
        assert db.session.get(Lease, "scheduler") is None
    finally:
        lease.close()


@pytest.mark.app_config(SCHEDULER_LEASE_SECONDS=1)
def test_a_scheduler_whose_lease_was_taken_over_stops_its_jobs_and_waits(app, monkeypatch):
    """A holder that was paused past its lease's expiry finds it taken over: it stops its jobs at once, and runs
    them again only once it has the lease back."""
    role = SchedulerRole(app)
    worker = threading.Thread(target=role.run)
    worker.start()
    try:
        wait_until(lambda: role.running_jobs, 30, "the jobs never started")
        db.session.rollback()
        db.session.execute(db.update(Lease).where(Lease.name == "scheduler").values(
            owner="other-host:1:taken", expires_at=utcnow() + timedelta(seconds=3)))
        db.session.commit()  # another scheduler took it over
        wait_until(lambda: not role.running_jobs, 30, "the jobs went on without the lease")
        wait_until(lambda: role.running_jobs, 30, "the jobs did not start again once the lease expired")
    finally:
        role.stop()
        worker.join(30)
