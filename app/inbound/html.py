"""Received HTML made safe to show (nh3, remote images held back) and read as plain text for the thread."""
from __future__ import annotations

import html as htmlentities
import re
from html.parser import HTMLParser

import nh3

QUOTE_MARK = "\x00"  # where the quoted history starts in html_to_text's output; never in real text

_TAGS = (set(nh3.ALLOWED_TAGS) | {"font", "center"}) - {"map", "area"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height", "title"})
_ATTRIBUTES.setdefault("a", set()).update({"href", "title"})
_ATTRIBUTES.setdefault("blockquote", set()).add("type")
_ATTRIBUTES.setdefault("font", set()).update({"color", "size", "face"})
_ATTRIBUTES["a"].discard("target")  # every link gets target=_blank below
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpe?g|gif|webp|bmp);base64,[a-z0-9+/=\s]*\Z", re.IGNORECASE)
_REMOTE = re.compile(r"(?:https?:)?//", re.IGNORECASE)
_LINK = re.compile(r"(?:https?|mailto|tel):", re.IGNORECASE)

# nh3 writes every attribute value in double quotes with `"` escaped, so this reads its output exactly.
_IMG_TAG = re.compile(r'<img((?:\s+[^\s="\'>/]+(?:="[^"]*")?)*)\s*/?>', re.IGNORECASE)
_ATTR = re.compile(r'([^\s="\'>/]+)(?:="([^"]*)")?')


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Keep only URLs a mail may carry: images from cid:, inline data images or the web, plain links."""
    if tag == "img" and attribute == "src":
        if value.lower().startswith("cid:") or _REMOTE.match(value) or _DATA_IMAGE.match(value):
            return value
        return None
    if attribute == "href":
        return value if _LINK.match(value) or value.startswith("#") else None
    return value


# Built once: the cleaner's rules are the same for every received mail.
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style", "title", "head", "template", "noscript", "textarea", "select"},
    attributes=_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
)


def sanitize(html: str) -> str:
    """The HTML without scripts, styles, forms, frames or event handlers; links open in a new tab with no
    referrer; remote images are held back in `data-remote-src` (see `show_remote_images`); `cid:` images
    stay for `resolve_cid`."""
    return _rewrite_images(_CLEANER.clean(html), _block_remote)


def _rewrite_images(html: str, rewrite) -> str:
    """Apply `rewrite(attrs) -> attrs` to the attribute list of every <img> in nh3's output."""
    def one(match: re.Match) -> str:
        attrs = [(name, value) for name, value in _ATTR.findall(match[1])]
        return "<img" + "".join(f' {n}="{v}"' for n, v in rewrite(attrs)) + ">"

    return _IMG_TAG.sub(one, html)


def _block_remote(attrs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("data-remote-src" if n == "src" and _REMOTE.match(htmlentities.unescape(v)) else n, v) for n, v in attrs]


def show_remote_images(html: str) -> str:
    """Sanitised HTML with its remote images let through again (the reader asked to load them)."""
    return _rewrite_images(html, lambda attrs: [("src" if n == "data-remote-src" else n, v) for n, v in attrs])


def has_remote_images(html: str | None) -> bool:
    """True when sanitised HTML holds back remote images (the view then offers to load them)."""
    return bool(html) and 'data-remote-src="' in html


def resolve_cid(html: str, urls: dict[str, str]) -> str:
    """Sanitised HTML with `cid:` images pointed at our own URLs, given {content_id: url}.

    Content-IDs are matched without angle brackets and case-insensitively (clients differ in both);
    an image whose part is unknown keeps its `cid:` source and simply shows nothing.
    """
    wanted = {cid.strip("<> ").lower(): url for cid, url in urls.items()}

    def rewrite(attrs):
        out = []
        for name, value in attrs:
            raw = htmlentities.unescape(value)
            if name == "src" and raw.lower().startswith("cid:"):
                url = wanted.get(raw[4:].strip("<> ").lower())
                value = htmlentities.escape(url, quote=True) if url else value
            out.append((name, value))
        return out

    return _rewrite_images(html, rewrite)


# --- HTML as plain text ---------------------------------------------------------------------------

_BLOCKS = {
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p",
    "pre", "section", "table", "tr", "ul",
}
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre"}
_SPACES = re.compile(r"[ \t\r\n\f]+")
_SKIPPED = {"script", "style", "head", "title", "template", "noscript"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
# Outlook's reply header sits in a div with a thin top border; these are its colours across versions.
_OUTLOOK_BORDER = re.compile(r"border-top:\s*solid\s+#(?:E1E1E1|B5C4DF)", re.IGNORECASE)
_QUOTE_CLASSES = {"gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted", "OutlookMessageHeader"}
_QUOTE_IDS = {"divRplyFwdMsg", "appendonsend", "x_divRplyFwdMsg", "x_appendonsend"}


def _starts_quote(tag: str, attrs: dict[str, str]) -> bool:
    """True for the elements mail programs put the quoted history in or after (Gmail, Outlook, Thunderbird, Apple)."""
    if _holds_quote(tag, attrs) or attrs.get("id") in _QUOTE_IDS:
        return True
    if _QUOTE_CLASSES & set(attrs.get("class", "").split()):
        return True
    return tag == "div" and bool(_OUTLOOK_BORDER.search(attrs.get("style", "")))


def _holds_quote(tag: str, attrs: dict[str, str]) -> bool:
    """True for elements that contain quoted text (Outlook's markers only say "history below")."""
    if tag == "blockquote":
        return attrs.get("type", "").lower() == "cite" or "gmail_quote" in attrs.get("class", "").split()
    return tag == "div" and "gmail_quote" in attrs.get("class", "").split()


class _TextWriter(HTMLParser):
    def __init__(self, mark_quote: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0  # depth inside <script>, <style>...
        self.pre = 0
        self.lists: list[list[int] | None] = []  # per open list: [next number] for <ol>, None for <ul>
        self.links: list[tuple[str, int]] = []  # (href, position in out) per open <a>
        self.quoted = not mark_quote  # True once the quote is marked (or when no mark is wanted)
        self.newlines = 0  # line breaks at the end of the output so far
        self.spacing: list[int] = []  # per open <p>: the line breaks it takes
        self.mark_at: int | None = None  # position of QUOTE_MARK in out
        self.containers: list[bool] = []  # per open <div>/<blockquote>: does it hold quoted text?
        self.quote_closed = False  # a quote container has ended
        self.interleaved = False  # the writer wrote text of their own after a quote ended

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag in _SKIPPED:
            self.skip += tag not in _VOID
            return
        if not self.quoted and _starts_quote(tag, attributes):
            self.quoted = True
            self.line_break()
            self.mark_at = len(self.out)
            self.write(QUOTE_MARK + "\n")
            self.newlines = 1
        if tag in ("div", "blockquote"):
            self.containers.append(_holds_quote(tag, attributes))
        if tag == "br":
            self.write("\n")
            self.newlines += 1
        elif tag in ("ul", "ol"):
            self.lists.append([1] if tag == "ol" else None)
            self.line_break()
        elif tag == "li":
            counter = self.lists[-1] if self.lists else None
            self.line_break()
            self.write("  " * max(len(self.lists) - 1, 0) + (f"{counter[0]}. " if counter else "- "))
            if counter:
                counter[0] += 1
        elif tag in ("td", "th"):
            self.write(" ")
        elif tag in _BLOCKS:
            self.line_break(self._spacing(tag, attributes))
        if tag == "pre":
            self.pre += 1
        elif tag == "a":
            self.links.append((attributes.get("href", ""), len(self.out)))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in ("div", "blockquote") and self.containers:
            self.quote_closed |= self.containers.pop()
        if tag in _SKIPPED:
            self.skip = max(self.skip - 1, 0)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.line_break(2)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = " ".join("".join(self.out[start:]).split())
            target = href[7:] if href.lower().startswith("mailto:") else href
            if _LINK.match(href) and label and target.rstrip("/") not in label:
                self.write(f" ({target})")
        elif tag in _BLOCKS:
            self.line_break(self.spacing.pop() if tag == "p" and self.spacing else 2 if tag in _PARAGRAPHS else 1)
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)

    def handle_data(self, data):
        if self.skip:
            return
        data = data.replace(QUOTE_MARK, "")
        visible = data.strip(" \t\r\n\f")  # a no-break space is content: Outlook's empty lines are made of it
        data = data.replace("\xa0", " ")
        if not self.pre:
            data = _SPACES.sub(" ", data)
        if visible:
            if self.quote_closed and not any(self.containers):
                self.interleaved = True
            self.write(data)
            self.newlines = data.count("\n") if self.pre and data.endswith("\n") else 0
        elif data:
            self.write(data if self.pre else " ")

    def _spacing(self, tag: str, attributes: dict[str, str]) -> int:
        """Line breaks around a block: a blank line around paragraphs, except Outlook's MsoNormal ones,
        which it writes one per line with no margin."""
        if tag != "p":
            return 2 if tag in _PARAGRAPHS else 1
        self.spacing.append(1 if "MsoNormal" in attributes.get("class", "") else 2)
        return self.spacing[-1]

    def write(self, text: str) -> None:
        self.out.append(text)

    def line_break(self, lines: int = 1) -> None:
        """End the current line; with 2, also leave a blank line (paragraphs). Breaks never add up."""
        if self.out:
            self.write("\n" * max(lines - self.newlines, 0))
            self.newlines = max(self.newlines, lines)


def html_to_text(html: str, mark_quote: bool = True) -> str:
    """Readable plain text of an HTML body: paragraphs, line breaks, list bullets, links as "text (url)".

    Where the mail program's quoted-history element starts (Gmail's gmail_quote, Outlook's reply header,
    Thunderbird's and Apple's cite blockquote) a line holding only QUOTE_MARK is left for the splitter,
    unless `mark_quote` is False. When the writer answered between quoted parts, the mark goes first:
    nothing of theirs may be folded away, so the splitter keeps the whole text.
    """
    writer = _TextWriter(mark_quote)
    writer.feed(html)
    writer.close()
    if writer.interleaved and writer.mark_at is not None:
        writer.out[writer.mark_at] = ""
        writer.out.insert(0, QUOTE_MARK + "\n")
    lines = [line.strip() for line in "".join(writer.out).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
