"""Running the app as a real deployment does, in processes of its own: web instances under gunicorn and
`flask scheduler run` processes, all on one database and one secret key, with one shared instance directory (the
shared attachment store) or one each (the files in the database, as docs/deploy/ sets up). Used by tests/test_scheduler_role.py, tests/test_topology.py and bench/load.py.

Every wait here polls a condition against a deadline; nothing sleeps a fixed time to synchronise.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import requests
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from app.config import database_uri
from app.models import Lease, utcnow
from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LEASES = Lease.__table__


class TimedOut(AssertionError):
    """A condition that did not come true before its deadline."""


def wait_until(check: Callable[[], object], timeout: float, what: str, processes: Iterable["AppProcess"] = (),
               every: float = 0.05):
    """Call `check` until it returns something true (returned), or fail after `timeout` seconds naming `what`
    and showing the end of each of `processes`' output."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {process.name} ---\n{process.output()[-3000:]}" for process in processes)
            raise TimedOut(f"{what} (waited {timeout} s)\n{tails}")
        time.sleep(every)


def app_environment(database_url: str, instance: Path | str, secret_key: str, **settings) -> dict[str, str]:
    """The environment of an app process: this database, instance directory and secret, no jobs unless it is a
    scheduler (SCHEDULER_ENABLED=0), unbuffered output, then `settings` (RATELIMIT_STORAGE_URI, ...)."""
    return {
        **os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance), "SECRET_KEY": secret_key,
        "SCHEDULER_ENABLED": "0", "FLASK_APP": "wsgi", "PYTHONUNBUFFERED": "1",
        **{name: str(value) for name, value in settings.items()},
    }


class AppProcess:
    """One process of the app in a session of its own (kill() ends it and its children at once, as SIGKILL to a
    machine's service would); its output goes to NAME.log in `log_dir`."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in wait())
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the process and its children: no clean-up of any kind runs."""
        self._signal(signal.SIGKILL)
        self.wait()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it has not ended after `timeout` seconds."""
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
        self.wait()

    def wait(self) -> None:
        self.process.wait()
        self._log.close()

    def _signal(self, number: int) -> None:
        try:
            os.killpg(self.process.pid, number)
        except ProcessLookupError:
            pass


class WebInstance(AppProcess):
    """gunicorn with the project's gunicorn.conf.py on `port`, the command of docs/deploy/'s web unit and compose
    file (`gunicorn -c gunicorn.conf.py wsgi:app`): `workers` processes (WEB_WORKERS) of `threads` threads each."""

    COMMAND = ("gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")  # tests/test_deploy_files.py: the units' too

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, port: int, threads: int = 8,
                 workers: int = 1):
        self.port = port
        env = {**env, "BIND": f"{HOST}:{port}", "WEB_THREADS": str(threads), "WEB_WORKERS": str(workers)}
        super().__init__(name, [sys.executable, "-m", *self.COMMAND], env, log_dir)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ready(self) -> bool:
        if not self.alive:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}\n{self.output()[-3000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before its worker is ready
            return False


def start_web(name: str, env: dict[str, str], log_dir: Path, port: int, threads: int = 8,
              timeout: float = 60, workers: int = 1) -> WebInstance:
    """A web instance, once it answers /healthz."""
    web = WebInstance(name, env, log_dir, port, threads, workers)
    wait_until(web.ready, timeout, f"{name} never answered /healthz", [web], every=0.1)
    return web


SCHEDULER_COMMAND = ("flask", "--app", "wsgi", "scheduler", "run")  # as the scheduler's unit and compose run it


def start_scheduler(name: str, env: dict[str, str], log_dir: Path) -> AppProcess:
    """`flask --app wsgi scheduler run`, started (it may be waiting for the lease)."""
    return AppProcess(name, [sys.executable, "-m", *SCHEDULER_COMMAND], env, log_dir)


class LeaseReader:
    """Looks at the scheduler lease in the database from outside the app processes."""

    def __init__(self, database_url: str):
        self.engine = create_engine(database_uri(database_url, ""), poolclass=NullPool)

    def holder_pid(self) -> int | None:
        """The process id of the scheduler holding the lease now (not expired), or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(LEASES.c.owner, LEASES.c.expires_at).where(LEASES.c.name == "scheduler")
                                     ).first()
        if row is None or row.expires_at < utcnow():
            return None
        return int(row.owner.rsplit(":", 2)[1])  # host:pid:random (app.leases.new_owner)

    def close(self) -> None:
        self.engine.dispose()


class StaffBrowser:
    """A member of staff using one web instance through HTTP, as a browser does: a session cookie and CSRF."""

    CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=30, allow_redirects=False, **kwargs)

    def csrf(self, path: str) -> str:
        match = self.CSRF.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1) or match.group(2)

    def sign_in(self, email: str, password: str) -> requests.Response:
        return self.post("/login", data={"email": email, "password": password, "csrf_token": self.csrf("/login")})


class Deployment:
    """Web instances and schedulers on one environment, all stopped when the block ends (SIGTERM, then
    SIGKILL): `with Deployment(env, log_dir) as deployment: deployment.add_webs(2); deployment.add_scheduler()`.

    With `own_instance_dirs`, each process gets an INSTANCE_PATH of its own (as separate machines have): nothing
    may then be shared through the instance directory (ATTACHMENT_STORAGE=database keeps the files)."""

    def __init__(self, env: dict[str, str], log_dir: Path, own_instance_dirs: bool = False):
        self.env = env
        self.log_dir = Path(log_dir)
        self.own_instance_dirs = own_instance_dirs
        self.webs: list[WebInstance] = []
        self.schedulers: list[AppProcess] = []

    @property
    def processes(self) -> list[AppProcess]:
        return [*self.webs, *self.schedulers]

    def env_of(self, name: str) -> dict[str, str]:
        if not self.own_instance_dirs:
            return self.env
        return {**self.env, "INSTANCE_PATH": str(self.log_dir / f"instance-{name}")}

    def add_webs(self, count: int, threads: int = 8, timeout: float = 90, workers: int = 1) -> list[WebInstance]:
        """`count` more web instances on free ports, started side by side; returned once all answer /healthz."""
        names = [f"web-{len(self.webs) + number + 1}" for number in range(count)]
        new = [WebInstance(name, self.env_of(name), self.log_dir, free_port(), threads, workers) for name in names]
        self.webs += new
        for web in new:
            wait_until(web.ready, timeout, f"{web.name} never answered /healthz", [web], every=0.1)
        return new

    def add_scheduler(self) -> AppProcess:
        name = f"scheduler-{len(self.schedulers) + 1}"
        scheduler = start_scheduler(name, self.env_of(name), self.log_dir)
        self.schedulers.append(scheduler)
        return scheduler

    def scheduler_with_pid(self, pid: int | None) -> AppProcess | None:
        return next((scheduler for scheduler in self.schedulers if scheduler.pid == pid and scheduler.alive), None)

    def stop(self) -> None:
        for process in self.processes:
            if process.alive:
                process._signal(signal.SIGTERM)
        for process in self.processes:
            if not process._log.closed:
                process.stop()

    def __enter__(self) -> "Deployment":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
