"""Polish and English for staff, and Ukrainian too for customers: which language and time zone a request gets, and
locale-aware filters."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.numbers import format_currency
from flask import Flask, g, has_request_context, request, session
from flask_babel import (
    Babel, format_date, format_datetime, format_decimal, get_locale, get_timezone, get_translations, gettext,
)
from flask_login import current_user
from markupsafe import Markup

from .models import Shop
from .models.customers import CUSTOMER_LANGUAGES
from .models.users import LOCALES

PANEL_LANGUAGE_KEY = "panel_language"  # the panel session's language, kept across sign-out for the sign-in pages

LANGUAGE_NAMES = {"pl": "Polski", "en": "English"}  # the staff interface's languages
CUSTOMER_LANGUAGE_NAMES = {"pl": "Polski", "en": "English", "uk": "Українська"}  # customers read these too


@lru_cache(maxsize=8)
def date_pattern(locale) -> str:
    """The one form of a date shown to people, on pages, in mail, SMS and receipts: the locale's numeric date
    with the full year (10.12.2026, 2.01.2030 in Polish; 12/10/2026 in English)."""
    return Locale.parse(str(locale)).datetime_skeletons["yMd"].pattern


@lru_cache(maxsize=8)
def datetime_pattern(locale) -> str:
    """A moment in the same form: that date and the short time (10.12.2026, 10:00; 12/10/2026, 10:00 AM)."""
    parsed = Locale.parse(str(locale))
    return (parsed.datetime_formats["short"].replace("{1}", date_pattern(locale))
            .replace("{0}", parsed.time_formats["short"].pattern))


def shown_date(value, locale=None) -> str:
    """A date as people read it, in `locale` (default: the request's or the job's)."""
    return _babel_date(value, date_pattern(locale or get_locale()), locale=locale or get_locale())


def shown_datetime(value: datetime) -> str:
    """A moment as people read it, in the current locale and the shop's time zone."""
    return format_datetime(value, datetime_pattern(get_locale()))


def quoted(text: str) -> str:
    """A name quoted inside a sentence, with the language's own marks: “iPhone 12” in English, „iPhone 12” in
    Polish."""
    return gettext("“%(text)s”", text=text)


def babel_locale(language: str) -> str:
    """The Babel locale for a language code: Ukrainian dates and amounts as written in Ukraine."""
    return {"uk": "uk_UA", "pl": "pl_PL"}.get(language, language)


def money(amount, locale=None) -> str:
    """An amount with its currency, as the locale writes it: "149,99 zł", "PLN149.99"."""
    return format_currency(amount, Shop.currency, locale=locale or get_locale())


def current_shop():
    """The shop row, loaded once per request."""
    if "shop" not in g:
        g.shop = Shop.current()
    return g.shop


def select_locale() -> str:
    if not has_request_context():  # jobs, CLI, scripts: the shop's language
        return current_shop().locale or "pl"
    if request.blueprint == "api":  # other systems read English unless they ask for Polish
        return request.accept_languages.best_match(LOCALES) or "en"
    if request.blueprint == "panel":  # the panel speaks the customer's language (the panel loads them first)
        customer = g.get("panel_customer")
        if customer is not None:
            return customer.language_or(current_shop().locale)
        language = g.get("panel_language") or session.get(PANEL_LANGUAGE_KEY)
        return language if language in CUSTOMER_LANGUAGES else current_shop().locale or "pl"
    if current_user and current_user.is_authenticated and getattr(current_user, "locale", None) in LOCALES:
        return current_user.locale
    if session.get("locale") in LOCALES:
        return session["locale"]
    return current_shop().locale or "pl"


def select_timezone() -> str:
    return current_shop().timezone or "Europe/Warsaw"


def request_translations():
    """The catalogue of the current locale, looked up once per request and locale: flask_babel looks it up again
    for every string, and a page shows a hundred. Kept with the locale object flask_babel holds, so force_locale
    (a mail in the shop's language) gets its own catalogue."""
    locale = get_locale()
    cached = g.get("_translations")
    if cached is None or cached[0] is not locale:
        cached = g._translations = (locale, get_translations())
    return cached[1]


def init_i18n(app: Flask, babel: Babel) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.install_gettext_callables(  # as flask_babel's, with the catalogue looked up once
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # `_` is the same gettext, called directly: jinja's alias would look it up by name at every call.
    app.jinja_env.globals["_"] = app.jinja_env.globals["gettext"]

    @app.template_filter("datetime")
    def _datetime(value: datetime | None) -> str:
        return _formatted_datetime(value, get_locale(), get_timezone()) if value else ""

    @app.template_filter("time_tag")
    def _time_tag(value: datetime | None) -> Markup:
        """A moment as a <time> element: exact in its attribute, shown as |datetime shows it."""
        return _time_element(value, get_locale(), get_timezone()) if value else Markup("")

    @app.template_filter("date")
    def _date(value, fmt: str | None = None) -> str:
        """The one form of a date (shown_date); a chart's axis may ask for a shorter pattern of its own."""
        return format_date(value, fmt or date_pattern(get_locale())) if value else ""

    @app.template_filter("money")
    def _money(value) -> str:
        return money(value) if value is not None else ""

    @app.template_filter("number")
    def _number(value) -> str:
        return _formatted_number(value, get_locale()) if value is not None else ""

    @app.template_filter("filesize")
    def _filesize(size: int | None) -> str:
        return _formatted_size(size, get_locale()) if size is not None else ""

    @app.context_processor
    def _languages():
        return {"LANGUAGE_NAMES": LANGUAGE_NAMES, "CUSTOMER_LANGUAGE_NAMES": CUSTOMER_LANGUAGE_NAMES,
                "current_locale": select_locale, "quoted": quoted}


@lru_cache(maxsize=4096)
def _formatted_datetime(value: datetime, locale, timezone) -> str:
    """format_datetime in the request's locale and time zone (part of the key, so the cache never mixes them up):
    a long thread's page shows the same few hundred times on every visit, and Babel is slow at formatting."""
    return shown_datetime(value)


@lru_cache(maxsize=4096)
def _formatted_number(value, locale) -> str:
    """format_decimal in the request's locale (part of the key): a thread's page shows a size for every file."""
    return format_decimal(value)


@lru_cache(maxsize=4096)
def _formatted_size(size: int, locale) -> str:
    """A file's size as people read it, in the request's locale: "13 B", "4 kB", "2,5 MB". Never "0 kB" for a
    file that has bytes, and one decimal only where it tells something (below 10 of a unit)."""
    for unit, scale in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("kB", 1024)):
        if size >= scale:
            amount = size / scale
            return f"{format_decimal(amount, '#,##0.#' if amount < 10 else '#,##0')} {unit}"
    return f"{format_decimal(size)} B"


@lru_cache(maxsize=4096)
def _time_element(value: datetime, locale, timezone) -> Markup:
    """|time_tag's element, kept like _formatted_datetime's text: a timeline shows one for every entry."""
    shown = _formatted_datetime(value, locale, timezone)
    return Markup('<time datetime="%s">%s</time>') % (value.isoformat(), shown)
