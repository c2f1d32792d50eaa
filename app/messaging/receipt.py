"""The repair's acceptance receipt as a PDF, the document a template can attach (fpdf2 with a Unicode font)."""
from __future__ import annotations

from pathlib import Path

from flask_babel import force_locale
from flask_babel import gettext as _
from fpdf import FPDF

from ..i18n import money, shown_date
from ..models import Repair, Shop

# Debian's fonts-dejavu-core (installed by scripts/install-system-packages.sh and the Dockerfile): the core PDF
# fonts know only Latin-1, which has no ą, ę, ł, ś, ż.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"


def acceptance_receipt(repair: Repair, shop: Shop) -> bytes:
    """The receipt the customer gets when leaving a device: shop, repair number and date, customer, device,
    fault, price estimate, and the access code that opens the repair in the customer panel.

    The customer's phone number is not printed: its last digits are what confirms the access code, so a lost or
    photographed receipt must not carry both."""
    locale = shop.locale or "pl"
    pdf = FPDF(format="A4")
    pdf.set_title(repair.number)
    pdf.set_creator(shop.name)
    pdf.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    width = pdf.epw

    with force_locale(locale):
        pdf.set_font(FONT, "B", 14)
        pdf.multi_cell(width, 7, shop.name, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FONT, "", 10)
        for line in (shop.address, shop.phone):
            if line:
                pdf.multi_cell(width, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
        pdf.set_font(FONT, "B", 16)
        pdf.multi_cell(width, 9, _("Acceptance receipt %(number)s", number=repair.number),
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        estimate = money(repair.price_estimate, locale) if repair.price_estimate is not None else "—"
        rows = [
            (_("Date"), shown_date(repair.created_at.date(), locale)),
            (_("Customer"), repair.customer.name),
            (_("E-mail"), repair.customer.email or "—"),
            (_("Device"), repair.device),
            (_("Fault description"), repair.description or "—"),
            (_("Price estimate"), estimate),
            (_("Panel access code"), repair.access_code or "—"),
        ]
        for label, value in rows:
            pdf.set_font(FONT, "B", 10)
            pdf.cell(50, 6, label)
            pdf.set_font(FONT, "", 10)
            pdf.multi_cell(width - 50, 6, value, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
        pdf.set_font(FONT, "", 9)
        pdf.multi_cell(width, 5, _("With the access code and the last digits of your phone number you can follow "
                                   "the repair and write to us in the customer panel."),
                       new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
