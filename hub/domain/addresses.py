"""Which network addresses the hub may send requests to: public ones only, unless a sandbox
setting allows the rest. Pure (``ipaddress`` only): the core checks shop URLs at the door with
it, and the connectors' HTTP guard checks every address a host name resolves to.

An address is refused when it is not globally reachable: loopback, private (RFC 1918), shared
(CGNAT), link-local (cloud metadata at 169.254.169.254), unique-local IPv6, unspecified,
multicast, documentation, benchmarking and reserved ranges. IPv6 forms that carry an IPv4
address (IPv4-mapped, IPv4-compatible, NAT64's well-known prefix, 6to4) are judged by the
IPv4 address they carry.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

ALLOW_SETTING = "HUB_ALLOW_PRIVATE_URLS"
SANDBOX_HINT = (
    f"{ALLOW_SETTING}=true allows plain http and private or loopback addresses, for sandboxes only"
)

IPAddress = IPv4Address | IPv6Address

LOOPBACK = "a loopback address"
PRIVATE = "a private network address"
LINK_LOCAL = "a link-local address (cloud metadata services live there)"
RESERVED = "a reserved, non-public address"

_IPV4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", PRIVATE + " (RFC 1918)"),
        ("100.64.0.0/10", "a shared address (carrier-grade NAT, RFC 6598)"),
        ("127.0.0.0/8", LOOPBACK),
        ("169.254.0.0/16", LINK_LOCAL),
        ("172.16.0.0/12", PRIVATE + " (RFC 1918)"),
        ("192.0.0.0/24", RESERVED + " (IETF protocol assignments)"),
        ("192.0.2.0/24", RESERVED + " (documentation)"),
        ("192.88.99.0/24", RESERVED + " (6to4 relay anycast)"),
        ("192.168.0.0/16", PRIVATE + " (RFC 1918)"),
        ("198.18.0.0/15", RESERVED + " (benchmarking)"),
        ("198.51.100.0/24", RESERVED + " (documentation)"),
        ("203.0.113.0/24", RESERVED + " (documentation)"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", RESERVED + " (including broadcast)"),
    )
)

_IPV6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), reason)
    for network, reason in (
        ("::/128", "the unspecified address"),
        ("::1/128", LOOPBACK),
        ("::/96", RESERVED + " (IPv4-compatible, deprecated)"),
        ("64:ff9b:1::/48", RESERVED + " (local-use NAT64)"),
        ("100::/64", RESERVED + " (discard-only)"),
        ("2001::/23", RESERVED + " (IETF protocol assignments, Teredo)"),
        ("2001:db8::/32", RESERVED + " (documentation)"),
        ("3fff::/20", RESERVED + " (documentation)"),
        ("fc00::/7", "a unique-local address (private IPv6)"),
        ("fe80::/10", LINK_LOCAL),
        ("fec0::/10", "a site-local address (private IPv6)"),
        ("ff00::/8", "a multicast address"),
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped (``::ffff:a.b.c.d``), NAT64's
    well-known prefix (``64:ff9b::a.b.c.d``) and 6to4 (``2002:AABB:CCDD::``)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def forbidden_reason(address: IPAddress) -> str | None:
    """Why the hub must not send a request to ``address``; None for a public address."""
    if isinstance(address, IPv6Address):
        if address.scope_id is not None:
            address = IPv6Address(str(address).split("%", 1)[0])
        carried = embedded_ipv4(address)
        if carried is not None:
            reason = forbidden_reason(carried)
            return f"{reason} ({carried}, inside an IPv6 address)" if reason else None
        for network6, why in _IPV6_RANGES:
            if address in network6:
                return why
        return None
    for network4, why in _IPV4_RANGES:
        if address in network4:
            return why
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names without DNS, as the system resolver reads it; None for a name.

    Besides dotted quads and IPv6 (bracketed or not), ``inet_aton``'s forms count: one to four
    parts, each decimal, octal (leading 0) or hexadecimal (0x), the last filling the remaining
    bytes. ``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1`` are all 127.0.0.1.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone
    if ":" in text:
        try:
            return IPv6Address(text)
        except ValueError:
            return None
    return _inet_aton(text[:-1] if text.endswith(".") else text)


def _inet_aton(text: str) -> IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        value = _inet_number(part)
        if value is None:
            return None
        numbers.append(value)
    *leading, last = numbers
    if any(number > 0xFF for number in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return IPv4Address(value)


def _inet_number(part: str) -> int | None:
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:], 16) if lowered[2:] else None
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        return int(lowered, 10) if lowered.isdigit() else None
    except ValueError:
        return None


def is_loopback_name(host: str) -> bool:
    """``localhost`` and names under ``.localhost`` (RFC 6761), which never leave the machine."""
    name = host.strip().rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def host_problem(host: str, *, allow_private: bool) -> str | None:
    """Why requests to ``host`` (a name or an address literal) are refused, as "<host> is
    <reason>"; None when they may go. Names other than ``localhost`` pass here: what they
    resolve to is checked when a connection is opened (``connectors.url_guard``)."""
    if allow_private:
        return None
    if is_loopback_name(host):
        return f"{host} is {LOOPBACK}"
    address = parse_ip_literal(host)
    reason = forbidden_reason(address) if address is not None else None
    if address is None or reason is None:
        return None
    shown = "" if host.strip().strip("[]") == str(address) else f" ({address})"
    return f"{host}{shown} is {reason}"


def url_problem(url: str, *, allow_private: bool, what: str = "the URL") -> str | None:
    """What is wrong with ``url`` as the base of the hub's outbound requests; None if nothing.

    Always: an absolute http(s) URL with a host and no user or password in it (credentials are
    the shop's, stored encrypted; a URL is echoed in errors and logs). Unless ``allow_private``
    (the sandbox setting ``HUB_ALLOW_PRIVATE_URLS``): https, and a host that is no loopback,
    private or otherwise non-public address literal (``host_problem``).
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return f"{what} is not a valid URL"
    shown = f"{parts.scheme}://{host}{f':{port}' if port else ''}" if host else "(no host)"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return f"{what} {shown!r} must be an absolute http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return (
            f"{what} {shown!r} must not carry a user or password; give credentials as the "
            "shop's credentials (stored encrypted)"
        )
    if allow_private:
        return None
    problem = host_problem(host, allow_private=False)
    if problem is not None:
        return f"{what} {shown!r} is refused: {problem}; the hub only calls public addresses " + (
            f"({SANDBOX_HINT})"
        )
    if scheme != "https":
        return f"{what} {shown!r} must use https ({SANDBOX_HINT})"
    return None
    problem = host_problem(host, allow_private=False)
    if problem is not None:
        return f"{what} {url!r} is refused: {problem}; the hub only calls public addresses " + (
            f"({SANDBOX_HINT})"
        )
    if scheme != "https":
        return f"{what} {url!r} must use https ({SANDBOX_HINT})"
    return None
