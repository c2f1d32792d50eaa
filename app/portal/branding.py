"""The panel's look and rules as the owner sets them: brand colour, logo, whether customers may send files."""
from __future__ import annotations

import re

from flask import current_app
from flask_babel import gettext as _

from ..attachments import StoredFile, max_bytes, path_for
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Shop
from ..models.audit import apply_changes

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")  # no SVG: it can carry scripts
LOGO_MAX_BYTES = 512 * 1024


def update_panel_settings(shop: Shop, *, brand_colour: str, allows_attachments: bool, logo: StoredFile | None = None,
                          remove_logo: bool = False, attachment_max_mb: int | None = None, actor=None) -> list[str]:
    """Change the panel's colour, file rules and logo; returns what changed (audited with old and new values).

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
    if logo is not None:
        values["panel_logo_path"] = str(path_for(logo.sha256).relative_to(current_app.instance_path))
    elif remove_logo:
        values["panel_logo_path"] = None
    changed = apply_changes(shop, values, "settings.panel", by=actor)
    db.session.flush()
    return changed
