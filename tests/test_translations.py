"""The Polish catalogue: complete, in step with the code's strings, and what the pages actually show. The Ukrainian
catalogue: complete for everything a customer reads (staff use Polish or English only)."""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from app.models import Shop
from helpers import csrf_token, sign_in

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
POLISH = TRANSLATIONS / "pl" / "LC_MESSAGES" / "messages.po"
UKRAINIAN = TRANSLATIONS / "uk" / "LC_MESSAGES" / "messages.po"
# What customers read: the panel's pages and views, the mails and SMS sent to them (not those to the shop), the
# panel's notices, the receipt, and the validation messages the panel's forms show.
CUSTOMER_FACING = (
    "templates/panel/*.html", "templates/emails/*.html", "templates/emails/*.txt", "templates/partials/forms.html",
    "app/panel_pages/views.py", "app/panel/notices.py", "app/panel/auth.py", "app/panel/credentials.py",
    "app/panel/loaders.py", "app/messaging/receipt.py",
    "app/panel/conversation.py", "app/fields.py", "app/attachments.py",
    "app/panel_pages/requests.py", "app/web_requests.py",
)
FOR_THE_SHOP = {"templates/emails/mailbox_broken.txt", "templates/emails/panel_shop_notice.html",
                "templates/emails/panel_shop_notice.txt", "templates/emails/sms_low_balance.txt"}
PYBABEL = [sys.executable, "-m", "babel.messages.frontend"]
# The same extraction as `make translations-update`; `_l` is our alias of lazy_gettext, and lazy_pgettext (a
# form's label with a context) is no keyword Babel knows by itself.
EXTRACT = ["extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_pgettext:1c,2", "--project", "Repair Inbox"]
TRANSLATE_HINT = "translate them in app/translations/pl/LC_MESSAGES/messages.po (all three plural forms)"
UPDATE_HINT = (
    "run `make translations-update` (pybabel extract -F babel.cfg -k _l -k lazy_pgettext:1c,2 "
    "-o app/translations/messages.pot . "
    f"&& pybabel update -i app/translations/messages.pot -d app/translations), then {TRANSLATE_HINT}"
)
POLISH_PLURALS = "(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)"
# %-style conversions (named or not, with flags, width and precision) and str.format fields.
PERCENT_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[#0 +\-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
BRACE_PLACEHOLDER = re.compile(r"\{\w*(?:[.!:][^{}]*)?\}")

# The pages below are those of a Polish shop (the product's default) with the compiled catalogue loaded.
pytestmark = [pytest.mark.shop_locale("pl"), pytest.mark.usefixtures("compiled_catalogue")]


def read_catalogue(path: Path):
    with path.open("rb") as file:
        return read_po(file)


def live_ids(catalogue) -> set:
    """The msgids (a tuple of singular and plural for ngettext entries) of a catalogue, without its header."""
    return {message.id for message in catalogue if message.id}


def placeholders(text: str) -> Counter:
    return Counter(PERCENT_PLACEHOLDER.findall(text) + BRACE_PLACEHOLDER.findall(text))


def refuse(entries, problem: str, hint: str = UPDATE_HINT) -> None:
    """Fail with the offending entries and what to do about them, when there are any."""
    if entries:
        listing = "\n".join(f"  {entry!r}" for entry in sorted(entries, key=str))
        pytest.fail(f"{problem}; {hint}:\n{listing}", pytrace=False)


# ---------------------------------------------------------------- the catalogue files


def test_every_string_of_the_template_has_a_finished_polish_translation():
    template, polish = read_catalogue(TEMPLATE), read_catalogue(POLISH)

    refuse(live_ids(template) - live_ids(polish), "strings missing from the Polish catalogue")
    refuse(live_ids(polish) - live_ids(template), "the Polish catalogue has strings the template no longer has")

    unfinished = []
    for message in polish:
        if not message.id:
            continue
        forms = message.string if message.pluralizable else (message.string,)
        if message.fuzzy or len(forms) != (3 if message.pluralizable else 1) or not all(forms):
            unfinished.append(message.id)
    refuse(unfinished, "empty, fuzzy or incomplete Polish entries", TRANSLATE_HINT)


def test_polish_translations_keep_the_placeholders_of_the_english_strings():
    wrong = []
    for message in read_catalogue(POLISH):
        if not message.id:
            continue
        sources = message.id if message.pluralizable else (message.id,)
        forms = message.string if message.pluralizable else (message.string,)
        # The plural English form carries every placeholder (ngettext's %(num)s included).
        expected = placeholders(sources[-1])
        wrong += [(message.id, form) for form in forms if placeholders(form) != expected]
    refuse(wrong, "Polish entries whose placeholders differ from the English (English, Polish)",
           "give the Polish text exactly the English placeholders, with the same names and types")


def test_the_polish_catalogue_declares_three_plural_forms():
    polish = read_catalogue(POLISH)
    assert polish.num_plurals == 3
    assert polish.plural_expr.replace(" ", "") == POLISH_PLURALS.replace(" ", "")


def test_the_template_lists_exactly_the_strings_in_the_code_and_templates(tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run([*PYBABEL, *EXTRACT, "-o", str(fresh), "."], cwd=ROOT, check=True, capture_output=True)

    extracted, committed = live_ids(read_catalogue(fresh)), live_ids(read_catalogue(TEMPLATE))
    refuse(extracted - committed, "strings in the code that the catalogue does not have")
    refuse(committed - extracted, "strings in the catalogue that the code no longer uses")


def customer_facing_strings() -> set:
    """(msgid, context) of every string in the customer-facing files, extracted as babel.cfg says."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file

    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_pgettext": ((1, "c"), 2)}
    files = sorted({str(path.relative_to(ROOT)) for pattern in CUSTOMER_FACING for path in ROOT.glob(pattern)}
                   - FOR_THE_SHOP)
    assert "templates/panel/sign_in.html" in files and "app/messaging/receipt.py" in files
    found = set()
    for name in files:
        method = "python" if name.endswith(".py") else "jinja2"
        for _line, message, _comments, context in extract_from_file(method, ROOT / name, keywords=keywords):
            found.add((message if isinstance(message, str) else message[0], context))
    return found


def test_every_string_customers_read_has_a_ukrainian_translation():
    ukrainian = read_catalogue(UKRAINIAN)
    missing, wrong = [], []
    for msgid, context in customer_facing_strings():
        message = ukrainian.get(msgid, context=context)
        if message is None or message.fuzzy or not message.string:
            missing.append((msgid, context))
        elif placeholders(message.string) != placeholders(msgid):
            wrong.append((msgid, message.string))
    refuse(missing, "customer-facing strings without a Ukrainian translation",
           "add them with their Ukrainian text to app/translations/uk/LC_MESSAGES/messages.po")
    refuse(wrong, "Ukrainian entries whose placeholders differ from the English", "keep the English placeholders")


def test_the_staff_interface_offers_no_ukrainian():
    from app.i18n import LANGUAGE_NAMES
    from app.models.users import LOCALES

    assert set(LOCALES) == set(LANGUAGE_NAMES) == {"pl", "en"}


# ---------------------------------------------------------------- the pages


def switch_language(client, locale: str, page: str = "/login"):
    response = client.post(
        "/account/language", data={"locale": locale, "next": page, "csrf_token": csrf_token(client, page)}
    )
    assert response.status_code == 302
    return response


def test_a_visitor_of_a_polish_shop_signs_in_on_a_polish_page(client):
    html = client.get("/login").get_data(as_text=True)

    assert "Zaloguj się" in html
    assert "Hasło" in html
    assert "Sign in" not in html


def test_a_visitor_who_picks_english_gets_the_sign_in_page_in_english(client):
    switch_language(client, "en")

    html = client.get("/login").get_data(as_text=True)
    assert "Sign in" in html
    assert "Password" in html
    assert "Zaloguj się" not in html


def test_a_signed_in_owners_choice_of_english_follows_them_to_another_browser(app, client, owner):
    sign_in(client, owner)
    assert "Moje konto" in client.get("/account/").get_data(as_text=True)

    switch_language(client, "en", page="/account/")

    assert owner.locale == "en"
    other_browser = app.test_client()
    sign_in(other_browser, owner)
    html = other_browser.get("/account/").get_data(as_text=True)
    assert "My account" in html
    assert "Moje konto" not in html


def test_text_rendered_in_the_shops_language_during_a_request_is_in_that_language(app):
    """A page in English can send mail in the shop's Polish: the templates' per-request catalogue follows
    force_locale, and the page's own words come back after it."""
    from flask import render_template_string
    from flask_babel import force_locale

    words = '{{ _("Save") }} · {{ ngettext("%(num)d message forwarded", "%(num)d messages forwarded", 2) }}'
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        with force_locale("en"):
            assert render_template_string(words) == "Save · 2 messages forwarded"
            with force_locale("pl"):
                assert render_template_string(words) == "Zapisz · Przekazano 2 wiadomości"
            assert render_template_string(words) == "Save · 2 messages forwarded"


def test_a_word_with_two_meanings_is_translated_by_its_context(client):
    """"Open" is a thread's status (Otwarte) and the panel's access-code button (Otwórz)."""
    html = client.get(f"/p/{Shop.current().slug}/sign-in").get_data(as_text=True)

    assert re.search(r"<button[^>]*>Otwórz</button>", html)
    assert "Otwarte" not in html


def test_polish_translations_quote_with_polish_marks():
    """Polish quotes „like this”: never "straight" nor “English” marks around words in a Polish string."""
    wrong = re.compile(r"\"[^\"]+\"|“[^”]*”|'[^']+'")
    found = []
    for message in read_catalogue(POLISH):
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found += [text for text in strings if text and message.id and wrong.search(text.replace("„", ""))]
    assert found == []


def test_a_thread_named_inside_a_polish_event_is_quoted_with_polish_marks(app):
    from flask_babel import force_locale

    from app.messaging.events import event_text
    from app.models import Message

    event = Message(kind="event", meta={"event": "split_from", "label": "Naprawa iPhone 12"})
    with force_locale("pl"):
        assert "„Naprawa iPhone 12”" in event_text(event)
    with force_locale("en"):
        assert "“Naprawa iPhone 12”" in event_text(event)
