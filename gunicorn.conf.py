"""gunicorn settings for `make run`, the Docker image and docs/deploy/: by default one worker (threads) that also
runs the jobs; WEB_WORKERS for more (with SCHEDULER_ENABLED=0 and one `flask --app wsgi scheduler run`)."""
import os
import shutil
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_WORKERS", "1"))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
# No access log of gunicorn's: it writes query strings whole (names, addresses); the app logs each request
# itself with a request id and without query values (app/monitoring/request_log.py).
accesslog = None
errorlog = "-"

# With several workers, /metrics adds up all the workers' request latencies (prometheus_client's multiprocess
# mode): each worker writes them to files in this directory, a fresh empty one each time gunicorn starts (a
# reload keeps it). Set before the workers import the app, which is when prometheus_client reads it.
METRICS_DIR_PREFIX = "repair-inbox-metrics-"
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)


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


def child_exit(server, worker):
    # A worker that ended: its latencies stay counted; only its live gauges (none today) would be dropped.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(directory).startswith(METRICS_DIR_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
