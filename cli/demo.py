"""``hub demo``: the hub against the three marketplace sandboxes, with buyers, a print floor and
a report.

On whatever ``HUB_*`` settings are set (the embedded defaults when none): the three sandboxes
start on loopback, the hub runs in this process as ``hub run`` would (API, outbox relay, worker,
scheduler), and through the hub's API a seller, one shop per marketplace and a catalog (a bulk
JSON import, then generated mockups) are set up. Each sandbox lists the same products at its
own starting stock, so the bindings come from the hub's catalog pulls and the first push has
work to do. Then buyers order on the marketplaces (``--rate`` per second), which send their
webhooks to the hub; the print floor produces and ships what the hub imported. After the last
order the demo waits for the hub to drain and compares every sandbox with the hub.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import SecretStr

from hub.settings import Settings

if TYPE_CHECKING:  # the demo's machinery loads when it runs, not with every `hub` command
    from cli.demo_hub import Api, InProcessHub
    from cli.demo_report import Observer, Report, StockLatency
    from cli.demo_world import Buyers, PrintFloor
    from cli.sandboxes import Marketplaces

DRAIN_LIMIT_SECONDS = 60.0  # after the last order; longer is a failure
SETUP_LIMIT_SECONDS = 60.0
PULL_INTERVAL_SECONDS = 5  # reconciliation pulls while the demo runs (the scheduler ticks 15 s)
PULL_OVERLAP_MINUTES = 1


@dataclass(frozen=True)
class DemoOptions:
    orders: int = 200
    rate: float = 5.0
    chaos: bool = False
    json_path: Path | None = None
    port: int | None = None
    serve: bool = False
    seed: int = 7


def run(
    options: DemoOptions,
    settings: Settings | None = None,
    echo: Callable[[str], None] = typer.echo,
    wait_for_exit: Callable[[], None] | None = None,
) -> int:
    """The whole demo; the exit status (0 when every check passed)."""
    from cli.demo_hub import Api, InProcessHub, free_port
    from cli.sandboxes import Marketplaces, new_run_id

    started = time.monotonic()
    run_id = new_run_id()
    base = settings or Settings()
    admin_key = (
        base.admin_api_key.get_secret_value()
        if base.admin_api_key is not None
        else "hub_admin_" + secrets.token_urlsafe(24)
    )
    host = base.host
    port = options.port or free_port(host)
    hub_settings = demo_settings(base, f"http://{host}:{port}", admin_key)
    log_path = hub_settings.data_dir / f"demo-{run_id}.log"
    echo(
        f"marketplace-hub demo {run_id}: {options.orders} orders at {options.rate}/s"
        + (" with chaos" if options.chaos else "")
        + f"; {_describe(hub_settings)}; logs in {log_path}"
    )
    world = Marketplaces(run_id, seed=options.seed)
    world.list_catalog()
    with _logging_to(log_path, hub_settings.log_level):
        hub = InProcessHub(hub_settings)
        with world.serve(host) as urls, hub.running(host, port) as api_url:
            echo("  sandboxes   " + ", ".join(f"{name} {url}" for name, url in urls.items()))
            echo(f"  hub API     {api_url} (docs at {api_url}/docs)")
            admin = Api(api_url, admin_key)
            scenario = Scenario(options, run_id, world, hub, admin, api_url, echo)
            try:
                report = scenario.play(started)
                echo(render_report(report))
                if options.json_path is not None:
                    options.json_path.parent.mkdir(parents=True, exist_ok=True)
                    options.json_path.write_text(
                        json.dumps(report.as_dict(), indent=2, default=str)
                    )
                    echo(f"report written to {options.json_path}")
                if options.serve and wait_for_exit is not None:
                    echo(f"\nserving until Ctrl-C: {api_url}")
                    echo(f"  seller API key: {scenario.seller_key}")
                    echo(f"  admin API key:  {admin_key}")
                    echo(
                        f"  try: curl -H 'Authorization: Bearer {scenario.seller_key}' "
                        f"{api_url}/orders"
                    )
                    wait_for_exit()
            finally:
                scenario.pause_shops()  # their sandboxes end with this process
                admin.close()
    return 0 if report.ok else 1


def demo_settings(base: Settings, public_base_url: str, admin_key: str) -> Settings:
    """The given settings with the sandboxes' app secrets, the API's URL (marketplaces fetch
    our signed image URLs there) and pulls frequent enough for a run of a minute or two."""
    from cli.sandboxes import hub_secrets

    return base.model_copy(
        update={
            **hub_secrets(),
            "admin_api_key": SecretStr(admin_key),
            "public_base_url": public_base_url,
            # The sandboxes and the API listen on loopback over plain HTTP.
            "allow_private_urls": True,
            "pull_interval_seconds": min(base.pull_interval_seconds, PULL_INTERVAL_SECONDS),
            "pull_overlap_minutes": min(base.pull_overlap_minutes, PULL_OVERLAP_MINUTES),
        }
    )


def render_report(report: Report) -> str:
    from cli.demo_report import render

    return render(report)


class Scenario:
    """Set-up through the API, the buyers and the print floor, the drain, the report."""

    def __init__(
        self,
        options: DemoOptions,
        run_id: str,
        world: Marketplaces,
        hub: InProcessHub,
        admin: Api,
        api_url: str,
        echo: Callable[[str], None],
    ) -> None:
        self.options = options
        self.run_id = run_id
        self.world = world
        self.hub = hub
        self.admin = admin
        self.api_url = api_url
        self.echo = echo
        self.seller_key = ""
        self.shop_ids: dict[str, int] = {}

    def play(self, started: float) -> Report:
        from cli.demo_report import StockLatency, build_report
        from cli.demo_world import Buyers, Chaos, PrintFloor

        observer = self.set_up()
        latency = StockLatency(observer)
        floor = PrintFloor(self.admin, list(self.shop_ids.values()), self.run_id)
        chaos = Chaos(self.world, self.hub.restart_worker) if self.options.chaos else None
        buyers = Buyers(
            self.world,
            self.api_url,
            self.shop_ids,
            total=self.options.orders,
            rate=self.options.rate,
            chaos=chaos,
            seed=self.options.seed,
            midway=self.change_a_price_rule,
        )
        live = LiveView(observer, buyers, floor, latency, enabled=sys.stdout.isatty())
        latency.start()
        floor.start()
        buyers.start()
        ordering = time.monotonic()
        self.echo(f"  buyers      placing {self.options.orders} orders")
        try:
            while buyers.running():
                live.show("ordering")
                time.sleep(1.0)
            if buyers.error is not None:
                raise buyers.error
            last_order = time.monotonic()
            live.done()
            self.echo(
                f"  buyers      {len(buyers.placed)} orders placed in "
                f"{last_order - ordering:.0f} s; waiting for the hub to drain"
            )
            drained, backlog = self.drain(observer, floor, live, last_order)
            drain_s = time.monotonic() - last_order
            live.done()
        finally:
            buyers.stop()
            floor.stop()
            latency.stop()
        if floor.errors:
            self.echo(
                f"  print floor {len(floor.errors)} API calls failed (tried again), first: "
                f"{floor.errors[0]}"
            )
        return build_report(
            observer,
            list(buyers.placed),
            requested=self.options.orders,
            latency=latency,
            drained=drained,
            drain_s=drain_s,
            elapsed_s=time.monotonic() - started,
            chaos=self.options.chaos,
            rate=self.options.rate,
            worker_restarts=self.hub.worker_restarts,
            webhooks=buyers.courier.stats.as_dict(),
            backlog=backlog,
        )

    # --- set-up ------------------------------------------------------------------------------

    def set_up(self) -> Observer:
        from cli.demo_catalog import PRICE_RULES, PRODUCTS, catalog_document, mockup_png
        from cli.demo_report import Observer, ShopView
        from hub.infrastructure.clock import utcnow

        since: datetime = utcnow()
        began = time.monotonic()
        seller = self.admin.call(
            "POST", "/sellers", json={"name": f"Demo Prints Co. ({self.run_id})"}
        )
        self.seller_key = seller["api_key"]
        document = catalog_document(seller["id"], self.run_id, self.options.orders)
        path = self.hub.settings.data_dir / f"demo-{self.run_id}-catalog.json"
        path.write_text(json.dumps(document, indent=2))
        imported = self.admin.call(
            "POST",
            "/catalog/import",
            content=path.read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        created = {item["title"]: item["id"] for item in imported["products_created"]}
        if len(created) != len(PRODUCTS):
            raise RuntimeError(f"the catalog import did not create every product: {imported}")
        for product in PRODUCTS:
            self.admin.call(
                "POST",
                f"/products/{created[product.title]}/images",
                params={"role": "mockup", "rank": 0},
                content=mockup_png(product),
                headers={"Content-Type": "application/octet-stream"},
            )
        variants = sum(len(p.variants) for p in PRODUCTS)
        self.echo(
            f"  catalog     {len(created)} products, {variants} variants on "
            f"{len(imported['blanks_created'])} blanks imported from {path} "
            "(POST /catalog/import); mockups uploaded"
        )
        shops: dict[str, ShopView] = {}
        set_up_jobs: dict[str, dict[str, int]] = {}
        for name, body in self.world.connect_requests(seller["id"]).items():
            shop, set_up_jobs[name] = self._connect(name, body)
            shops[name] = ShopView(
                shop["id"], name, shop["stock_buffer"], shop["max_listed_quantity"]
            )
            self.shop_ids[name] = shop["id"]
        self._wait(
            "the webhook subscription checks",
            lambda: self._jobs_done({n: j["webhooks"] for n, j in set_up_jobs.items()}),
            began,
        )
        subscribed = {
            "shopify": len(self.world.shopify.subscriptions()),
            "woocommerce": len(self.world.woo.webhooks()),
        }
        self.echo(
            "  shops       connected through each marketplace's authorization (Shopify OAuth "
            "install, Etsy OAuth 2 + PKCE, WooCommerce /wc-auth); webhook subscriptions "
            f"registered: {subscribed['shopify']} Shopify, {subscribed['woocommerce']} "
            "WooCommerce (Etsy's live in its portal)"
        )
        # Connecting queued each shop's catalog pull: it binds the listings by SKU.
        jobs = {name: shop_jobs["catalog"] for name, shop_jobs in set_up_jobs.items()}
        observer = Observer(self.hub.engine.runtime, self.world, shops, since)
        self._wait("the catalog pulls", lambda: self._jobs_done(jobs), began)
        bound = observer.load_bindings()
        if len(bound) != variants * len(shops):
            raise RuntimeError(
                f"the catalog pulls bound {len(bound)} listings' variants, expected "
                f"{variants * len(shops)}: see GET /jobs/{{id}} of jobs {jobs}"
            )
        for name, shop_id in self.shop_ids.items():
            self.admin.call("PUT", f"/shops/{shop_id}/price-rule", json=PRICE_RULES[name])
        self.echo(
            "  prices      a rule per shop (markup, the marketplace's fees, rounding; Etsy in EUR "
            "at a configured rate): every listing repriced from our base prices"
        )
        self._wait("the first stock push", lambda: not observer.stock_mismatches(), began)
        self.echo(
            f"  bindings    {len(bound)} from the catalog pulls; first stock push done "
            f"{time.monotonic() - began:.1f} s after set-up began"
        )
        return observer

    def _connect(self, name: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        """Start the authorization, then play the seller's browser: open the URL, consent (the
        sandbox's signed-in owner), follow the redirect back to the hub's callback."""
        import httpx

        started = self.admin.call("POST", "/shops/connect", json=body)
        with httpx.Client(follow_redirects=True, timeout=30.0) as browser:
            answer = browser.get(started["authorization_url"])
        if answer.status_code != 200:
            raise RuntimeError(
                f"connecting the {name} shop failed: {answer.status_code} {answer.text[:300]}"
            )
        if name != "woocommerce":
            connected = answer.json()
            jobs = {
                "catalog": connected["catalog_job_id"],
                "webhooks": connected["webhook_check_job_id"],
            }
            return connected["shop"], jobs
        # WooCommerce posted the keys to the hub's callback, then sent the browser to the
        # return page: the shop and its jobs are found through the API.
        if not answer.json().get("success"):
            raise RuntimeError(f"the WooCommerce authorization was refused: {answer.text[:300]}")
        found = [
            shop
            for shop in self.admin.call("GET", "/shops")
            if shop["marketplace"] == name and shop["seller_id"] == body["seller_id"]
        ]
        if len(found) != 1:
            raise RuntimeError(f"the WooCommerce callback did not connect one shop: {found}")
        shop = found[0]
        jobs = {}
        for kind, key in (("catalog.pull", "catalog"), ("webhooks.check", "webhooks")):
            page = self.admin.call("GET", "/jobs", params={"shop_id": shop["id"], "kind": kind})
            jobs[key] = page["items"][0]["id"]
        return shop, jobs

    def _jobs_done(self, jobs: dict[str, int]) -> bool:
        statuses = {name: self.admin.call("GET", f"/jobs/{job}") for name, job in jobs.items()}
        failed = {name: job for name, job in statuses.items() if job["status"] == "failed"}
        if failed:
            raise RuntimeError(f"catalog pull failed: {failed}")
        return all(job["status"] == "succeeded" for job in statuses.values())

    def _wait(self, what: str, condition: Callable[[], bool], began: float) -> None:
        while not condition():
            if time.monotonic() - began > SETUP_LIMIT_SECONDS:
                raise RuntimeError(f"set-up: {what} did not finish in {SETUP_LIMIT_SECONDS:.0f} s")
            time.sleep(0.1)

    def change_a_price_rule(self) -> None:
        """The seller changes one shop's rule while buyers order: its listings are repriced."""
        from cli.demo_catalog import MIDWAY_RULE_CHANGE, PRICE_RULES

        name, change = MIDWAY_RULE_CHANGE
        self.admin.call(
            "PUT", f"/shops/{self.shop_ids[name]}/price-rule", json={**PRICE_RULES[name], **change}
        )
        self.echo(f"  prices      {name} rule changed midway: {change}")

    # --- drain -------------------------------------------------------------------------------

    def drain(
        self, observer: Observer, floor: PrintFloor, live: LiveView, last_order: float
    ) -> tuple[bool, dict[str, int]]:
        """One reconciliation pull per shop, then wait until nothing is left to do: no outbox
        row unpublished, no event unhandled, no operation queued or running, no push due, every
        imported order shipped."""
        pulls = self.hub.request_pulls(list(self.shop_ids.values()))
        backlog: dict[str, int] = {}
        while time.monotonic() - last_order < DRAIN_LIMIT_SECONDS:
            live.show("draining")
            pending = [
                shop for shop, message in pulls.items() if not self.hub.pulls.scan_done(message)
            ]
            backlog = {**observer.backlog(), "pulls_running": len(pending)}
            if not any(backlog.values()) and not floor.busy():
                return True, backlog
            time.sleep(0.25)
        stuck = self.hub.pulls.pending()
        if stuck:
            logging.getLogger(__name__).warning(
                "pull messages still pending", extra={"pending": stuck}
            )
        return False, backlog

    def pause_shops(self) -> None:
        """So no later hub run polls shops whose sandboxes are gone."""
        import httpx

        from cli.demo_hub import ApiError

        for shop_id in self.shop_ids.values():
            with suppress(ApiError, httpx.HTTPError):
                self.admin.call("POST", f"/shops/{shop_id}/pause")


class LiveView:
    """One line, rewritten every second, when stdout is a terminal; quiet otherwise."""

    def __init__(
        self,
        observer: Observer,
        buyers: Buyers,
        floor: PrintFloor,
        latency: StockLatency,
        *,
        enabled: bool,
    ) -> None:
        self.observer = observer
        self.buyers = buyers
        self.floor = floor
        self.latency = latency
        self.enabled = enabled
        self._shown = False

    def show(self, phase: str) -> None:
        if not self.enabled:
            return
        from cli.demo_report import percentile

        progress = self.observer.progress()
        placed = list(self.buyers.placed)
        webhook = percentile(self.observer.webhook_latencies(placed), 0.95)
        stock = percentile(self.latency.samples, 0.95)
        pushes = "/".join(str(n) for n in progress["stock_pushes"].values())
        line = (
            f"{phase} | orders {len(placed)}/{self.buyers.total} placed, "
            f"{progress['imported']} in hub, {progress['shipped']} shipped, "
            f"{progress['tracking_pushed']} tracked | stock pushes S/E/W {pushes} | images "
            f"{progress['images_pushed']} | p95 webhook->order {_ms(webhook)}, "
            f"stock->marketplace {_ms(stock)}"
        )
        sys.stdout.write("\r" + line[:200].ljust(self._width()))
        sys.stdout.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._shown = False

    @staticmethod
    def _width() -> int:
        import shutil

        return min(200, shutil.get_terminal_size((120, 20)).columns - 1)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def _describe(settings: Settings) -> str:
    database = (
        f"PostgreSQL{' schema ' + settings.db_schema if settings.db_schema else ''}"
        if not settings.is_sqlite
        else f"SQLite in {settings.data_dir}"
    )
    broker = "RabbitMQ" if settings.broker_url else "in-process broker"
    cache = "Redis" if settings.cache_url else "in-process cache"
    return f"{database}, {broker}, {cache}"


@contextmanager
def _logging_to(path: Path, level: str) -> Iterator[None]:
    """The hub's structured logs go to a file while the demo runs: the terminal shows the
    demo."""
    from hub.infrastructure.logs import JsonFormatter, quiet_noisy_loggers

    quiet_noisy_loggers()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level.upper())
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
