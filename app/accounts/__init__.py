"""The shop's accounts with the outside world: its mailboxes (and their health), the OAuth2 sign-in of Gmail and
Microsoft 365 mailboxes, and the SMS account. The channels send through them."""
