"""The tests' fixtures come from the plugins in tests/plugins/, and helpers for test files from tests/helpers.py
and tests/*_helpers.py (nothing imports from this file):

- plugins.database: the database of this run (TEST_DATABASE=sqlite|postgresql), a freshly migrated one per test;
- plugins.application: the app on it (markers `app_config`, `shop_locale`), clients, staff, signed-in clients;
- plugins.rows: the common rows, a `customer` with e-mail and mobile and a `repair` of theirs;
- plugins.browser: a live server and headless Chromium pages (marker `browser`, SQLite runs only);
- servers.*: real SMTP, IMAP (Dovecot), Redis, OAuth and Twilio stand-in servers on free loopback ports, and the shop's
  accounts on them (`mailbox`, `sms_account`).
"""

pytest_plugins = [
    "plugins.database",
    "plugins.application",
    "plugins.rows",
    "plugins.browser",
    "servers.smtp",
    "servers.imap",
    "servers.oauth",
    "servers.twilio",
    "servers.smsapi",
    "servers.redis",
    "servers.accounts",
]
