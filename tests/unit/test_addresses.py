"""Which addresses the hub may call (hub.domain.addresses), and the door checks on shop URLs."""

from __future__ import annotations

from ipaddress import ip_address
from types import SimpleNamespace
from typing import Any, cast

import pytest

from hub.application.shops import CreateShop, check_api_base_url, create_shop
from hub.domain.addresses import (
    forbidden_reason,
    host_problem,
    parse_ip_literal,
    url_problem,
)
from hub.domain.errors import InvalidInput
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.settings import Settings
from sync.application.onboarding import StartConnect, check_shop_urls, start_connect

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::10.0.0.1", "private"),  # NAT64 well-known prefix
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ("::10.0.0.1", "IPv4-compatible"),
    ("2001:0::1", "Teredo"),
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "23.227.38.65", "100.63.255.255", "100.128.0.0", "172.32.0.1"]
PUBLIC += ["2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_non_public_addresses_are_refused_with_their_reason(address: str, reason: str) -> None:
    found = forbidden_reason(ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ip_address(address)) is None


def test_a_zone_index_does_not_hide_a_link_local_address() -> None:
    assert "link-local" in (forbidden_reason(ip_address("fe80::1%eth0")) or "")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # one 32-bit number
        ("0x7f.1", "127.0.0.1"),  # hexadecimal, the last part filling three bytes
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),  # octal
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.0.258", "10.0.1.2"),
        ("169.254.43518", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),  # a trailing dot
        ("[::1]", "::1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
    ],
)
def test_numeric_host_tricks_are_read_as_the_resolver_reads_them(host: str, address: str) -> None:
    assert parse_ip_literal(host) == ip_address(address)
    assert host_problem(host, allow_private=False) is not None
    assert host_problem(host, allow_private=True) is None


@pytest.mark.parametrize(
    "host", ["shop.example.com", "1.2.3.4.5", "256.1.1.1.1", "0x", "08.1.1.1", "abc.1", "1..2"]
)
def test_names_are_not_addresses(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "api.localhost"])
def test_localhost_names_are_refused_without_dns(host: str) -> None:
    assert "loopback" in (host_problem(host, allow_private=False) or "")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:8123", "loopback"),
        ("https://127.0.0.1:8123", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://2130706433/", "2130706433 (127.0.0.1) is a loopback"),
        ("https://0x7f.1/", "0x7f.1 (127.0.0.1)"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.7/wp-json/", "private"),
        ("https://localhost:8443", "loopback"),
        ("http://shop.example.com", "must use https"),
        ("ftp://shop.example.com", "absolute http(s) URL"),
        ("shop.example.com", "absolute http(s) URL"),
        ("https://shop.example.com:port", "not a valid URL"),
    ],
)
def test_urls_refused_at_the_door(url: str, fragment: str) -> None:
    problem = url_problem(url, allow_private=False, what="api_base_url")
    assert problem is not None
    assert fragment in problem
    if "URL" not in fragment:
        assert "HUB_ALLOW_PRIVATE_URLS" in problem


def test_the_sandbox_setting_allows_loopback_and_http_but_not_nonsense() -> None:
    assert url_problem("http://127.0.0.1:8123", allow_private=True) is None
    assert url_problem("https://shop.example.com/store", allow_private=False) is None
    assert url_problem("ftp://127.0.0.1", allow_private=True) is not None


def test_the_production_default_refuses() -> None:
    assert Settings.model_fields["allow_private_urls"].default is False
    assert Settings.model_fields["max_response_bytes"].default == 20 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# At the door: shops created by hand, shops connected
# --------------------------------------------------------------------------------------------

ADMIN = Principal(is_admin=True, seller_id=None)


class _NoUnitOfWork:
    """Nothing may be read or written when the URL is refused."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the unit of work was used ({name}) for a refused URL")


def _create(api_base_url: str, *, allow: bool) -> None:
    command = CreateShop(
        seller_id=1,
        marketplace=Marketplace.WOOCOMMERCE,
        external_id="shop.example.com",
        name="Shop",
        api_base_url=api_base_url,
    )
    create_shop(cast(Any, _NoUnitOfWork()), command, ADMIN, allow_private_urls=allow)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "https://192.168.0.10", "https://[fd00::1]/", "http://x.com"]
)
def test_creating_a_shop_with_a_private_or_plain_http_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="api_base_url"):
        _create(url, allow=False)


def test_creating_a_shop_on_loopback_passes_the_check_with_the_setting() -> None:
    check_api_base_url("http://127.0.0.1:8080", allow_private_urls=True)
    check_api_base_url(None, allow_private_urls=False)
    with pytest.raises(AssertionError, match="unit of work was used"):
        _create("http://127.0.0.1:8080", allow=True)  # got past the check to the database


def _container(allow: bool) -> Any:
    settings = Settings(allow_private_urls=allow, public_base_url="https://hub.example.com")
    return SimpleNamespace(settings=settings, uow=_NoUnitOfWork)


@pytest.mark.parametrize(
    ("marketplace", "shop", "api_base_url", "fragment"),
    [
        (Marketplace.SHOPIFY, "demo.myshopify.com", "http://127.0.0.1:9001", "api_base_url"),
        (Marketplace.ETSY, None, "https://169.254.169.254", "link-local"),
        (Marketplace.WOOCOMMERCE, "http://127.0.0.1:8080/store", None, "shop"),
        (Marketplace.WOOCOMMERCE, "10.0.0.5", None, "private"),
        (Marketplace.WOOCOMMERCE, "https://[::1]:8443", None, "loopback"),
        (Marketplace.SHOPIFY, "localhost", None, "loopback"),
    ],
)
def test_connecting_a_shop_at_a_private_address_is_refused(
    marketplace: Marketplace, shop: str | None, api_base_url: str | None, fragment: str
) -> None:
    command = StartConnect(
        seller_id=1, marketplace=marketplace, shop=shop, api_base_url=api_base_url
    )
    with pytest.raises(InvalidInput, match=fragment) as refused:
        start_connect(_container(False), cast(Any, None), ADMIN, command)
    assert "HUB_ALLOW_PRIVATE_URLS" in refused.value.message
    check_shop_urls(command, allow_private_urls=True)  # a sandbox may


def test_connecting_a_public_shop_passes_the_check() -> None:
    command = StartConnect(
        seller_id=1,
        marketplace=Marketplace.WOOCOMMERCE,
        shop="https://shop.example.com/store",
        api_base_url="https://shop.example.com/store",
    )
    check_shop_urls(command, allow_private_urls=False)
