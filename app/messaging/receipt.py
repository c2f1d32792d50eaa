"""The repair's acceptance receipt as a PDF (fpdf2 with a Unicode font): printed from the repair card, and the
document a template can attach."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

import segno
from flask_babel import force_locale
from flask_babel import gettext as _
from fpdf import FPDF

from ..attachments import digest_of, read_stored
from ..i18n import babel_locale, money, shown_date
from ..models import Repair, Shop
from ..urls import absolute_url

# Debian's fonts-dejavu-core (installed by scripts/install-system-packages.sh and the Dockerfile): the core PDF
# fonts know only Latin-1, which has no ą, ę, ł, ś, ż.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"
# a4: two copies on one sheet, the customer's and the shop's (cut along the dashed line); roll: one copy for an
# 80 mm receipt printer; copy: one copy on A4, the customer's, for e-mail.
LAYOUTS = ("a4", "80mm", "copy")
ROLL_WIDTH = 80  # mm; the printable width of such printers is about 72 mm
LOGO_FORMATS = (b"\x89PNG", b"\xff\xd8\xff")  # what fpdf2 places without converting: PNG and JPEG


def acceptance_receipt(repair: Repair, shop: Shop, layout: str = "copy") -> bytes:
    """The receipt the customer gets when leaving a device: the shop with its logo, repair number and date,
    customer, device with its serial number or IMEI and the accessories left, fault, estimate, expected date, the
    access code with a QR code that opens the repair in the customer panel, the shop's terms and signature lines.

    The customer's phone number is never printed: its last digits are what confirms the access code, so a lost or
    photographed receipt must not carry both.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown receipt layout {layout!r}")
    language = repair.customer.language_or(shop.locale)  # the customer keeps it; the shop reads its copy as well
    with force_locale(language):
        receipt = _Receipt(repair, shop, babel_locale(language))
        if layout == "80mm":
            return receipt.roll()
        return receipt.a4(copies=(_("Customer's copy"), _("Shop's copy")) if layout == "a4" else (_("Customer's copy"),))


class _Receipt:
    """One receipt's texts, laid out on A4 (one or two copies) or on a roll."""

    def __init__(self, repair: Repair, shop: Shop, locale: str):
        self.repair, self.shop = repair, shop
        estimate = money(repair.price_estimate, locale) if repair.price_estimate is not None else None
        self.rows = [(label, value) for label, value in (
            (_("Date"), shown_date(repair.created_at.date(), locale)),
            (_("Customer"), repair.customer.name),
            (_("Device"), repair.device),
            (_("Serial number or IMEI"), repair.serial_number),
            (_("Accessories left"), repair.accessories),
            (_("Fault description"), repair.description),
            (_("Price estimate"), estimate),
            (_("Expected pickup"), shown_date(repair.pickup_date, locale) if repair.pickup_date else None),
        ) if value]
        self.title = _("Acceptance receipt %(number)s", number=repair.number)
        self.code = repair.access_code
        self.panel_link = absolute_url("panel.sign_in", slug=shop.slug, code=repair.access_code,
                                       _anchor="access-code") if self.code else ""
        self.panel_address = absolute_url("panel.sign_in", slug=shop.slug)
        self.logo = _logo(shop)

    # ----------------------------------------------------------------------------------------- layouts

    def a4(self, copies: tuple[str, ...]) -> bytes:
        """Each copy on half an A4 sheet; a copy too long for half a sheet gets a page of its own."""
        pdf = _pdf(self.repair, self.shop, "A4")
        half = (pdf.h - 2 * pdf.t_margin) / 2
        pdf.add_page()
        for index, label in enumerate(copies):
            if index:
                lower_half = pdf.t_margin + half
                if pdf.y < lower_half and lower_half + self._height(pdf, label) <= pdf.h - pdf.b_margin:
                    pdf.set_y(lower_half)
                    self._cut_line(pdf)
                else:
                    pdf.add_page()
            self._copy(pdf, label, qr_size=24)
        return bytes(pdf.output())

    def roll(self) -> bytes:
        """One copy on an 80 mm roll, as long as its content."""
        measure = _pdf(self.repair, self.shop, (ROLL_WIDTH, 1000), margin=4)
        measure.add_page()
        self._copy(measure, _("Customer's copy"), qr_size=30, narrow=True)
        pdf = _pdf(self.repair, self.shop, (ROLL_WIDTH, measure.y + measure.b_margin), margin=4)
        pdf.add_page()
        self._copy(pdf, _("Customer's copy"), qr_size=30, narrow=True)
        return bytes(pdf.output())

    def _height(self, pdf: FPDF, label: str) -> float:
        with pdf.offset_rendering() as dummy:
            start = dummy.y
            self._copy(dummy, label, qr_size=24)
            return dummy.y - start

    # ----------------------------------------------------------------------------------------- one copy

    def _copy(self, pdf: FPDF, label: str, qr_size: float, narrow: bool = False) -> None:
        width = pdf.epw
        self._head(pdf, label, narrow)
        label_width = 0 if narrow else 48
        for name, value in self.rows:
            pdf.set_font(FONT, "B", 9)
            if narrow:
                pdf.multi_cell(width, 4.5, name, new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.cell(label_width, 5, name)
            pdf.set_font(FONT, "", 9)
            pdf.multi_cell(width - label_width, 4.5 if narrow else 5, value, align="L", new_x="LMARGIN", new_y="NEXT")
        if self.code:
            pdf.ln(2)
            self._access(pdf, qr_size, narrow)
        if self.shop.receipt_terms:
            pdf.ln(2)
            pdf.set_font(FONT, "", 7.5)
            pdf.multi_cell(width, 3.6, self.shop.receipt_terms, align="L", new_x="LMARGIN", new_y="NEXT")
        self._signatures(pdf, narrow)

    def _head(self, pdf: FPDF, label: str, narrow: bool) -> None:
        width, top = pdf.epw, pdf.y
        text_x = pdf.l_margin
        if self.logo is not None and not narrow:
            pdf.image(self.logo, x=pdf.l_margin, y=top, h=12, keep_aspect_ratio=True)
            text_x = pdf.l_margin + 32
        elif self.logo is not None:
            pdf.image(self.logo, x=pdf.l_margin, y=top, h=10, keep_aspect_ratio=True)
            pdf.set_y(top + 11)
        pdf.set_x(text_x)
        pdf.set_font(FONT, "B", 11)
        shop_width = width - (text_x - pdf.l_margin) - (0 if narrow else 70)
        pdf.multi_cell(shop_width, 5, self.shop.name, new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "", 8)
        for line in (self.shop.address, self.shop.phone):
            if line:
                pdf.multi_cell(shop_width, 3.8, line, new_x="LEFT", new_y="NEXT")
        shop_bottom = pdf.y
        if not narrow:
            pdf.set_xy(pdf.l_margin + width - 70, top)
        else:
            pdf.set_xy(pdf.l_margin, shop_bottom + 2)
        pdf.set_font(FONT, "B", 12)
        pdf.multi_cell(70 if not narrow else width, 6, self.title, align="L" if narrow else "R",
                       new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "", 8)
        pdf.multi_cell(70 if not narrow else width, 4, label, align="L" if narrow else "R", new_x="LEFT", new_y="NEXT")
        pdf.set_xy(pdf.l_margin, max(pdf.y, shop_bottom) + 3)

    def _access(self, pdf: FPDF, qr_size: float, narrow: bool) -> None:
        """The access code beside a QR code that opens the panel with the code filled in (the customer then types
        the last digits of their phone number), and the panel's address in words for those without a camera."""
        width, top = pdf.epw, pdf.y
        qr = BytesIO()
        segno.make(self.panel_link, error="m").save(qr, kind="png", scale=6, border=1)
        qr.seek(0)
        if narrow:  # the code under the QR code: a roll is too narrow for both side by side
            pdf.image(qr, x=pdf.l_margin + (width - qr_size) / 2, y=top, w=qr_size, h=qr_size, link=self.panel_link)
            pdf.set_xy(pdf.l_margin, top + qr_size + 1)
            text_width = width
        else:
            pdf.image(qr, x=pdf.l_margin, y=top, w=qr_size, h=qr_size, link=self.panel_link)
            pdf.set_xy(pdf.l_margin + qr_size + 3, top)
            text_width = width - qr_size - 3
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(text_width, 5, _("Panel access code"), align="L", new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "B", 14)
        pdf.multi_cell(text_width, 7, self.code, align="L", new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "", 7.5 if narrow else 8)
        pdf.multi_cell(text_width, 3.6, _("Scan the code, or open %(address)s and type the code with the last 3 "
                                          "digits of your phone number: you can follow the repair and write to us.",
                                          address=self.panel_address), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.y, top + (0 if narrow else qr_size)) + 1)

    def _signatures(self, pdf: FPDF, narrow: bool) -> None:
        pdf.ln(9)
        pdf.set_font(FONT, "", 7.5)
        names = (_("Customer's signature"), _("Received by (shop)"))
        if narrow:
            for name in names:
                pdf.cell(pdf.epw, 0.1, "", border="T", new_x="LMARGIN", new_y="NEXT")
                pdf.multi_cell(pdf.epw, 4, name, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(8)
            return
        column = (pdf.epw - 20) / 2
        y = pdf.y
        for index, name in enumerate(names):
            x = pdf.l_margin + index * (column + 20)
            pdf.line(x, y, x + column, y)
            pdf.set_xy(x, y + 1)
            pdf.multi_cell(column, 4, name, align="C")
        pdf.set_xy(pdf.l_margin, y + 6)

    def _cut_line(self, pdf: FPDF) -> None:
        pdf.set_draw_color(150)
        pdf.set_dash_pattern(dash=2, gap=2)
        pdf.line(0, pdf.y - 4, pdf.w, pdf.y - 4)
        pdf.set_dash_pattern()
        pdf.set_draw_color(0)


def _pdf(repair: Repair, shop: Shop, page_format, margin: float = 12) -> FPDF:
    pdf = FPDF(format=page_format)
    pdf.set_margins(margin, margin, margin)
    pdf.set_auto_page_break(True, margin=margin)
    pdf.set_title(repair.number)
    pdf.set_creator(shop.name)
    pdf.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    return pdf


def _logo(shop: Shop) -> BytesIO | None:
    """The shop's logo (Settings → Customer panel) when it is a PNG or JPEG; an SVG or a missing file: none."""
    sha256 = digest_of(shop.panel_logo_path)
    try:
        data = read_stored(sha256) if sha256 else b""
    except FileNotFoundError:
        return None
    return BytesIO(data) if data.startswith(LOGO_FORMATS) else None
