"""Real servers for tests (SMTP, IMAP, OAuth, a Twilio stand-in), on free loopback ports. Each module is a pytest
plugin registered by tests/conftest.py: test files use the fixtures without importing them."""
