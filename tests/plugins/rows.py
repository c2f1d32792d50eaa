"""The rows most tests start from: a plain customer (e-mail and a Polish mobile) and a repair of theirs. A test
file that needs a different customer defines its own fixture under another name, or overrides one of these.
Also the shop's two queues."""
from __future__ import annotations

import pytest

from app.customers import create_customer
from app.extensions import db
from app.models import Queue
from app.repairs import create_repair

CUSTOMER_NAME = "Jan Kowalski"
CUSTOMER_EMAIL = "jan@example.com"
CUSTOMER_MOBILE = "+48600100200"


@pytest.fixture
def customer(app):
    """Jan Kowalski, jan@example.com, +48600100200: reachable by e-mail and SMS."""
    customer = create_customer(name=CUSTOMER_NAME, email=CUSTOMER_EMAIL, phone=CUSTOMER_MOBILE)
    db.session.commit()
    return customer


@pytest.fixture
def repair(customer):
    """An iPhone 12 with a cracked display, of the `customer`."""
    repair = create_repair(customer=customer, device="iPhone 12", description="Pęknięty wyświetlacz")
    db.session.commit()
    return repair


@pytest.fixture
def queues(app):
    """Two queues, "Front desk" and "Workshop", in that order."""
    front, workshop = Queue(name="Front desk", position=1), Queue(name="Workshop", position=2)
    db.session.add_all([front, workshop])
    db.session.commit()
    return front, workshop
