"""The background jobs: each runs in its own app context, and one that fails never stops the others."""
from __future__ import annotations

from datetime import timedelta

from app import jobs
from app.extensions import db
from app.models import Lease, utcnow


def test_the_scheduler_runs_dispatch_retention_and_clean_up(app):
    db.session.add(Lease(name="old", owner="gone", expires_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    scheduler = jobs.build_scheduler(app)
    by_id = {job.id: job for job in scheduler.get_jobs()}
    assert set(by_id) == {"purge_expired_credentials", "dispatch_pass", "purge_outbox", "poll_due_mailboxes",
                          "notify_broken_mailboxes", "daily_backup", "send_due_reminders", "check_sms_balance",
                          "expire_requests"}
    for job in by_id.values():
        job.func()  # as the scheduler's thread would: no request, its own app context
    assert db.session.scalar(db.select(db.func.count(Lease.name))) == 0


def test_a_failing_job_is_logged_and_does_not_escape(app, monkeypatch, caplog):
    def broken():
        raise RuntimeError("database went away")

    monkeypatch.setattr(jobs, "JOBS", [(broken, {"trigger": "interval", "seconds": 5})])
    job = jobs.build_scheduler(app).get_jobs()[0]
    job.func()
    assert "job broken failed" in caplog.text
