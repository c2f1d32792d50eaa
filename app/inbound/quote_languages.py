"""What mail programs write above a quoted mail, in the languages a Polish shop's customers write, added to
mail-parser-reply's table of languages (its extension point) in the shape its own entries have.

mail-parser-reply knows English, German, Czech, Danish, Spanish, French, Italian, Japanese, Korean, Dutch, Polish,
Swedish and Chinese. What it lacks, added here as an upstream contribution would add it:
- Polish: Thunderbird's "W dniu …, X pisze:", Gmail's "pon., 12 mar 2024 o 10:15 X <x> napisał(a):", KMail's
  "W poniedziałek, 11 marca 2024 … napisał(-a):", Apple Mail's "Wiadomość napisana przez X w dniu …:",
  Outlook's "-----Wiadomość oryginalna-----" and Interia's "Wysłane:"; its "Od:" alone no longer counts as a
  header block (a customer's "Od: 10:00" line would);
- Ukrainian and Russian (Gmail "… пише:" / "… написал(а):" / "… г. в 10:15, X <x>:", Outlook "Від:/Надіслано:", "От:/Отправлено:");
- Spanish Gmail's "El … escribió:" (the library's pattern wants two spaces before the verb);
- Norwegian Outlook ("Fra:/Sendt:"; Danish has the same labels) and the "Original message" separators of
  Outlook in German, Czech, Ukrainian and Russian.

A wrapped attribution line: `ANY` crosses one line break, never a blank line.
"""
from __future__ import annotations

from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE

ANY = r"(?:[^\n]|\n(?!\n))"


def _wrote(*patterns: str) -> str:
    """An attribution line pattern in the shape of the library's: anchored, allowed inside a quote."""
    return "|".join(rf"^({QUOTED_MATCH_INCLUDE}{pattern})$" for pattern in patterns)


def _from_block(labels: str, separator: str | None = None) -> str:
    """Outlook's header block ("From: …" over "Sent: … To: … Subject: …"), as the library writes it."""
    head = ""
    if separator:
        head = rf"(?:(?:^|\n|\n{QUOTED_MATCH_INCLUDE})?-{{2,}} ?{separator} ?-{{2,}}\n)?"
    return (rf"({head}(?:(?:^|\n|\n{QUOTED_MATCH_INCLUDE})[* ]*(?:{labels}):[ *]*(?:\s{{,2}}).*){{2,}}"
            r"(?:\n.*){,1})")


_NAPISAL = r"(?:napisał(?:\(-?a\)|a)?|nadesłał)"
_SEPARATORS = {
    "pl": r"(?:Wiadomość oryginalna|Oryginalna wiadomość)",
    "de": r"Ursprüngliche Nachricht",
    "cs": r"Původní zpráva",
    "uk": r"(?:Оригінальне повідомлення|Вихідне повідомлення)",
    "ru": r"(?:Исходное сообщение|Оригинальное сообщение)",
    "da": r"(?:Oprindelig meddelelse|Opprinnelig melding)",
}

ADDITIONS = {
    "pl": {
        "wrote_header": _wrote(
            rf"Dnia\s{ANY}{{4,300}}?\s?{_NAPISAL}\s?:",  # Onet, WP, Interia, iOS
            rf"W\sdniu\s{ANY}{{4,300}}?\s(?:pisze|{_NAPISAL})\s?:",  # Thunderbird, older Gmail
            rf"W\s[^\n\d]{{0,40}}\d{ANY}{{4,300}}?\s{_NAPISAL}\s?:",  # KMail, Evolution
            rf"(?=[^\n]*\d){ANY}{{4,300}}?\s{_NAPISAL}\s?:",  # Gmail "pon., 12 mar 2024 o 10:15 X <x> napisał(a):"
            rf"Wiadomość\snapisana\sprzez\s{ANY}{{4,300}}?\sw\sdniu\s{ANY}{{4,120}}?:",  # Apple Mail
            rf"-{{2,}}\s*{_SEPARATORS['pl']}\s*-{{2,}}",  # Outlook
        ),
        "from_header": _from_block("Od|Wysłano|Wysłane|Wysłany|Do|Temat|Data|DW|Kopia"),
    },
    "uk": {
        "wrote_header": _wrote(
            rf"(?=[^\n]*\d){ANY}{{4,300}}?\s(?:пише|написав|написала|написав\(ла\))\s?:",
            rf"-{{2,}}\s*{_SEPARATORS['uk']}\s*-{{2,}}",
        ),
        "from_header": _from_block("Від|Надіслано|Відправлено|Кому|Тема|Копія|Дата"),
        "disclaimers": [],
        "signatures": ["З повагою", "Дякую,"],
        "sent_from": "Надіслано з",
    },
    "ru": {
        "wrote_header": _wrote(
            rf"(?=[^\n]*\d){ANY}{{4,300}}?\s(?:пишет|написал(?:\(а\)|а)?)\s?:",
            # Gmail in Russian has no verb: "пн, 12 мар. 2024 г. в 10:15, Имя <адрес>:"
            rf"[^\n>]{{0,200}}\d{{4}}\sг\.\sв\s\d{{1,2}}:\d{{2}},?\s{ANY}{{0,300}}?<\s?[^<>\s]+@[^<>\s]+>:",
            rf"-{{2,}}\s*{_SEPARATORS['ru']}\s*-{{2,}}",
        ),
        "from_header": _from_block("От|Отправлено|Кому|Тема|Копия|Дата"),
        "disclaimers": [],
        "signatures": ["С уважением", "Спасибо,"],
        "sent_from": "Отправлено с",
    },
}
# Languages whose existing entries only lack Outlook's "original message" separator line.
SEPARATOR_ONLY = ("de", "cs", "da")
# Attribution lines the library's entries miss: its Spanish one wants two spaces before "escribió".
MORE_WROTE = {"es": _wrote(rf"El\s{ANY}{{4,300}}?\sescribió\s?:")}

# The subject label of Outlook's header block in each language: a block without one is not a header block
# (opening hours "Od: 10:00 / Do: 18:00" are not).
SUBJECT_LABELS = {"subject", "temat", "betreff", "předmět", "emne", "objet", "asunto", "oggetto", "onderwerp",
                  "ämne", "тема", "主题", "件名", "제목", "assunto", "aihe", "tárgy", "predmet", "tema"}

# The languages tried on every mail, the shop's first.
LANGUAGES = ["pl", "en", "uk", "ru", "de", "cs", "da", "fr", "es", "it", "nl", "sv"]


_registered = False


def register() -> None:
    """Add the patterns above to mail-parser-reply's languages (once; the table is the library's)."""
    global _registered
    if _registered:
        return
    _registered = True
    for language, entry in ADDITIONS.items():
        known = MAIL_LANGUAGES.setdefault(language, {})
        if "wrote_header" in known:
            entry = {**entry, "wrote_header": known["wrote_header"] + "|" + entry["wrote_header"]}
        known.update(entry)
    for language in SEPARATOR_ONLY:
        separator = _wrote(rf"-{{2,}}\s*{_SEPARATORS[language]}\s*-{{2,}}")
        known = MAIL_LANGUAGES[language]
        known["wrote_header"] = f"{known['wrote_header']}|{separator}" if known.get("wrote_header") else separator
    for language, pattern in MORE_WROTE.items():
        MAIL_LANGUAGES[language]["wrote_header"] += "|" + pattern
