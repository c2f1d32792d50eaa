"""Real servers for tests (SMTP now; IMAP and a Twilio stand-in later), on free loopback ports."""
