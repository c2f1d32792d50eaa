"""Quote splitters compared: the hand-written one the parser used before (bench/quotes_before.py, Polish and
English) and the one built on mail-parser-reply (app/inbound/quotes.py), on the same texts: the sample mails of
tests/mail (their text as the parser hands it to the splitter) and short replies in the languages and shapes
a Polish shop receives.

    .venv/bin/python bench/quotes.py [--seconds 2] [--verbose]

A split is right when the quoted history starts at the expected line (or nothing is cut where nothing should
be). Speed is per mail and per CPU second, best of five bursts taken in turns (the machine is shared).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app.inbound.parse as parse  # noqa: E402
from app.inbound import quotes as after  # noqa: E402

import quotes_before as before  # noqa: E402

# Where the history of each sample mail starts (its first line), None when nothing is to be cut.
SAMPLES = {
    "apple_iphone_pl_reply.eml": "> Dnia 15.03.2024 o godz. 08:05 Serwis GSM Kowalczyk",
    "gmail_en_reply.eml": "On Mon, Mar 11, 2024 at 4:45 PM Repair Shop",
    "gmail_pl_reply.eml": "wt., 12 mar 2024 o 10:02 Serwis GSM Kowalczyk",
    "gmail_pl_wrapped_attribution.eml": "W dniu 12 marca 2024 10:02 użytkownik Serwis GSM Kowalczyk",
    "gmail_ru_reply.eml": "вт, 12 мар. 2024 г. в 10:02, Serwis GSM Kowalczyk",
    "gmail_uk_reply.eml": "вт, 12 бер. 2024 р. о 10:02 Serwis GSM Kowalczyk",
    "interia_pl_reply.eml": 'Od: "Serwis GSM Kowalczyk"',
    "onet_pl_reply.eml": "Dnia 16 marca 2024 10:20 Serwis GSM Kowalczyk",
    "outlook_com_reply.eml": "________________________________",
    "outlook_de_reply.eml": "Von: Serwis GSM Kowalczyk",
    "outlook_no_reply.eml": "________________________________",
    "outlook_pl_reply.eml": "Od: Serwis GSM Kowalczyk",
    "outlook_uk_reply.eml": "Від: Serwis GSM Kowalczyk",
    "thunderbird_pl_reply.eml": "W dniu 14.03.2024 o 09:12, Serwis GSM Kowalczyk pisze:",
    "thunderbird_ru_reply.eml": "12.03.2024 10:02, Serwis GSM Kowalczyk пишет:",
}
ANSWER = "Tak, proszę naprawiać. Odbiorę w piątek.\n\nJan"
HISTORY = "Dzień dobry, wymiana ekranu kosztuje 350 zł.\nSerwis GSM Kowalczyk"
# (what the mail program writes above the history, whether the history is ">"-quoted)
SEPARATORS = [
    ("On Mon, 11 Mar 2024 at 16:45, Serwis <s@shop.example> wrote:", True),
    ("W dniu 11.03.2024 o 16:45, Serwis GSM Kowalczyk pisze:", True),
    ("W dniu 11.03.2024 o 16:45, Jan Kowalski <jan@shop.example>\nnapisał(a):", False),
    ("pon., 11 mar 2024 o 16:45 Serwis GSM <serwis@shop.example>\nnapisał(a):", False),
    ("Dnia 11 marca 2024 16:45 Serwis <s@shop.example> napisał(a):", False),
    ("-----Wiadomość oryginalna-----\nOd: Serwis\nWysłano: poniedziałek\nDo: Jan\nTemat: Naprawa", False),
    ("Od: Serwis <s@shop.example>\nWysłano: 11 marca 2024 16:45\nDo: Jan\nTemat: Naprawa", False),
    ("From: Serwis <s@shop.example>\nSent: Monday, March 11, 2024 4:45 PM\nTo: Jan\nSubject: Naprawa", False),
    ("пн, 11 бер. 2024 р. о 16:45 Serwis <s@shop.example> пише:", False),
    ("Від: Serwis\nНадіслано: 11 березня 2024 р. 16:45\nКому: Jan\nТема: Naprawa", False),
    ("11.03.2024 16:45, Serwis пишет:", False),
    ("пн, 11 мар. 2024 г. в 16:45, Serwis <s@shop.example>:", False),
    ("От: Serwis\nОтправлено: 11 марта 2024 г. 16:45\nКому: Jan\nТема: Naprawa", False),
    ("Am 11.03.2024 um 16:45 schrieb Serwis <s@shop.example>:", False),
    ("Von: Serwis\nGesendet: Montag, 11. März 2024 16:45\nAn: Jan\nBetreff: Naprawa", False),
    ("Dne 11. 3. 2024 v 16:45 Serwis <s@shop.example> napsal(a):", False),
    ("Fra: Serwis\nSendt: mandag 11. mars 2024 16:45\nTil: Jan\nEmne: Naprawa", False),
    ("Le lun. 11 mars 2024 à 16:45, Serwis <s@shop.example> a écrit :", False),
    ("El lun, 11 mar 2024 a las 16:45, Serwis (<s@shop.example>) escribió:", False),
]
# Replies that must be kept whole (interleaved answers, a customer's own "Od:/Do:" hours).
WHOLE = [
    "On Mon, 11 Mar 2024, Shop wrote:\n> Which colour?\nBlack.\n> When?\nFriday.",
    "Mogę odebrać w sobotę.\nOd: 10:00\nDo: 14:00\nData: 16.03\n\nJan",
]


def cases() -> list[tuple[str, str, str, str | None]]:
    """(label, splitter function name, text, expected first line of the history or None)."""
    found = []
    for name, expected in [*SAMPLES.items(), *((p.name, None) for p in sorted((ROOT / "tests" / "mail").glob("*.eml"))
                                                 if p.name not in SAMPLES)]:
        seen: list[tuple[str, str]] = []
        originals = parse.split_reply, parse.split_at_mark
        parse.split_reply = lambda text, seen=seen: (seen.append(("split_reply", text)), originals[0](text))[1]
        parse.split_at_mark = lambda text, seen=seen: (seen.append(("split_at_mark", text)), originals[1](text))[1]
        try:
            parse.parse_mail((ROOT / "tests" / "mail" / name).read_bytes())
        finally:
            parse.split_reply, parse.split_at_mark = originals
        if seen:
            found.append((name, *seen[0], expected))
    for separator, quoted in SEPARATORS:
        history = "\n".join("> " + line for line in HISTORY.splitlines()) if quoted else HISTORY
        found.append((separator.splitlines()[0][:40], "split_reply", f"{ANSWER}\n\n{separator}\n\n{history}",
                      separator.splitlines()[0]))
    found += [(text.splitlines()[0][:40], "split_reply", text, None) for text in WHOLE]
    return found


def right(module, function: str, text: str, expected: str | None) -> bool:
    new, quoted = getattr(module, function)(text)
    if expected is None:
        return quoted == ""
    return quoted.startswith(expected) and expected not in new


def rate(module, work, seconds: float) -> float:
    count, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        for _label, function, text, _expected in work:
            getattr(module, function)(text)
        count += len(work)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per splitter")
    parser.add_argument("--verbose", action="store_true", help="list every case")
    args = parser.parse_args()
    work = cases()
    splitters = {"before (hand-written)": before, "after (mail-parser-reply)": after}
    scores = {name: [right(module, *case[1:]) for case in work] for name, module in splitters.items()}
    if args.verbose:
        for index, case in enumerate(work):
            marks = "  ".join("ok " if scores[name][index] else "-- " for name in splitters)
            print(f"{marks}  {case[0]}")
    best = dict.fromkeys(splitters, 0.0)
    for _ in range(5):
        for name, module in splitters.items():
            best[name] = max(best[name], rate(module, work, args.seconds / 5))
    for name in splitters:
        print(f"{name:>26}: {sum(scores[name]):>2}/{len(work)} split right, "
              f"{best[name]:>7.0f} mails/s ({1e6 / best[name]:.0f} µs per mail)")


if __name__ == "__main__":
    main()
