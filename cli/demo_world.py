"""The world around the hub in the demo: buyers ordering on the marketplaces (who deliver the
marketplaces' signed webhooks to the hub's API), the chaos a marketplace brings, and the print
floor that produces and ships what the hub imported.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from cli.demo_hub import Api, ApiError
from cli.sandboxes import MARKETPLACES, Location, Marketplaces
from connectors.testing import Fault

# Chaos (--chaos): webhooks lost, sent twice or late, and bursts of 5xx and 429 answers.
DROP_RATE, DUPLICATE_RATE, REORDER_RATE = 0.08, 0.10, 0.10
ERROR_RATE_5XX = 0.02
BURST_EVERY_SECONDS = 8.0
BURST_429, BURST_5XX = 4, 3


@dataclass
class PlacedOrder:
    """An order a buyer placed: what the hub must end up with."""

    marketplace: str
    external_id: str  # as the hub stores it: Shopify's GID, Etsy's receipt id, WooCommerce's id
    units: dict[str, int]
    placed_at: float  # time.time()
    delivered_at: float | None = None  # the first webhook delivery that reached the API


@dataclass
class WebhookStats:
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    refused: int = 0  # answers other than 200: the hub must take every signed delivery

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class Delivery:
    """One signed POST a marketplace makes for a webhook subscription, and how to tell the
    marketplace what came of it (WooCommerce disables a webhook after failed deliveries,
    Shopify deletes one)."""

    url: str
    body: bytes
    headers: dict[str, str]
    record: Callable[[int | None], object] | None = None


class Courier:
    """Delivers the marketplaces' signed webhooks to the hub, to the addresses the hub
    subscribed; with chaos some are lost, some sent twice (the identical delivery, as a
    marketplace's retry is) and some held back until the next one has gone (reordered)."""

    def __init__(self, *, chaos: bool, rng: random.Random) -> None:
        self.chaos = chaos
        self.rng = rng
        self.stats = WebhookStats()
        self.client = httpx.Client(timeout=10.0)
        self._held: tuple[PlacedOrder, Delivery] | None = None

    def deliver(self, order: PlacedOrder, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self._deliver_one(order, delivery)

    def _deliver_one(self, order: PlacedOrder, delivery: Delivery) -> None:
        if self.chaos:
            roll = self.rng.random()
            if roll < DROP_RATE:
                self.stats.dropped += 1
                if delivery.record is not None:
                    delivery.record(None)  # lost on the way: a failed delivery to the sender
                return
            if roll < DROP_RATE + REORDER_RATE and self._held is None:
                self.stats.reordered += 1
                self._held = (order, delivery)
                return
        self._post(order, delivery)
        if self.chaos and self.rng.random() < DUPLICATE_RATE:
            self.stats.duplicated += 1
            self._post(order, delivery)
        self.flush()

    def flush(self) -> None:
        """Send the delivery held back, if any."""
        held, self._held = self._held, None
        if held is not None:
            self._post(*held)

    def _post(self, order: PlacedOrder, delivery: Delivery) -> None:
        self.stats.sent += 1
        try:
            answer = self.client.post(delivery.url, content=delivery.body, headers=delivery.headers)
            status: int | None = answer.status_code
        except httpx.HTTPError:
            status = None
        if delivery.record is not None:
            delivery.record(status)
        if status != 200:
            self.stats.refused += 1
        elif order.delivered_at is None:
            order.delivered_at = time.time()

    def close(self) -> None:
        self.client.close()


class Chaos:
    """Bursts of 429 and 5xx answers from every marketplace while buyers order, a steady trickle
    of 5xx, and one restart of the hub's worker halfway."""

    def __init__(self, world: Marketplaces, restart_worker: Callable[[], None]) -> None:
        self.world = world
        self.restart_worker = restart_worker
        self._last_burst = 0.0
        self._restarted = False

    def start(self) -> None:
        for sandbox in (self.world.shopify, self.world.etsy, self.world.woo):
            sandbox.error_rate_5xx = ERROR_RATE_5XX
        self._last_burst = time.monotonic()

    def tick(self, placed: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_burst >= BURST_EVERY_SECONDS:
            self._last_burst = now
            self.world.shopify.queue_429(BURST_429, retry_after=0.5)
            self.world.woo.queue_429(BURST_429, retry_after=0.5)
            self.world.etsy.queue_429(BURST_429)
            for injector in self.world.faults.values():
                injector.fail_next(Fault(503, b'{"errors": "service unavailable"}'), BURST_5XX)
        if not self._restarted and placed >= total // 2:
            self._restarted = True
            self.restart_worker()

    def stop(self) -> None:
        for sandbox in (self.world.shopify, self.world.etsy, self.world.woo):
            sandbox.error_rate_5xx = 0.0


class Buyers:
    """Places ``total`` orders at ``rate`` per second over the three shops: 1 or 2 lines of
    what the marketplace shows in stock (it decrements its stock, as marketplaces do), then the
    marketplace's webhook to the hub."""

    def __init__(
        self,
        world: Marketplaces,
        api_url: str,
        shop_ids: dict[str, int],
        *,
        total: int,
        rate: float,
        chaos: Chaos | None,
        seed: int = 7,
        midway: Callable[[], None] | None = None,
    ) -> None:
        self.midway = midway  # run once when half the orders are placed
        self.world = world
        self.api_url = api_url
        self.shop_ids = shop_ids
        self.total = total
        self.rate = rate
        self.chaos = chaos
        self.rng = random.Random(seed)
        self.courier = Courier(chaos=chaos is not None, rng=random.Random(seed + 1))
        self.placed: list[PlacedOrder] = []  # an order nobody could place is missing here
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-buyers", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self.chaos is not None:
                self.chaos.start()
            started = time.monotonic()
            for index in range(self.total):
                delay = started + index / self.rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                self._place_one()
                if self.chaos is not None:
                    self.chaos.tick(index + 1, self.total)
                if self.midway is not None and index + 1 == max(1, self.total // 2):
                    self.midway()
            self.courier.flush()
        except BaseException as error:  # reported by the demo, not lost in a thread
            self.error = error
        finally:
            if self.chaos is not None:
                self.chaos.stop()
            self.courier.close()

    def _place_one(self) -> None:
        """On one of the marketplaces, in random order, that has what the buyer wants."""
        for marketplace in self.rng.sample(MARKETPLACES, len(MARKETPLACES)):
            placed = self._try(marketplace)
            if placed is not None:
                order, deliveries = placed
                self.placed.append(order)
                self.courier.deliver(order, deliveries)
                return

    def _try(self, marketplace: str) -> tuple[PlacedOrder, list[Delivery]] | None:
        wanted = self._basket()
        world = self.world
        with world.lock(marketplace):
            basket = {
                loc.sku: quantity
                for loc, quantity in wanted
                if world.location_stock(marketplace, loc) >= quantity
            }
            if not basket:
                return None
            locations = {loc.sku: loc for loc, _ in wanted}
            external_id = self._order(marketplace, [(locations[s], q) for s, q in basket.items()])
        order = PlacedOrder(marketplace, external_id, basket, time.time())
        return order, self._webhooks(marketplace, external_id)

    def _basket(self) -> list[tuple[Location, int]]:
        lines = 1 if self.rng.random() < 0.7 else 2
        picked = self.rng.sample(sorted(self.world.locations), lines)
        return [(self.world.locations[sku], 1 if self.rng.random() < 0.8 else 2) for sku in picked]

    def _order(self, marketplace: str, lines: list[tuple[Location, int]]) -> str:
        """Called holding the marketplace's lock: the stock checked is the stock sold."""
        world = self.world
        number = len(self.placed) + 1
        buyer = {"name": f"Buyer {number}", "email": f"buyer{number}@example.com"}
        if marketplace == "shopify":
            return world.shopify.add_order(
                [{"sku": loc.sku, "quantity": quantity} for loc, quantity in lines],
                currency="USD",
                email=buyer["email"],
                decrement_stock=True,
            )
        if marketplace == "etsy":
            receipt = world.etsy.add_receipt(
                world.etsy_shop_id,
                [
                    {
                        "listing_id": loc.etsy_listing,
                        "sku": loc.sku,
                        "quantity": quantity,
                        "price": loc.price,
                        "title": loc.title,
                    }
                    for loc, quantity in lines
                ],
                decrement_stock=True,
            )
            return str(receipt)
        order_id = world.woo.add_order(
            [
                {
                    "product_id": loc.woo_product,
                    "variation_id": loc.woo_variation,
                    "quantity": quantity,
                }
                for loc, quantity in lines
            ],
            status="processing",
            billing={"first_name": buyer["name"], "email": buyer["email"]},
        )
        for loc, quantity in lines:  # WooCommerce reduces stock when an order is processing
            world.woo.set_stock(loc.woo_item, (world.woo.stock(loc.woo_item) or 0) - quantity)
        return str(order_id)

    def _webhooks(self, marketplace: str, external_id: str) -> list[Delivery]:
        """The deliveries the marketplace makes for a new order: to every subscription the hub
        registered (Shopify, WooCommerce), or to the address in Etsy's developer portal."""
        world = self.world
        if marketplace == "shopify":
            payload = world.shopify.order_webhook_payload(external_id)
            return [
                Delivery(
                    sent.address,
                    sent.body,
                    sent.headers,
                    partial(world.shopify.record_delivery, sent.subscription_id),
                )
                for sent in world.shopify.subscription_deliveries("orders/create", payload)
            ]
        if marketplace == "etsy":
            event = world.etsy.order_event(int(external_id))
            body, headers = world.etsy.signed_webhook("order.paid", event)
            return [Delivery(f"{self.api_url}/webhooks/etsy", body, headers)]
        payload = world.woo.order_json(int(external_id))
        return [
            Delivery(
                sent.delivery_url,
                sent.body,
                sent.headers,
                partial(world.woo.record_delivery, sent.webhook_id),
            )
            for sent in world.woo.signed_deliveries("order.created", payload)
        ]


class PrintFloor:
    """Our production, through the hub's API as a production system would use it: an imported
    order goes into production after ``start_after`` seconds and ships, every line with a
    tracking number, ``ship_after`` seconds later."""

    def __init__(
        self,
        api: Api,
        shop_ids: list[int],
        run_id: str,
        *,
        start_after: float = 0.5,
        ship_after: float = 1.0,
    ) -> None:
        self.api = api
        self.shop_ids = shop_ids
        self.run_id = run_id
        self.start_after = start_after
        self.ship_after = ship_after
        self.errors: list[str] = []  # API calls that failed; the next round tries again
        self._seen: dict[int, float] = {}  # order -> when we first saw it received
        self._producing: dict[int, float] = {}  # order -> when it went into production
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-print-floor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def busy(self) -> bool:
        """Orders in production that have not shipped yet."""
        return bool(self._producing)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self._tick()
            except (ApiError, httpx.HTTPError) as error:
                self.errors.append(str(error))

    def _tick(self) -> None:
        now = time.monotonic()
        for shop_id in self.shop_ids:
            for order in self._orders(shop_id, "received"):
                seen = self._seen.setdefault(order["id"], now)
                if now - seen >= self.start_after:
                    self.api.call(
                        "PUT", f"/orders/{order['id']}/status", json={"status": "in_production"}
                    )
                    self._producing[order["id"]] = now
        for order_id, since in list(self._producing.items()):
            if now - since >= self.ship_after:
                self._ship(order_id)
                del self._producing[order_id]

    def _ship(self, order_id: int) -> None:
        order = self.api.call("GET", f"/orders/{order_id}")
        lines = [
            {"order_line_id": line["id"], "quantity": line["quantity"] - line["fulfilled_quantity"]}
            for line in order["lines"]
            if line["quantity"] > line["fulfilled_quantity"]
        ]
        if not lines:
            return
        self.api.call(
            "POST",
            f"/orders/{order_id}/fulfillments",
            json={
                "carrier": "UPS",
                "tracking_number": f"1Z{self.run_id.upper()}{order_id:08d}",
                "lines": lines,
            },
        )

    def _orders(self, shop_id: int, status: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"shop_id": shop_id, "status": status, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = self.api.call("GET", "/orders", params=params)
            found.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return found
