"""The deployment files in docs/deploy/ name only what exists: every setting they give the app is one it reads
(app/config.py's DEFAULTS, or the few the app factory and gunicorn.conf.py read themselves), every `flask`
command they run is one the app has, and gunicorn is started with the project's own config and entry point."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.config import DEFAULTS
from test_topology import DEPLOYED_SETTINGS, WEB_WORKERS
from topology_helpers import SCHEDULER_COMMAND, WebInstance

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
FILES = sorted(path for path in DEPLOY.iterdir() if path.is_file())
# Read by the official images the compose file uses, not by the app.
OTHER_IMAGES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "SITE_ADDRESS", "UPSTREAM_HOST", "UPSTREAM_PORT"}
FLASK = re.compile(r"flask --app wsgi ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
FLASK_LIST = re.compile(r'"flask", "--app", "wsgi", "([a-z-]+)", "([a-z-]+)"')


def read_by_the_app() -> set[str]:
    """Environment variables read outside DEFAULTS: by gunicorn.conf.py and the app factory."""
    names = set(DEFAULTS)
    for source in (ROOT / "gunicorn.conf.py", ROOT / "app" / "__init__.py"):
        names |= set(re.findall(r"os\.environ\.get\(\"([A-Z_]+)\"", source.read_text()))
    return names


def settings_in(path: Path) -> set[str]:
    """The environment variables a deployment file sets or reads: `KEY=value` lines (env file, systemd
    `Environment=`), `KEY: value` entries of compose.yaml (its own keys are lower case), Caddy's `{$KEY}`."""
    text = path.read_text()
    found = set(re.findall(r"^(?:Environment=)?([A-Z][A-Z0-9_]+)=", text, re.M))
    found |= set(re.findall(r"\{\$([A-Z][A-Z0-9_]+)", text))  # Caddyfile: {$NAME:default}
    if path.suffix == ".yaml":
        found |= set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):", text, re.M))
    return found


def test_there_are_deployment_files_for_web_scheduler_proxies_and_compose():
    names = {path.name for path in FILES}
    assert {"repair-inbox-web.service", "repair-inbox-scheduler.service", "Caddyfile", "nginx.conf",
            "compose.yaml", "README.md"} <= names
    assert "deploy/README.md" in (ROOT / "docs" / "administration.md").read_text()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_setting_in_a_deployment_file_is_one_the_app_reads(path):
    known = read_by_the_app() | OTHER_IMAGES
    assert settings_in(path) - known == set()


def test_the_settings_several_machines_need_are_given():
    web = (DEPLOY / "repair-inbox-web.service").read_text()
    assert "Environment=SCHEDULER_ENABLED=0" in web
    assert "gunicorn -c gunicorn.conf.py wsgi:app" in web
    shared = settings_in(DEPLOY / "repair-inbox.env")
    assert {"SECRET_KEY", "DATABASE_URL", "ATTACHMENT_STORAGE", "RATELIMIT_STORAGE_URI", "TRUSTED_PROXIES"} <= shared
    compose = (DEPLOY / "compose.yaml").read_text()
    assert "RATELIMIT_STORAGE_URI: redis://redis:6379/0" in compose
    assert 'SCHEDULER_ENABLED: "0"' in compose and "ATTACHMENT_STORAGE: database" in compose


def test_the_topology_test_runs_the_processes_with_the_commands_and_settings_of_the_deployment_files():
    web_unit = (DEPLOY / "repair-inbox-web.service").read_text()
    scheduler_unit = (DEPLOY / "repair-inbox-scheduler.service").read_text()
    compose = (DEPLOY / "compose.yaml").read_text()
    assert f"/.venv/bin/{' '.join(WebInstance.COMMAND)}\n" in web_unit
    assert f"/.venv/bin/{' '.join(SCHEDULER_COMMAND)}\n" in scheduler_unit
    assert json.dumps(list(WebInstance.COMMAND)) in compose and json.dumps(list(SCHEDULER_COMMAND)) in compose
    shared = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (DEPLOY / "repair-inbox.env").read_text(), re.M))
    assert {name: shared.get(name) for name in DEPLOYED_SETTINGS} == DEPLOYED_SETTINGS
    assert f'WEB_WORKERS: "{WEB_WORKERS}"' in compose


def test_gunicorn_is_started_with_the_projects_config_and_entry_point():
    assert (ROOT / "gunicorn.conf.py").is_file()
    assert re.search(r"^app = create_app\(\)", (ROOT / "wsgi.py").read_text(), re.M)
    for path in FILES:
        for config, module in re.findall(r"gunicorn\"?,? \"?-c\"?,? \"?([\w.]+)\"?,? \"?(\w+):app", path.read_text()):
            assert (config, module) == ("gunicorn.conf.py", "wsgi"), path.name


def commands_named() -> set[tuple[str, ...]]:
    found = set()
    for path in [*FILES, ROOT / "docs" / "administration.md"]:
        text = path.read_text()
        found |= {tuple(match.split()) for match in FLASK.findall(text)}
        found |= set(FLASK_LIST.findall(text))
    return found


def test_the_deployment_files_run_flask_commands():
    named = commands_named()
    assert ("scheduler", "run") in named and ("db", "upgrade") in named and ("files", "move") in named


@pytest.mark.parametrize("command", sorted(commands_named()), ids=" ".join)
def test_every_flask_command_named_exists(app, command):
    """`flask --app wsgi GROUP SUB --help` answers; a word after a group that is not its command fails."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=[*command, "--help"])
    if result.exit_code != 0 and len(command) == 2:  # "GROUP ARGUMENT": the group must be a command itself
        result = runner.invoke(args=[command[0], "--help"])
        assert result.exit_code == 0 and "Commands:" not in result.output, command
        return
    assert result.exit_code == 0, result.output
