"""The SMS counter: encoding and parts decide what a shop pays for, so the edges are exact."""
import pytest

from app.channels.sms_text import count, without_polish_letters


@pytest.mark.parametrize(
    "text, encoding, units, parts",
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count double
        ("a" * 159 + "[", "GSM-7", 161, 2),
        ("Twój telefon jest gotowy", "UCS-2", 24, 1),  # one Polish letter forces UCS-2
        ("ą" * 70, "UCS-2", 70, 1),
        ("ą" * 71, "UCS-2", 71, 2),
        ("ą" * 134, "UCS-2", 134, 2),
        ("ą" * 135, "UCS-2", 135, 3),
        ("Gotowe 👍", "UCS-2", 9, 1),  # an emoji is two UTF-16 units
    ],
)
def test_encoding_units_and_parts(text, encoding, units, parts):
    result = count(text)
    assert (result.encoding, result.units, result.parts) == (encoding, units, parts)


def test_an_escape_pair_is_never_split_between_parts():
    # 152 plain characters then "€": the pair does not fit in part one's last septet, so it moves on.
    result = count("a" * 152 + "€" + "a" * 10)
    assert result.parts == 2
    assert result.remaining == 153 - 12


def test_an_emoji_is_never_split_between_parts():
    result = count("ą" * 66 + "😀" + "ą" * 5)
    assert result.parts == 2 and result.remaining == 67 - 7


def test_without_polish_letters_goes_back_to_gsm7_and_saves_parts():
    text = "Dzień dobry, Pański telefon (wyświetlacz) jest już gotowy do odbioru. Zapraszamy – Serwis „Naprawa”. Łączna kwota: 250 zł."
    assert count(text).encoding == "UCS-2" and count(text).parts == 2
    plain = without_polish_letters(text)
    assert plain.startswith("Dzien dobry, Panski telefon (wyswietlacz) jest juz gotowy")
    assert "Lączna" not in plain and "Laczna kwota: 250 zl." in plain
    assert '"Naprawa"' in plain and " - " in plain
    assert count(plain).encoding == "GSM-7" and count(plain).parts == 1


def test_gsm_letters_with_accents_are_kept_and_emoji_stays():
    assert without_polish_letters("Café Müller 😀") == "Café Müller 😀"
    assert count(without_polish_letters("Café Müller")).encoding == "GSM-7"
