"""valid_ip: the canonical form of an address. Its IPv4 shortcut must answer exactly what Python's
ipaddress answers, on every shape of dotted quad a log can hold."""

from __future__ import annotations

import pytest

from siem.normalize import valid_ip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("[10.0.0.1]", "10.0.0.1"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("[::1]", "::1"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
    ],
)
def test_an_address_comes_back_in_canonical_form(value: str, expected: str) -> None:
    assert valid_ip(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "01.2.3.4",  # a leading zero: ipaddress refuses it (octal ambiguity)
        "1.2.3.004",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4 ",
        " 1.2.3.4",
        "\u0661.2.3.4",  # an Arabic-Indic digit: str.isdigit() is true, an address it is not
        "1.2.3.4\n",
        "-",
        "example.com",
        "",
    ],
)
def test_what_is_not_an_address_is_none(value: str) -> None:
    assert valid_ip(value) is None


def test_every_octet_value_and_its_zero_padded_forms_agree_with_ipaddress() -> None:
    import ipaddress

    for octet in range(0, 300):
        for text in (str(octet), f"{octet:02d}", f"{octet:03d}"):
            value = f"10.{text}.0.1"
            try:
                expected: str | None = str(ipaddress.ip_address(value))
            except ValueError:
                expected = None
            assert valid_ip(value) == expected, value
