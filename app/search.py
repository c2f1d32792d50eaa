"""Full-text search over threads: one interface over SQLite FTS5 and PostgreSQL tsvector, Polish letters folded.

The index itself (one document per thread, kept current by database triggers) is built by migration 0004;
this module only turns what staff type into a query of it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Select, column, false, func, select, table

from .extensions import db
from .models import Thread

SEARCH_TABLE = "thread_search"
# The same letters migration 0004 folds on PostgreSQL; "ł" first of all, which Unicode does not decompose.
FOLD = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻäöüéèêëáàâíìîóòôúùûçñčřšžýůÄÖÜÉÈÁÍÓÚÇÑČŘŠŽÝŮ",
                     "acelnoszzACELNOSZZaoueeeeaaaiiiooouuucncrszyuAOUEEAIOUCNCRSZYU")
MAX_TERMS = 12  # a pasted paragraph is not a search; the first words narrow enough
PHONE_LIKE = re.compile(r"[\d\s()+\-./]+")
NIP_LIKE = re.compile(r"pl[\s\-]*\d[\d\s\-]*")
TERM = re.compile(r'"([^"]*)"?|(\S+)')
LAST_TOKEN = re.compile(r"\w*$")  # of a word, as the index splits it (at punctuation)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")
MIN_PHONE_DIGITS = 5

_sqlite_index = table(SEARCH_TABLE, column("rowid"), column("document"))
_pg_index = table(SEARCH_TABLE, column("thread_id"), column("document"))


def include_name(name, type_, parent_names) -> bool:
    """For Alembic: the search index is built by hand in its migration and is not part of the models."""
    return not (type_ == "table" and name.startswith(SEARCH_TABLE))


@dataclass(frozen=True)
class Term:
    text: str
    prefix: bool = False


def fold(text: str) -> str:
    """`text` lower-case without diacritics: "Łódź" → "lodz", as the index stores it."""
    decomposed = unicodedata.normalize("NFKD", text.translate(FOLD))
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()


def parse_query(text: str) -> list[Term]:
    """The words of a search box: every word must match, "quoted words" as a phrase, the last word as a prefix.

    A query of digits only (a phone typed with spaces or dashes) is one number. Words without a letter or
    digit are dropped, so operators and stray quotes never reach the database's query parser.
    """
    text = fold("".join(char if char.isprintable() else " " for char in text).strip())  # no NUL for PostgreSQL
    if NIP_LIKE.fullmatch(text):  # a company's tax number as printed on invoices: "PL 123-456-32-18"
        text = text[2:]
    if PHONE_LIKE.fullmatch(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) >= MIN_PHONE_DIGITS:
            return [Term(digits, prefix=True)]
    terms = []
    for match in TERM.finditer(text):
        quoted, word = match.groups()
        value = " ".join((quoted if quoted is not None else word).split())
        if any(char.isalnum() for char in value):
            terms.append(Term(value, prefix=quoted is None))
    terms = terms[:MAX_TERMS]
    return [Term(term.text, prefix=term.prefix and i == len(terms) - 1 and _unfinished(term.text))
            for i, term in enumerate(terms)]


def _unfinished(word: str) -> bool:
    """Whether the last word typed is searched as a prefix: it may be unfinished, but prefixes of many words are
    slow, so not a single letter (every word starting with it would be read, a second's work), nor a whole
    e-mail address, whose ending ("com") begins words in every message of the index."""
    return len(LAST_TOKEN.search(word)[0]) > 1 and not EMAIL.fullmatch(word)


def _fts5_query(terms: list[Term]) -> str:
    # Every term is an FTS5 string, so AND, NEAR, *, ^ and column filters typed by staff are plain words.
    return " ".join('"' + term.text.replace('"', '""') + '"' + ("*" if term.prefix else "") for term in terms)


def _tsquery(terms: list[Term]) -> str:
    # Every term is a quoted tsquery lexeme; the parser splits it as it split the document (phrases included).
    quoted = ("'" + term.text.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if term.prefix else "")
              for term in terms)
    return " & ".join(quoted)


def _index_match(terms: list[Term]):
    """The index's thread id column and the condition of a document matching every term, in this database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return _pg_index.c.thread_id, _pg_index.c.document.op("@@")(func.to_tsquery("simple", _tsquery(terms)))
    return _sqlite_index.c.rowid, _sqlite_index.c.document.op("MATCH")(_fts5_query(terms))


def search_thread_ids(text: str) -> Select:
    """The ids of threads whose subject, customer (name, phone, e-mail, a company's NIP), repair number or
    messages match `text`.

    A query with nothing searchable in it (only punctuation, say) matches no thread rather than all.
    """
    terms = parse_query(text)
    if not terms:
        return select(Thread.id).where(false())
    thread_id, matches = _index_match(terms)
    return select(thread_id).where(matches)


def newest_matches_first(statement: Select, text: str, descending: bool = True) -> Select:
    """`statement` (of threads) narrowed to those matching `text` and ordered by thread number, newest first
    (or oldest, when not `descending`), in the index's own order.

    The index is read from its end and the reading stops at the statement's limit, so a word that half the
    threads contain costs a page of them; `search_thread_ids` in another order has to collect every match first.
    """
    terms = parse_query(text)
    if not terms:
        return statement.where(false())
    thread_id, matches = _index_match(terms)
    return (statement.join(thread_id.table, thread_id == Thread.id).where(matches)
            .order_by(thread_id.desc() if descending else thread_id.asc()))
