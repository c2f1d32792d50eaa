"""The `flask` command groups of each area (sms, mail and mailbox, outbox, panel), registered by app/cli.py."""
