"""Reading received mail: charsets, the new part of a reply apart from the quote, safe HTML, attachments, bounces."""
from __future__ import annotations

import email
import os
import re
from datetime import datetime, timezone
from email.policy import compat32
from pathlib import Path

import pytest

from app.inbound.charsets import decode_bytes, decode_words, header_param
from app.inbound.html import has_remote_images, html_to_text, resolve_cid, sanitize, show_remote_images
from app.inbound.parse import UnparseableMail, compress, decompress, parse_mail
from app.inbound.quotes import split_at_mark, split_reply

MAIL = Path(__file__).parent / "mail"
SAMPLES = sorted(path.name for path in MAIL.glob("*.eml"))


def sample(name: str) -> bytes:
    return (MAIL / name).read_bytes()


def html_part(name: str) -> str:
    """The raw (unsanitised) HTML part of a sample, as the mail program wrote it."""
    message = email.message_from_bytes(sample(name), policy=compat32)
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return part.get_payload(decode=True).decode(part.get_content_charset())


# --- every sample -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_mail_is_read_the_same_with_either_line_ending(name):
    raw = sample(name)
    lf, crlf = raw.replace(b"\r\n", b"\n"), raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    parsed, again = parse_mail(lf), parse_mail(crlf)
    assert parsed.from_address and parsed.subject and parsed.date is not None
    assert (again.text, again.quoted_text, again.subject) == (parsed.text, parsed.quoted_text, parsed.subject)
    assert [a.filename for a in again.attachments] == [a.filename for a in parsed.attachments]
    assert again.content_hash == parsed.content_hash
    assert "\x00" not in parsed.text + parsed.quoted_text


# --- replies from the mail programs customers use -------------------------------------------------


def test_gmail_reply_in_polish_keeps_the_answer_and_folds_the_wrapped_attribution_into_the_quote():
    mail = parse_mail(sample("gmail_pl_reply.eml"))
    assert mail.subject == "Re: Naprawa iPhone 12 – wycena [#R-1042]"
    assert (mail.from_name, mail.from_address) == ("Jan Kowalski", "jan.kowalski@example.com")
    assert mail.to == ["serwis+token@shop.example"]
    assert mail.envelope_recipients == ["serwis@shop.example"]
    assert mail.message_id == "CAHx3fTq8Lw2Xz7c0vYk1mJb9uN4pQ+5r6sT7uV8wX9yZ0aB1cD@mail.gmail.com"
    assert mail.in_reply_to == mail.references == ["ri.THREAD.MESSAGE.SIG@shop.example"]
    assert mail.date == datetime(2024, 3, 12, 10, 17, 29, tzinfo=timezone.utc)
    assert mail.text.startswith("Dzień dobry,\n\nproszę o naprawę, cena 450 zł mi odpowiada.")
    assert mail.text.endswith("Pozdrawiam\nJan Kowalski")
    assert mail.quoted_text.startswith("wt., 12 mar 2024 o 10:02 Serwis GSM Kowalczyk")
    assert "> wycena naprawy iPhone 12" in mail.quoted_text
    assert mail.report is None and mail.attachments == [] and mail.defects == []


def test_gmail_reply_in_english():
    mail = parse_mail(sample("gmail_en_reply.eml"))
    assert mail.from_address == "john.smith@example.com"  # lower-cased
    assert mail.cc == ["anna.smith@example.com"]
    assert mail.text == (
        "Hi,\n\nGreat, please go ahead with the battery replacement. I can pick it up on\nFriday.\n\nThanks,\nJohn"
    )
    assert mail.quoted_text.startswith("On Mon, Mar 11, 2024 at 4:45 PM Repair Shop")


def test_outlook_desktop_reply_in_windows_1250_with_its_polish_header_block():
    mail = parse_mail(sample("outlook_pl_reply.eml"))
    assert mail.subject == "RE: Laptop Lenovo – diagnoza [#R-1044]"
    assert mail.from_name == "Małgorzata Wiśniewska"
    assert mail.text.endswith("Z poważaniem\nMałgorzata Wiśniewska\nBiuro Rachunkowe Wiśniewska")
    assert "Koszt naprawy" not in mail.text
    assert mail.quoted_text.startswith("Od: Serwis GSM Kowalczyk")
    assert mail.headers["thread-index"] == "AQHadFUnVjdGQm1qRUiGl0n8bkRBqbEzg0Bw"
    assert "serwis+token@shop.example" in mail.envelope_recipients  # X-Original-To
    [logo] = mail.attachments
    assert (logo.filename, logo.content_type, logo.inline) == ("image001.png", "image/png", True)
    assert logo.content_id == "image001.png@01DA7455.6C2B3F10"
    assert 'src="cid:image001.png@01DA7455.6C2B3F10"' in mail.html


def test_outlook_com_reply_exposes_the_message_id_its_provider_replaced():
    mail = parse_mail(sample("outlook_com_reply.eml"))
    assert mail.subject == "Re: Odbiór telefonu [#R-1045]"
    assert mail.message_id == "DB9PR02MB73214F2C6E7D8A1B2C3D4E5FA1B2C@DB9PR02MB7321.eurprd02.prod.outlook.com"
    assert mail.message_id_aliases == ["a1b2c3d4-e5f6-4711-8899-aabbccddeeff@outlook.example"]
    assert mail.text == "Thanks, the phone works again. One more question: is the screen protector included?\n\nPiotr"
    assert mail.quoted_text.startswith("________________________________\nFrom: Serwis GSM Kowalczyk")


def test_thunderbird_reply_joins_flowed_lines_and_lists_references_newest_first():
    mail = parse_mail(sample("thunderbird_pl_reply.eml"))
    assert mail.subject == "Re: Drukarka Brother - naprawa zakończona [#R-1046]"
    assert mail.from_name == "Krzysztof Zieliński"
    assert mail.references == ["ri.THREAD.MESSAGE.SIG@shop.example", "ri.THREAD.FIRST.SIG@shop.example"]
    assert "W tygodniu pracuję do 18 i nie zdążę." in mail.text  # the soft line break is gone
    assert mail.quoted_text.startswith("W dniu 14.03.2024 o 09:12, Serwis GSM Kowalczyk pisze:")
    assert "> drukarka Brother jest naprawiona, wymieniliśmy rolkę pobierającą. Do zapłaty 180 zł." in (
        mail.quoted_text
    )


def test_iphone_reply_keeps_its_signature_and_folds_the_quote():
    mail = parse_mail(sample("apple_iphone_pl_reply.eml"))
    assert mail.subject == "Odp: Naprawa potrwa do piątku [#R-1047]"
    assert mail.text == "Dobrze, w takim razie przyjadę w piątek.\n\nWysłano z iPhone'a"
    assert mail.quoted_text.startswith("> Dnia 15.03.2024 o godz. 08:05 Serwis GSM Kowalczyk")


@pytest.mark.parametrize("name, answer, first_quoted", [
    ("onet_pl_reply.eml", "a ile będzie kosztować wymiana gniazda ładowania?", "Dnia 16 marca 2024 10:20"),
    ("interia_pl_reply.eml", "zgadzam się na naprawę.", 'Od: "Serwis GSM Kowalczyk"'),
])
def test_polish_webmail_replies_in_iso_8859_2(name, answer, first_quoted):
    mail = parse_mail(sample(name))
    assert answer in mail.text and "Serwis GSM Kowalczyk" not in mail.text
    assert mail.quoted_text.startswith(first_quoted)
    assert "ł" in mail.subject + mail.from_name or "ń" in mail.from_name


@pytest.mark.parametrize("name, answer, quoted", [
    ("gmail_pl_reply.eml", "Telefon mogę przywieźć jutro po 16.", "wycena naprawy iPhone 12"),
    ("gmail_en_reply.eml", "I can pick it up on Friday.", "the new battery for your Pixel 7"),
    ("outlook_pl_reply.eml", "Proszę jeszcze sprawdzić baterię", "Koszt naprawy 780 zł"),
    ("outlook_com_reply.eml", "is the screen protector included?", "telefon jest gotowy do odbioru"),
    ("apple_iphone_pl_reply.eml", "przyjadę w piątek", "naprawa potrwa do piątku"),
    ("onet_pl_reply.eml", "wymiana gniazda ładowania?", "nie ładuje z powodu uszkodzonego gniazda"),
])
def test_html_replies_are_cut_where_the_mail_program_put_its_quote(name, answer, quoted):
    new, history = split_at_mark(html_to_text(html_part(name)))
    assert answer in new and quoted not in new
    assert quoted in history
    assert not any(line.startswith(("Od:", "From:", "On ", "Dnia", "wt.")) for line in new.splitlines())


OUTLOOK_2016 = (
    '<div class="WordSection1"><p class="MsoNormal">Tak, proszę.<o:p></o:p></p>'
    '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;'
    'padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>Od:</b> Serwis <br><b>Wysłano:</b> wtorek<br>'
    '<b>Temat:</b> Naprawa</p></div></div><p class="MsoNormal">Koszt 200 zł.</p></div>'
)
THUNDERBIRD_HTML = (
    '<p>Tak, proszę.</p><div class="moz-cite-prefix">W dniu 12.03.2024 o 10:15, Serwis pisze:<br></div>'
    '<blockquote type="cite" cite="mid:ri.1.2.x@shop.example">Koszt 200 zł.</blockquote>'
)


@pytest.mark.parametrize("html", [OUTLOOK_2016, THUNDERBIRD_HTML])
def test_html_quote_structures_of_outlook_desktop_and_thunderbird(html):
    new, quoted = split_at_mark(html_to_text(html))
    assert new == "Tak, proszę."
    assert quoted.startswith(("Od: Serwis", "W dniu 12.03.2024")) and quoted.endswith("Koszt 200 zł.")


def test_an_html_only_reply_gets_its_text_and_quote_from_the_html():
    raw = sample("gmail_pl_reply.eml")
    message = email.message_from_bytes(raw, policy=compat32)
    message.set_payload([p for p in message.get_payload() if p.get_content_type() == "text/html"])
    mail = parse_mail(message.as_bytes())
    assert mail.text == (
        "Dzień dobry,\n\nproszę o naprawę, cena 450 zł mi odpowiada. Telefon mogę przywieźć jutro po 16.\n\n"
        "Pozdrawiam\nJan Kowalski"
    )
    assert mail.quoted_text.startswith(
        "wt., 12 mar 2024 o 10:02 Serwis GSM Kowalczyk <serwis+TOKEN@shop.example> napisał(a):"
    )


def test_answers_written_between_quoted_parts_of_an_html_mail_are_never_folded_away():
    html = ('<div>Hi,</div><div class="moz-cite-prefix">On 12.03.2024 10:15, Shop wrote:<br></div>'
            '<blockquote type="cite">Which colour?</blockquote><p>Black.</p><blockquote type="cite">When?</blockquote>'
            "<p>Friday.</p>")
    new, quoted = split_at_mark(html_to_text(html))
    assert quoted == "" and "Black." in new and "Friday." in new


# --- forwards ----------------------------------------------------------------------------------------


def test_a_forwarded_mail_is_kept_whole_not_hidden_as_a_quote():
    mail = parse_mail(sample("gmail_forward.eml"))
    assert mail.subject == "Fwd: Faktura za naprawę"
    assert mail.quoted_text == ""
    assert "---------- Forwarded message ---------" in mail.text
    assert "w załączniku faktura nr 12/03/2024." in mail.text
    [invoice] = mail.attachments
    assert (invoice.filename, invoice.content_type) == ("Faktura 12_03_2024.pdf", "application/pdf")
    assert not invoice.inline
    assert invoice.payload.startswith(b"%PDF-1.4")


def test_a_message_forwarded_as_an_attachment_joins_the_text_and_brings_its_attachments():
    mail = parse_mail(sample("forward_as_attachment.eml"))
    assert mail.subject == "PW: Zamówienie części"
    assert mail.text.startswith("Przesyłam zamówienie z hurtowni")
    assert "From: Hurtownia AGD <zamowienia@hurtownia.example.com>" in mail.text
    assert "zamawiam części do naprawy ekspresu: uszczelka i pompa." in mail.text
    assert [(a.filename, a.payload) for a in mail.attachments] == [
        ("zamowienie.csv", b"pozycja;ilosc\nuszczelka;1\npompa;1\n")
    ]


# --- HTML ----------------------------------------------------------------------------------------------


def test_hostile_html_is_defused_and_remote_images_wait_for_the_reader():
    mail = parse_mail(sample("html_only_hostile.eml"))
    html = mail.html.lower()
    for hostile in ("<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "<form", "<input",
                    "<style", "style=", "document.cookie", "data:text/html", "<svg"):
        assert hostile not in html, hostile
    assert 'data-remote-src="https://tracker.example.com/open.gif?id=123"' in mail.html
    assert 'data-remote-src="//cdn.example.com/logo.png"' in mail.html
    assert ' src="http' not in mail.html and ' src="//' not in mail.html
    assert 'src="cid:zdjecie1@example.com"' in mail.html
    assert '<a href="https://shop.example.com/zamowienie/77" target="_blank" rel="noopener noreferrer">' in mail.html
    assert has_remote_images(mail.html)
    [photo] = mail.attachments
    assert (photo.filename, photo.content_id, photo.inline) == ("zdjecie.png", "zdjecie1@example.com", True)


def test_text_of_an_html_only_mail_reads_like_the_mail():
    mail = parse_mail(sample("html_only_hostile.eml"))
    assert mail.text.startswith("Reklamacja zamówienia\n\nDzień dobry, w załączeniu zdjęcie uszkodzonego ekranu.")
    assert "- ekran pęknięty\n- dotyk nie działa" in mail.text
    assert "zamówienie 77 (https://shop.example.com/zamowienie/77)" in mail.text
    assert "(https://shop.example.com/)" not in mail.text  # a link showing its own address is not repeated
    assert "alert" not in mail.text and "background" not in mail.text
    assert mail.text.endswith("Pozdrawiam\nAdam Nowicki")


def test_the_reader_can_load_remote_images_and_inline_images_point_at_our_files():
    html = sanitize('<p><img src="https://x.example.com/a.png" alt="a"><img src="cid:Logo@Mail"></p>')
    assert not has_remote_images(show_remote_images(html))
    assert '<img src="https://x.example.com/a.png" alt="a">' in show_remote_images(html)
    resolved = resolve_cid(html, {"<logo@mail>": "/attachments/7?download=0&inline=1"})
    assert '<img src="/attachments/7?download=0&amp;inline=1">' in resolved
    assert resolve_cid(html, {}) == html  # an unknown part leaves the image empty, nothing breaks


def test_data_images_are_kept_only_when_they_are_images():
    html = sanitize('<img src="data:image/png;base64,iVBORw0KGgo="><img src="data:image/svg+xml;base64,PHN2Zz4=">'
                    '<img src="data:text/html;base64,PHNjcmlwdD4=">')
    assert html.count("data:") == 1 and "data:image/png" in html


def test_an_attribute_holding_a_tag_cannot_hide_a_remote_image():
    html = sanitize('<img alt="a>b" title=\'"><img src=x>\' src="https://tracker.example.com/p.gif">')
    assert ' src="https' not in html and 'data-remote-src="https://tracker.example.com/p.gif"' in html


@pytest.mark.parametrize("image", [
    '<img src=https://x.example.com/a.png/>', '<IMG SRC="HTTPS://X.EXAMPLE.COM/A">',
    '<img\nsrc="https://x.example.com">', '<img src="&#104;ttps://x.example.com">',
    '<img src=" https://x.example.com">', '<img src="ht\tps://x.example.com">',
    '<img src="/\\x.example.com/a">', '<img src="relative.png">', '<img src="cid:a" srcset="https://x.example.com 2x">',
    '<table background="https://x.example.com/bg"><tr><td>a</td></tr></table>',
])
def test_no_spelling_of_a_remote_image_gets_past_the_block(image):
    html = sanitize(image).lower()
    assert not re.search(r'(?<!data-remote-)(?:src|srcset|background)="[^"]*x\.example\.com', html), html


# --- bounces and receipts -----------------------------------------------------------------------------


def test_a_postfix_bounce_names_the_recipient_the_reason_and_our_message():
    report = parse_mail(sample("bounce_postfix.eml")).report
    assert (report.recipient, report.action, report.status) == ("jan.nieistniejacy@example.com", "failed", "5.1.1")
    assert report.diagnostic.startswith("550 5.1.1 <jan.nieistniejacy@example.com>: Recipient address rejected")
    assert report.original_ids[0] == "ri.THREAD.MESSAGE.SIG@shop.example"
    assert "serwis+token@shop.example" in report.original_recipients
    assert report.permanent


def test_an_exchange_bounce_finds_our_id_behind_the_rewritten_one():
    mail = parse_mail(sample("bounce_exchange.eml"))
    assert mail.subject == "Niedostarczalne: Wycena naprawy [#R-1051]"
    assert mail.report.recipient == "anna.zamknieta@example.com"
    assert mail.report.status == "5.1.10"
    assert "ri.THREAD.MESSAGE.SIG@shop.example" in mail.report.original_ids
    assert mail.text.startswith("Nie można dostarczyć wiadomości")
    assert [a.filename for a in mail.attachments] == ["original.eml"]


def test_a_gmail_bounce_with_only_the_returned_headers():
    report = parse_mail(sample("bounce_gmail.eml")).report
    assert (report.recipient, report.status, report.permanent) == ("nie.ma.takiego@example.com", "5.1.1", True)
    assert report.diagnostic.startswith("The email account that you tried to reach does not exist.")
    assert report.original_ids == ["ri.THREAD.MESSAGE.SIG@shop.example", "ri.THREAD.FIRST.SIG@shop.example"]


def test_a_qmail_bounce_written_as_prose_is_still_understood():
    mail = parse_mail(sample("bounce_qmail.eml"))
    report = mail.report
    assert (report.recipient, report.action, report.status) == ("stary.adres@example.com", "failed", "5.1.1")
    assert report.original_ids[0] == "ri.THREAD.MESSAGE.SIG@shop.example"
    assert "serwis+token@shop.example" in report.original_recipients
    assert "Below this line is a copy" not in report.diagnostic
    assert mail.quoted_text == "" and "Przypominamy o odbiorze telefonu." in mail.text


def test_an_old_exchange_bounce_in_plain_text_from_postmaster():
    raw = (b"From: postmaster@example.com\nTo: serwis@shop.example\nSubject: Undeliverable: Wycena [#R-1054]\n"
           b"Date: Thu, 4 Apr 2024 10:00:00 +0200\n\n"
           b"Delivery has failed to these recipients or groups:\n\nola@example.com\n"
           b"The e-mail address you entered couldn't be found.\n\n"
           b"Diagnostic information for administrators:\n\n"
           b"Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipientNotFound; not found'\n\n"
           b"Original message headers:\n\nReceived: from app.shop.example by mail.example.com\n"
           b"From: Serwis <serwis@shop.example>\nTo: Ola <ola@example.com>\n"
           b"Message-ID: <ri.1.2.0123456789abcdef@shop.example>\nSubject: Wycena [#R-1054]\n")
    report = parse_mail(raw).report
    assert (report.recipient, report.status, report.action) == ("ola@example.com", "5.1.1", "failed")
    assert report.original_ids == ["ri.1.2.0123456789abcdef@shop.example"]
    assert report.diagnostic.startswith("Delivery has failed") and "Received:" not in report.diagnostic


def test_a_delayed_delivery_notice_is_not_permanent():
    raw = sample("bounce_qmail.eml").replace(b"550 5.1.1", b"451 4.4.1")
    raw = raw.replace(b"permanent error", b"temporary problem")
    report = parse_mail(raw).report
    assert (report.action, report.status, report.permanent) == ("delayed", "4.4.1", False)


def test_a_read_receipt_is_neither_a_reply_nor_a_bounce():
    mail = parse_mail(sample("read_receipt.eml"))
    assert mail.read_receipt and mail.report is None
    assert mail.attachments == []


def test_an_out_of_office_reply_shows_what_classifying_needs():
    mail = parse_mail(sample("autoreply_pl.eml"))
    assert mail.subject == "Automatyczna odpowiedź: Rozwiązanie naprawy [#R-1044]"
    assert mail.headers["auto-submitted"] == "auto-replied"
    assert mail.headers["x-auto-response-suppress"] == "All"
    assert mail.text.startswith("Dzień dobry,\n\njestem na urlopie do 5 kwietnia")
    assert mail.report is None


# --- attachments and broken mail ---------------------------------------------------------------------


def test_attachment_names_in_every_encoding_are_decoded_and_made_safe():
    names = [a.filename for a in parse_mail(sample("attachment_rfc2231_pl.eml")).attachments]
    assert names == [
        "Faktura zakupu – Łódź.pdf", "zdjęcie pękniętego ekranu żółte.jpg", "ściana tylna.jpg", "evil.bat"
    ]


def test_a_mail_without_message_id_is_still_read():
    mail = parse_mail(sample("no_message_id.eml"))
    assert mail.message_id is None
    assert mail.text == "Dokument zeskanowany na urzadzeniu MFP-01."


def test_broken_mime_and_wrong_charset_labels_lose_nothing():
    mail = parse_mail(sample("broken_mime.eml"))
    assert mail.text == "Dzień dobry, pralka znów przecieka. Proszę o szybki termin.\nAnna Wójcik"
    assert "Anna Wójcik" in mail.html
    [protocol] = mail.attachments  # its base64 is broken: kept as it came, with the defect noted
    assert (protocol.filename, protocol.payload) == ("protokol.pdf", b"JVBERi0xLjQKJeLjz9MK!!!not-base64@@@")
    assert "InvalidBase64LengthDefect in application/pdf" in mail.defects
    assert "text/plain: declared us-ascii, read as cp1250" in mail.defects
    assert "text/html: declared iso-8859-1, read as utf-8" in mail.defects
    assert any("CloseBoundaryNotFound" in defect for defect in mail.defects)


def test_raw_8bit_headers_and_a_missing_content_type():
    mail = parse_mail(sample("headers_8bit.eml"))
    assert (mail.from_name, mail.subject) == ("Zbigniew Łęcki", "Pytanie o naprawę zegarka — ważne")
    assert mail.text == "Czy naprawiają Państwo zegarki mechaniczne? Mam starą Pobiedę po dziadku."


def test_raw_8bit_headers_in_windows_1250():
    raw = "From: Zbigniew Łęcki <z@example.com>\nSubject: Śruba\n\nTreść\n".encode("cp1250")
    mail = parse_mail(raw)
    assert (mail.from_name, mail.subject, mail.text) == ("Zbigniew Łęcki", "Śruba", "Treść")


def test_a_multipart_without_its_declared_boundary_is_read_with_the_one_it_uses():
    raw = (b"From: a@example.com\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"wrong\"\n\n"
           b"--right\nContent-Type: text/plain; charset=utf-8\n\nTre\xc5\x9b\xc4\x87\n"
           b"--right\nContent-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n\n"
           b"JVBERi0=\n--right--\n")
    mail = parse_mail(raw)
    assert mail.text == "Treść"
    assert [(a.filename, a.payload) for a in mail.attachments] == [("a.pdf", b"%PDF-")]
    assert "multipart boundary repaired" in mail.defects


def test_a_part_that_trips_the_parser_is_kept_raw_and_the_rest_is_still_read(monkeypatch):
    import app.inbound.parse as parse

    def trip_on_html(data, charset=None):
        if b"<p>" in data:
            raise UnicodeEncodeError("ascii", "ł", 0, 1, "an odd part")
        return decode_bytes(data, charset)

    monkeypatch.setattr(parse, "decode_bytes", trip_on_html)
    mail = parse_mail(sample("broken_mime.eml"))
    assert mail.text.startswith("Dzień dobry, pralka znów przecieka.")
    assert any(a.content_type == "text/html" and b"<p>" in a.payload for a in mail.attachments)
    assert any(d.startswith("text/html could not be read (UnicodeEncodeError") for d in mail.defects)


def test_tnef_is_listed_as_an_attachment():
    [tnef] = parse_mail(sample("outlook_tnef.eml")).attachments
    assert (tnef.filename, tnef.content_type) == ("winmail.dat", "application/ms-tnef")


@pytest.mark.parametrize("raw", [b"", b"  \r\n\r\n", os.urandom(2048).replace(b":", b""), b"\x00\x01\x02PK\x03\x04"])
def test_only_bytes_that_are_no_mail_at_all_are_refused(raw):
    with pytest.raises(UnparseableMail):
        parse_mail(raw)


def test_a_mail_nested_to_break_parsers_is_refused_with_a_reason():
    depth = 3000
    raw = b"From: a@example.com\nSubject: deep\nMIME-Version: 1.0\n"
    raw += b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
    raw += b"Content-Type: text/plain\n\nhello\n" + b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
    with pytest.raises(UnparseableMail, match="nested too deeply"):
        parse_mail(raw)


def test_a_bare_body_with_one_header_is_read():
    mail = parse_mail(b"Subject: hello\n\nonly a body")
    assert (mail.subject, mail.text, mail.from_address, mail.date) == ("hello", "only a body", "", None)
    assert "no Date header" in mail.defects


# --- identity of a mail ---------------------------------------------------------------------------------


def test_the_same_mail_fetched_from_two_mailboxes_hashes_the_same():
    raw = sample("gmail_pl_reply.eml")
    other_box = raw.replace(b"Delivered-To: serwis@shop.example",
                            b"Delivered-To: biuro@shop.example\nX-Spam-Score: 0.1")
    assert parse_mail(other_box).content_hash == parse_mail(raw).content_hash


def test_a_different_mail_reusing_a_message_id_hashes_differently():
    raw = sample("gmail_en_reply.eml")
    edited = raw.replace(b"I can pick it up on\nFriday.", b"I can pick it up on\nMonday.")
    first, second = parse_mail(raw), parse_mail(edited)
    assert first.message_id == second.message_id
    assert first.content_hash != second.content_hash


def test_the_kept_raw_mail_comes_back_byte_for_byte():
    raw = sample("outlook_pl_reply.eml")
    kept = compress(raw)
    assert len(kept) < len(raw) and decompress(kept) == raw


# --- the quote splitter on its own ---------------------------------------------------------------------


def test_an_interleaved_answer_is_kept_whole():
    text = "On Mon, 11 Mar 2024, Shop wrote:\n> Which colour?\nBlack.\n> When?\nFriday."
    assert split_reply(text) == (text, "")


def test_a_mail_that_is_only_a_quote_is_kept_whole():
    text = "W dniu 12.03.2024 o 10:15, Serwis pisze:\n> Telefon gotowy."
    assert split_reply(text) == (text, "")


def test_a_wrapped_attribution_does_not_swallow_the_customers_last_line():
    text = "Dziękuję, odbiorę jutro o 10\npon., 11 mar 2024 o 16:45 Serwis <s@shop.example> napisał(a):\n> Gotowe."
    assert split_reply(text) == ("Dziękuję, odbiorę jutro o 10", text.split("\n", 1)[1])


@pytest.mark.parametrize("separator", [
    "-----Original Message-----",
    "-----Wiadomość oryginalna-----",
    "On 12 Mar 2024, at 10:15, Serwis <s@shop.example> wrote:",
    "Dnia 12.03.2024 o godz. 10:15 Serwis <s@shop.example> napisał(a):",
    "Wiadomość napisana przez Serwis <s@shop.example> w dniu 12.03.2024, o godz. 10:15:",
    "From: Serwis\nSent: Tuesday, March 12, 2024 10:15 AM\nTo: Jan\nSubject: Naprawa",
    "-------- Oryginalna wiadomość --------\nOd: Serwis <s@shop.example>\nData: 12.03.2024 10:15",
    "W poniedziałek, 11 marca 2024 16:45:00 CET, Serwis <s@shop.example> napisał(-a):",
])
def test_quote_separators_of_common_mail_programs(separator):
    new, quoted = split_reply(f"Tak, zgadzam się.\n\n{separator}\n\nTelefon gotowy.")
    assert new == "Tak, zgadzam się."
    assert quoted.startswith(separator.split("\n")[0]) and quoted.endswith("Telefon gotowy.")


def test_opening_hours_written_like_a_header_block_stay_in_the_text():
    text = "Mogę odebrać w sobotę.\nOd: 10:00\nDo: 14:00\nData: 16.03\n\nJan"
    assert split_reply(text) == (text, "")


def test_a_forwarded_block_inside_a_reply_is_not_hidden():
    text = ("Zobaczcie poniżej.\n\n-------- Wiadomość przekazana --------\n"
            "Od: Jan\nData: dziś\nTemat: x\nDo: y\n\nTreść")
    assert split_reply(text) == (text, "")


# --- charsets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1250", "iso8859_2"])
@pytest.mark.parametrize("declared", [None, "us-ascii", "iso-8859-1", "utf-8", "windows-1250", "iso-8859-2", "x-bogus"])
def test_polish_text_survives_any_charset_label(encoding, declared):
    text = "Zażółć gęślą jaźń. Śliczna łódź, Źródło."
    assert decode_bytes(text.encode(encoding), declared)[0] == text


def test_encoded_words_of_every_shape():
    assert decode_words("=?UTF-8?B?xZs=?= =?UTF-8?B?xYI=?=") == "śł"
    assert decode_words("=?UTF-8?B?xQ==?==?UTF-8?B?mw==?=") == "ś"  # a character split across two words
    assert decode_words("Re: =?iso-8859-2?Q?=B3=F3d=BC?= i =?utf-8*pl?q?=C5=BC?=") == "Re: łódź i ż"
    assert decode_words("=?utf-8?B?xZtsaWN6bmE?=") == "śliczna"  # missing padding
    assert decode_words("=?x-unknown?Q?Mi=B3ego_dnia?=") == "Miłego dnia"


def test_rfc2231_parameters():
    assert header_param("attachment; filename*=UTF-8''%C5%BC%C3%B3%C5%82w.txt", "filename") == "żółw.txt"
    assert header_param('attachment; filename="a \\"b\\".txt"', "filename") == 'a "b".txt'
    assert header_param("attachment", "filename") is None


# --- mail from outside Poland --------------------------------------------------------------------------


def test_declared_cjk_charsets_are_read_as_the_supersets_senders_use():
    mail = parse_mail(sample("cjk_supersets.eml"))  # GB2312, EUC-KR and Big5 labels on their supersets' text
    assert mail.text == "请修理，价格 100 € 可以。王䶮\n\n똠방각하 수리 부탁드립니다.\n\n唔該幫我整部電話，啲零件幾錢？"
    assert (mail.from_name, mail.subject) == ("王䶮", "维修报价 €")  # raw 8-bit headers in the body's charset
    assert not [d for d in mail.defects if "declared" in d]


def test_iso_8859_1_and_mislabelled_us_ascii_are_read_as_windows_1252():
    mail = parse_mail(sample("outlook_de_reply.eml"))
    assert "die Reparatur für 120 € ist in Ordnung. Bitte „schnell“ erledigen." in mail.text
    assert decode_bytes("It’s 20 € – ok".encode("cp1252"), "us-ascii") == (
        "It’s 20 € – ok", "declared us-ascii, read as cp1252")


def test_raw_shift_jis_headers_take_the_bodys_charset_with_its_vendor_characters():
    mail = parse_mail(sample("shift_jis_8bit_headers.eml"))
    assert (mail.from_name, mail.subject) == ("髙橋一郎", "見積もり①の件")
    assert mail.text == "髙橋です。見積もり①で進めてください。"


def test_iso_2022_jp_raw_in_headers_and_body_is_decoded():
    mail = parse_mail(sample("iso2022jp_raw_headers.eml"))
    assert (mail.from_name, mail.subject) == ("山田太郎", "修理の依頼について")
    assert mail.headers["from"] == "山田太郎 <yamada@example.jp>"
    assert mail.text == "修理をお願いします。\n① 部品代は 3000 ｶﾝ"
    assert decode_words("=?ISO-2022-JP?B?GyRCOSk+bBsoQg==?=") == "工場"


def test_an_undeclared_cyrillic_text_is_guessed_not_read_as_polish():
    text = "Здравствуйте, телефон сломался, экран не работает. Спасибо!"
    assert decode_bytes(text.encode("cp1251"))[0] == text
    assert decode_bytes(text.encode("koi8_r"))[0] == text


def test_a_uuencoded_block_in_the_text_becomes_an_attachment():
    mail = parse_mail(sample("uuencode_in_text.eml"))
    assert mail.text == "Dzień dobry,\nw załączeniu faktura.\n\nPozdrawiam\nBiuro"
    [invoice] = mail.attachments
    assert (invoice.filename, invoice.content_type) == ("faktura_1057.pdf", "application/pdf")
    assert invoice.payload.startswith(b"%PDF-1.4\n") and invoice.payload.endswith(b"%%EOF\n")


def test_an_x_uuencode_part_becomes_its_file():
    mail = parse_mail(sample("uuencode_part.eml"))
    assert mail.text == "Zdjęcie pękniętej obudowy w załączniku."
    [photo] = mail.attachments
    assert (photo.filename, photo.content_type) == ("obudowa.jpg", "image/jpeg")
    assert photo.payload.startswith(b"\xff\xd8\xff\xe0") and photo.payload.endswith(b"\xff\xd9")


@pytest.mark.parametrize(("headers", "expected"), [
    ("From: Ewa Lis <ewa.lis@example.com>\nSender: forms@example.net\n", ("from", "ewa.lis@example.com")),
    ("Sender: Ewa Lis <ewa.lis@example.com>\nReply-To: x@example.net\n", ("sender", "ewa.lis@example.com")),
    ("Reply-To: Ewa Lis <ewa.lis@example.com>\nReturn-Path: <b@example.net>\n", ("reply-to", "ewa.lis@example.com")),
    ("Return-Path: <ewa.lis@example.com>\n", ("return-path", "ewa.lis@example.com")),
    ("Return-Path: <>\n", ("", "")),
])
def test_a_mail_without_from_takes_its_sender_from_sender_reply_to_then_return_path(headers, expected):
    mail = parse_mail(f"{headers}To: serwis@shop.example\nSubject: Formularz\n\nTreść\n".encode())
    assert (mail.sender_header, mail.from_address) == expected


def test_a_sample_without_from_says_where_its_sender_came_from():
    mail = parse_mail(sample("no_from_reply_to.eml"))
    assert (mail.sender_header, mail.from_name, mail.from_address) == ("reply-to", "Ewa Lis", "ewa.lis@example.com")


def test_encoded_words_inside_an_address_are_never_decoded_into_another_address():
    mail = parse_mail(sample("encoded_word_address.eml"))
    assert mail.from_address == "=?utf-8?q?serwis=40shop.example?=@evil.example"
    assert mail.from_name == "=?utf-8?q?serwis=40shop.example?="  # a name that would read as an address
    assert mail.headers["from"] == '"=?utf-8?q?serwis=40shop.example?=" <=?utf-8?q?serwis=40shop.example?=@evil.example>'
    assert mail.cc == ["=?utf-8?b?amfuqgv4yw1wbguuy29t?=@evil.example"]
    assert "jan@example.com" not in mail.headers["cc"]


@pytest.mark.parametrize(("name", "new_part", "quote_starts"), [
    ("gmail_uk_reply.eml", "Добрий день,\n\nтак, ремонтуйте, ціна 180 zł мені підходить. Заберу телефон у п'ятницю."
                           "\n\nЗ повагою,\nОлена", "вт, 12 бер. 2024 р. о 10:02 Serwis GSM Kowalczyk"),
    ("outlook_de_reply.eml", "Guten Tag,\n\ndie Reparatur für 120 € ist in Ordnung. Bitte „schnell“ erledigen.\n\n"
                             "Mit freundlichen Grüßen\nKlaus Müller", "Von: Serwis GSM Kowalczyk"),
    ("outlook_no_reply.eml", "Hei,\n\nja, det er greit. Jeg henter telefonen på fredag.\n\nHilsen Ingrid",
     "________________________________\nFra: Serwis GSM Kowalczyk"),
    ("outlook_uk_reply.eml", "Добрий день,\n\nдякую, заберу кавоварку завтра о 12:00.\n\nАндрій",
     "Від: Serwis GSM Kowalczyk"),
    ("thunderbird_ru_reply.eml", "Здравствуйте,\n\nпринтер заберу в субботу. Спасибо!\n\nИван",
     "12.03.2024 10:02, Serwis GSM Kowalczyk пишет:"),
    ("gmail_ru_reply.eml", "Добрый день,\n\nда, ремонтируйте, пожалуйста.\n\nМария", "вт, 12 мар. 2024 г. в 10:02"),
    ("gmail_pl_wrapped_attribution.eml", "Dzień dobry,\n\nproszę o termin w czwartek.\n\nJan Kowalski",
     "W dniu 12 marca 2024 10:02 użytkownik Serwis GSM Kowalczyk <serwis+TOKEN@shop.example>\nnapisał(a):"),
])
def test_replies_in_the_customers_languages_are_split_from_their_history(name, new_part, quote_starts):
    mail = parse_mail(sample(name))
    assert mail.text == new_part
    assert mail.quoted_text.startswith(quote_starts)


@pytest.mark.parametrize("separator", [
    "W dniu 12.03.2024 o 10:15, Jan Kowalski <jan@example.com>\nnapisał(a):",
    "pon., 12 mar 2024 o 10:15 Serwis GSM <serwis@shop.example>\nnapisał(a):",
    "пн, 11 бер. 2024 р. о 16:45 Serwis <s@shop.example> пише:",
    "11.03.2024 16:45, Serwis пишет:",
    "11 марта 2024 г., в 16:45, Serwis <s@shop.example> написал(а):",
    "Dne 11. 3. 2024 v 16:45 Serwis <s@shop.example> napsal(a):",
    "Am 11.03.2024 um 16:45 schrieb Serwis <s@shop.example>:",
    "Le lun. 11 mars 2024 à 16:45, Serwis <s@shop.example> a écrit :",
    "Von: Serwis\nGesendet: Montag, 11. März 2024 16:45\nAn: Jan\nBetreff: Naprawa",
    "Fra: Serwis\nSendt: mandag 11. mars 2024 16:45\nTil: Jan\nEmne: Naprawa",
    "Від: Serwis\nНадіслано: 11 березня 2024 р. 16:45\nКому: Jan\nТема: Naprawa",
    "От: Serwis\nОтправлено: 11 марта 2024 г. 16:45\nКому: Jan\nТема: Naprawa",
    "-----Ursprüngliche Nachricht-----\nVon: Serwis\nAn: Jan",
    "-----Исходное сообщение-----\nОт: Serwis",
    "El lun, 11 mar 2024 a las 16:45, Serwis (<s@shop.example>) escribió:",
])
def test_attribution_lines_and_header_blocks_of_other_languages(separator):
    new, quoted = split_reply(f"Tak, zgadzam się.\n\n{separator}\n\nTelefon gotowy.")
    assert new == "Tak, zgadzam się."
    assert quoted.startswith(separator.split("\n")[0]) and quoted.endswith("Telefon gotowy.")


def test_a_customers_line_with_a_date_and_a_verb_is_not_taken_for_an_attribution():
    text = "Von: 10:00\nAn: 18:00\nSamstag geschlossen.\n\nGrüße"
    assert split_reply(text) == (text, "")


def test_html_without_a_mime_charset_is_read_in_the_charset_its_meta_tag_declares():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head><body>修理①</body></html>'
    raw = b"From: a@example.jp\nSubject: x\nContent-Type: text/html\n\n" + html.encode("cp932")
    assert parse_mail(raw).text == "修理①"


def test_a_raw_8bit_file_name_is_read_in_the_bodys_charset():
    raw = ("From: a@example.jp\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
           "--b\nContent-Type: text/plain; charset=shift_jis\n\n見積もり\n"
           "--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"見積書①.pdf\"\n"
           "Content-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n").encode("cp932")
    [quote] = parse_mail(raw).attachments
    assert quote.filename == "見積書①.pdf"


@pytest.mark.parametrize("label", ["x-user-defined", "utf-8*pl", "\"us-ascii\"", "x-bogus\x00", "iso-2022-jp", "gb2312",
                                   "shift_jis", "big5", "euc-kr", "ks_c_5601-1987", "windows-874", "unknown-8bit", ""])
def test_any_label_on_any_bytes_is_read_without_an_error(label):
    for data in ("café € Zażółć".encode("cp1252", "replace"), "Zażółć".encode("cp1250"), bytes(range(256)),
                 "日本語".encode("iso2022_jp") + b"\x1b$B", b"\x1b(I\xff\x1b$(D!"):
        text, _problem = decode_bytes(data, label)
        assert isinstance(text, str)


def test_8bit_text_under_a_charset_label_with_a_nul_is_still_read():
    raw = b'From: a@example.com\nSubject: x\nContent-Type: text/plain; charset="utf-8\x00x"\n\nTre\xc5\x9b\xc4\x87\n'
    assert parse_mail(raw).text == "Treść"
