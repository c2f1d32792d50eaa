"""How a message body looks: light Markdown rendered to sanitised HTML, or to clean text for SMS and plain mail."""
from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from .models import Message

HTML_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a", "code", "pre", "blockquote", "hr",
             "h1", "h2", "h3", "h4", "h5", "h6"}
HTML_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}

_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True})
_BLANK_LINES = re.compile(r"\n{3,}")


def sender_name(message: Message) -> str:
    """Who wrote a message that came in, as staff read it: for a mail, its From (name and address);
    for a panel message or an SMS, the customer's name (an SMS's number and a panel message's stand-in address
    say less; a company's contact person by their name and the company's), else the number or address it came
    from."""
    meta = message.meta or {}
    if message.channel == "email":
        name = meta.get("from_name") or meta.get("contact_name")  # a company's contact person, by their card's name
        return f"{name} <{message.sender}>" if name and message.sender else name or message.sender
    customer = message.author_customer
    if meta.get("contact_name"):  # a company's contact person, with the company's name
        return f"{meta['contact_name']} ({customer.name})" if customer is not None else meta["contact_name"]
    return customer.name if customer is not None and customer.name else message.sender


def html_body(message: Message) -> Markup:
    """The message body as sanitised HTML: Markdown rendered, plain text in paragraphs."""
    return Markup(_clean_html(message.body_text or "", message.body_format == "markdown"))


@lru_cache(maxsize=512)
def _clean_html(source: str, markdown: bool) -> str:
    """The sanitised HTML of a body; cached by its text, as one message's e-mail and page render the same text
    and a long thread's page shows the same bodies on every visit."""
    if markdown:
        html = _render(source)
    else:
        paragraphs = [p for p in source.replace("\r\n", "\n").split("\n\n") if p.strip()]
        html = "".join(f"<p>{escape(p.strip())}</p>".replace("\n", "<br>\n") for p in paragraphs)
    return nh3.clean(html, tags=HTML_TAGS, attributes=HTML_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer")


def own_panel_text(message: Message) -> str | None:
    """The message's own text for the customer panel (a template's panel text, kept in `meta["texts"]` by
    compose), or None when the panel shows its body."""
    return ((message.meta or {}).get("texts") or {}).get("portal") or None


def panel_body_html(message: Message) -> Markup:
    """What the customer panel shows of a message: its own panel text when it has one, else its body."""
    own = own_panel_text(message)
    return Markup(_clean_html(own, True)) if own else html_body(message)


def plain_text(message: Message) -> str:
    """The message body as clean text: Markdown markers dropped, link addresses kept in parentheses."""
    if message.body_format != "markdown":
        return (message.body_text or "").strip()
    return markdown_to_text(message.body_text or "")


@lru_cache(maxsize=16)  # token lists are big; the HTML and the text of a message are made right after each other
def _tokens(source: str) -> list:
    """The parsed Markdown (read only), shared by the HTML and the text of a message: parsing is most of the work."""
    return _markdown.parse(source)


def _render(source: str) -> str:
    """Markdown to (unsanitised) HTML."""
    return _markdown.renderer.render(_tokens(source), _markdown.options, {})


@lru_cache(maxsize=512)
def markdown_to_text(source: str) -> str:
    """Light Markdown as a person would type it without formatting (also what an SMS of it should say)."""
    lines: list[str] = []
    lists: list[list] = []  # open lists, innermost last: [ordered, next number]
    marker = ""
    for token in _tokens(source):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append([token.type == "ordered_list_open", int(token.attrGet("start") or 1)])
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                lines.append("")
        elif token.type == "list_item_open":
            ordered, number = lists[-1]
            marker = "   " * (len(lists) - 1) + (f"{number}. " if ordered else "- ")
            lists[-1][1] += 1
        elif token.type == "inline":
            indent = " " * len(marker) if marker else "   " * len(lists)
            text = _inline_text(token.children or []).replace("\n", "\n" + indent)
            lines.append((marker or indent) + text)
            marker = ""
        elif token.type in ("fence", "code_block"):
            lines.append(token.content.rstrip("\n"))
            lines.append("")
        elif token.type == "hr":
            lines.extend(["----", ""])
        elif token.type in ("paragraph_close", "heading_close") and not token.hidden:
            lines.append("")
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _inline_text(children) -> str:
    parts: list[str] = []
    links: list[str] = []  # href of each open link, to add after its text
    start = 0
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "link_open":
            links.append(child.attrGet("href") or "")
            start = len(parts)
        elif child.type == "link_close":
            shown = links.pop().removeprefix("mailto:").removeprefix("tel:")
            if shown and shown != "".join(parts[start:]):
                parts.append(f" ({shown})")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)
