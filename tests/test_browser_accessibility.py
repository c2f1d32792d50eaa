"""The main staff pages and the customer panel pass axe-core's WCAG 2.0/2.1 A and AA checks (contrast, names of
fields and buttons, landmarks, ids, ARIA) on the demo shop's data, on a desktop and on a phone: with their folded
parts open, forms showing their errors, and the panel in a pale brand colour too."""
from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from app.demo import OWNER_EMAIL, seed
from app.extensions import db
from app.messaging.inbox import VIEWS
from app.models import Customer, InboundItem, Mailbox, MessageTemplate, Repair, Shop, Thread, Ticket, User
from app.panel.credentials import issue_link
from browser_helpers import browser_page, sign_in_browser

PASSWORD = "demo-password-1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()


# What axe-core leaves aside: ids used twice (its own rule is no longer part of WCAG 2.2's tags, but a label or
# aria-describedby then points at the wrong element), and the contrast of text too short for axe to judge
# (a number in a badge), measured here from the computed colours of such short text on a solid background.
OWN_CHECKS = """() => {
    const found = [];
    const seen = new Map();
    for (const el of document.querySelectorAll("[id]")) seen.set(el.id, (seen.get(el.id) || 0) + 1);
    for (const [id, n] of seen) if (n > 1) found.push(["duplicate-id", "#" + id, `used ${n} times`]);
    const rgb = (colour) => colour.match(/[\\d.]+/g).map(Number);
    const luminance = (colour) => {
        const linear = (c) => (c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        const [r, g, b] = rgb(colour).slice(0, 3).map(linear);
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    for (const el of document.querySelectorAll(".counter, .badge")) {
        const style = getComputedStyle(el);
        if (style.display === "none" || !el.offsetParent || el.textContent.trim().length > 3) continue;
        const background = style.backgroundColor;
        if (rgb(background)[3] === 0) continue;  // transparent: axe itself judges it against what lies under it
        const [light, dark] = [luminance(style.color), luminance(background)].sort((a, b) => b - a);
        const ratio = (light + 0.05) / (dark + 0.05);
        if (ratio < 4.5) {
            found.push(["short-text-contrast", el.className, `${ratio.toFixed(2)}:1, ${style.color} on ${background}`]);
        }
    }
    return found;
}"""


def violations(page) -> list[str]:
    """axe-core's WCAG 2 A/AA violations on the page as it is now, one readable line per element."""
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_A_AA}, "resultTypes": ["violations"]})
    found = []
    for violation in results.response["violations"]:
        for node in violation["nodes"]:
            why = "; ".join(check["message"] for kind in ("any", "all", "none") for check in node[kind])
            found.append(f"  {violation['id']} at {' '.join(map(str, node['target']))}: {why}")
    found.extend(f"  {rule} at {where}: {why}" for rule, where, why in page.evaluate(OWN_CHECKS))
    return found


def check(page, name: str, found: dict[str, list[str]]) -> None:
    if lines := violations(page):
        found[name] = lines


def report(found: dict[str, list[str]]) -> str:
    count = sum(len(lines) for lines in found.values())
    pages = "\n".join(f"{page}:\n" + "\n".join(lines) for page, lines in found.items())
    return f"{count} WCAG 2 A/AA violations:\n{pages}"


def open_page(page, url: str) -> None:
    """Open the page with every folded part unfolded (tools, quotes, filters), so the checks see those too."""
    response = page.goto(url)
    assert response.ok, url
    page.wait_for_load_state("networkidle")  # parts that htmx loads after the page
    page.evaluate("document.querySelectorAll('main details').forEach((d) => { d.open = true; })")
    page.wait_for_load_state("networkidle")


def submit_empty(page, url: str) -> None:
    """Open a form and send it empty past the browser's own checks, so the page shows the server's errors."""
    open_page(page, url)
    form = page.locator("main form:has(button[type=submit])").last
    form.evaluate("(form) => { form.noValidate = true; form.querySelectorAll('input:not([type=hidden]), textarea')"
                  ".forEach((field) => { if (field.type !== 'checkbox') field.value = ''; }); }")
    with page.expect_navigation():
        form.locator("button[type=submit]").last.click()
    expect(page.locator(".error").first).to_be_visible()


@pytest.fixture
def demo(app):
    seed(PASSWORD)
    db.session.commit()


FORMS = ["/customers/new", "/repairs/new", "/tickets/new", "/settings/users/new", "/settings/mailboxes/new",
         "/settings/templates/new"]


def staff_pages() -> list[str]:
    """The main staff pages, with the demo shop's objects where a page shows one object."""
    customer = db.session.scalars(db.select(Customer).order_by(Customer.id)).first()
    company = db.session.scalars(db.select(Customer).where(Customer.kind == "company")).first()
    repair = db.session.scalars(db.select(Repair).order_by(Repair.id)).first()
    ticket = db.session.scalars(db.select(Ticket).order_by(Ticket.id)).first()
    held = db.session.scalars(db.select(InboundItem).where(InboundItem.status == "held")).first()
    mailbox = db.session.scalars(db.select(Mailbox).order_by(Mailbox.id)).first()
    template = db.session.scalars(db.select(MessageTemplate).order_by(MessageTemplate.id)).first()
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    # The thread with the most to show: messages both ways, a note, a repair.
    thread = db.session.scalars(db.select(Thread).where(Thread.repair_id.is_not(None)).order_by(Thread.id)).first()
    return [
        *(f"/?view={view}" for view in VIEWS), "/?q=naprawa",
        f"/threads/{thread.id}",
        f"/compose?repair_id={repair.id}", "/compose",
        "/customers/", f"/customers/{customer.id}", f"/customers/{company.id}",
        f"/customers/{company.id}/contacts/{company.contacts[0].id}", f"/compose?customer_id={company.id}",
        "/repairs/", f"/repairs/{repair.id}", f"/repairs/{repair.id}?tab=messages", f"/repairs/{repair.id}?tab=log",
        "/tickets/", f"/tickets/{ticket.id}",
        "/outbox/", "/held/", f"/held/{held.id}",
        "/settings/", "/settings/mailboxes/", f"/settings/mailboxes/{mailbox.id}",
        "/settings/templates/", f"/settings/templates/{template.id}", "/settings/notifications/",
        "/settings/notifications/reminders",
        "/settings/users", f"/settings/users/{owner.id}", "/settings/workflow/", "/settings/panel/",
        "/stats/", "/audit/", "/account/",
    ]


@pytest.mark.shop_locale("pl")
def test_the_staff_pages_pass_the_wcag_checks(browser, request, live_server, demo):
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    found = {}
    with browser_page(browser, request, viewport=DESKTOP, bypass_csp=True) as page:
        open_page(page, live_server.url + "/login")
        check(page, "/login", found)
        sign_in_browser(page, live_server, owner, PASSWORD)
        for path in staff_pages():
            open_page(page, live_server.url + path)
            check(page, path, found)
        for path in FORMS:
            submit_empty(page, live_server.url + path)
            check(page, f"{path} with errors", found)
    assert not found, report(found)


@pytest.mark.shop_locale("pl")
def test_the_staff_pages_pass_the_wcag_checks_on_a_phone(browser, request, live_server, demo):
    """The lists stacked into labelled rows, the menu and the filters unfolded."""
    owner = db.session.scalar(db.select(User).where(User.email == OWNER_EMAIL))
    paths = [path for path in staff_pages() if path.startswith(("/?view=open", "/threads/", "/customers/", "/repairs/",
                                                                 "/compose", "/outbox/", "/held/", "/settings/"))]
    found = {}
    with browser_page(browser, request, viewport=PHONE, is_mobile=True, bypass_csp=True) as page:
        sign_in_browser(page, live_server, owner, PASSWORD)
        open_page(page, live_server.url + "/")
        page.locator(".nav-toggle summary").click()
        page.locator(".filters-toggle-button").click()
        expect(page.locator("#filter-status")).to_be_visible()
        check(page, "/ with the menu and filters open", found)
        for path in paths:
            open_page(page, live_server.url + path)
            check(page, path, found)
    assert not found, report(found)


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("viewport, brand_colour", [(DESKTOP, None), (PHONE, None), (PHONE, "#ffd23f")],
                         ids=["desktop", "phone-390", "phone-390-pale-brand"])
def test_the_customer_panel_passes_the_wcag_checks(browser, request, live_server, demo, viewport, brand_colour):
    """Also in a shop whose brand colour is pale: the bar and buttons then carry dark text."""
    if brand_colour:
        Shop.current().panel_brand_colour = brand_colour
    customer = db.session.scalar(db.select(Customer).where(Customer.panel_state == "active"))
    token = issue_link(customer, "login")
    db.session.commit()
    base = f"{live_server.url}/p/{Shop.current().slug}"
    found = {}
    with browser_page(browser, request, viewport=viewport, is_mobile=viewport is PHONE, bypass_csp=True) as page:
        open_page(page, base + "/sign-in")
        check(page, "sign-in", found)
        open_page(page, f"{base}/s/{token}")
        check(page, "one-time link", found)
        page.locator("form button[type=submit]").click()
        expect(page.locator(".panel-thread")).not_to_have_count(0)
        check(page, "inbox", found)
        page.locator(".panel-thread a").first.click()
        expect(page.locator(".panel-message-body").first).to_be_visible()
        check(page, "thread", found)
        open_page(page, base + "/account")
        check(page, "account", found)
    assert not found, report(found)


@pytest.mark.shop_locale("pl")
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone-390"])
def test_the_public_request_form_passes_the_wcag_checks(browser, request, live_server, app, viewport):
    """The form as it opens, with its errors shown, and the page after it, in each of its languages."""
    Shop.current().request_form_enabled = True
    db.session.commit()
    base = f"{live_server.url}/p/{Shop.current().slug}/zapytanie"
    found = {}
    with browser_page(browser, request, viewport=viewport, is_mobile=viewport is PHONE, bypass_csp=True) as page:
        for language in ("pl", "en", "uk"):
            open_page(page, f"{base}?lang={language}")
            check(page, f"form ({language})", found)
        page.locator("form button[type=submit]").click()
        expect(page.locator(".field.has-error").first).to_be_visible()
        check(page, "form with errors", found)
        page.locator("input[name=name]").fill("Jan")
        page.locator("input[name=email]").fill("jan@example.com")
        page.locator("input[name=device]").fill("Phone")
        page.locator("textarea[name=problem]").fill("Broken")
        page.locator("input[name=consent]").check()
        page.locator("form button[type=submit]").click()
        expect(page.locator("input[name=code]")).to_be_visible()
        check(page, "code page", found)
    assert not found, report(found)
