"""The shop's own accounts on the local test servers: a mailbox on the SMTP server, the SMS account on the
Twilio stand-in. Registered as a plugin by tests/conftest.py, like the servers they use."""
from __future__ import annotations

import pytest

from app.extensions import db
from app.accounts.mailboxes import create_mailbox
from app.accounts.sms import configure_sms

SHOP_NUMBER = "+48500100200"


@pytest.fixture
def mailbox(app, smtp_server):
    app.config["SMTP_CA_FILE"] = smtp_server.cafile
    box = create_mailbox(name="Serwis", email="serwis@shop.example", display_name="Serwis Łatka",
                         smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="starttls",
                         username=smtp_server.username, password=smtp_server.password)
    db.session.commit()
    return box


@pytest.fixture
def sms_account(twilio_server):
    account = configure_sms(twilio_server.account_sid, twilio_server.auth_token, from_number=SHOP_NUMBER,
                            api_base_url=twilio_server.url, actor="test")
    db.session.commit()
    return account
