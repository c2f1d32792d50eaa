"""`flask panel ...`: customer panel access from the shell (a sign-in link for staff to hand over by hand)."""
from __future__ import annotations

import click

from ..extensions import db
from ..i18n import current_shop
from ..models import Customer
from ..panel import credentials
from ..urls import absolute_url

CLI_ACTOR = "cli"


@click.group(help="The customer panel.")
def panel():
    pass


@panel.command("link", help="Open CUSTOMER_ID's panel access if it is off and print a one-time sign-in URL "
                            "(valid 7 days).")
@click.argument("customer_id", type=int)
def link(customer_id: int):
    customer = db.session.get(Customer, customer_id)
    if customer is None or customer.anonymized_at is not None:
        raise click.ClickException(f"No customer with id {customer_id}.")
    if customer.panel_state != "active":
        credentials.set_panel_state(customer, "invited", actor=CLI_ACTOR)
    token = credentials.issue_link(customer, "invite")
    db.session.commit()
    click.echo(absolute_url("panel.link", slug=current_shop().slug, token=token))
