from __future__ import annotations

import pytest

from accounts.client_ip import client_ip, client_ip_bucket

PROXY = "10.0.0.1"


def _meta(remote_addr: str, forwarded_for: str | None = None) -> dict[str, str]:
    meta = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return meta


def test_without_trusted_proxies_the_socket_address_is_the_client() -> None:
    assert client_ip(_meta("198.51.100.1", "203.0.113.9"), []) == "198.51.100.1"


def test_an_untrusted_remote_address_ignores_forwarded_for() -> None:
    assert client_ip(_meta("198.51.100.1", "203.0.113.9"), [PROXY]) == "198.51.100.1"


def test_a_trusted_proxy_is_believed_about_the_client() -> None:
    assert client_ip(_meta(PROXY, "203.0.113.9"), [PROXY]) == "203.0.113.9"


def test_a_trusted_proxy_with_no_forwarded_for_is_the_client() -> None:
    assert client_ip(_meta(PROXY), [PROXY]) == PROXY
    assert client_ip(_meta(PROXY, ""), [PROXY]) == PROXY


def test_forwarded_for_is_walked_from_the_right_past_every_trusted_hop() -> None:
    meta = _meta(PROXY, "203.0.113.9, 10.0.0.3, 10.0.0.2")

    assert client_ip(meta, [PROXY, "10.0.0.2", "10.0.0.3"]) == "203.0.113.9"


def test_a_spoofed_leftmost_entry_is_ignored() -> None:
    meta = _meta(PROXY, "1.2.3.4, 203.0.113.9")

    assert client_ip(meta, [PROXY]) == "203.0.113.9"


def test_a_proxy_looking_address_left_of_the_client_is_ignored() -> None:
    meta = _meta(PROXY, "10.0.0.5, 203.0.113.9")

    assert client_ip(meta, ["10.0.0.0/8"]) == "203.0.113.9"


def test_trusted_proxies_can_be_cidr_ranges() -> None:
    meta = _meta("10.1.2.3", "203.0.113.9, 10.200.0.7")

    assert client_ip(meta, ["10.0.0.0/8"]) == "203.0.113.9"
    assert client_ip(meta, ["10.1.0.0/16"]) == "10.200.0.7"


def test_ipv6_proxy_ranges_are_supported() -> None:
    meta = _meta("2001:db8::10", "2001:db8:ffff::1, 2001:db8::20")

    assert client_ip(meta, ["2001:db8::/64"]) == "2001:db8:ffff::1"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    meta = _meta(PROXY, "10.0.0.9, 10.0.0.8")

    assert client_ip(meta, ["10.0.0.0/8"]) == "10.0.0.9"


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "expected"),
    [
        ("::ffff:198.51.100.1", None, "198.51.100.1"),
        (PROXY, "::ffff:203.0.113.9", "203.0.113.9"),
        ("::ffff:10.0.0.1", "203.0.113.9", "203.0.113.9"),
    ],
)
def test_ipv4_mapped_addresses_are_read_as_ipv4(remote_addr: str, forwarded_for: str | None, expected: str) -> None:
    assert client_ip(_meta(remote_addr, forwarded_for), [PROXY]) == expected


def test_bracketed_ipv6_hops_are_understood() -> None:
    assert client_ip(_meta(PROXY, "[2001:db8::1]"), [PROXY]) == "2001:db8::1"


def test_garbage_in_forwarded_for_stops_at_the_last_good_hop() -> None:
    assert client_ip(_meta(PROXY, "203.0.113.9, not-an-ip"), [PROXY]) == PROXY
    assert client_ip(_meta(PROXY, "203.0.113.9, garbage, 10.0.0.2"), ["10.0.0.0/8"]) == "10.0.0.2"
    assert client_ip(_meta(PROXY, "203.0.113.9:4711"), [PROXY]) == PROXY


def test_garbage_left_of_the_client_does_not_matter() -> None:
    assert client_ip(_meta(PROXY, "garbage, 203.0.113.9"), [PROXY]) == "203.0.113.9"


def test_an_unreadable_remote_address_is_returned_as_it_is() -> None:
    assert client_ip(_meta("", "203.0.113.9"), [PROXY]) == ""
    assert client_ip({}, [PROXY]) == ""


def test_an_ipv4_client_is_its_own_bucket() -> None:
    assert client_ip_bucket("198.51.100.1") == "198.51.100.1"
    assert client_ip_bucket("198.51.100.1") != client_ip_bucket("198.51.100.2")


def test_ipv6_clients_in_the_same_64_share_a_bucket() -> None:
    assert client_ip_bucket("2001:db8:1:2::1") == client_ip_bucket("2001:db8:1:2:abcd::ffff") == "2001:db8:1:2::/64"
    assert client_ip_bucket("2001:db8:1:3::1") != client_ip_bucket("2001:db8:1:2::1")


def test_an_ipv4_mapped_client_shares_its_ipv4_bucket() -> None:
    assert client_ip_bucket("::ffff:198.51.100.1") == "198.51.100.1"


def test_an_unreadable_address_is_its_own_bucket() -> None:
    assert client_ip_bucket("") == ""
    assert client_ip_bucket("unknown") == "unknown"
