"""gunicorn settings for `make run` and the Docker image: one worker (threads) that also runs the jobs."""
import os

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_WORKERS", "1"))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
# No access log of gunicorn's: it writes query strings whole (names, addresses); the app logs each request
# itself with a request id and without query values (app/monitoring/request_log.py).
accesslog = None
errorlog = "-"


def post_worker_init(worker):
    # With more than one worker, set SCHEDULER_ENABLED=0 and run `flask --app wsgi scheduler run` once. (Left on,
    # the workers take turns on the scheduler lease: only one runs the jobs at a time.)
    from app.jobs import start_scheduler

    worker.scheduler_role = start_scheduler(worker.wsgi)


def worker_exit(server, worker):
    # A worker stopped cleanly (restart, deploy) gives the scheduler lease up at once: the next process need not
    # wait for it to expire before running the jobs.
    role = getattr(worker, "scheduler_role", None)
    if role is not None:
        role.stop(wait=30)
