"""`flask outbox ...`: the outbox from the command line (one dispatch pass by hand, for scripts and checks)."""
from __future__ import annotations

import click

from ..outbox.dispatch import dispatch_pass


@click.group(help="The outbox of outgoing messages.")
def outbox():
    pass


@outbox.command("dispatch", help="Send what is due now (one pass) and print what happened.")
@click.option("--limit", default=200, show_default=True, help="Most deliveries to claim in this pass.")
def dispatch(limit: int):
    counts = dispatch_pass(limit=limit)
    click.echo(", ".join(f"{name} {number}" for name, number in counts.items()))
