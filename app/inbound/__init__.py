"""Inbound mail and SMS: fetch (imap.py), parse (parse.py), classify (classify.py), thread (threading.py)."""
