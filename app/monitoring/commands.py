"""`flask status`: the shop's machinery at a glance, for a person, and an exit status for cron and monitoring."""
from __future__ import annotations

from datetime import datetime, timedelta

import click

from .health import Health, shop_health

STATUS_HELP = """Print what /metrics tells Prometheus, for a person: the outbox per channel and status, the oldest
waiting delivery, the failed deliveries by channel, status and error code, each mailbox's last good poll, last pass
and error, and the held items. (Request latencies are measured in each web process: only /metrics has them.)

Exits with status 1 when something needs attention: a broken mailbox, a receiving mailbox without a good poll
for --poll-stale-minutes, or a delivery due for longer than --overdue-minutes; 0 otherwise. Cron or a monitoring
check can run it and alert on the exit status."""


@click.command("status", help=STATUS_HELP)
@click.option("--overdue-minutes", type=click.IntRange(min=1), default=15, show_default=True,
              help="A delivery due for longer than this needs attention.")
@click.option("--poll-stale-minutes", type=click.IntRange(min=1), default=30, show_default=True,
              help="A receiving mailbox without a good poll for longer than this needs attention.")
def status(overdue_minutes: int, poll_stale_minutes: int):
    health = shop_health(overdue_after=timedelta(minutes=overdue_minutes),
                         poll_stale_after=timedelta(minutes=poll_stale_minutes))
    for line in status_lines(health):
        click.echo(line)
    if health.problems:
        click.get_current_context().exit(1)


def status_lines(health: Health) -> list[str]:
    lines = ["Deliveries:"]
    channels = sorted({channel for channel, _status in health.deliveries})
    for channel in channels:
        counts = ", ".join(f"{status} {number}" for (each, status), number in sorted(health.deliveries.items())
                           if each == channel)
        lines.append(f"  {channel}: {counts}")
    if not channels:
        lines.append("  none")
    if health.oldest_due_at is None:
        lines.append("Oldest waiting: none")
    else:
        lines.append(f"Oldest waiting: due since {_when(health.oldest_due_at)} "
                     f"({_ago(health.oldest_due_seconds)} ago)")
    failures = sum(health.delivery_failures.values())
    lines.append(f"Failed or bounced deliveries: {failures}")
    for (channel, status, code), number in sorted(health.delivery_failures.items()):
        lines.append(f"  {channel} {status} ({code}): {number}")
    lines.append("Mailboxes:")
    for mailbox in health.mailboxes:
        state = "BROKEN" if mailbox.broken else ("failing" if mailbox.consecutive_failures else "ok")
        lines.append(f"  {mailbox.name} <{mailbox.email}>: {state}")
        if mailbox.receiving:
            good = mailbox.last_poll_ok_at
            lines.append("    last good poll: " + (
                f"{_when(good)} ({_ago((health.now - good).total_seconds())} ago)" if good else "never"))
            if mailbox.last_poll_counts:
                lines.append("    last pass: " + ", ".join(f"{name} {number}"
                                                          for name, number in mailbox.last_poll_counts.items()))
        else:
            lines.append("    sending only (no IMAP server)")
        if mailbox.last_error:
            lines.append(f"    error ({mailbox.consecutive_failures} in a row): {mailbox.last_error}")
    if not health.mailboxes:
        lines.append("  none")
    lines.append(f"Held items: {health.held}")
    if health.inbound_errors:
        lines.append(f"Fetched mail that could not be recorded: {health.inbound_errors}")
    if health.sms_balance_error:
        lines.append(f"SMS balance check failed: {health.sms_balance_error}")
    if health.problems:
        lines.append("NEEDS ATTENTION:")
        lines.extend(f"  - {problem}" for problem in health.problems)
    else:
        lines.append("All well.")
    return lines


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
