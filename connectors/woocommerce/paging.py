"""WordPress REST paging: ``page``/``per_page``, the ``X-WP-*`` headers, ``Link``, and our cursors.

WooCommerce collections are paged by number
(https://woocommerce.github.io/woocommerce-rest-api-docs/#pagination): ``X-WP-Total`` and
``X-WP-TotalPages`` count the whole result set and ``Link`` names the ``next``/``prev`` pages.
A page number only means something for one set of filters, so the order scan's cursor carries
the ``modified_after`` it started with, and the total it last saw (a shrinking total means an
order left the set mid-scan and later ones moved up a page: see ``pages_to_reread``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

TOTAL_HEADER = "x-wp-total"
TOTAL_PAGES_HEADER = "x-wp-totalpages"
LINK_HEADER = "link"
CURSOR_VERSION = 1
# X-WP-Total and X-WP-TotalPages count rows: a longer number is not WordPress's (and int() of
# thousands of digits raises, while one that large would overflow the re-read arithmetic).
MAX_HEADER_DIGITS = 18
_LINK_PART = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";]+)"?')


class CursorError(ValueError):
    """A cursor this connector did not produce (or from an incompatible version)."""


@dataclass(frozen=True)
class OrderScanCursor:
    """Where an order scan stands: the next page, its fixed filter, the total seen last."""

    page: int
    modified_after: str  # exactly the ``modified_after`` sent on the first page
    total: int | None

    def encode(self) -> str:
        document = {"v": CURSOR_VERSION, "p": self.page, "a": self.modified_after, "t": self.total}
        raw = json.dumps(document, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> OrderScanCursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, binascii.Error, UnicodeError) as error:
            raise CursorError(f"not a WooCommerce order cursor: {cursor[:40]!r}") from error
        if not isinstance(document, dict) or document.get("v") != CURSOR_VERSION:
            raise CursorError(f"not a WooCommerce order cursor: {cursor[:40]!r}")
        page, after, total = document.get("p"), document.get("a"), document.get("t")
        if not isinstance(page, int) or page < 1 or not isinstance(after, str):
            raise CursorError(f"not a WooCommerce order cursor: {cursor[:40]!r}")
        return cls(page, after, total if isinstance(total, int) else None)


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """A count header as a non-negative int, or None unless plain ASCII digits: headers
    arrive as Latin-1, where ``str.isdigit`` also passes ``"²"``."""
    value = (headers.get(name) or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_HEADER_DIGITS:
        return None
    return int(value)


def link_relations(value: str | None) -> dict[str, str]:
    """RFC 8288 ``Link`` header → {rel: url}."""
    return {rel: url for url, rel in _LINK_PART.findall(value or "")}


def has_next_page(headers: Mapping[str, str], *, page: int, count: int, per_page: int) -> bool:
    """``X-WP-TotalPages`` first, then ``Link: rel="next"``, then a full page as a last resort
    (a proxy or plugin may strip headers; one extra empty request is the worst case)."""
    pages = header_int(headers, TOTAL_PAGES_HEADER)
    if pages is not None:
        return page < pages
    if LINK_HEADER in headers:
        return "next" in link_relations(headers.get(LINK_HEADER))
    return count >= per_page


def next_page_from_link(headers: Mapping[str, str]) -> int | None:
    """The ``page`` parameter of the ``rel="next"`` link, if any."""
    url = link_relations(headers.get(LINK_HEADER)).get("next")
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("page")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def pages_to_reread(
    previous_total: int | None, total: int | None, *, page: int, per_page: int
) -> list[int]:
    """Earlier pages to read again because the result set shrank by ``d`` orders mid-scan.

    The scan pages by ascending id under a fixed ``modified_after``: an order that changes
    stays in the set (its modification time only grows) and a new order sorts last, so the
    only way to lose one is an order leaving the set (trashed, deleted): every later order then
    moves up one place, and the first ones of the page we were about to read slide onto the
    page we already read. Re-reading the ``ceil(d / per_page)`` pages before this one returns
    them (and some we have already seen: import is idempotent).
    """
    if previous_total is None or total is None or total >= previous_total or page <= 1:
        return []
    back = -(-(previous_total - total) // per_page)  # ceiling, in integers: no float overflow
    return list(range(max(1, page - back), page))
