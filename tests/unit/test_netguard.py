"""Where callbacks may go (domain/netguard.py): public addresses only, whatever the spelling."""

from __future__ import annotations

import pytest

from pombo.domain.netguard import UrlRefused, address_allowed, callback_host, networks

REFUSED = [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "169.254.1.1", "100.64.0.1", "100.100.100.200", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "192.0.0.192", "198.18.0.1", "240.0.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::",
    "fe80::1%eth0", "not-an-address",
]
ALLOWED = ["8.8.8.8", "203.0.114.1", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address: str) -> None:
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses(address: str) -> None:
    assert address_allowed(address)


def test_the_operator_may_allow_ranges_but_never_the_metadata_service() -> None:
    allow = networks(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "fd00::/8"])
    assert address_allowed("10.9.8.7", allow) and address_allowed("127.0.0.1", allow)
    assert address_allowed("::ffff:10.9.8.7", allow)
    assert not address_allowed("192.168.0.1", allow)
    assert not address_allowed("169.254.169.254", allow) and not address_allowed("fd00:ec2::254", allow)
    assert not address_allowed("::ffff:169.254.169.254", allow)


@pytest.mark.parametrize(
    ("url", "host"),
    [("http://Example.COM/x", "example.com"), ("https://1.2.3.4:8443/cb?a=1", "1.2.3.4"),
     ("http://[::1]:80/", "::1"), ("http://user:pw@host.test/", "host.test")],
)
def test_callback_host(url: str, host: str) -> None:
    assert callback_host(url) == host


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "file:///etc/passwd", "gopher://h/", "javascript:alert(1)", "http:///nohost",
            "http://h:99999/", "http://h/ a", "//h/x", "x" * 2001],
)
def test_callback_host_refuses(url: str) -> None:
    with pytest.raises(UrlRefused):
        callback_host(url)
