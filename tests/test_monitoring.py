"""Seeing what the shop's machinery does: /metrics for Prometheus behind a token, `flask status` for a person
and for cron, and one log line per request carrying the request id the response names."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app.extensions import db
from app.inbound.poll import poll_mailbox
from app.accounts.mailboxes import create_mailbox, record_failure, record_polled
from app.models import InboundItem, utcnow
from helpers import TEST_CONFIG, free_port, sign_in
from inbound_helpers import plain_mail
from test_outbox_dispatch import make_delivery, make_message
from topology_helpers import app_environment, start_web

TOKEN = "metrics-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def scrape(client) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def held_item(sender: str = "stranger@example.com") -> InboundItem:
    item = InboundItem(source="email", status="held", content_hash=sender, sender=sender, subject="Hello",
                       reason="unknown sender")
    db.session.add(item)
    db.session.commit()
    return item


def receiving_mailbox(name: str = "Serwis", email: str = "serwis@shop.example"):
    box = create_mailbox(name=name, email=email, smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none",
                         imap_host="127.0.0.1", imap_port=1143, imap_security="none",
                         username=email, password="mailbox-password")
    db.session.commit()
    return box


# ---------------------------------------------------------------- /metrics


def test_metrics_are_off_while_no_token_is_set(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=BEARER).status_code == 404


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
def test_metrics_refuse_a_missing_or_wrong_token(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "repair_inbox" not in response.get_data(as_text=True)


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
def test_metrics_count_deliveries_by_channel_and_status_the_oldest_due_one_failures_and_held_mail(client):
    message = make_message()
    now = utcnow()
    make_delivery(message, "email", "queued", due=now - timedelta(minutes=10))
    make_delivery(message, "email", "queued", due=now - timedelta(minutes=2))
    make_delivery(message, "portal", "scheduled", due=now + timedelta(hours=1))  # not due yet
    make_delivery(message, "email", "sent")
    make_delivery(message, "sms", "failed", error_code="30007", error="Filtered as spam")
    make_delivery(message, "email", "bounced")
    held_item()
    held_item("other@example.com").status = "accepted"
    db.session.commit()

    metrics = scrape(client)

    def value(name, **labels):
        return metrics[(name, tuple(sorted(labels.items())))]

    assert value("repair_inbox_deliveries", channel="email", status="queued") == 2
    assert value("repair_inbox_deliveries", channel="email", status="sent") == 1
    assert value("repair_inbox_deliveries", channel="portal", status="scheduled") == 1
    assert value("repair_inbox_deliveries", channel="sms", status="failed") == 1
    assert 600 <= value("repair_inbox_oldest_due_delivery_age_seconds") < 700
    assert value("repair_inbox_delivery_failures", channel="sms", status="failed", error_code="30007") == 1
    assert value("repair_inbox_delivery_failures", channel="email", status="bounced", error_code="unknown") == 1
    assert value("repair_inbox_held_items") == 1


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
def test_with_nothing_waiting_the_oldest_due_age_is_zero(client):
    assert scrape(client)[("repair_inbox_oldest_due_delivery_age_seconds", ())] == 0


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
def test_request_latency_is_a_histogram_by_endpoint_and_method(client):
    for _request in range(3):
        assert client.get("/login").status_code == 200
    client.get("/no-such-page")

    metrics = scrape(client)

    labels = (("endpoint", "auth.login"), ("method", "GET"))
    assert metrics[("repair_inbox_http_request_duration_seconds_count", labels)] == 3
    assert metrics[("repair_inbox_http_request_duration_seconds_bucket", (("endpoint", "auth.login"), ("le", "+Inf"), ("method", "GET")))] == 3
    assert metrics[("repair_inbox_http_request_duration_seconds_count",
                    (("endpoint", "unmatched"), ("method", "GET")))] == 1


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
def test_metrics_show_each_mailboxs_last_good_poll_what_its_last_pass_did_and_its_failures(client, imap_server):
    working = imap_server.make_mailbox(name="Working")
    imap_server.append(plain_mail())  # from a stranger: held
    result = poll_mailbox(working)
    assert result.error is None and result.counts["held"] == 1
    broken = receiving_mailbox("Broken", "broken@shop.example")
    for _attempt in range(3):
        record_failure(broken, "IMAP: connection refused")
    db.session.commit()

    metrics = scrape(client)

    good = (("mailbox", working.email), ("mailbox_id", str(working.id)))
    bad = (("mailbox", broken.email), ("mailbox_id", str(broken.id)))
    assert 0 <= metrics[("repair_inbox_mailbox_last_good_poll_age_seconds", good)] < 60
    assert ("repair_inbox_mailbox_last_good_poll_age_seconds", bad) not in metrics  # never polled well
    assert metrics[("repair_inbox_mailbox_last_poll_items", (*good[:2], ("outcome", "fetched")))] == 1
    assert metrics[("repair_inbox_mailbox_last_poll_items", (*good, ("outcome", "held")))] == 1
    assert metrics[("repair_inbox_mailbox_broken", good)] == 0
    assert metrics[("repair_inbox_mailbox_broken", bad)] == 1
    assert metrics[("repair_inbox_mailbox_consecutive_failures", bad)] == 3
    assert metrics[("repair_inbox_held_items", ())] == 1


def test_under_gunicorn_with_several_workers_any_worker_reports_the_requests_of_all(database_url, tmp_path):
    env = app_environment(database_url, tmp_path / "instance", TEST_CONFIG["SECRET_KEY"], METRICS_TOKEN=TOKEN)
    web = start_web("web", env, tmp_path, free_port(), threads=2, workers=2)
    try:
        close = {"Connection": "close"}  # each request on a new connection, taken by whichever worker is quicker
        for _request in range(30):
            assert requests.get(web.url + "/login", headers=close, timeout=30).status_code == 200
        counts = []
        for _scrape in range(6):
            response = requests.get(web.url + "/metrics", headers={**BEARER, **close}, timeout=30)
            assert response.status_code == 200, response.text
            counts += [sample.value for family in text_string_to_metric_families(response.text)
                       for sample in family.samples
                       if sample.name == "repair_inbox_http_request_duration_seconds_count"
                       and sample.labels == {"endpoint": "auth.login", "method": "GET"}]
        assert counts == [30] * 6
        assert "repair_inbox_deliveries" in response.text  # the shop's gauges too, once
    finally:
        web.stop()


# ---------------------------------------------------------------- flask status


def run_status(app, *args):
    return app.test_cli_runner().invoke(args=["status", *args])


def test_status_of_a_healthy_shop_lists_everything_and_exits_0(app):
    box = receiving_mailbox()
    record_polled(box)
    box.last_poll_counts = {"fetched": 2, "threaded": 2, "held": 0}
    db.session.commit()
    message = make_message()
    make_delivery(message, "email", "sent")
    make_delivery(message, "sms", "queued", due=utcnow() - timedelta(minutes=3))
    held_item()

    result = run_status(app)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  email: sent 1" in lines and "  sms: queued 1" in lines
    assert any(line.startswith("Oldest waiting: due since") and "(3 min ago)" in line for line in lines)
    assert "  Serwis <serwis@shop.example>: ok" in lines
    assert any(line.startswith("    last good poll: ") and "(0 min ago)" in line for line in lines)
    assert "    last pass: fetched 2, threaded 2, held 0" in lines
    assert "Held items: 1" in lines
    assert lines[-1] == "All well."


def test_status_lists_the_failed_deliveries_by_kind_as_the_metrics_do(app):
    message = make_message()
    make_delivery(message, "sms", "failed", error_code="30007", error="Filtered as spam")
    make_delivery(message, "sms", "failed", error_code="30007", error="Filtered as spam")
    make_delivery(message, "email", "bounced")

    lines = run_status(app).output.splitlines()

    assert "Failed or bounced deliveries: 3" in lines
    assert "  email bounced (unknown): 1" in lines and "  sms failed (30007): 2" in lines


def test_status_exits_1_and_says_why_when_a_mailbox_is_broken(app):
    box = receiving_mailbox()
    record_polled(box)
    for _attempt in range(3):
        record_failure(box, "IMAP: The server refused the sign-in.")
    db.session.commit()

    result = run_status(app)

    assert result.exit_code == 1
    assert "  Serwis <serwis@shop.example>: BROKEN" in result.output
    assert "    error (3 in a row): IMAP: The server refused the sign-in." in result.output
    assert "NEEDS ATTENTION:" in result.output
    assert "  - mailbox Serwis <serwis@shop.example> is broken: IMAP: The server refused the sign-in." in result.output


def test_status_exits_1_when_deliveries_are_overdue_longer_than_allowed(app):
    make_delivery(make_message(), "email", "queued", due=utcnow() - timedelta(minutes=20))

    overdue = run_status(app)
    assert overdue.exit_code == 1
    assert "deliveries are overdue: the oldest has waited 20 minutes past its time (limit 15)" in overdue.output

    assert run_status(app, "--overdue-minutes", "30").exit_code == 0


def test_status_exits_1_when_a_receiving_mailbox_had_no_good_poll_for_too_long(app):
    box = receiving_mailbox()
    box.last_poll_ok_at = utcnow() - timedelta(hours=2)
    db.session.commit()

    stale = run_status(app)
    assert stale.exit_code == 1
    assert "has had no good poll for more than 30 minutes" in stale.output
    assert run_status(app, "--poll-stale-minutes", "180").exit_code == 0


def test_status_help_says_when_it_exits_non_zero(app):
    result = app.test_cli_runner().invoke(args=["status", "--help"])
    assert result.exit_code == 0
    assert "Exits with status 1 when something needs attention" in " ".join(result.output.split())


# ---------------------------------------------------------------- request logs


def request_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "app.requests"]


def test_each_request_logs_one_line_with_the_id_the_response_carries_and_no_query_values(client, caplog):
    caplog.set_level("INFO", logger="app.requests")

    response = client.get("/login?next=/customers/7&email=anna.nowak@example.com")

    request_id = response.headers["X-Request-ID"]
    [line] = request_lines(caplog)
    assert line.startswith(f"request {request_id} GET /login?next&email 200 ")
    assert line.endswith("ms user=-")
    assert "anna.nowak" not in caplog.text and "/customers/7" not in caplog.text


def test_the_log_line_names_the_signed_in_staff_member(client, staff, caplog):
    sign_in(client, staff)
    caplog.set_level("INFO", logger="app.requests")

    client.get("/")

    assert request_lines(caplog)[-1].endswith(f"user={staff.id}")


def test_a_panel_sign_in_token_in_the_path_is_not_logged(client, caplog):
    caplog.set_level("INFO", logger="app.requests")

    client.get("/p/shop/s/Sup3rSecretSignInToken")

    assert "Sup3rSecretSignInToken" not in caplog.text
    assert "/p/shop/s/<token>" in request_lines(caplog)[-1]


def test_without_a_trusted_proxy_a_clients_request_id_is_replaced(client):
    response = client.get("/login", headers={"X-Request-ID": "chosen-by-the-client"})
    assert response.headers["X-Request-ID"] != "chosen-by-the-client"
    assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.app_config(TRUSTED_PROXIES=1)
def test_the_trusted_proxys_request_id_is_kept_unless_it_is_not_sane(client, caplog):
    caplog.set_level("INFO", logger="app.requests")

    kept = client.get("/login", headers={"X-Request-ID": "7f3a-proxy.id:42"})
    replaced = client.get("/login", headers={"X-Request-ID": "bad id\u00e9<script>"})

    assert kept.headers["X-Request-ID"] == "7f3a-proxy.id:42"
    assert request_lines(caplog)[0].startswith("request 7f3a-proxy.id:42 GET /login 200")
    assert replaced.headers["X-Request-ID"] != "bad id" and len(replaced.headers["X-Request-ID"]) == 32


SERVE_ONE_REQUEST = """
from app import create_app
app = create_app({"TESTING": True, "SCHEDULER_ENABLED": False, "SECRET_KEY": "x",
                  "PUBLIC_BASE_URL": "http://shop.example"})
print(app.test_client().get("/login?email=anna.nowak@example.com").headers["X-Request-ID"])
"""


def test_with_log_format_json_every_log_line_is_one_json_object(database_url, tmp_path):
    env = {**os.environ, "LOG_FORMAT": "json", "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i")}
    done = subprocess.run([sys.executable, "-c", SERVE_ONE_REQUEST], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()

    entries = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]

    [entry] = [entry for entry in entries if entry["logger"] == "app.requests"]
    assert entry["request_id"] == request_id
    assert entry["method"] == "GET" and entry["path"] == "/login?email" and entry["status"] == 200
    assert entry["user"] == "-" and entry["duration_ms"] >= 0 and entry["level"] == "INFO"
    assert "anna.nowak" not in done.stderr


@pytest.mark.app_config(PROPAGATE_EXCEPTIONS=False)  # answer a bug with the 500 page, as in production
def test_a_request_that_fails_with_a_500_is_logged_with_its_id_too(app, caplog):
    def boom():
        raise RuntimeError("bug")

    app.add_url_rule("/boom-for-the-test", "boom", boom)
    caplog.set_level("INFO", logger="app.requests")

    response = app.test_client().get("/boom-for-the-test")

    assert response.status_code == 500
    assert request_lines(caplog)[-1].startswith(f"request {response.headers['X-Request-ID']} GET /boom-for-the-test 500")


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
def test_a_pass_that_could_not_connect_shows_as_a_last_pass_that_fetched_nothing(client):
    unreachable = receiving_mailbox()
    unreachable.imap_port = free_port()
    db.session.commit()

    assert poll_mailbox(unreachable).error

    metrics = scrape(client)
    labels = (("mailbox", unreachable.email), ("mailbox_id", str(unreachable.id)))
    assert metrics[("repair_inbox_mailbox_last_poll_items", (*labels, ("outcome", "fetched")))] == 0
    assert metrics[("repair_inbox_mailbox_consecutive_failures", labels)] == 1
