"""The panel's look and rules as the owner sets them: brand colour, logo, whether customers may send files."""
from __future__ import annotations

import re
from typing import NamedTuple

from flask_babel import gettext as _

from ..attachments import StoredFile, logo_reference, max_bytes
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Shop
from ..models.audit import apply_changes

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")  # no SVG: it can carry scripts
LOGO_MAX_BYTES = 512 * 1024


def update_panel_settings(shop: Shop, *, brand_colour: str, allows_attachments: bool, logo: StoredFile | None = None,
                          remove_logo: bool = False, attachment_max_mb: int | None = None,
                          request_form_enabled: bool | None = None, actor=None) -> list[str]:
    """Change the panel's colour, file rules, logo and whether the public request form takes requests (None:
    unchanged); returns what changed (audited with old and new values).

    Refuses a colour that is not #rrggbb, a logo that is not a PNG, JPEG, WebP or GIF picture of at most 512 KB,
    and a largest customer file outside 1 MB to the upload limit of one file (ATTACHMENT_MAX_BYTES).
    """
    errors = {}
    colour = (brand_colour or "").strip()
    if not COLOUR.fullmatch(colour):
        errors["brand_colour"] = _("Choose a colour like #1f6feb.")
    if logo is not None:
        if logo.content_type not in LOGO_TYPES:
            errors["logo"] = _("The logo must be a PNG, JPEG, WebP or GIF picture.")
        elif logo.size > LOGO_MAX_BYTES:
            errors["logo"] = _("The logo may have at most %(kb)d KB.", kb=LOGO_MAX_BYTES // 1024)
    largest = max(1, max_bytes() // (1024 * 1024))  # the same bound as app.shop.max_file_mb
    if attachment_max_mb is not None and not (
            isinstance(attachment_max_mb, int) and 1 <= attachment_max_mb <= largest):
        errors["attachment_max_mb"] = _("%(setting)s: %(problem)s", setting=_("Largest file from a customer (MB)"),
                                        problem=_("Enter a number of megabytes from %(min)s to %(max)s.",
                                                  min=1, max=largest))
    if errors:
        raise ValidationFailed(errors)
    values = {"panel_brand_colour": colour.lower(), "panel_allows_attachments": bool(allows_attachments)}
    if attachment_max_mb is not None:
        values["panel_attachment_max_mb"] = attachment_max_mb
    if request_form_enabled is not None:
        values["request_form_enabled"] = bool(request_form_enabled)
    if logo is not None:
        values["panel_logo_path"] = logo_reference(logo.sha256)
    elif remove_logo:
        values["panel_logo_path"] = None
    changed = apply_changes(shop, values, "settings.panel", by=actor)
    db.session.flush()
    return changed


DEFAULT_COLOUR = "#1f6feb"
DARK_TEXT = "#1d2330"  # the stylesheet's --text
LIGHT_SURFACE = "#f5f6f8"  # the stylesheet's --bg, the darkest surface the brand colour is written on
READABLE = 4.5  # WCAG 2 AA contrast for normal text


class BrandPalette(NamedTuple):
    """The panel's colours derived from the shop's brand colour, all readable whatever the shop picked.

    `colour` is the brand colour itself (the bar, buttons, borders); `on_colour` is white or dark text, whichever
    reads on it; `ink` is the colour darkened until it reads as text on the panel's light surfaces (a pale yellow
    brand would otherwise vanish there).
    """
    colour: str
    on_colour: str
    ink: str


def brand_palette(shop: Shop) -> BrandPalette:
    """The shop's palette; the default blue when the shop has no colour, or a stored one that is not #rrggbb."""
    colour = shop.panel_brand_colour or ""
    return palette_of(colour if COLOUR.fullmatch(colour) else DEFAULT_COLOUR)


def palette_of(colour: str) -> BrandPalette:
    """The palette of a #rrggbb colour."""
    # White or black always reaches 4.58:1 on any colour, so one of these always qualifies.
    on_colour = next(text for text in ("#ffffff", DARK_TEXT, "#000000") if contrast(colour, text) >= READABLE)
    ink = colour
    while contrast(ink, LIGHT_SURFACE) < READABLE:
        ink = _darker(ink)
    return BrandPalette(colour, on_colour, ink)

def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _channels(colour: str) -> tuple[int, int, int]:
    digits = colour.lstrip("#")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _darker(colour: str) -> str:
    return "#" + "".join(f"{int(c * 0.9):02x}" for c in _channels(colour))
