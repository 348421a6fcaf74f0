"""No secret and no buyer's personal data in the logs, API error bodies or metrics.

The demo scenario runs with the log level at DEBUG (every library's chatter included: httpx's
request lines, httpcore's headers, Dramatiq's messages) and with chaos (5xx and 429 answers,
lost and duplicated webhooks, a worker restart). Then, with the hub still running, failing API
calls are made with the seller's key, with a wrong key and with bad input, some carrying real
secrets, and ``/metrics`` is read with the admin key. Afterwards every secret the run used is
collected (the shops' stored credentials decrypted from the database, the app secrets, the
admin and seller API keys, the Fernet key, the media URL secret) with every buyer e-mail and
street address the hub stored, and none may appear in anything captured: the raw log file,
the demo's own output, stdout and stderr, the API's answers.

The hub's logging configuration (``JsonFormatter``, used by the demo's log file and by
``configure_logging``) masks secret-shaped text as defence in depth; the assertions are on
the raw output, so both the sources and that layer are tested.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from cli import demo
from cli.sandboxes import hub_secrets
from hub.bootstrap import bootstrap
from hub.infrastructure import logs
from hub.infrastructure.logs import JsonFormatter, Redactor
from hub.infrastructure.tables import OrderRow, ShopRow, table_of
from hub.settings import Settings
from tests.conftest import ADMIN_KEY

SHOPS = table_of(ShopRow)
ORDERS = table_of(OrderRow)
MEDIA_URL_SECRET = "media-url-secret-of-the-leak-test-0123456789"
STREET_FIELDS = ("line1", "line2", "address1", "address2", "street")
# An e-mail address whose local part survived (the redaction keeps only the domain).
BUYER_EMAIL = re.compile(r"(?<![*\w.+-])[\w.+-]+@example\.(?:com|org|net)", re.IGNORECASE)
# An OAuth code, state, HMAC or URL signature left readable in a URL.
URL_NONCE = re.compile(r"[?&](?:code|state|hmac|signature|user_id)=(?!\*\*\*)[^&\s\"']{16,}")


# --- the redaction layer on its own (fast) -------------------------------------------------------


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


def test_shapes_are_masked_without_knowing_the_values(redactor: Redactor) -> None:
    cases = {
        "GET /callback?shop=a.myshopify.com&state=Gs2HMeoTH1nbF3_1FiggqboAJp&code=68e1c940f0a1e2d6"
        "528f8207779875fd&hmac=f4b94c4cfb79f64b": "GET /callback?shop=a.myshopify.com&state=***"
        "&code=***&hmac=***",
        "GET /v3/application/shops/1/listings?state=active&limit=100": "GET /v3/application/"
        "shops/1/listings?state=active&limit=100",
        "creds {'access_token': '123.abc', 'expires_at': 12}": "creds {'access_token': '***', "
        "'expires_at': 12}",
        '{"email": "ada@example.com", "line1": "1 Sample Street", "city": "Springfield"}': '{"'
        'email": "***", "line1": "***", "city": "Springfield"}',
        "[(b'location', b'/x'), (b'set-cookie', b'sid=abc')]": "[(b'location', b'/x'), "
        "(b'set-cookie', b'***')]",
        "Authorization: Bearer abc.def-ghi": "Authorization: Bearer ***",
        "postgresql+psycopg://hub:s3cret@db/hub": "postgresql+psycopg://hub:***@db/hub",
        "keys shpat_0123456789abcdef0123 ck_0123456789abcdef0123456789": "keys *** ***",
        "mail to John.Doe+x@mail.example.co.uk failed": "mail to ***@mail.example.co.uk failed",
        "GET /orders?consumer_key=ck_1&consumer_secret=cs_2&page=2": "GET /orders?consumer_key=***"
        "&consumer_secret=***&page=2",
    }
    for raw, masked in cases.items():
        assert redactor.redact(raw) == masked


def test_registered_values_are_masked_wherever_they_appear(redactor: Redactor) -> None:
    redactor.register("98517.etsy-access-token-value")
    redactor.register("Zm9vYmFyYmF6cXV4cXV1eHh5enp5eTEyMzQ1Njc4OTA=")
    redactor.register_document({"webhook_secret": "whsec-0123456789", "scope": "read_orders"})
    text = redactor.redact(
        "token 98517.etsy-access-token-value. at /x/98517.etsy-access-token-value/y; key "
        "Zm9vYmFyYmF6cXV4cXV1eHh5enp5eTEyMzQ1Njc4OTA= signs with whsec-0123456789, read_orders"
    )
    assert text == "token ***. at /x/***/y; key ***= signs with ***, read_orders"


def test_the_json_formatter_masks_message_arguments_extras_and_exceptions() -> None:
    import logging

    logs.register_secret("registered-secret-0123456789")
    try:
        raise RuntimeError("refused for buyer7@example.com with registered-secret-0123456789")
    except RuntimeError:
        import sys

        record = logging.makeLogRecord(
            {
                "name": "hub.test",
                "levelname": "ERROR",
                "msg": "call %s failed",
                "args": ("https://x.example/a?access_token=abcdef",),
                "exc_info": sys.exc_info(),
            }
        )
    record.credentials = {"consumer_secret": "cs_abc", "shop_id": 7}
    record.webhook_secret = "plain"
    line = JsonFormatter().format(record)
    document = json.loads(line)
    assert document["message"] == "call https://x.example/a?access_token=*** failed"
    assert document["credentials"] == {"consumer_secret": "***", "shop_id": 7}
    assert document["webhook_secret"] == "***"
    assert "buyer7@" not in line
    assert "registered-secret" not in line
    assert "RuntimeError" in document["exception"]


def test_the_redacting_filter_masks_records_for_any_formatter() -> None:
    import logging

    record = logging.makeLogRecord(
        {"msg": "exchanging %s", "args": ("refresh_token=abcdefghijklmnop&x=1",)}
    )
    assert logs.RedactingFilter().filter(record)
    assert logging.Formatter().format(record) == "exchanging refresh_token=***&x=1"


def test_redaction_stays_linear_on_long_lines(redactor: Redactor) -> None:
    import time

    redactor.register("some-registered-secret")
    started = time.monotonic()
    for text in ("A" * 200_000, "a=" * 50_000, ("x" * 50 + "@") * 2_000, "'k': '" * 20_000):
        redactor.redact(text)
    assert time.monotonic() - started < 5


# --- the demo at DEBUG ---------------------------------------------------------------------------


class Probes:
    """Failing API calls made while the demo's hub still runs, and /metrics."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.statuses: list[tuple[str, int]] = []
        self.expected: list[tuple[str, int]] = []
        self.seller_key = ""

    def run(self, scenario: demo.Scenario) -> None:
        self.seller_key = scenario.seller_key
        with scenario.hub.container.uow() as uow:
            stored = {shop.marketplace.value: shop for shop in uow.shops.list(None)}
        woo = stored["woocommerce"]
        secret = str(woo.credentials["consumer_secret"])
        shop_id = woo.id
        seller = {"Authorization": f"Bearer {scenario.seller_key}"}
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        wrong = {"Authorization": "Bearer hub_" + "x" * 43}
        buyer = b'{"billing": {"email": "buyer1@example.com", "address_1": "1 Sample Street"}}'
        calls: list[tuple[str, str, int, dict[str, Any]]] = [
            ("GET", "/orders", 401, {"headers": wrong}),
            ("GET", "/orders", 401, {}),
            ("GET", "/metrics", 403, {"headers": seller}),
            ("GET", "/orders/99999999", 404, {"headers": seller}),
            ("GET", "/shops/99999999", 404, {"headers": seller}),
            ("GET", f"/orders?cursor={secret}", 422, {"headers": seller}),
            ("PUT", "/orders/1/status", 422, {"headers": seller, "json": {"status": secret}}),
            (
                "POST",
                "/shops",
                422,
                {
                    "headers": seller,
                    "json": {
                        "seller_id": 1,
                        "marketplace": "nowhere",
                        "external_id": "",
                        "name": "x",
                        "credentials": {"consumer_secret": secret},
                    },
                },
            ),
            (
                "PATCH",
                f"/shops/{shop_id}",
                422,
                {"headers": seller, "json": {"stock_buffer": secret}},
            ),
            (
                "GET",
                f"/shops/connect/etsy/callback?code={secret}&state={'s' * 43}",
                401,
                {},
            ),
            (
                "POST",
                "/shops/connect/woocommerce/callback",
                401,
                {
                    "json": {
                        "key_id": 1,
                        "user_id": "u" * 43,
                        "consumer_key": woo.credentials["consumer_key"],
                        "consumer_secret": secret,
                        "key_permissions": "read_write",
                    }
                },
            ),
            (
                "POST",
                f"/webhooks/woocommerce/{shop_id}",
                401,
                {"content": buyer, "headers": {"X-WC-Webhook-Signature": "bad"}},
            ),
            (
                "POST",
                "/webhooks/shopify",
                401,
                {
                    "content": buyer,
                    "headers": {
                        "X-Shopify-Hmac-Sha256": "bad",
                        "X-Shopify-Topic": "orders/create",
                        "X-Shopify-Shop-Domain": stored["shopify"].external_id,
                    },
                },
            ),
            (
                "POST",
                "/catalog/import",
                422,
                {
                    "headers": {**admin, "Content-Type": "application/json"},
                    "content": b'{"email": "buyer1@example.com", "key": "' + secret.encode(),
                },
            ),
            ("GET", "/metrics", 200, {"headers": admin}),
        ]
        with httpx.Client(base_url=scenario.api_url, timeout=30) as client:
            for method, path, expected, options in calls:
                answer = client.request(method, path, **options)
                self.statuses.append((f"{method} {path.split('?')[0]}", answer.status_code))
                self.expected.append((f"{method} {path.split('?')[0]}", expected))
                headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
                self.answers.append(f"{method} {path.split('?')[0]} -> {headers}\n{answer.text}")


def collect_secrets(data_dir: Path, settings: Settings, seller_key: str) -> dict[str, str]:
    """name -> value of everything that must never be written out."""
    found: dict[str, str] = {
        "admin API key": ADMIN_KEY,
        "seller API key": seller_key,
        "media URL secret": MEDIA_URL_SECRET,
        "Fernet key": (data_dir / "secret.key").read_text().strip(),
    }
    for name, value in hub_secrets().items():
        if isinstance(value, SecretStr):
            found[f"app {name}"] = value.get_secret_value()
    container = bootstrap(settings.model_copy(update={"log_level": "INFO"}))
    try:
        with container.engine.connect() as db:
            for shop_id, marketplace, token in db.execute(
                select(SHOPS.c.id, SHOPS.c.marketplace, SHOPS.c.credentials)
            ):
                credentials = container.cipher.decrypt(token) if token else {}
                for field, value in credentials.items():
                    if isinstance(value, str) and logs.name_kind(field) == "secret":
                        found[f"shop {shop_id} ({marketplace}) {field}"] = value
            for order_id, email, address in db.execute(
                select(ORDERS.c.id, ORDERS.c.customer_email, ORDERS.c.shipping_address)
            ):
                if email:
                    found[f"order {order_id} buyer e-mail"] = email
                for field in STREET_FIELDS:
                    if (address or {}).get(field):
                        found[f"order {order_id} {field}"] = address[field]
    finally:
        container.close()
    return found


def test_the_demo_at_debug_leaks_no_secret_and_no_buyer_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    probes = Probes()
    play = demo.Scenario.play

    def play_then_probe(scenario: demo.Scenario, started: float) -> Any:
        report = play(scenario, started)
        probes.run(scenario)
        return report

    monkeypatch.setattr(demo.Scenario, "play", play_then_probe)
    data_dir = tmp_path / "var"
    settings = Settings(
        data_dir=data_dir,
        admin_api_key=ADMIN_KEY,
        log_level="DEBUG",
        media_url_secret=SecretStr(MEDIA_URL_SECRET),
    )
    lines: list[str] = []
    options = demo.DemoOptions(orders=30, rate=10.0, chaos=True, json_path=tmp_path / "r.json")
    # Whether every check of the demo passed is test_demo's business (a loaded machine can
    # fail one); this test needs the scenario played and the probes made.
    demo.run(options, settings, echo=lines.append)
    captured = capfd.readouterr()
    assert probes.statuses == probes.expected, "\n".join(lines)

    log_files = sorted(data_dir.glob("*.log"))
    assert log_files, "the demo writes its logs under the data folder"
    texts = {path.name: path.read_text() for path in log_files}
    log_text = "\n".join(texts.values())
    assert log_text.count('"level":"debug"') > 1000  # DEBUG really was on
    assert '"logger":"httpx"' in log_text
    assert '"logger":"httpcore' in log_text
    assert "code=***" in log_text  # the OAuth callbacks' URLs, masked by the logging layer
    texts["demo output"] = "\n".join(lines)
    texts["report"] = (tmp_path / "r.json").read_text()
    texts["stdout"] = captured.out
    texts["stderr"] = captured.err
    texts["API answers"] = "\n\n".join(probes.answers)
    assert len(probes.answers) == len(probes.statuses) == 15

    secrets = collect_secrets(data_dir, settings, probes.seller_key)
    assert sum(name.startswith("shop ") for name in secrets) >= 6  # tokens, keys, secrets
    assert any("e-mail" in name for name in secrets)
    assert any(name.endswith("line1") for name in secrets)

    leaks = [
        f"{name} in {where}: …{text[max(0, at - 80) : at + len(value) + 40]}…"
        for name, value in secrets.items()
        for where, text in texts.items()
        if (at := text.find(value)) >= 0
    ]
    for where, text in texts.items():
        leaks += [f"buyer e-mail in {where}: {m.group(0)}" for m in BUYER_EMAIL.finditer(text)]
        leaks += [f"URL nonce in {where}: {m.group(0)}" for m in URL_NONCE.finditer(text)]
    assert not leaks, "\n".join(leaks[:40])
