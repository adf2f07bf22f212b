"""The client's address for throttling (kit/client_ip.py) and the trusted proxies setting."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from signoff.config import ConfigError, load_settings
from signoff.kit.client_ip import client_ip, throttle_key

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # An untrusted peer is the client, whatever it writes.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # A trusted proxy: the right-most entry that is not a trusted proxy.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.1.1.1", "198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        ("10.0.0.2", ["198.51.100.1 , 2001:db8:ffff::1"], "198.51.100.1"),
        # Nothing usable from the proxy: the proxy (or the last trusted hop) is the client.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.3"], "10.0.0.3"),
        ("10.0.0.2", ["1.1.1.1, not-an-address"], "10.0.0.2"),
        ("10.0.0.2", ["unknown, 10.0.0.3"], "10.0.0.3"),
        # IPv4 in IPv6 is the IPv4 address; no peer at all is "unknown".
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_ip(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected


def test_ipv6_clients_count_by_their_64() -> None:
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:bbbb::9")
    assert throttle_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("203.0.113.9") == "203.0.113.9"


def test_trusted_proxies_setting(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8, 127.0.0.1 ,::1")
    assert [str(n) for n in settings.trusted_proxy_networks] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
        "::1/128",
    ]
    assert load_settings(data_dir=tmp_path).trusted_proxy_networks == ()
    with pytest.raises(ConfigError, match=r"SIGNOFF_TRUSTED_PROXIES: 'proxy\.local' is not"):
        load_settings(data_dir=tmp_path, trusted_proxies="10.0.0.1, proxy.local")
