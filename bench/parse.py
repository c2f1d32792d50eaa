"""Parsing benchmark: messages per second of `parse_mail` on a 2 KB reply and a 50 KB reply with a long
quoted history in HTML and a PDF, next to the bare readers it competes with (stdlib `email` with
policy.default, imap-tools' MailMessage) on the same bytes.

    .venv/bin/python bench/parse.py [--seconds 2]

One core, no database: this is the parsing share of the ingest budget (200 messages per second end to end).
Rates are per CPU second (process time), each reader's best of five bursts taken in turns: the machine is
shared, and wall-clock rates swing with the other processes' load.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import sys
import time
from email.message import EmailMessage
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imap_tools import MailMessage  # noqa: E402

from app.inbound.parse import parse_mail  # noqa: E402

SAMPLE = ROOT / "tests" / "mail" / "gmail_pl_reply.eml"
PARAGRAPH = ("Dzień dobry, telefon Samsung A52 ma uszkodzone gniazdo ładowania i pękniętą szybkę aparatu. "
             "Wymiana gniazda kosztuje 180 zł, szybki 90 zł, razem z robocizną 300 zł brutto. ")


def large_reply(size: int = 50_000) -> bytes:
    """A Gmail-shaped reply of about `size` bytes: a short answer over a long thread quoted (nested) in
    text and HTML, and a PDF."""
    text, html, turn = PARAGRAPH, PARAGRAPH, 0
    while len(text) + len(html) < size * 0.45:
        turn += 1
        attribution = f"pon., {turn} mar 2024 o 10:{turn:02d} Serwis GSM Kowalczyk <serwis@shop.example> napisał(a):"
        text = PARAGRAPH + "\n\n" + attribution + "\n" + "\n".join("> " + line for line in text.splitlines())
        html = (f'<div dir="ltr">{PARAGRAPH}</div><div class="gmail_quote">'
                f'<div class="gmail_attr">{escape(attribution)}</div>'
                f'<blockquote class="gmail_quote">{html}</blockquote></div>')
    message = EmailMessage()
    message["From"] = "Jan Kowalski <jan.kowalski@example.com>"
    message["To"] = "serwis+0123456789abcdef@shop.example"
    message["Subject"] = "Re: Naprawa Samsung A52 – wycena [#R-1048]"
    message["Date"] = "Tue, 12 Mar 2024 11:17:29 +0100"
    message["Message-ID"] = "<CAHx3fTq8Lw2Xz7c0vYk1mJb9uN4pQ@mail.gmail.com>"
    message["References"] = " ".join(f"<ri.1.{n}.0123456789abcdef@shop.example>" for n in range(turn))
    message.set_content("Dziękuję, proszę naprawiać.\n\nJan\n\n" + text)
    message.add_alternative(f'<div dir="ltr">Dziękuję, proszę naprawiać.<br><br>Jan</div>{html}', subtype="html")
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * (size // 1000)
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="faktura łódź.pdf")
    return message.as_bytes()


def rate(read, raw: bytes, seconds: float) -> float:
    """Messages per CPU second `read` gets through `raw` in a burst of about `seconds`."""
    count, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        read(raw)
        count += 1
    return count / elapsed


def best_rates(readers: dict, raw: bytes, seconds: float, rounds: int = 5) -> list[float]:
    """The best burst rate of each reader over `rounds` rounds taking turns, so that load from other
    processes on a shared machine hits all of them alike."""
    best = [0.0] * len(readers)
    for _ in range(rounds):
        for index, read in enumerate(readers.values()):
            best[index] = max(best[index], rate(read, raw, seconds / rounds))
    return best


def stdlib_default(raw: bytes) -> None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if not part.is_multipart():
            part.get_content()


def imap_tools(raw: bytes) -> None:
    message = MailMessage.from_bytes(raw)
    message.text, message.html, message.attachments, message.from_, message.subject  # noqa: B018


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per reader and mail")
    args = parser.parse_args()
    mails = {"2 KB": SAMPLE.read_bytes(), "50 KB": large_reply()}
    readers = {"parse_mail": parse_mail, "email policy.default": stdlib_default, "imap-tools MailMessage": imap_tools}
    print(f"{'mail':>8} {'bytes':>7}  " + "  ".join(f"{name:>22}" for name in readers))
    for label, raw in mails.items():
        rates = best_rates(readers, raw, args.seconds)
        print(f"{label:>8} {len(raw):>7}  " + "  ".join(f"{r:>18.0f} /s " for r in rates))


if __name__ == "__main__":
    main()
