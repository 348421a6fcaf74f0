"""A local stand-in for Shopify's GraphQL Admin API, for contract tests and benchmarks.

It serves the subset of the Admin schema that ``connectors.shopify.queries`` uses, over the
same HTTP surface (``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``),
and reproduces the behaviours the connector must cope with: cursor paging ascending by
``updatedAt``, calculated query cost with a leaky bucket and ``THROTTLED`` answers in HTTP 200,
compare-and-swap stock writes that fail as a whole, ``@idempotent`` replays, fulfilment orders,
product media, signed webhooks, and injectable faults (latency, 5xx, 429, webhook chaos).
It also plays the app's installation: the OAuth authorization code grant
(``GET /admin/oauth/authorize``, ``POST /admin/oauth/access_token``), webhook subscriptions
managed through GraphQL, their signed deliveries, and the app being uninstalled.

State lives in memory behind one lock; seeding and inspection are plain Python methods.
Sources for each behaviour are cited where it is implemented.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlparse

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_directive_values,
    get_named_type,
    get_operation_ast,
    is_leaf_type,
    parse,
    validate,
    value_from_ast_untyped,
)
from graphql.execution.values import get_variable_values
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

T = TypeVar("T")
JSON = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Limits and constants (https://shopify.dev/docs/api/usage/limits,
# https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits)
# ---------------------------------------------------------------------------------------------

MAX_QUERY_COST = 1000  # a single query's requested cost may not exceed this
MAX_INPUT_ARRAY = 250  # "Input arguments that accept an array have a maximum size of 250"
OBJECT_COST = 1
CONNECTION_BASE_COST = 2
MUTATION_COST = 10
MAX_QUANTITY = 1_000_000_000  # InventorySetQuantitiesUserErrorCode.INVALID_QUANTITY_TOO_HIGH
MAX_PRODUCT_MEDIA = 250
# A Money input: a non-negative decimal string (the sandbox refuses JSON numbers, which Shopify
# would coerce, so a client sending floats is caught).
_MONEY_INPUT = re.compile(r"^-?\d+(?:\.\d+)?$")
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
INVALID_LOGIN_MESSAGE = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
FIRST_ORDER_NUMBER = 1001
SHOP_ID = 548380009
# Authorization codes are short-lived and single-use
# (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant);
# the exact lifetime is not documented, so it is a constructor argument.
OAUTH_CODE_TTL_SECONDS = 60.0
# Shopify retries a failed delivery 8 times over 4 hours, then deletes an Admin-API subscription
# whose failures persist (https://shopify.dev/changelog/updates-to-webhook-retry-mechanism).
DELIVERY_FAILURE_LIMIT = 8
INVALID_CLIENT_BODY = {
    "error": "invalid_client",
    "error_description": "Client authentication failed due to unknown client, no client "
    "authentication included, or unsupported authentication method.",
}
INVALID_CODE_BODY = {
    "error": "invalid_request",
    "error_description": "The authorization code was not found or was already used",
}
# GraphQL WebhookSubscriptionTopic -> the REST name carried in X-Shopify-Topic
# (https://shopify.dev/docs/api/admin-graphql/latest/enums/WebhookSubscriptionTopic; a subset).
WEBHOOK_TOPICS: dict[str, str] = {
    "APP_UNINSTALLED": "app/uninstalled",
    "FULFILLMENTS_CREATE": "fulfillments/create",
    "FULFILLMENTS_UPDATE": "fulfillments/update",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "ORDERS_CANCELLED": "orders/cancelled",
    "ORDERS_CREATE": "orders/create",
    "ORDERS_DELETE": "orders/delete",
    "ORDERS_EDITED": "orders/edited",
    "ORDERS_FULFILLED": "orders/fulfilled",
    "ORDERS_PAID": "orders/paid",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "ORDERS_UPDATED": "orders/updated",
    "PRODUCTS_CREATE": "products/create",
    "PRODUCTS_DELETE": "products/delete",
    "PRODUCTS_UPDATE": "products/update",
    "SHOP_UPDATE": "shop/update",
}
_TOPIC_ENUMS = {name: enum for enum, name in WEBHOOK_TOPICS.items()}
QUANTITY_NAMES = ("available", "on_hand")
# https://shopify.dev/docs/apps/build/orders-fulfillment/inventory-management-apps (reasons)
INVENTORY_REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_canceled",
        "movement_created",
        "movement_received",
        "movement_updated",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)

# ---------------------------------------------------------------------------------------------
# Schema: the subset of the Admin schema (2026-04) that the connector's documents touch.
# ---------------------------------------------------------------------------------------------

_CURRENCIES = (
    "AED ARS AUD BGN BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JPY "
    "KES KRW MAD MXN MYR NGN NOK NZD PEN PHP PLN RON RSD SAR SEK SGD THB TRY TWD UAH USD VND ZAR"
)
_COUNTRIES = (
    "AE AR AT AU BE BG BR CA CH CL CN CO CZ DE DK EE ES FI FR GB GR HK HR HU IE IL IN IS IT JP "
    "KR LT LU LV MX NL NO NZ PL PT RO SE SG SI SK TR TW US ZA"
)

SCHEMA_SDL = f"""
directive @idempotent(key: String!) on FIELD

scalar DateTime
scalar Decimal
scalar Money
scalar URL

enum CurrencyCode {{ {_CURRENCIES} }}
enum CountryCode {{ {_COUNTRIES} }}
enum OrderSortKeys {{
  CREATED_AT CURRENT_TOTAL_PRICE CUSTOMER_NAME DESTINATION FINANCIAL_STATUS FULFILLMENT_STATUS
  ID ORDER_NUMBER PO_NUMBER PROCESSED_AT RELEVANCE TOTAL_ITEMS_QUANTITY TOTAL_PRICE UPDATED_AT
}}
enum ProductVariantSortKeys {{
  FULL_TITLE ID INVENTORY_LEVELS_AVAILABLE INVENTORY_MANAGEMENT INVENTORY_POLICY
  INVENTORY_QUANTITY NAME POPULAR POSITION RELEVANCE SKU TITLE
}}
enum OrderDisplayFinancialStatus {{
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}}
enum OrderDisplayFulfillmentStatus {{
  FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT REQUEST_DECLINED
  RESTOCKED SCHEDULED UNFULFILLED
}}
enum OrderCancelReason {{ CUSTOMER DECLINED FRAUD INVENTORY OTHER STAFF }}
enum ProductStatus {{ ACTIVE ARCHIVED DRAFT UNLISTED }}
enum MediaContentType {{ EXTERNAL_VIDEO IMAGE MODEL_3D VIDEO }}
enum MediaStatus {{ FAILED PROCESSING READY UPLOADED }}
enum FileStatus {{ FAILED PROCESSING READY UPLOADED }}
enum FulfillmentStatus {{ CANCELLED ERROR FAILURE OPEN PENDING SUCCESS }}
enum FulfillmentOrderStatus {{
  CANCELLED CLOSED INCOMPLETE IN_PROGRESS ON_HOLD OPEN SCHEDULED
}}
enum InventorySetQuantitiesUserErrorCode {{
  CHANGE_FROM_QUANTITY_STALE COMPARE_QUANTITY_REQUIRED COMPARE_QUANTITY_STALE
  IDEMPOTENCY_CONCURRENT_REQUEST IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED INVALID_INVENTORY_ITEM INVALID_LOCATION INVALID_NAME
  INVALID_QUANTITY_NEGATIVE INVALID_QUANTITY_TOO_HIGH INVALID_QUANTITY_TOO_LOW INVALID_REASON
  INVALID_REFERENCE_DOCUMENT ITEM_NOT_STOCKED_AT_LOCATION
  NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR NON_MUTABLE_INVENTORY_ITEM
}}
enum ProductVariantsBulkUpdateUserErrorCode {{
  GREATER_THAN_OR_EQUAL_TO INVALID_INPUT MUST_BE_FOR_THIS_PRODUCT NEGATIVE_PRICE_VALUE
  PRODUCT_DOES_NOT_EXIST PRODUCT_VARIANT_DOES_NOT_EXIST PRODUCT_VARIANT_ID_MISSING
}}
enum WebhookSubscriptionTopic {{ {" ".join(sorted(WEBHOOK_TOPICS))} }}
enum WebhookSubscriptionFormat {{ JSON XML }}
enum WebhookSubscriptionSortKeys {{ CREATED_AT ID RELEVANCE }}
enum FilesErrorCode {{
  ALT_VALUE_LIMIT_EXCEEDED FILE_DOES_NOT_EXIST FILE_LOCKED INVALID INVALID_IMAGE_SOURCE_URL
  NON_READY_STATE REFERENCE_TARGET_DOES_NOT_EXIST TOO_MANY_ARGUMENTS
}}

interface Node {{ id: ID! }}

interface Media {{
  alt: String
  id: ID!
  mediaContentType: MediaContentType!
  status: MediaStatus!
}}

interface File {{
  alt: String
  createdAt: DateTime!
  fileStatus: FileStatus!
  id: ID!
  updatedAt: DateTime!
}}

type PageInfo {{
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
}}

type MoneyV2 {{ amount: Decimal! currencyCode: CurrencyCode! }}
type MoneyBag {{ presentmentMoney: MoneyV2! shopMoney: MoneyV2! }}

type Customer implements Node {{
  displayName: String!
  email: String
  firstName: String
  id: ID!
  lastName: String
}}

type MailingAddress implements Node {{
  address1: String
  address2: String
  city: String
  company: String
  country: String
  countryCodeV2: CountryCode
  firstName: String
  id: ID!
  lastName: String
  name: String
  phone: String
  province: String
  provinceCode: String
  zip: String
}}

type Order implements Node {{
  cancelReason: OrderCancelReason
  cancelledAt: DateTime
  createdAt: DateTime!
  currencyCode: CurrencyCode!
  currentTotalPriceSet: MoneyBag!
  customer: Customer
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  email: String
  fulfillmentOrders(
    after: String, before: String, displayable: Boolean = false, first: Int, last: Int,
    query: String, reverse: Boolean = false
  ): FulfillmentOrderConnection!
  fulfillments(first: Int): [Fulfillment!]!
  id: ID!
  lineItems(
    after: String, before: String, first: Int, last: Int, reverse: Boolean = false
  ): LineItemConnection!
  name: String!
  presentmentCurrencyCode: CurrencyCode!
  processedAt: DateTime!
  shippingAddress: MailingAddress
  totalPriceSet: MoneyBag!
  updatedAt: DateTime!
}}
type OrderEdge {{ cursor: String! node: Order! }}
type OrderConnection {{ edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }}

type LineItem implements Node {{
  currentQuantity: Int!
  id: ID!
  name: String!
  originalUnitPriceSet: MoneyBag!
  product: Product
  quantity: Int!
  requiresShipping: Boolean!
  sku: String
  title: String!
  unfulfilledQuantity: Int!
  variant: ProductVariant
  variantTitle: String
}}
type LineItemEdge {{ cursor: String! node: LineItem! }}
type LineItemConnection {{ edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }}

type Product implements Node {{
  createdAt: DateTime!
  handle: String!
  id: ID!
  media(
    after: String, before: String, first: Int, last: Int, query: String, reverse: Boolean = false
  ): MediaConnection!
  status: ProductStatus!
  title: String!
  updatedAt: DateTime!
  variants(
    after: String, before: String, first: Int, last: Int, reverse: Boolean = false
  ): ProductVariantConnection!
}}

type ProductVariant implements Node {{
  createdAt: DateTime!
  displayName: String!
  id: ID!
  inventoryItem: InventoryItem!
  inventoryQuantity: Int
  price: Money!
  product: Product!
  sku: String
  title: String!
  updatedAt: DateTime!
}}
type ProductVariantEdge {{ cursor: String! node: ProductVariant! }}
type ProductVariantConnection {{
  edges: [ProductVariantEdge!]!
  nodes: [ProductVariant!]!
  pageInfo: PageInfo!
}}

type InventoryItem implements Node {{
  createdAt: DateTime!
  id: ID!
  inventoryLevel(locationId: ID!): InventoryLevel
  sku: String
  tracked: Boolean!
  updatedAt: DateTime!
  variant: ProductVariant!
}}

type InventoryLevel implements Node {{
  id: ID!
  item: InventoryItem!
  location: Location!
  quantities(names: [String!]!): [InventoryQuantity!]!
  updatedAt: DateTime!
}}

type InventoryQuantity implements Node {{
  id: ID!
  name: String!
  quantity: Int!
  updatedAt: DateTime
}}

type Location implements Node {{ id: ID! isActive: Boolean! name: String! }}
type LocationEdge {{ cursor: String! node: Location! }}
type LocationConnection {{ edges: [LocationEdge!]! nodes: [Location!]! pageInfo: PageInfo! }}

type Shop implements Node {{
  currencyCode: CurrencyCode!
  email: String!
  id: ID!
  myshopifyDomain: String!
  name: String!
}}

type WebhookHttpEndpoint {{ callbackUrl: URL! }}
union WebhookSubscriptionEndpoint = WebhookHttpEndpoint

type WebhookSubscription implements Node {{
  createdAt: DateTime!
  endpoint: WebhookSubscriptionEndpoint!
  filter: String
  format: WebhookSubscriptionFormat!
  id: ID!
  includeFields: [String!]!
  topic: WebhookSubscriptionTopic!
  updatedAt: DateTime!
  uri: String!
}}
type WebhookSubscriptionEdge {{ cursor: String! node: WebhookSubscription! }}
type WebhookSubscriptionConnection {{
  edges: [WebhookSubscriptionEdge!]!
  nodes: [WebhookSubscription!]!
  pageInfo: PageInfo!
}}

type InventoryAdjustmentGroup implements Node {{
  changes: [InventoryChange!]!
  createdAt: DateTime!
  id: ID!
  reason: String!
  referenceDocumentUri: String
}}

type InventoryChange {{
  delta: Int!
  item: InventoryItem
  location: Location
  name: String!
  quantityAfterChange: Int
}}

type Image {{ altText: String height: Int id: ID url: URL! width: Int }}
type MediaImageOriginalSource {{ fileSize: Int url: URL }}

type MediaImage implements File & Media & Node {{
  alt: String
  createdAt: DateTime!
  fileStatus: FileStatus!
  id: ID!
  image: Image
  mediaContentType: MediaContentType!
  originalSource: MediaImageOriginalSource
  status: MediaStatus!
  updatedAt: DateTime!
}}

type ExternalVideo implements File & Media & Node {{
  alt: String
  createdAt: DateTime!
  fileStatus: FileStatus!
  id: ID!
  mediaContentType: MediaContentType!
  originUrl: URL!
  status: MediaStatus!
  updatedAt: DateTime!
}}

type Video implements File & Media & Node {{
  alt: String
  createdAt: DateTime!
  fileStatus: FileStatus!
  id: ID!
  mediaContentType: MediaContentType!
  status: MediaStatus!
  updatedAt: DateTime!
}}

type Model3d implements File & Media & Node {{
  alt: String
  createdAt: DateTime!
  fileStatus: FileStatus!
  id: ID!
  mediaContentType: MediaContentType!
  status: MediaStatus!
  updatedAt: DateTime!
}}

type MediaEdge {{ cursor: String! node: Media! }}
type MediaConnection {{ edges: [MediaEdge!]! nodes: [Media!]! pageInfo: PageInfo! }}

type FulfillmentTrackingInfo {{ company: String number: String url: URL }}

type Fulfillment implements Node {{
  createdAt: DateTime!
  id: ID!
  name: String!
  order: Order!
  status: FulfillmentStatus!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  updatedAt: DateTime!
}}

type FulfillmentOrder implements Node {{
  createdAt: DateTime!
  id: ID!
  lineItems(
    after: String, before: String, first: Int, last: Int, reverse: Boolean = false
  ): FulfillmentOrderLineItemConnection!
  order: Order!
  orderId: ID!
  status: FulfillmentOrderStatus!
  updatedAt: DateTime!
}}
type FulfillmentOrderEdge {{ cursor: String! node: FulfillmentOrder! }}
type FulfillmentOrderConnection {{
  edges: [FulfillmentOrderEdge!]!
  nodes: [FulfillmentOrder!]!
  pageInfo: PageInfo!
}}

type FulfillmentOrderLineItem implements Node {{
  id: ID!
  lineItem: LineItem!
  remainingQuantity: Int!
  sku: String
  totalQuantity: Int!
}}
type FulfillmentOrderLineItemEdge {{ cursor: String! node: FulfillmentOrderLineItem! }}
type FulfillmentOrderLineItemConnection {{
  edges: [FulfillmentOrderLineItemEdge!]!
  nodes: [FulfillmentOrderLineItem!]!
  pageInfo: PageInfo!
}}

type UserError {{ field: [String!] message: String! }}
type FilesUserError {{ code: FilesErrorCode field: [String!] message: String! }}
type InventorySetQuantitiesUserError {{
  code: InventorySetQuantitiesUserErrorCode
  field: [String!]
  message: String!
}}

input InventoryQuantityInput {{
  changeFromQuantity: Int
  inventoryItemId: ID!
  locationId: ID!
  quantity: Int!
}}
input InventorySetQuantitiesInput {{
  name: String!
  quantities: [InventoryQuantityInput!]!
  reason: String!
  referenceDocumentUri: String
}}
type InventorySetQuantitiesPayload {{
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [InventorySetQuantitiesUserError!]!
}}

type ProductVariantsBulkUpdateUserError {{
  code: ProductVariantsBulkUpdateUserErrorCode
  field: [String!]
  message: String!
}}
input ProductVariantsBulkInput {{ id: ID price: Money }}
type ProductVariantsBulkUpdatePayload {{
  product: Product
  productVariants: [ProductVariant!]
  userErrors: [ProductVariantsBulkUpdateUserError!]!
}}

input FileUpdateInput {{
  alt: String
  id: ID!
  referencesToAdd: [ID!]
  referencesToRemove: [ID!]
}}
type FileUpdatePayload {{ files: [File!] userErrors: [FilesUserError!]! }}

input ProductUpdateInput {{ handle: String id: ID status: ProductStatus title: String }}
input CreateMediaInput {{
  alt: String
  mediaContentType: MediaContentType!
  originalSource: String!
}}
type ProductUpdatePayload {{ product: Product userErrors: [UserError!]! }}

input FulfillmentOrderLineItemInput {{ id: ID! quantity: Int! }}
input FulfillmentOrderLineItemsInput {{
  fulfillmentOrderId: ID!
  fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
}}
input FulfillmentTrackingInput {{
  company: String
  number: String
  numbers: [String!]
  url: URL
  urls: [URL!]
}}
input FulfillmentInput {{
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]!
  notifyCustomer: Boolean = false
  trackingInfo: FulfillmentTrackingInput
}}
type FulfillmentCreatePayload {{ fulfillment: Fulfillment userErrors: [UserError!]! }}

input WebhookSubscriptionInput {{
  callbackUrl: URL
  filter: String
  format: WebhookSubscriptionFormat
  includeFields: [String!]
  uri: String
}}
type WebhookSubscriptionCreatePayload {{
  userErrors: [UserError!]!
  webhookSubscription: WebhookSubscription
}}
type WebhookSubscriptionDeletePayload {{
  deletedWebhookSubscriptionId: ID
  userErrors: [UserError!]!
}}

type Query {{
  fulfillmentOrder(id: ID!): FulfillmentOrder
  inventoryItem(id: ID!): InventoryItem
  location(id: ID): Location
  locations(
    after: String, before: String, first: Int, includeInactive: Boolean = false,
    includeLegacy: Boolean = false, last: Int, query: String, reverse: Boolean = false
  ): LocationConnection!
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  order(id: ID!): Order
  orders(
    after: String, before: String, first: Int, last: Int, query: String,
    reverse: Boolean = false, sortKey: OrderSortKeys = PROCESSED_AT
  ): OrderConnection!
  product(id: ID!): Product
  productVariant(id: ID!): ProductVariant
  productVariants(
    after: String, before: String, first: Int, last: Int, query: String,
    reverse: Boolean = false, sortKey: ProductVariantSortKeys = ID
  ): ProductVariantConnection!
  shop: Shop!
  webhookSubscription(id: ID!): WebhookSubscription
  webhookSubscriptions(
    after: String, before: String, first: Int, format: WebhookSubscriptionFormat, last: Int,
    reverse: Boolean = false, sortKey: WebhookSubscriptionSortKeys = CREATED_AT,
    topics: [WebhookSubscriptionTopic!], uri: String
  ): WebhookSubscriptionConnection!
}}

type Mutation {{
  fileUpdate(files: [FileUpdateInput!]!): FileUpdatePayload
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
  productUpdate(product: ProductUpdateInput, media: [CreateMediaInput!]): ProductUpdatePayload
  productVariantsBulkUpdate(
    allowPartialUpdates: Boolean = false, productId: ID!, variants: [ProductVariantsBulkInput!]!
  ): ProductVariantsBulkUpdatePayload
  webhookSubscriptionCreate(
    topic: WebhookSubscriptionTopic!, webhookSubscription: WebhookSubscriptionInput!
  ): WebhookSubscriptionCreatePayload
  webhookSubscriptionDelete(id: ID!): WebhookSubscriptionDeletePayload
}}
"""

SCHEMA: GraphQLSchema = build_schema(SCHEMA_SDL)
IDEMPOTENT_DIRECTIVE = SCHEMA.get_directive("idempotent")

# ---------------------------------------------------------------------------------------------
# Small value helpers
# ---------------------------------------------------------------------------------------------

_GID = re.compile(r"^gid://shopify/(?P<kind>[A-Za-z0-9]+)/(?P<num>\d+)(?:\?.*)?$")


def make_gid(kind: str, num: int) -> str:
    """Shopify's global id form, e.g. ``gid://shopify/Order/1001``."""
    return f"gid://shopify/{kind}/{num}"


def parse_gid(value: object, kind: str | None = None) -> int | None:
    """The numeric part of a GID (of ``kind`` when given); None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _GID.match(value)
    if match is None or (kind is not None and match["kind"] != kind):
        return None
    return int(match["num"])


def _gid_kind(value: str) -> str | None:
    match = _GID.match(value)
    return match["kind"] if match else None


def _iso(moment: datetime) -> str:
    """GraphQL ``DateTime``: ISO-8601 in UTC with a ``Z``, whole seconds (as Shopify answers)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def _rest_time(moment: datetime | None) -> str | None:
    """REST/webhook timestamps carry an offset instead of ``Z``."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _whole_seconds(moment: datetime) -> datetime:
    """Shopify stores timestamps to the second, which makes runs of equal ``updatedAt`` real."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def _decimal_string(value: Decimal) -> str:
    """``Decimal`` scalar as Shopify prints it: a string, at least one decimal ("10.0", "0.3")."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def _money_string(value: Decimal) -> str:
    """``Money`` scalar / REST amounts: two decimals unless more are significant."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return format(value, "f")
    return f"{value:.2f}"


def _parse_when(text: str) -> datetime:
    """A search-syntax date: ISO-8601 date or date-time; naive values are UTC."""
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fingerprint(value: object) -> str:
    """A stable digest of mutation arguments, to tell a replay from a different request."""
    canonical = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _lazy(compute: Callable[..., Any]) -> Callable[..., Any]:
    """A field value graphql-core's default resolver calls with the field's arguments.

    Views are dicts; fields with arguments (or links to other records) are callables so only
    what a document selects is computed, and records can refer to each other without cycles.
    """

    def resolve(_info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        return compute(**args)

    return resolve


# ---------------------------------------------------------------------------------------------
# Cursors (opaque to clients; Shopify's decode to {"last_id", "last_value"} too)
# ---------------------------------------------------------------------------------------------

SortKey = tuple[int, int]


def encode_cursor(key: SortKey) -> str:
    raw = json.dumps({"last_id": key[1], "last_value": key[0]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> SortKey:
    """The (sort value, id) a cursor points at; a GraphQL error when it is not ours."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        value, num = data["last_value"], data["last_id"]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise GraphQLError("Invalid cursor for current pagination sort.") from error
    if not isinstance(value, int) or not isinstance(num, int):
        raise GraphQLError("Invalid cursor for current pagination sort.")
    return (value, num)


def paginate(
    items: Sequence[T],
    args: Mapping[str, Any],
    *,
    key: Callable[[T], SortKey],
    view: Callable[[T], JSON],
) -> JSON:
    """A Relay connection over ``items`` honouring first/after/last/before/reverse.

    Cursors encode the sort key rather than a position, so a page boundary stays put when
    records are added or re-sorted (an order updated mid-scan moves behind the cursor and is
    met again later), which is how Shopify's cursors behave for ``sortKey: UPDATED_AT``.
    """
    reverse = bool(args.get("reverse"))
    ordered = sorted(items, key=key, reverse=reverse)
    keys = [key(item) for item in ordered]

    def beyond(candidate: SortKey, mark: SortKey) -> bool:
        return candidate < mark if reverse else candidate > mark

    low, high = 0, len(ordered)
    if args.get("after"):
        mark = decode_cursor(args["after"])
        low = next((i for i, k in enumerate(keys) if beyond(k, mark)), len(keys))
    if args.get("before"):
        mark = decode_cursor(args["before"])
        high = next((i for i, k in enumerate(keys) if not beyond(mark, k)), len(keys))
    high = max(low, high)
    if args.get("first") is not None:
        high = min(high, low + max(0, int(args["first"])))
    if args.get("last") is not None:
        low = max(low, high - max(0, int(args["last"])))
    edges = [{"cursor": encode_cursor(keys[i]), "node": view(ordered[i])} for i in range(low, high)]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": high < len(ordered),
            "hasPreviousPage": low > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# ---------------------------------------------------------------------------------------------
# Search syntax for orders(query:) (https://shopify.dev/docs/api/usage/search-syntax)
# ---------------------------------------------------------------------------------------------

_TERM = re.compile(
    r"""(?P<field>[a-z_]+):(?P<op><=|>=|<|>)?(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<bare>[^\s)]+))"""
)
_COMPARATORS: dict[str, Callable[[datetime, datetime], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "": lambda a, b: a == b,
}
DATE_FILTER_FIELDS = ("updated_at", "created_at", "processed_at")


@dataclass(frozen=True, slots=True)
class DateFilter:
    field: str  # updated_at | created_at | processed_at
    op: str  # > >= < <= or "" for equality
    when: datetime

    def accepts(self, moment: datetime) -> bool:
        return _COMPARATORS[self.op](moment, self.when)


def parse_order_query(query: str | None) -> list[DateFilter]:
    """The date terms of a search query; other terms are ignored, as Shopify ignores unknown
    filters rather than failing."""
    filters: list[DateFilter] = []
    for match in _TERM.finditer(query or ""):
        if match["field"] not in DATE_FILTER_FIELDS:
            continue
        text = match["sq"] if match["sq"] is not None else match["dq"] or match["bare"] or ""
        try:
            when = _parse_when(text)
        except ValueError as error:
            raise GraphQLError(f"Invalid date in search query: {text!r}") from error
        filters.append(DateFilter(match["field"], match["op"] or "", _whole_seconds(when)))
    return filters


# ---------------------------------------------------------------------------------------------
# Calculated query cost (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits)
# ---------------------------------------------------------------------------------------------


class QueryRejected(Exception):
    """The document is refused before execution (cost, page size or input size)."""

    def __init__(self, message: str, code: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: JSON = {"code": code, **extra}

    def as_error(self) -> JSON:
        return {"message": self.message, "extensions": self.extensions}


CompositeType = GraphQLObjectType | GraphQLInterfaceType


def _is_list(output: GraphQLOutputType) -> bool:
    inner = output.of_type if isinstance(output, GraphQLNonNull) else output
    return isinstance(inner, GraphQLList)


def _is_connection(named: object) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection")


def _connection_node_type(connection: GraphQLObjectType) -> CompositeType:
    node = get_named_type(connection.fields["nodes"].type)
    assert isinstance(node, GraphQLObjectType | GraphQLInterfaceType)
    return node


@dataclass(frozen=True)
class QueryCost:
    """Shopify's cost rules, applied statically (requested) and to the result (actual).

    * scalar / enum: 0; object (or interface): 1; ``pageInfo`` and cursors: free;
    * connection: 2 + size x (1 + cost of the node's selection), size = ``first``/``last``
      when requested, the number of nodes returned when actual;
    * a list taking ``first`` is charged like a connection; ``nodes(ids:)`` one object per
      id; any other list (``userErrors``, ``trackingInfo``) as a single object;
    * fragments on different concrete types cost the maximum of the alternatives;
    * mutation root field: 10, plus the selection inside its payload (the payload object
      itself is covered by the 10).
    """

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: dict[str, Any]

    def requested(self, operation: OperationDefinitionNode) -> int:
        root = self._root_type(operation)
        if operation.operation != OperationType.MUTATION:
            return self._requested_selection(operation.selection_set, root)
        total = 0
        for node, owner, _group in self._fields(operation.selection_set, root):
            self._check_input_sizes(node)
            payload = self._field_type(node, owner)
            inner = self._requested_selection(node.selection_set, payload) if payload else 0
            total += MUTATION_COST + inner
        return total

    def actual(self, operation: OperationDefinitionNode, data: Mapping[str, Any] | None) -> int:
        root = self._root_type(operation)
        data = data or {}
        if operation.operation != OperationType.MUTATION:
            return self._actual_selection(operation.selection_set, root, data)
        total = 0
        for node, owner, _group in self._fields(operation.selection_set, root):
            value = data.get(_response_key(node))
            payload = self._field_type(node, owner)
            total += MUTATION_COST
            if isinstance(value, Mapping) and payload is not None:
                total += self._actual_selection(node.selection_set, payload, value)
        return total

    # -- traversal ------------------------------------------------------------------------

    def _root_type(self, operation: OperationDefinitionNode) -> GraphQLObjectType:
        root = (
            self.schema.mutation_type
            if operation.operation == OperationType.MUTATION
            else self.schema.query_type
        )
        assert root is not None
        return root

    def _fields(
        self,
        selection_set: SelectionSetNode | None,
        parent: CompositeType,
        group: str | None = None,
    ) -> Iterator[tuple[FieldNode, CompositeType, str | None]]:
        """Fields with the type they are looked up on and the fragment type they belong to."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent, group
                continue
            if isinstance(selection, InlineFragmentNode):
                condition, selections = selection.type_condition, selection.selection_set
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:
                    continue
                condition, selections = fragment.type_condition, fragment.selection_set
            else:  # pragma: no cover - no other selection kinds exist
                continue
            owner, inner_group = parent, group
            abstract = isinstance(parent, GraphQLInterfaceType)
            if abstract and condition is not None and condition.name.value != parent.name:
                # On an interface, fragments on different types are alternatives.
                narrowed = self.schema.get_type(condition.name.value)
                if isinstance(narrowed, GraphQLObjectType | GraphQLInterfaceType):
                    owner, inner_group = narrowed, condition.name.value
            yield from self._fields(selections, owner, inner_group)

    def _field_type(self, node: FieldNode, owner: CompositeType) -> CompositeType | None:
        definition = owner.fields.get(node.name.value)
        if definition is None:
            return None
        named = get_named_type(definition.type)
        return named if isinstance(named, GraphQLObjectType | GraphQLInterfaceType) else None

    def _arguments(self, node: FieldNode) -> JSON:
        return {
            arg.name.value: value_from_ast_untyped(arg.value, self.variables)
            for arg in node.arguments or ()
        }

    # -- requested ------------------------------------------------------------------------

    def _requested_selection(
        self, selection_set: SelectionSetNode | None, parent: CompositeType
    ) -> int:
        base, alternatives = 0, dict[str, int]()
        for node, owner, group in self._fields(selection_set, parent):
            cost = self._requested_field(node, owner)
            if group is None:
                base += cost
            else:
                alternatives[group] = alternatives.get(group, 0) + cost
        return base + max(alternatives.values(), default=0)

    def _requested_field(self, node: FieldNode, owner: CompositeType) -> int:
        definition = owner.fields.get(node.name.value)
        if definition is None or node.name.value == "pageInfo":
            return 0
        self._check_input_sizes(node)
        named = get_named_type(definition.type)
        if is_leaf_type(named) or not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        args = self._arguments(node)
        if _is_connection(named):
            assert isinstance(named, GraphQLObjectType)
            size = self._page_size(args)
            return CONNECTION_BASE_COST + size * self._requested_node(node.selection_set, named)
        inner = OBJECT_COST + self._requested_selection(node.selection_set, named)
        kind = _list_kind(definition.type, args)
        if kind == "paged":
            return CONNECTION_BASE_COST + self._page_size(args) * inner
        if kind == "by_ids":
            return len(args["ids"]) * inner
        return inner

    def _requested_node(
        self, selection_set: SelectionSetNode | None, connection: GraphQLObjectType
    ) -> int:
        """Cost of one node of a connection: 1 plus what is selected on it (nodes or edges)."""
        node_type = _connection_node_type(connection)
        per_node = OBJECT_COST
        for node, owner, _group in self._fields(selection_set, connection):
            name = node.name.value
            if name == "nodes":
                per_node += self._requested_selection(node.selection_set, node_type)
            elif name == "edges":
                edge_type = self._field_type(node, owner)
                for inner, _o, _g in self._fields(node.selection_set, edge_type or owner):
                    if inner.name.value == "node":
                        per_node += self._requested_selection(inner.selection_set, node_type)
        return per_node

    def _page_size(self, args: Mapping[str, Any]) -> int:
        size = args.get("first") if args.get("first") is not None else args.get("last")
        if not isinstance(size, int):
            raise QueryRejected("you must provide one of first or last", "BAD_REQUEST")
        if size > MAX_INPUT_ARRAY:
            raise QueryRejected(
                f"The maximum page size is {MAX_INPUT_ARRAY}; {size} was requested.", "BAD_REQUEST"
            )
        return max(0, size)

    def _check_input_sizes(self, node: FieldNode) -> None:
        for name, value in self._arguments(node).items():
            _check_array_sizes(value, [node.name.value, name])

    # -- actual ---------------------------------------------------------------------------

    def _actual_selection(
        self, selection_set: SelectionSetNode | None, parent: CompositeType, data: Mapping[str, Any]
    ) -> int:
        total = 0
        for node, owner, _group in self._fields(selection_set, parent):
            key = _response_key(node)
            if key in data:
                total += self._actual_field(node, owner, data[key])
        return total

    def _actual_field(self, node: FieldNode, owner: CompositeType, value: Any) -> int:
        definition = owner.fields.get(node.name.value)
        if definition is None or node.name.value == "pageInfo":
            return 0
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        if _is_connection(named):
            assert isinstance(named, GraphQLObjectType)
            return CONNECTION_BASE_COST + self._actual_nodes(node.selection_set, named, value)
        kind = _list_kind(definition.type, self._arguments(node))
        if kind in ("paged", "by_ids"):
            items = [item for item in value if isinstance(item, Mapping)] if value else []
            base = CONNECTION_BASE_COST if kind == "paged" else 0
            return base + sum(
                OBJECT_COST + self._actual_selection(node.selection_set, named, item)
                for item in items
            )
        if kind == "plain":
            return OBJECT_COST + self._requested_selection(node.selection_set, named)
        if not isinstance(value, Mapping):
            return OBJECT_COST
        return OBJECT_COST + self._actual_selection(node.selection_set, named, value)

    def _actual_nodes(
        self, selection_set: SelectionSetNode | None, connection: GraphQLObjectType, value: Any
    ) -> int:
        """Returned nodes x 1 plus what was selected on each of them."""
        if not isinstance(value, Mapping):
            return 0
        node_type = _connection_node_type(connection)
        count, children = 0, 0
        for node, owner, _group in self._fields(selection_set, connection):
            items = value.get(_response_key(node))
            if not isinstance(items, list):
                continue
            count = max(count, len(items))
            if node.name.value == "nodes":
                children += sum(
                    self._actual_selection(node.selection_set, node_type, item)
                    for item in items
                    if isinstance(item, Mapping)
                )
            elif node.name.value == "edges":
                edge_type = self._field_type(node, owner) or owner
                for edge in items:
                    if isinstance(edge, Mapping):
                        for inner, _o, _g in self._fields(node.selection_set, edge_type):
                            if inner.name.value == "node" and isinstance(
                                edge.get(_response_key(inner)), Mapping
                            ):
                                children += self._actual_selection(
                                    inner.selection_set, node_type, edge[_response_key(inner)]
                                )
        return count * OBJECT_COST + children


def _list_kind(output: GraphQLOutputType, args: Mapping[str, Any]) -> str | None:
    """How a field returning a list is charged: ``paged`` (it takes ``first``/``last``: like a
    connection), ``by_ids`` (``nodes(ids:)``: one object per id), ``plain`` (one object, as
    ``userErrors``); None when the field is not a list."""
    if not _is_list(output):
        return None
    if args.get("first") is not None or args.get("last") is not None:
        return "paged"
    return "by_ids" if isinstance(args.get("ids"), list) else "plain"


def _response_key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _check_array_sizes(value: Any, path: list[str]) -> None:
    """Every input array is capped at 250 items (https://shopify.dev/docs/api/usage/limits)."""
    if isinstance(value, list):
        if len(value) > MAX_INPUT_ARRAY:
            raise QueryRejected(
                f"The input array size of {len(value)} is greater than the maximum allowed of "
                f"{MAX_INPUT_ARRAY}.",
                "MAX_INPUT_SIZE_EXCEEDED",
                path=path,
            )
        for item in value:
            _check_array_sizes(item, path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_array_sizes(item, [*path, str(key)])


# ---------------------------------------------------------------------------------------------
# Leaky bucket (https://shopify.dev/docs/api/usage/limits#the-leaky-bucket-algorithm)
# ---------------------------------------------------------------------------------------------


@dataclass
class LeakyBucket:
    """Points available to spend: refills continuously at ``restore_rate`` up to ``capacity``.

    Before execution the bucket must hold the requested cost; afterwards the difference
    between requested and actual cost is refunded.
    """

    capacity: float
    restore_rate: float
    clock: Callable[[], float]
    available: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.available = self.capacity
        self.updated = self.clock()

    def refill(self) -> float:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.available = min(self.capacity, self.available + elapsed * self.restore_rate)
        self.updated = now
        return self.available

    def try_take(self, points: float) -> bool:
        if self.refill() < points:
            return False
        self.available -= points
        return True

    def give_back(self, points: float) -> None:
        self.refill()
        self.available = min(self.capacity, self.available + max(0.0, points))

    def status(self) -> JSON:
        """``throttleStatus`` as Shopify reports it."""
        return {
            "maximumAvailable": float(self.capacity),
            "currentlyAvailable": int(self.refill()),
            "restoreRate": float(self.restore_rate),
        }


# ---------------------------------------------------------------------------------------------
# In-memory records
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Product:
    num: int
    title: str
    handle: str
    created_at: datetime
    updated_at: datetime
    variant_nums: list[int] = field(default_factory=list)
    media_nums: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Variant:
    num: int
    product_num: int
    item_num: int
    title: str
    sku: str | None
    price: Decimal
    created_at: datetime


@dataclass(slots=True)
class _Media:
    num: int
    alt: str | None
    content_type: str
    original_source: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class _Customer:
    num: int
    first_name: str | None
    last_name: str | None
    email: str | None


@dataclass(slots=True)
class _Line:
    num: int
    order_num: int
    sku: str | None
    title: str
    variant_title: str | None
    quantity: int
    current_quantity: int
    unit_price: Decimal
    variant_num: int | None
    product_num: int | None
    fulfilled: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.current_quantity - self.fulfilled)


@dataclass(slots=True)
class _FulfillmentOrder:
    num: int
    order_num: int
    created_at: datetime
    line_nums: list[int] = field(default_factory=list)  # _FoLine nums


@dataclass(slots=True)
class _FoLine:
    num: int
    fo_num: int
    line_num: int


@dataclass(slots=True)
class _Fulfillment:
    num: int
    order_num: int
    sequence: int
    created_at: datetime
    tracking: list[JSON]
    lines: list[tuple[int, int]]  # (line num, quantity)
    notify_customer: bool
    status: str = "SUCCESS"


@dataclass(slots=True)
class _Order:
    num: int
    name: str
    email: str | None
    created_at: datetime
    updated_at: datetime
    currency: str
    presentment_currency: str
    exchange_rate: Decimal
    financial_status: str
    shipping_price: Decimal
    total: Decimal | None
    customer_num: int | None = None
    shipping_address: JSON | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    fulfillment_status: str | None = None  # explicit override of the derived status
    line_nums: list[int] = field(default_factory=list)
    fo_nums: list[int] = field(default_factory=list)
    fulfillment_nums: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Change:
    name: str
    item_num: int
    delta: int
    after: int


@dataclass(slots=True)
class _AdjustmentGroup:
    num: int
    created_at: datetime
    reason: str
    reference: str | None
    changes: list[_Change]


@dataclass(frozen=True, slots=True)
class _Remembered:
    """An ``@idempotent`` outcome: the request's fingerprint and the payload it produced."""

    fingerprint: str
    payload: JSON


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One attempted webhook POST, for inspection."""

    topic: str
    webhook_id: str
    event_id: str
    status: int | None  # None: dropped on purpose; 0: the receiver was unreachable


class SubscriptionDelivery(NamedTuple):
    """One signed POST Shopify would make for a webhook subscription: where it goes and the
    exact bytes and headers (``X-Shopify-Hmac-Sha256`` over ``body``)."""

    subscription_id: str
    address: str
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class _Subscription:
    num: int
    topic: str  # WebhookSubscriptionTopic enum value
    uri: str
    format: str
    filter: str | None
    include_fields: list[str]
    created_at: datetime
    updated_at: datetime
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class _AuthorizationCode:
    scope: str
    issued_at: float  # on the sandbox's monotonic clock


def query_hmac(params: Mapping[str, str], secret: str) -> str:
    """The ``hmac`` Shopify adds to a redirect's query: hex HMAC-SHA256, keyed with the app's
    client secret, of every other parameter sorted by name and joined as ``k=v`` with ``&``
    (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant,
    "Verify the installation request")."""
    message = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "hmac")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _topic_enum(topic: str) -> str:
    """A topic as ``WebhookSubscriptionTopic`` from its REST name or the enum itself."""
    if topic in WEBHOOK_TOPICS:
        return topic
    if topic in _TOPIC_ENUMS:
        return _TOPIC_ENUMS[topic]
    raise ValueError(f"unknown webhook topic {topic!r}; known: {sorted(_TOPIC_ENUMS)}")


def _scope_list(raw: str) -> str:
    """A requested ``scope`` parameter as Shopify echoes it: comma-separated, no blanks."""
    return ",".join(part.strip() for part in raw.split(",") if part.strip())


def _form_or_json(raw: bytes, content_type: str) -> dict[str, str]:
    """The fields of an access-token request, sent as JSON or as a urlencoded form."""
    if "json" in content_type:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {}
        if not isinstance(body, dict):
            return {}
        return {str(key): str(value) for key, value in body.items() if value is not None}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _user_error(field_path: Sequence[str], message: str, code: str | None = None) -> JSON:
    error: JSON = {"field": list(field_path), "message": message}
    if code is not None:
        error["code"] = code
    return error


class _Unset:
    """Marks an optional keyword that was not passed (where None is a meaningful value)."""


UNSET: Any = _Unset()

# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _parsed_and_validated(query: str) -> tuple[Any, list[Any]]:
    """Parse and validate each distinct query text once: clients send the same few documents,
    and validation was most of the sandbox's CPU under load."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, [error.formatted]
    return document, [e.formatted for e in validate(SCHEMA, document)]


class ShopifySandbox:
    """One in-memory Shopify shop behind a GraphQL Admin endpoint (``.app``, an ASGI app).

    Seeding: ``add_product``, ``add_order``, ``update_order``, ``bulk_add_orders``,
    ``set_stock``. Inspection: ``stock``, ``media``, ``order_lines``, ``fulfillment_order_ids``,
    ``variant_price``, ``fulfillment_writes``, ``inventory_adjustments``, ``price_writes``,
    ``webhook_deliveries``, ``cost_spent``,
    ``throttled_responses``, ``fault_responses``, ``requests``, ``bucket_state()``.
    Switches (plain attributes, settable while serving): ``latency_seconds``,
    ``error_rate_5xx``, ``queue_429()``, ``drop_webhook_rate``, ``duplicate_webhooks``,
    ``reorder_webhooks``. Webhooks: ``signed_webhook``, ``emit_webhook``, ``flush_webhooks``,
    ``order_webhook_payload``, ``app_uninstalled_payload``. ``execute_graphql`` runs a request
    without HTTP (same cost and bucket rules).

    Installation: ``GET /admin/oauth/authorize`` approves at once (``deny_next_install``
    declines once), ``POST /admin/oauth/access_token`` exchanges a single-use code for a token
    the GraphQL endpoint then accepts beside the fixed ``access_token``; ``uninstall()`` revokes
    every token. Subscriptions (``webhookSubscriptionCreate`` and friends over GraphQL):
    ``subscriptions()``, ``subscription_deliveries()``, ``record_delivery()`` (deleted after
    ``delivery_failure_limit`` consecutive failures), ``drop_subscription()``.

    Every public method takes the one lock, so tests and benchmarks may seed from other threads
    while the server answers.
    """

    def __init__(
        self,
        *,
        shop_domain: str = "sandbox-shop.myshopify.com",
        access_token: str = "shpat_sandbox",  # noqa: S107 - a sandbox's fixed test token
        api_version: str = "2026-04",
        bucket_size: float = 1000.0,
        restore_rate: float = 100.0,
        client_secret: str = "sandbox-secret",  # noqa: S107 - a sandbox's fixed test secret
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        location_id: str = "gid://shopify/Location/1",
        wall_clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        client_id: str = "sandbox-client-id",
        shop_name: str | None = None,
        currency: str = "EUR",
        oauth_code_ttl_seconds: float = OAUTH_CODE_TTL_SECONDS,
        delivery_failure_limit: int = DELIVERY_FAILURE_LIMIT,
    ) -> None:
        self.shop_domain = shop_domain
        self.client_id = client_id
        self.shop_name = shop_name or shop_domain.split(".")[0].replace("-", " ").title()
        self.currency = currency
        self.oauth_code_ttl_seconds = oauth_code_ttl_seconds
        self.delivery_failure_limit = delivery_failure_limit
        self.access_token = access_token
        self.api_version = api_version
        self.client_secret = client_secret
        self.webhook_url = webhook_url
        self.location_id = location_id
        self._location_num = parse_gid(location_id, "Location")
        if self._location_num is None:
            raise ValueError(f"location_id must be a Location GID, not {location_id!r}")
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._clock = clock
        self._bucket = LeakyBucket(bucket_size, restore_rate, clock)

        # run-time switches
        self.latency_seconds = 0.0
        self.error_rate_5xx = 0.0
        self.drop_webhook_rate = 0.0
        self.duplicate_webhooks = False
        self.reorder_webhooks = False
        self.deny_next_install = False
        self._queued_429: list[float] = []
        self._held_webhook: tuple[str, bytes, dict[str, str]] | None = None

        # counters and inspectable logs
        self.requests = 0
        self.cost_spent = 0
        self.throttled_responses = 0
        self.fault_responses = 0
        self.fulfillment_writes: list[JSON] = []
        self.inventory_adjustments: list[JSON] = []
        self.price_writes: list[JSON] = []
        self.webhook_deliveries: list[WebhookDelivery] = []

        # state
        self._counters: dict[str, int] = {"Order": FIRST_ORDER_NUMBER - 1}
        self._products: dict[int, _Product] = {}
        self._variants: dict[int, _Variant] = {}
        self._variant_by_item: dict[int, int] = {}
        self._variant_by_sku: dict[str, int] = {}
        self._stock: dict[int, int] = {}  # inventory item num -> available at the location
        self._media: dict[int, _Media] = {}
        self._customers: dict[int, _Customer] = {}
        self._orders: dict[int, _Order] = {}
        self._lines: dict[int, _Line] = {}
        self._fulfillment_orders: dict[int, _FulfillmentOrder] = {}
        self._fo_lines: dict[int, _FoLine] = {}
        self._fulfillments: dict[int, _Fulfillment] = {}
        self._adjustment_groups: dict[int, _AdjustmentGroup] = {}
        self._idempotency: dict[tuple[str, str], _Remembered] = {}
        self._codes: dict[str, _AuthorizationCode] = {}
        self._issued_tokens: dict[str, str] = {}  # token -> granted scope
        self._fixed_token_revoked = False
        self._subscriptions: dict[int, _Subscription] = {}

        self._lookups = self._record_lookups()
        self._root = self._root_value()
        self.app = Starlette(
            routes=[
                Route(
                    "/admin/api/{version}/graphql.json", self._graphql_endpoint, methods=["POST"]
                ),
                Route("/admin/oauth/authorize", self._authorize_endpoint, methods=["GET"]),
                Route("/admin/oauth/access_token", self._access_token_endpoint, methods=["POST"]),
            ]
        )

    # =========================================================================================
    # Public: schema, bucket, switches
    # =========================================================================================

    @property
    def schema(self) -> GraphQLSchema:
        return SCHEMA

    def bucket_state(self) -> JSON:
        """``{maximumAvailable, currentlyAvailable, restoreRate}`` at the clock's current time."""
        with self._lock:
            return self._bucket.status()

    def refill_bucket(self) -> None:
        """Fill the bucket to capacity (between benchmark phases)."""
        with self._lock:
            self._bucket.available = self._bucket.capacity
            self._bucket.updated = self._bucket.clock()

    def queue_429(self, n: int, retry_after: float = 1.0) -> None:
        """Answer the next ``n`` requests with HTTP 429 and ``Retry-After: retry_after``."""
        with self._lock:
            self._queued_429.extend([retry_after] * n)

    # =========================================================================================
    # Public: seeding
    # =========================================================================================

    def add_product(
        self,
        title: str,
        variants: Sequence[Mapping[str, Any]] = (),
        *,
        media: Sequence[Mapping[str, Any]] = (),
    ) -> JSON:
        """Create a product with variants ``{"sku", "price", "available", "title"?}``.

        Returns ``{"id", "title", "variants": [{"id", "sku", "title", "price",
        "inventory_item_id", "available"}], "media": [gid, ...]}``. ``media`` items are
        ``{"url", "alt"?, "media_content_type"?}``.
        """
        with self._lock:
            now = self._now()
            product = _Product(self._next("Product"), title, _handle(title), now, now)
            self._products[product.num] = product
            specs = list(variants) or [{"sku": None, "price": Decimal("0.00"), "available": 0}]
            for index, spec in enumerate(specs):
                self._add_variant(product, spec, index, single=len(specs) == 1, now=now)
            for spec in media:
                product.media_nums.append(self._add_media(spec, now).num)
            return self._product_summary(product)

    def add_order(
        self,
        lines: Sequence[Mapping[str, Any]],
        *,
        name: str | None = None,
        email: str | None = "buyer@example.com",
        currency: str = "EUR",
        presentment_currency: str | None = None,
        exchange_rate: Decimal = Decimal(1),
        financial_status: str = "PAID",
        fulfillment_status: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        cancelled_at: datetime | None = None,
        cancel_reason: str | None = None,
        customer: Mapping[str, Any] | None = None,
        shipping_address: Mapping[str, Any] | None = None,
        shipping_price: Decimal = Decimal(0),
        total: Decimal | None = None,
        decrement_stock: bool = False,
    ) -> str:
        """Create an order; return its GID.

        Each line is ``{"sku" | "variant_id", "quantity"?, "price"?, "current_quantity"?,
        "title"?}``: a known SKU or variant GID links the variant (its price is the default),
        an unknown SKU or no SKU makes a custom line (``price`` required). ``total`` overrides
        the computed total (lines + shipping); removed quantities are subtracted from either.
        One open fulfilment order holds every line. Stock is untouched unless
        ``decrement_stock`` (Shopify commits stock on order creation; tests usually want
        stock under their own control).
        """
        with self._lock:
            created = _whole_seconds(created_at or updated_at or self._wall_clock())
            order = _Order(
                num=self._next("Order"),
                name="",
                email=email,
                created_at=created,
                updated_at=_whole_seconds(updated_at) if updated_at else created,
                currency=currency,
                presentment_currency=presentment_currency or currency,
                exchange_rate=exchange_rate,
                financial_status=financial_status,
                fulfillment_status=fulfillment_status,
                shipping_price=shipping_price,
                total=total,
                cancelled_at=_whole_seconds(cancelled_at) if cancelled_at else None,
                cancel_reason=cancel_reason or ("OTHER" if cancelled_at else None),
                shipping_address=dict(shipping_address) if shipping_address else None,
            )
            order.name = name or f"#{order.num}"
            order.customer_num = self._customer_for(customer, email) if customer else None
            self._check_enums(order)
            for spec in lines:
                line = self._build_line(order.num, spec)
                self._lines[line.num] = line
                order.line_nums.append(line.num)
                if decrement_stock and line.variant_num is not None:
                    item = self._variants[line.variant_num].item_num
                    self._stock[item] -= line.quantity
            self._orders[order.num] = order
            self._open_fulfillment_order(order)
            return make_gid("Order", order.num)

    def update_order(
        self,
        order_id: str,
        *,
        updated_at: datetime | None = None,
        cancel: bool = False,
        cancelled_at: datetime | None = None,
        cancel_reason: str | None = None,
        financial_status: str | None = None,
        fulfillment_status: str | None = UNSET,
        refund: Mapping[str, int] | None = None,
        email: str | None = UNSET,
        shipping_address: Mapping[str, Any] | None = UNSET,
    ) -> None:
        """Change an order as the merchant or buyer would; ``updatedAt`` moves to now unless
        ``updated_at`` is given (with no other change this is a plain "touch").

        ``refund`` maps line GIDs (or SKUs) to quantities removed: ``currentQuantity`` drops
        and the financial status becomes PARTIALLY_REFUNDED / REFUNDED. ``cancel`` (or
        ``cancelled_at``) cancels: every line's current quantity goes to 0 and a paid order
        becomes REFUNDED, an unpaid one VOIDED, unless ``financial_status`` says otherwise.
        """
        with self._lock:
            order = self._require_order(order_id)
            if refund:
                self._remove_quantities(order, refund)
                order.financial_status = self._refunded_status(order)
            if cancel or cancelled_at is not None:
                self._cancel(order, cancelled_at, cancel_reason)
            if financial_status is not None:
                order.financial_status = financial_status
            if fulfillment_status is not UNSET:
                order.fulfillment_status = fulfillment_status
            if email is not UNSET:
                order.email = email
            if shipping_address is not UNSET:
                order.shipping_address = dict(shipping_address) if shipping_address else None
            self._check_enums(order)
            order.updated_at = _whole_seconds(updated_at) if updated_at else self._now()

    def bulk_add_orders(
        self,
        n: int,
        lines_range: tuple[int, int] = (1, 3),
        *,
        start: datetime | None = None,
        spacing: timedelta = timedelta(seconds=1),
        financial_status: str = "PAID",
        seed: int | None = None,
    ) -> list[str]:
        """Create ``n`` orders (for benchmarks) with a random number of lines in
        ``lines_range`` over the catalogue's variants (a 10-variant product is created when
        the catalogue is empty), ``updatedAt`` rising by ``spacing`` from ``start``."""
        rng = random.Random(seed)
        with self._lock:
            skus = [v.sku for v in self._variants.values() if v.sku]
            if not skus:
                variants = [
                    {"sku": f"BULK-{i:02d}", "price": Decimal("10.00") + i, "available": 1000}
                    for i in range(10)
                ]
                skus = [v["sku"] for v in self.add_product("Bulk product", variants)["variants"]]
            first = start or (self._now() - spacing * n)
            created: list[str] = []
            for index in range(n):
                count = rng.randint(*lines_range)
                picked = rng.sample(skus, min(count, len(skus)))
                lines = [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in picked]
                moment = first + spacing * index
                created.append(
                    self.add_order(
                        lines,
                        created_at=moment,
                        updated_at=moment,
                        financial_status=financial_status,
                    )
                )
            return created

    def set_stock(self, inventory_item_id: str, quantity: int) -> None:
        """Set ``available`` directly, as a sale or a merchant edit on Shopify's side would."""
        with self._lock:
            self._stock[self._require_item(inventory_item_id)] = quantity

    # =========================================================================================
    # Public: inspection
    # =========================================================================================

    def stock(self, inventory_item_id: str) -> int:
        with self._lock:
            return self._stock[self._require_item(inventory_item_id)]

    def variant_price(self, variant: str) -> Decimal:
        """A variant's current price, by its GID or its SKU."""
        with self._lock:
            return self._require_variant(variant).price

    def media(self, product_id: str) -> list[JSON]:
        """The media attached to a product, in order: ``{"id", "alt", "media_content_type",
        "original_source"}``."""
        with self._lock:
            product = self._require_product(product_id)
            return [
                {
                    "id": make_gid(_media_kind(m.content_type), m.num),
                    "alt": m.alt,
                    "media_content_type": m.content_type,
                    "original_source": m.original_source,
                }
                for m in (self._media[n] for n in product.media_nums)
            ]

    def order_lines(self, order_id: str) -> list[JSON]:
        """An order's lines: ``{"id", "sku", "quantity", "current_quantity", "fulfilled",
        "fulfillment_order_line_item_id"}``."""
        with self._lock:
            order = self._require_order(order_id)
            fo_line_of = {
                self._fo_lines[n].line_num: n
                for fo in order.fo_nums
                for n in self._fulfillment_orders[fo].line_nums
            }
            return [
                {
                    "id": make_gid("LineItem", line.num),
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "current_quantity": line.current_quantity,
                    "fulfilled": line.fulfilled,
                    "fulfillment_order_line_item_id": make_gid(
                        "FulfillmentOrderLineItem", fo_line_of[line.num]
                    ),
                }
                for line in (self._lines[n] for n in order.line_nums)
            ]

    def fulfillment_order_ids(self, order_id: str) -> list[str]:
        with self._lock:
            order = self._require_order(order_id)
            return [make_gid("FulfillmentOrder", n) for n in order.fo_nums]

    def order_updated_at(self, order_id: str) -> datetime:
        with self._lock:
            return self._require_order(order_id).updated_at

    # =========================================================================================
    # Public: executing GraphQL without HTTP (the endpoint uses this too)
    # =========================================================================================

    def execute_graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> JSON:
        """Run one GraphQL request through cost checks, the bucket and execution.

        Returns the response body: ``data``/``errors`` plus ``extensions.cost``.
        """
        with self._lock:
            return self._execute_locked(query, dict(variables or {}), operation_name)

    def _execute_locked(self, query: str, variables: JSON, operation_name: str | None) -> JSON:
        document, errors = _parsed_and_validated(query)
        if errors:
            return self._rejected(errors)
        assert document is not None
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return self._rejected([{"message": "Could not determine which operation to run."}])
        coerced = get_variable_values(SCHEMA, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return self._rejected([e.formatted for e in coerced])
        cost = QueryCost(SCHEMA, _fragments(document), coerced.coerced)
        try:
            requested = cost.requested(operation)
        except QueryRejected as rejected:
            return self._rejected([rejected.as_error()])
        if requested > MAX_QUERY_COST:
            return self._rejected([_max_cost_error(requested)], requested=requested)
        if not self._bucket.try_take(requested):
            self.throttled_responses += 1
            return _throttled(requested, self._bucket.status())
        return self._run(document, operation, variables, operation_name, cost, requested)

    def _run(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: JSON,
        operation_name: str | None,
        cost: QueryCost,
        requested: int,
    ) -> JSON:
        result = execute_sync(
            SCHEMA,
            document,
            root_value=self._root,
            variable_values=variables,
            operation_name=operation_name,
        )
        actual = min(requested, cost.actual(operation, result.data))
        self._bucket.give_back(requested - actual)
        self.cost_spent += actual
        body: JSON = dict(result.formatted)
        body["extensions"] = {"cost": self._cost_extension(requested, actual)}
        return body

    def _rejected(self, errors: list[Any], *, requested: int = 0) -> JSON:
        """Refused before execution: nothing charged."""
        return {"errors": errors, "extensions": {"cost": self._cost_extension(requested, 0)}}

    def _cost_extension(self, requested: int, actual: int | None) -> JSON:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self._bucket.status(),
        }

    # =========================================================================================
    # HTTP
    # =========================================================================================

    async def _graphql_endpoint(self, request: Request) -> Response:
        """``POST /admin/api/{version}/graphql.json``: faults first (they come from Shopify's
        edge, before auth), then auth, then GraphQL."""
        if request.path_params["version"] != self.api_version:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        with self._lock:
            self.requests += 1
        if self.latency_seconds > 0:
            await asyncio.sleep(self.latency_seconds)
        fault = self._take_fault()
        if fault is not None:
            return fault
        if not self._token_accepted(request.headers.get("x-shopify-access-token")):
            return JSONResponse({"errors": INVALID_LOGIN_MESSAGE}, status_code=401)
        parsed = _graphql_request(await request.body())
        if parsed is None:
            return JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, status_code=400
            )
        query, variables, operation_name = parsed
        payload = await run_in_threadpool(self.execute_graphql, query, variables, operation_name)
        return JSONResponse(payload)

    # -- app installation: the authorization code grant ---------------------------------------
    # https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant

    async def _authorize_endpoint(self, request: Request) -> Response:
        """``GET /admin/oauth/authorize``: the shop owner approves at once (or declines, once,
        after ``deny_next_install``) and is redirected to ``redirect_uri`` with a signed query:
        ``code``, ``hmac``, ``host``, ``shop``, ``state``, ``timestamp``."""
        params = request.query_params
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "Oauth error invalid_request: The client_id is invalid",
                },
                status_code=400,
            )
        if not _is_http_url(redirect_uri):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "Oauth error invalid_request: The redirect_uri is "
                    "missing or is not a valid URL",
                },
                status_code=400,
            )
        with self._lock:
            answer = {
                "shop": self.shop_domain,
                "timestamp": str(int(self._wall_clock().timestamp())),
            }
            if params.get("state") is not None:
                answer["state"] = params["state"]
            if self.deny_next_install:
                self.deny_next_install = False
                answer["error"] = "access_denied"
                answer["error_description"] = "The merchant declined to install the app."
            else:
                code = secrets.token_hex(16)
                self._codes[code] = _AuthorizationCode(
                    _scope_list(params.get("scope", "")), self._clock()
                )
                answer["code"] = code
                answer["host"] = self._host_parameter()
            answer["hmac"] = query_hmac(answer, self.client_secret)
        separator = "&" if urlparse(redirect_uri).query else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", status_code=302)

    async def _access_token_endpoint(self, request: Request) -> Response:
        """``POST /admin/oauth/access_token`` (JSON or form: ``client_id``, ``client_secret``,
        ``code``) -> ``{"access_token", "scope"}``. Codes are single-use and expire."""
        fields = _form_or_json(await request.body(), request.headers.get("content-type", ""))
        secret = fields.get("client_secret", "").encode()
        with self._lock:
            known_client = fields.get("client_id") == self.client_id
            if not (known_client and hmac.compare_digest(secret, self.client_secret.encode())):
                return JSONResponse(INVALID_CLIENT_BODY, status_code=400)
            code = self._codes.pop(fields.get("code", ""), None)
            if code is None or self._clock() - code.issued_at > self.oauth_code_ttl_seconds:
                return JSONResponse(INVALID_CODE_BODY, status_code=400)
            token = f"shpat_{secrets.token_hex(16)}"
            self._issued_tokens[token] = code.scope
        return JSONResponse({"access_token": token, "scope": code.scope})

    def _token_accepted(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            if token in self._issued_tokens:
                return True
            return not self._fixed_token_revoked and token == self.access_token

    def _host_parameter(self) -> str:
        """``host``: base64 of the shop's admin address, as embedded apps receive it."""
        store = self.shop_domain.split(".")[0]
        raw = f"admin.shopify.com/store/{store}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _take_fault(self) -> Response | None:
        """A queued 429 or a random 502/503, per the switches."""
        with self._lock:
            if self._queued_429:
                retry_after = self._queued_429.pop(0)
                self.fault_responses += 1
                return JSONResponse(
                    {"errors": "Exceeded the rate limit. Reduce request rates to resume."},
                    status_code=429,
                    headers={"Retry-After": f"{retry_after:.1f}"},
                )
            if self.error_rate_5xx > 0 and self._rng.random() < self.error_rate_5xx:
                self.fault_responses += 1
                status = self._rng.choice((502, 503))
                message = "Bad Gateway" if status == 502 else "Service Unavailable"
                return JSONResponse({"errors": message}, status_code=status)
        return None

    # =========================================================================================
    # Webhooks (https://shopify.dev/docs/apps/build/webhooks/delivery-structure)
    # =========================================================================================

    def signed_webhook(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        secret: str | None = None,
        webhook_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers Shopify would POST for ``topic``.

        ``X-Shopify-Hmac-Sha256`` is base64(HMAC-SHA256(raw body, client secret));
        ``secret`` overrides the secret (rotation and forgery tests).
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        key = (secret if secret is not None else self.client_secret).encode()
        signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": self._wall_clock()
            .astimezone(UTC)
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        return body, headers

    def emit_webhook(
        self, topic: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> list[int]:
        """POST a signed webhook to ``webhook_url``, honouring the chaos switches.

        ``drop_webhook_rate``: the delivery is silently lost. ``duplicate_webhooks``: the
        identical delivery (same ids, same signature) is sent twice, as a Shopify retry is.
        ``reorder_webhooks``: a delivery is held back and sent after the next one (call
        ``flush_webhooks`` to release a held one). Returns the HTTP statuses received.
        """
        if self.webhook_url is None:
            raise RuntimeError("webhook_url is not set")
        body, headers = self.signed_webhook(topic, payload, event_id=event_id)
        with self._lock:
            if self._rng.random() < self.drop_webhook_rate:
                self._log_delivery(topic, headers, None)
                return []
            batch = [(topic, body, headers)] * (2 if self.duplicate_webhooks else 1)
            if self.reorder_webhooks and self._held_webhook is None:
                self._held_webhook, batch = batch[0], batch[1:]
            elif self._held_webhook is not None:
                batch.append(self._held_webhook)
                self._held_webhook = None
        return [self._post_webhook(*delivery) for delivery in batch]

    def flush_webhooks(self) -> list[int]:
        """Send a delivery held back by ``reorder_webhooks``, if any."""
        with self._lock:
            held, self._held_webhook = self._held_webhook, None
        return [self._post_webhook(*held)] if held else []

    def order_webhook_payload(self, order_id: str) -> JSON:
        """An ``orders/create`` / ``orders/updated`` body in Shopify's REST order shape."""
        with self._lock:
            return self._rest_order(self._require_order(order_id))

    def app_uninstalled_payload(self) -> JSON:
        """An ``app/uninstalled`` body: the shop resource."""
        return {
            "id": SHOP_ID,
            "name": self.shop_name,
            "email": f"owner@{self.shop_domain}",
            "domain": self.shop_domain,
            "myshopify_domain": self.shop_domain,
            "country_code": "DE",
            "currency": self.currency,
            "iana_timezone": "Europe/Berlin",
            "plan_name": "basic",
            "created_at": "2025-01-01T00:00:00+00:00",
            "updated_at": _rest_time(self._wall_clock()),
        }

    # -- subscriptions made through the Admin API ---------------------------------------------

    def subscriptions(self) -> list[JSON]:
        """Every live subscription: ``{"id", "topic" (enum), "uri", "format",
        "consecutive_failures"}``, oldest first."""
        with self._lock:
            return [
                {
                    "id": make_gid("WebhookSubscription", sub.num),
                    "topic": sub.topic,
                    "uri": sub.uri,
                    "format": sub.format,
                    "consecutive_failures": sub.consecutive_failures,
                }
                for sub in sorted(self._subscriptions.values(), key=lambda item: item.num)
            ]

    def subscription_deliveries(
        self, topic: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> list[SubscriptionDelivery]:
        """The signed deliveries of one event to every subscription of ``topic`` (its REST
        name, ``orders/create``, or its enum, ``ORDERS_CREATE``).

        One event, one ``X-Shopify-Event-Id`` shared by its deliveries; each delivery has its
        own ``X-Shopify-Webhook-Id``. Nothing is sent: post them, then ``record_delivery``.
        """
        enum = _topic_enum(topic)
        with self._lock:
            return self._deliveries(enum, payload, event_id)

    def record_delivery(self, subscription_id: str, status_code: int | None) -> bool:
        """Count one delivery attempt's outcome; whether the subscription still exists.

        A 2xx resets the failure count; anything else (0 or None: unreachable) adds one, and at
        ``delivery_failure_limit`` consecutive failures the subscription is deleted, as Shopify
        deletes Admin-API subscriptions whose deliveries keep failing.
        """
        with self._lock:
            sub = self._subscriptions.get(parse_gid(subscription_id, "WebhookSubscription") or 0)
            if sub is None:
                return False
            if status_code is not None and 200 <= status_code < 300:
                sub.consecutive_failures = 0
                return True
            sub.consecutive_failures += 1
            if sub.consecutive_failures >= self.delivery_failure_limit:
                del self._subscriptions[sub.num]
                return False
            return True

    def drop_subscription(self, subscription_id: str) -> bool:
        """Delete a subscription as Shopify does after sustained failures; whether it existed."""
        with self._lock:
            num = parse_gid(subscription_id, "WebhookSubscription")
            return self._subscriptions.pop(num or 0, None) is not None

    def uninstall(self) -> list[SubscriptionDelivery]:
        """The shop owner uninstalls the app: every token is revoked (the GraphQL endpoint then
        answers 401), pending codes die, every subscription is removed. Returns the signed
        ``app/uninstalled`` deliveries for the APP_UNINSTALLED subscriptions, made before they
        went, for the caller to post."""
        with self._lock:
            deliveries = self._deliveries("APP_UNINSTALLED", self.app_uninstalled_payload(), None)
            self._issued_tokens.clear()
            self._fixed_token_revoked = True
            self._codes.clear()
            self._subscriptions.clear()
            return deliveries

    def _deliveries(
        self, enum: str, payload: Mapping[str, Any], event_id: str | None
    ) -> list[SubscriptionDelivery]:
        event = event_id or str(uuid.uuid4())
        deliveries = []
        for sub in sorted(self._subscriptions.values(), key=lambda item: item.num):
            if sub.topic != enum:
                continue
            body, headers = self.signed_webhook(WEBHOOK_TOPICS[enum], payload, event_id=event)
            deliveries.append(
                SubscriptionDelivery(
                    make_gid("WebhookSubscription", sub.num), sub.uri, body, headers
                )
            )
        return deliveries

    def _post_webhook(self, topic: str, body: bytes, headers: dict[str, str]) -> int:
        """Deliver outside the lock: the receiver may call back into this sandbox."""
        assert self.webhook_url is not None
        try:
            status = httpx.post(self.webhook_url, content=body, headers=headers, timeout=5.0)
            code = status.status_code
        except httpx.HTTPError:
            code = 0
        with self._lock:
            self._log_delivery(topic, headers, code)
        return code

    def _log_delivery(self, topic: str, headers: Mapping[str, str], status: int | None) -> None:
        self.webhook_deliveries.append(
            WebhookDelivery(
                topic, headers["X-Shopify-Webhook-Id"], headers["X-Shopify-Event-Id"], status
            )
        )

    # =========================================================================================
    # GraphQL root
    # =========================================================================================

    def _root_value(self) -> JSON:
        """Root fields; graphql-core's default resolver calls these with the arguments."""

        def root(compute: Callable[..., Any]) -> Callable[..., Any]:
            def resolve(info: GraphQLResolveInfo[Any], **args: Any) -> Any:
                return compute(info, **args)

            return resolve

        return {
            "orders": _lazy(self._orders_connection),
            "order": _lazy(lambda id: self._view_if("Order", id)),
            "product": _lazy(lambda id: self._view_if("Product", id)),
            "productVariant": _lazy(lambda id: self._view_if("ProductVariant", id)),
            "productVariants": _lazy(self._variants_connection),
            "inventoryItem": _lazy(lambda id: self._view_if("InventoryItem", id)),
            "fulfillmentOrder": _lazy(lambda id: self._view_if("FulfillmentOrder", id)),
            "location": _lazy(lambda id=None: self._view_if("Location", id or self.location_id)),
            "node": _lazy(lambda id: self._node(id)),
            "nodes": _lazy(lambda ids: [self._node(i) for i in ids]),
            "inventorySetQuantities": root(self._inventory_set_quantities),
            "fileUpdate": _lazy(self._file_update),
            "productUpdate": _lazy(self._product_update),
            "productVariantsBulkUpdate": _lazy(self._product_variants_bulk_update),
            "fulfillmentCreate": _lazy(self._fulfillment_create),
            "shop": _lazy(self._shop_view),
            "locations": _lazy(self._locations_connection),
            "webhookSubscription": _lazy(lambda id: self._view_if("WebhookSubscription", id)),
            "webhookSubscriptions": _lazy(self._subscriptions_connection),
            "webhookSubscriptionCreate": _lazy(self._webhook_subscription_create),
            "webhookSubscriptionDelete": _lazy(self._webhook_subscription_delete),
        }

    def _record_lookups(self) -> dict[str, tuple[Mapping[int, Any], Callable[[Any], JSON]]]:
        """Per GID kind: the table holding its records and the view that renders one."""
        return {
            "Order": (self._orders, self._order_view),
            "LineItem": (self._lines, self._line_view),
            "Product": (self._products, self._product_view),
            "ProductVariant": (self._variants, self._variant_view),
            "InventoryItem": (self._variant_by_item, self._item_view_by_variant),
            "Customer": (self._customers, self._customer_view),
            "FulfillmentOrder": (self._fulfillment_orders, self._fo_view),
            "FulfillmentOrderLineItem": (self._fo_lines, self._fo_line_view),
            "Fulfillment": (self._fulfillments, self._fulfillment_view),
            "InventoryAdjustmentGroup": (self._adjustment_groups, self._group_view),
            "WebhookSubscription": (self._subscriptions, self._subscription_view),
        }

    def _view_if(self, kind: str, gid: str) -> JSON | None:
        return self._node(gid) if _gid_kind(gid) == kind else None

    def _node(self, gid: str) -> JSON | None:
        """Any record by GID, as the view of its type; None when unknown."""
        kind, num = _gid_kind(gid), parse_gid(gid)
        if kind is None or num is None:
            return None
        if kind == "Location":
            return self._location_view() if num == self._location_num else None
        if kind in {"MediaImage", "ExternalVideo", "Video", "Model3d"}:
            media = self._media.get(num)
            return (
                self._media_view(media)
                if media and _media_kind(media.content_type) == kind
                else None
            )
        table, view = self._lookups.get(kind, ({}, _no_view))
        record = table.get(num)
        return None if record is None else view(record)

    # -- queries ------------------------------------------------------------------------------

    def _orders_connection(self, **args: Any) -> JSON:
        """``orders``: search-filtered, sorted by ``sortKey`` then id, cursor-paged."""
        filters = parse_order_query(args.get("query"))
        orders = [o for o in self._orders.values() if all(_order_matches(o, f) for f in filters)]
        sort_key = _ORDER_SORTS.get(args.get("sortKey") or "PROCESSED_AT", _order_by_id)
        return paginate(orders, args, key=sort_key, view=self._order_view)

    def _variants_connection(self, **args: Any) -> JSON:
        return paginate(
            list(self._variants.values()),
            args,
            key=lambda v: (v.num, v.num),
            view=self._variant_view,
        )

    def _locations_connection(self, **args: Any) -> JSON:
        """``locations``: the sandbox's one active location."""
        num = self._location_num or 0
        return paginate([num], args, key=lambda n: (n, n), view=lambda _n: self._location_view())

    def _subscriptions_connection(self, **args: Any) -> JSON:
        """``webhookSubscriptions``: filtered by ``topics``/``uri``/``format``, oldest first.

        https://shopify.dev/docs/api/admin-graphql/latest/queries/webhookSubscriptions
        """
        topics, uri, fmt = args.get("topics"), args.get("uri"), args.get("format")
        chosen = [
            sub
            for sub in self._subscriptions.values()
            if (not topics or sub.topic in topics)
            and (uri is None or sub.uri == uri)
            and (fmt is None or sub.format == fmt)
        ]
        return paginate(chosen, args, key=lambda s: (s.num, s.num), view=self._subscription_view)

    # -- views --------------------------------------------------------------------------------

    def _shop_view(self) -> JSON:
        return {
            "__typename": "Shop",
            "id": make_gid("Shop", SHOP_ID),
            "name": self.shop_name,
            "email": f"owner@{self.shop_domain}",
            "myshopifyDomain": self.shop_domain,
            "currencyCode": self.currency,
        }

    def _subscription_view(self, sub: _Subscription) -> JSON:
        """A WebhookSubscription: ``uri`` is the 2026 address field; ``endpoint`` is kept."""
        return {
            "__typename": "WebhookSubscription",
            "id": make_gid("WebhookSubscription", sub.num),
            "topic": sub.topic,
            "uri": sub.uri,
            "format": sub.format,
            "filter": sub.filter,
            "includeFields": list(sub.include_fields),
            "createdAt": _iso(sub.created_at),
            "updatedAt": _iso(sub.updated_at),
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub.uri},
        }

    def _order_view(self, order: _Order) -> JSON:
        lines = [self._lines[n] for n in order.line_nums]
        return {
            "__typename": "Order",
            "id": make_gid("Order", order.num),
            "name": order.name,
            "email": order.email,
            "createdAt": _iso(order.created_at),
            "processedAt": _iso(order.created_at),
            "updatedAt": _iso(order.updated_at),
            "cancelledAt": _iso_or_none(order.cancelled_at),
            "cancelReason": order.cancel_reason,
            "displayFinancialStatus": order.financial_status,
            "displayFulfillmentStatus": self._fulfillment_status(order),
            "currencyCode": order.currency,
            "presentmentCurrencyCode": order.presentment_currency,
            "currentTotalPriceSet": self._money_bag(order, self._current_total(order)),
            "totalPriceSet": self._money_bag(order, self._original_total(order)),
            "customer": self._customer_view(self._customers[order.customer_num])
            if order.customer_num
            else None,
            "shippingAddress": _address_view(order.num, order.shipping_address),
            "lineItems": _lazy(
                lambda **a: paginate(lines, a, key=lambda x: (x.num, x.num), view=self._line_view)
            ),
            "fulfillments": _lazy(
                lambda first=None: [
                    self._fulfillment_view(self._fulfillments[n])
                    for n in order.fulfillment_nums[: first if first is not None else None]
                ]
            ),
            "fulfillmentOrders": _lazy(
                lambda **a: paginate(
                    [self._fulfillment_orders[n] for n in order.fo_nums],
                    a,
                    key=lambda x: (x.num, x.num),
                    view=self._fo_view,
                )
            ),
        }

    def _line_view(self, line: _Line) -> JSON:
        order = self._orders[line.order_num]
        variant_num, product_num = line.variant_num, line.product_num
        name = line.title if not line.variant_title else f"{line.title} - {line.variant_title}"
        return {
            "__typename": "LineItem",
            "id": make_gid("LineItem", line.num),
            "sku": line.sku,
            "name": name,
            "title": line.title,
            "variantTitle": line.variant_title,
            "quantity": line.quantity,
            "currentQuantity": line.current_quantity,
            "unfulfilledQuantity": line.remaining,
            "requiresShipping": True,
            "originalUnitPriceSet": self._money_bag(order, line.unit_price),
            "variant": _lazy(
                lambda: self._optional_view(self._variants, variant_num, self._variant_view)
            ),
            "product": _lazy(
                lambda: self._optional_view(self._products, product_num, self._product_view)
            ),
        }

    @staticmethod
    def _optional_view(
        table: Mapping[int, T], num: int | None, view: Callable[[T], JSON]
    ) -> JSON | None:
        record = table.get(num) if num is not None else None
        return None if record is None else view(record)

    def _product_view(self, product: _Product) -> JSON:
        return {
            "__typename": "Product",
            "id": make_gid("Product", product.num),
            "title": product.title,
            "handle": product.handle,
            "status": "ACTIVE",
            "createdAt": _iso(product.created_at),
            "updatedAt": _iso(product.updated_at),
            "media": _lazy(
                lambda **a: paginate(
                    [self._media[n] for n in product.media_nums],
                    a,
                    key=_position_key(product.media_nums),
                    view=self._media_view,
                )
            ),
            "variants": _lazy(
                lambda **a: paginate(
                    [self._variants[n] for n in product.variant_nums],
                    a,
                    key=lambda v: (v.num, v.num),
                    view=self._variant_view,
                )
            ),
        }

    def _variant_view(self, variant: _Variant) -> JSON:
        product = self._products[variant.product_num]
        return {
            "__typename": "ProductVariant",
            "id": make_gid("ProductVariant", variant.num),
            "sku": variant.sku,
            "title": variant.title,
            "displayName": f"{product.title} - {variant.title}",
            "price": _money_string(variant.price),
            "inventoryQuantity": self._stock.get(variant.item_num, 0),
            "createdAt": _iso(variant.created_at),
            "updatedAt": _iso(product.updated_at),
            "product": _lazy(lambda: self._product_view(product)),
            "inventoryItem": _lazy(lambda: self._item_view(variant)),
        }

    def _item_view_by_variant(self, variant_num: int) -> JSON:
        return self._item_view(self._variants[variant_num])

    def _item_view(self, variant: _Variant) -> JSON:
        item_num = variant.item_num
        return {
            "__typename": "InventoryItem",
            "id": make_gid("InventoryItem", item_num),
            "sku": variant.sku,
            "tracked": True,
            "createdAt": _iso(variant.created_at),
            "updatedAt": _iso(variant.created_at),
            "variant": _lazy(lambda: self._variant_view(variant)),
            "inventoryLevel": _lazy(lambda locationId: self._level_view(variant, locationId)),
        }

    def _level_view(self, variant: _Variant, location_id: str) -> JSON | None:
        if parse_gid(location_id, "Location") != self._location_num:
            return None
        item_num = variant.item_num
        level_id = f"gid://shopify/InventoryLevel/{self._location_num}?inventory_item_id={item_num}"
        return {
            "__typename": "InventoryLevel",
            "id": level_id,
            "updatedAt": _iso(self._now()),
            "item": _lazy(lambda: self._item_view(variant)),
            "location": _lazy(self._location_view),
            "quantities": _lazy(
                lambda names: [
                    {
                        "__typename": "InventoryQuantity",
                        "id": f"{level_id}&name={name}",
                        "name": name,
                        "quantity": self._stock.get(item_num, 0) if name in QUANTITY_NAMES else 0,
                        "updatedAt": None,
                    }
                    for name in names
                ]
            ),
        }

    def _location_view(self) -> JSON:
        return {
            "__typename": "Location",
            "id": self.location_id,
            "name": "Sandbox warehouse",
            "isActive": True,
        }

    def _customer_view(self, customer: _Customer) -> JSON:
        shown = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        return {
            "__typename": "Customer",
            "id": make_gid("Customer", customer.num),
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "email": customer.email,
            "displayName": shown or customer.email or "",
        }

    def _media_view(self, media: _Media) -> JSON:
        kind = _media_kind(media.content_type)
        view: JSON = {
            "__typename": kind,
            "id": make_gid(kind, media.num),
            "alt": media.alt,
            "mediaContentType": media.content_type,
            "status": "READY",
            "fileStatus": "READY",
            "createdAt": _iso(media.created_at),
            "updatedAt": _iso(media.updated_at),
            "originUrl": media.original_source,
            "image": {"url": media.original_source, "altText": media.alt, "id": None},
            "originalSource": {"url": media.original_source, "fileSize": None},
        }
        return view

    def _fo_view(self, fo: _FulfillmentOrder) -> JSON:
        order = self._orders[fo.order_num]
        lines = [self._fo_lines[n] for n in fo.line_nums]
        return {
            "__typename": "FulfillmentOrder",
            "id": make_gid("FulfillmentOrder", fo.num),
            "orderId": make_gid("Order", order.num),
            "status": self._fo_status(fo),
            "createdAt": _iso(fo.created_at),
            "updatedAt": _iso(order.updated_at),
            "order": _lazy(lambda: self._order_view(order)),
            "lineItems": _lazy(
                lambda **a: paginate(
                    lines, a, key=lambda x: (x.num, x.num), view=self._fo_line_view
                )
            ),
        }

    def _fo_line_view(self, fo_line: _FoLine) -> JSON:
        line = self._lines[fo_line.line_num]
        return {
            "__typename": "FulfillmentOrderLineItem",
            "id": make_gid("FulfillmentOrderLineItem", fo_line.num),
            "sku": line.sku,
            "totalQuantity": line.quantity,
            "remainingQuantity": self._fo_line_remaining(line),
            "lineItem": _lazy(lambda: self._line_view(line)),
        }

    def _fulfillment_view(self, fulfillment: _Fulfillment) -> JSON:
        order = self._orders[fulfillment.order_num]
        return {
            "__typename": "Fulfillment",
            "id": make_gid("Fulfillment", fulfillment.num),
            "name": f"{order.name}-F{fulfillment.sequence}",
            "status": fulfillment.status,
            "createdAt": _iso(fulfillment.created_at),
            "updatedAt": _iso(fulfillment.created_at),
            "order": _lazy(lambda: self._order_view(order)),
            "trackingInfo": _lazy(
                lambda first=None: fulfillment.tracking[: first if first is not None else None]
            ),
        }

    def _group_view(self, group: _AdjustmentGroup) -> JSON:
        return {
            "__typename": "InventoryAdjustmentGroup",
            "id": make_gid("InventoryAdjustmentGroup", group.num),
            "createdAt": _iso(group.created_at),
            "reason": group.reason,
            "referenceDocumentUri": group.reference,
            "changes": _lazy(
                lambda **_a: [
                    {
                        "name": change.name,
                        "delta": change.delta,
                        "quantityAfterChange": change.after,
                        "item": self._node(make_gid("InventoryItem", change.item_num)),
                        "location": self._location_view(),
                    }
                    for change in group.changes
                ]
            ),
        }

    # -- derived values -----------------------------------------------------------------------

    def _money_bag(self, order: _Order, amount: Decimal) -> JSON:
        presentment = (amount * order.exchange_rate).quantize(Decimal("0.01"))
        if order.exchange_rate == 1:
            presentment = amount
        return {
            "shopMoney": {"amount": _decimal_string(amount), "currencyCode": order.currency},
            "presentmentMoney": {
                "amount": _decimal_string(presentment),
                "currencyCode": order.presentment_currency,
            },
        }

    def _original_total(self, order: _Order) -> Decimal:
        if order.total is not None:
            return order.total
        lines = (self._lines[n] for n in order.line_nums)
        return sum((ln.unit_price * ln.quantity for ln in lines), Decimal(0)) + order.shipping_price

    def _current_total(self, order: _Order) -> Decimal:
        """The original total less the value of removed (refunded/cancelled) quantities."""
        lines = [self._lines[n] for n in order.line_nums]
        removed = sum(
            (ln.unit_price * (ln.quantity - ln.current_quantity) for ln in lines), Decimal(0)
        )
        total = self._original_total(order) - removed
        if lines and all(ln.current_quantity == 0 for ln in lines):
            total -= order.shipping_price if order.total is None else Decimal(0)
        return max(Decimal(0), total)

    def _fulfillment_status(self, order: _Order) -> str:
        if order.fulfillment_status is not None:
            return order.fulfillment_status
        lines = [self._lines[n] for n in order.line_nums]
        fulfilled = sum(ln.fulfilled for ln in lines)
        remaining = sum(ln.remaining for ln in lines)
        if fulfilled == 0:
            return "UNFULFILLED"
        return "FULFILLED" if remaining == 0 else "PARTIALLY_FULFILLED"

    def _fo_status(self, fo: _FulfillmentOrder) -> str:
        order = self._orders[fo.order_num]
        lines = [self._lines[self._fo_lines[n].line_num] for n in fo.line_nums]
        if order.cancelled_at is not None or all(ln.remaining == 0 for ln in lines):
            return "CLOSED"
        return "IN_PROGRESS" if any(ln.fulfilled for ln in lines) else "OPEN"

    def _fo_line_remaining(self, line: _Line) -> int:
        order = self._orders[line.order_num]
        return 0 if order.cancelled_at is not None else line.remaining

    # =========================================================================================
    # Mutations
    # =========================================================================================

    def _inventory_set_quantities(self, info: GraphQLResolveInfo[Any], **args: Any) -> JSON:
        """``inventorySetQuantities`` with mandatory ``@idempotent`` (2026-04).

        https://shopify.dev/changelog/making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations
        https://shopify.dev/docs/api/usage/implementing-idempotency
        """
        key = _idempotency_key(info)
        fingerprint = _fingerprint(args)
        remembered = self._idempotency.get(("inventorySetQuantities", key))
        if remembered is not None:
            if remembered.fingerprint != fingerprint:
                return {
                    "inventoryAdjustmentGroup": None,
                    "userErrors": [
                        _user_error(
                            ["input"],
                            "The same idempotency key cannot be used with different operation "
                            "parameters.",
                            "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                        )
                    ],
                }
            return remembered.payload
        payload = self._set_quantities(args["input"])
        self._idempotency[("inventorySetQuantities", key)] = _Remembered(fingerprint, payload)
        return payload

    def _set_quantities(self, request: Mapping[str, Any]) -> JSON:
        """All or nothing: any invalid or stale quantity fails the whole call and applies none.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities
        https://shopify.dev/docs/api/admin-graphql/2026-07/input-objects/InventoryQuantityInput
        """
        quantities: list[Mapping[str, Any]] = list(request["quantities"])
        for index, quantity in enumerate(quantities):
            if "changeFromQuantity" not in quantity:
                raise GraphQLError(
                    f"input.quantities.{index}.changeFromQuantity is required from 2026-04: "
                    "pass the expected quantity, or null to skip the check.",
                    extensions={"code": "BAD_REQUEST"},
                )
        errors = self._quantity_input_errors(request, quantities)
        if not errors:
            errors = self._stale_errors(quantities)
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        group = self._apply_quantities(request, quantities)
        return {"inventoryAdjustmentGroup": self._group_view(group), "userErrors": []}

    def _quantity_input_errors(
        self, request: Mapping[str, Any], quantities: Sequence[Mapping[str, Any]]
    ) -> list[JSON]:
        errors: list[JSON] = []
        if request["name"] not in QUANTITY_NAMES:
            errors.append(
                _user_error(
                    ["input", "name"],
                    "The quantity name must be either 'available' or 'on_hand'.",
                    "INVALID_NAME",
                )
            )
        if request["reason"] not in INVENTORY_REASONS:
            errors.append(
                _user_error(
                    ["input", "reason"], "The specified reason is invalid.", "INVALID_REASON"
                )
            )
        reference = request.get("referenceDocumentUri")
        if reference is not None and (
            ":" not in reference or reference.startswith("gid://shopify/")
        ):
            errors.append(
                _user_error(
                    ["input", "referenceDocumentUri"],
                    "The specified reference document is invalid.",
                    "INVALID_REFERENCE_DOCUMENT",
                )
            )
        seen: set[tuple[str, str]] = set()
        for index, quantity in enumerate(quantities):
            errors.extend(self._quantity_errors(index, quantity, seen))
        return errors

    def _quantity_errors(
        self, index: int, quantity: Mapping[str, Any], seen: set[tuple[str, str]]
    ) -> list[JSON]:
        path = ["input", "quantities", str(index)]
        errors: list[JSON] = []
        item_num = parse_gid(quantity["inventoryItemId"], "InventoryItem")
        if item_num is None or item_num not in self._stock:
            errors.append(
                _user_error(
                    [*path, "inventoryItemId"],
                    "The specified inventory item could not be found.",
                    "INVALID_INVENTORY_ITEM",
                )
            )
        if parse_gid(quantity["locationId"], "Location") != self._location_num:
            errors.append(
                _user_error(
                    [*path, "locationId"],
                    "The specified location could not be found.",
                    "INVALID_LOCATION",
                )
            )
        pair = (quantity["inventoryItemId"], quantity["locationId"])
        if pair in seen:
            errors.append(
                _user_error(
                    path,
                    "The combination of inventoryItemId and locationId must be unique.",
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                )
            )
        seen.add(pair)
        if quantity["quantity"] > MAX_QUANTITY:
            errors.append(
                _user_error(
                    [*path, "quantity"],
                    "The total quantity can't be higher than 1,000,000,000.",
                    "INVALID_QUANTITY_TOO_HIGH",
                )
            )
        if quantity["quantity"] < -MAX_QUANTITY:
            errors.append(
                _user_error(
                    [*path, "quantity"],
                    "The total quantity can't be lower than -1,000,000,000.",
                    "INVALID_QUANTITY_TOO_LOW",
                )
            )
        return errors

    def _stale_errors(self, quantities: Sequence[Mapping[str, Any]]) -> list[JSON]:
        """One CHANGE_FROM_QUANTITY_STALE per mismatch; no current quantity is disclosed."""
        errors: list[JSON] = []
        for index, quantity in enumerate(quantities):
            expected = quantity.get("changeFromQuantity")
            item_num = parse_gid(quantity["inventoryItemId"], "InventoryItem")
            if expected is not None and item_num is not None and self._stock[item_num] != expected:
                errors.append(
                    _user_error(
                        ["input", "quantities", str(index), "changeFromQuantity"],
                        "The changeFromQuantity value does not match persisted value.",
                        "CHANGE_FROM_QUANTITY_STALE",
                    )
                )
        return errors

    def _apply_quantities(
        self, request: Mapping[str, Any], quantities: Sequence[Mapping[str, Any]]
    ) -> _AdjustmentGroup:
        changes: list[_Change] = []
        for quantity in quantities:
            item_num = parse_gid(quantity["inventoryItemId"], "InventoryItem")
            assert item_num is not None
            before, after = self._stock[item_num], int(quantity["quantity"])
            self._stock[item_num] = after
            changes.append(_Change("available", item_num, after - before, after))
        group = _AdjustmentGroup(
            self._next("InventoryAdjustmentGroup"),
            self._now(),
            request["reason"],
            request.get("referenceDocumentUri"),
            changes,
        )
        self._adjustment_groups[group.num] = group
        self.inventory_adjustments.append(
            {
                "group_id": make_gid("InventoryAdjustmentGroup", group.num),
                "reason": group.reason,
                "changes": {
                    make_gid("InventoryItem", c.item_num): {"delta": c.delta, "after": c.after}
                    for c in changes
                },
            }
        )
        return group

    def _file_update(self, files: Sequence[Mapping[str, Any]]) -> JSON:
        """``fileUpdate``: alt text and product references; the file itself stays in Files.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/fileUpdate
        """
        errors = self._file_update_errors(files)
        if errors:
            return {"files": None, "userErrors": errors}
        now = self._now()
        updated: list[JSON] = []
        for spec in files:
            media = self._media[parse_gid(spec["id"]) or 0]
            if "alt" in spec:
                media.alt = spec["alt"]
            for product_id in spec.get("referencesToRemove") or []:
                product = self._products[parse_gid(product_id, "Product") or 0]
                if media.num in product.media_nums:
                    product.media_nums.remove(media.num)
                    product.updated_at = now
            for product_id in spec.get("referencesToAdd") or []:
                product = self._products[parse_gid(product_id, "Product") or 0]
                if media.num not in product.media_nums:
                    product.media_nums.append(media.num)
                    product.updated_at = now
            media.updated_at = now
            updated.append(self._media_view(media))
        return {"files": updated, "userErrors": []}

    def _file_update_errors(self, files: Sequence[Mapping[str, Any]]) -> list[JSON]:
        errors: list[JSON] = []
        for index, spec in enumerate(files):
            path = ["files", str(index)]
            if self._node(spec["id"]) is None or _gid_kind(spec["id"]) not in _MEDIA_KINDS:
                errors.append(
                    _user_error(
                        [*path, "id"],
                        f"File id {spec['id']} does not exist.",
                        "FILE_DOES_NOT_EXIST",
                    )
                )
            references = [
                *(spec.get("referencesToRemove") or []),
                *(spec.get("referencesToAdd") or []),
            ]
            for reference in references:
                if parse_gid(reference, "Product") not in self._products:
                    errors.append(
                        _user_error(
                            path,
                            f"The reference target {reference} does not exist.",
                            "REFERENCE_TARGET_DOES_NOT_EXIST",
                        )
                    )
        return errors

    def _product_update(
        self,
        product: Mapping[str, Any] | None = None,
        media: Sequence[Mapping[str, Any]] | None = None,
    ) -> JSON:
        """``productUpdate(product:, media:)``: optional title/handle, appended media.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/productUpdate
        """
        record = self._products.get(parse_gid((product or {}).get("id"), "Product") or 0)
        if record is None:
            return {"product": None, "userErrors": [_user_error(["id"], "Product does not exist")]}
        specs = list(media or [])
        errors = [
            _user_error(["media", str(i), "originalSource"], "Image URL is invalid")
            for i, spec in enumerate(specs)
            if not _is_http_url(spec["originalSource"])
        ]
        if len(record.media_nums) + len(specs) > MAX_PRODUCT_MEDIA:
            errors.append(_user_error(["media"], "Product media limit exceeded"))
        if errors:
            return {"product": None, "userErrors": errors}
        now = self._now()
        for field_name in ("title", "handle"):
            if (product or {}).get(field_name) is not None:
                setattr(record, field_name, (product or {})[field_name])
        for spec in specs:
            added = self._add_media(
                {
                    "url": spec["originalSource"],
                    "alt": spec.get("alt"),
                    "media_content_type": spec["mediaContentType"],
                },
                now,
            )
            record.media_nums.append(added.num)
        record.updated_at = now
        return {"product": self._product_view(record), "userErrors": []}

    def _product_variants_bulk_update(
        self,
        productId: str,
        variants: Sequence[Mapping[str, Any]],
        allowPartialUpdates: bool = False,
    ) -> JSON:
        """``productVariantsBulkUpdate``: variants of one product; only ``price`` is applied
        here. All or nothing unless ``allowPartialUpdates``.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/productVariantsBulkUpdate,
        https://shopify.dev/docs/api/admin-graphql/latest/enums/ProductVariantsBulkUpdateUserErrorCode
        """
        product = self._products.get(parse_gid(productId, "Product") or 0)
        if product is None:
            error = _user_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
            return {"product": None, "productVariants": None, "userErrors": [error]}
        errors: list[JSON] = []
        valid: list[tuple[_Variant, Decimal | None]] = []
        for index, spec in enumerate(variants):
            found = self._bulk_variant_errors(product, index, spec)
            if isinstance(found, list):
                errors.extend(found)
            else:
                valid.append(found)
        product_view = self._product_view(product)
        if errors and not allowPartialUpdates:
            return {"product": product_view, "productVariants": None, "userErrors": errors}
        changed: dict[str, str] = {}
        for variant, price in valid:
            if price is not None:
                variant.price = price
                changed[make_gid("ProductVariant", variant.num)] = format(price, "f")
        if valid:
            product.updated_at = self._now()
        if changed:
            self.price_writes.append({"product_id": productId, "prices": changed})
        return {
            "product": self._product_view(product),
            "productVariants": [self._variant_view(variant) for variant, _price in valid],
            "userErrors": errors,
        }

    def _bulk_variant_errors(
        self, product: _Product, index: int, spec: Mapping[str, Any]
    ) -> list[JSON] | tuple[_Variant, Decimal | None]:
        """One ``ProductVariantsBulkInput``: its userErrors, or the variant and its new price.

        A variant of another product is reported as not existing, as the lookup is scoped to
        the product."""
        path = ["variants", str(index)]
        variant_id = spec.get("id")
        if not variant_id:
            return [
                _user_error(
                    [*path, "id"],
                    "Product variant is missing ID attribute",
                    "PRODUCT_VARIANT_ID_MISSING",
                )
            ]
        num = parse_gid(variant_id, "ProductVariant")
        variant = self._variants.get(num) if num is not None else None
        if variant is None or variant.product_num != product.num:
            return [
                _user_error(
                    [*path, "id"],
                    "Product variant does not exist",
                    "PRODUCT_VARIANT_DOES_NOT_EXIST",
                )
            ]
        if "price" not in spec or spec["price"] is None:
            return (variant, None)
        raw = spec["price"]
        if not isinstance(raw, str) or not _MONEY_INPUT.match(raw.strip()):
            return [_user_error([*path, "price"], "Price is invalid", "INVALID_INPUT")]
        price = Decimal(raw.strip())
        if price < 0:
            return [
                _user_error(
                    [*path, "price"], "Price cannot take a negative value.", "NEGATIVE_PRICE_VALUE"
                )
            ]
        return (variant, price)

    def _webhook_subscription_create(
        self,
        topic: str,
        webhookSubscription: Mapping[str, Any],
    ) -> JSON:
        """``webhookSubscriptionCreate``: an HTTP(S) subscription to ``uri`` (or the deprecated
        ``callbackUrl``); one per topic and address.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionCreate,
        https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces (``uri``)
        """
        spec = webhookSubscription
        field_name = "uri" if spec.get("uri") else "callbackUrl"
        address = spec.get(field_name)
        path = ["webhookSubscription", field_name]
        if not address:
            return _no_subscription(_user_error(path, "Address can't be blank"))
        if not _is_http_url(address):
            return _no_subscription(_user_error(path, "Address is invalid"))
        if any(s.topic == topic and s.uri == address for s in self._subscriptions.values()):
            return _no_subscription(
                _user_error(path, "Address for this topic has already been taken")
            )
        now = self._now()
        sub = _Subscription(
            num=self._next("WebhookSubscription"),
            topic=topic,
            uri=address,
            format=spec.get("format") or "JSON",
            filter=spec.get("filter"),
            include_fields=list(spec.get("includeFields") or []),
            created_at=now,
            updated_at=now,
        )
        self._subscriptions[sub.num] = sub
        return {"webhookSubscription": self._subscription_view(sub), "userErrors": []}

    def _webhook_subscription_delete(self, id: str) -> JSON:
        """``webhookSubscriptionDelete``.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionDelete
        """
        num = parse_gid(id, "WebhookSubscription")
        if num is None or self._subscriptions.pop(num, None) is None:
            error = _user_error(["id"], "Webhook subscription does not exist")
            return {"deletedWebhookSubscriptionId": None, "userErrors": [error]}
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}

    def _fulfillment_create(
        self, fulfillment: Mapping[str, Any], message: str | None = None
    ) -> JSON:
        """``fulfillmentCreate``: fulfils quantities of fulfilment-order lines.

        https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentCreate
        """
        del message
        requested, errors = self._fulfillment_lines(fulfillment["lineItemsByFulfillmentOrder"])
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        orders = {self._lines[line_num].order_num for line_num, _qty in requested}
        if len(orders) != 1:
            error = _user_error(
                ["fulfillment"], "All fulfillment orders must belong to the same order."
            )
            return {"fulfillment": None, "userErrors": [error]}
        order = self._orders[orders.pop()]
        record = self._record_fulfillment(order, requested, fulfillment)
        return {"fulfillment": self._fulfillment_view(record), "userErrors": []}

    def _fulfillment_lines(
        self, groups: Sequence[Mapping[str, Any]]
    ) -> tuple[list[tuple[int, int]], list[JSON]]:
        """(line num, quantity) pairs to fulfil, or the user errors that refuse the request."""
        requested: list[tuple[int, int]] = []
        errors: list[JSON] = []
        for index, group in enumerate(groups):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index)]
            fo, error = self._open_fulfillment_order_for(group["fulfillmentOrderId"], path)
            if fo is None:
                errors.append(error)
                continue
            wanted = group.get("fulfillmentOrderLineItems")
            if wanted is None:
                wanted = self._everything_remaining(fo)
            for l_index, item in enumerate(wanted):
                item_path = [*path, "fulfillmentOrderLineItems", str(l_index)]
                line_num, error = self._fulfillable(fo, item, item_path, requested)
                if line_num is None:
                    errors.append(error)
                else:
                    requested.append((line_num, int(item["quantity"])))
        if not requested and not errors:
            errors.append(
                _user_error(["fulfillment"], "No fulfillment order line items to fulfill.")
            )
        return requested, errors

    def _open_fulfillment_order_for(
        self, gid: str, path: list[str]
    ) -> tuple[_FulfillmentOrder | None, JSON]:
        fo = self._fulfillment_orders.get(parse_gid(gid, "FulfillmentOrder") or 0)
        if fo is None:
            return None, _user_error(
                [*path, "fulfillmentOrderId"], "Fulfillment order does not exist."
            )
        if self._fo_status(fo) == "CLOSED":
            message = f"Fulfillment order {gid} has an unfulfillable status= closed."
            return None, _user_error([*path, "fulfillmentOrderId"], message)
        return fo, {}

    def _everything_remaining(self, fo: _FulfillmentOrder) -> list[JSON]:
        """Omitted ``fulfillmentOrderLineItems`` means every remaining unit of the order."""
        wanted: list[JSON] = []
        for num in fo.line_nums:
            remaining = self._fo_line_remaining(self._lines[self._fo_lines[num].line_num])
            if remaining > 0:
                wanted.append(
                    {"id": make_gid("FulfillmentOrderLineItem", num), "quantity": remaining}
                )
        return wanted

    def _fulfillable(
        self,
        fo: _FulfillmentOrder,
        item: Mapping[str, Any],
        path: list[str],
        already: Sequence[tuple[int, int]],
    ) -> tuple[int | None, JSON]:
        """The line behind a requested fulfilment-order line, if that many units remain."""
        fo_line = self._fo_lines.get(parse_gid(item["id"], "FulfillmentOrderLineItem") or 0)
        if fo_line is None or fo_line.fo_num != fo.num:
            return None, _user_error([*path, "id"], "Fulfillment order line item does not exist.")
        line = self._lines[fo_line.line_num]
        pending = sum(q for n, q in already if n == line.num)
        wanted = int(item["quantity"])
        if wanted <= 0 or pending + wanted > self._fo_line_remaining(line):
            message = "Invalid fulfillment order line item quantity requested."
            return None, _user_error([*path, "quantity"], message)
        return line.num, {}

    def _record_fulfillment(
        self, order: _Order, requested: Sequence[tuple[int, int]], fulfillment: Mapping[str, Any]
    ) -> _Fulfillment:
        now = self._now()
        for line_num, quantity in requested:
            self._lines[line_num].fulfilled += quantity
        record = _Fulfillment(
            num=self._next("Fulfillment"),
            order_num=order.num,
            sequence=len(order.fulfillment_nums) + 1,
            created_at=now,
            tracking=_tracking_entries(fulfillment.get("trackingInfo")),
            lines=list(requested),
            notify_customer=bool(fulfillment.get("notifyCustomer")),
        )
        self._fulfillments[record.num] = record
        order.fulfillment_nums.append(record.num)
        order.updated_at = now
        self.fulfillment_writes.append(
            {
                "fulfillment_id": make_gid("Fulfillment", record.num),
                "order_id": make_gid("Order", order.num),
                "line_items": [
                    {"line_item_id": make_gid("LineItem", n), "quantity": q} for n, q in requested
                ],
                "tracking_info": list(record.tracking),
                "notify_customer": record.notify_customer,
            }
        )
        return record

    # =========================================================================================
    # Seeding internals
    # =========================================================================================

    def _now(self) -> datetime:
        return _whole_seconds(self._wall_clock())

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def _add_variant(
        self, product: _Product, spec: Mapping[str, Any], index: int, *, single: bool, now: datetime
    ) -> _Variant:
        sku = spec.get("sku")
        if sku is not None and sku in self._variant_by_sku:
            raise ValueError(f"SKU {sku!r} already exists in the sandbox")
        variant = _Variant(
            num=self._next("ProductVariant"),
            product_num=product.num,
            item_num=self._next("InventoryItem"),
            title=spec.get("title")
            or ("Default Title" if single else sku or f"Variant {index + 1}"),
            sku=sku,
            price=Decimal(spec.get("price", Decimal("0.00"))),
            created_at=now,
        )
        self._variants[variant.num] = variant
        self._variant_by_item[variant.item_num] = variant.num
        if sku is not None:
            self._variant_by_sku[sku] = variant.num
        self._stock[variant.item_num] = int(spec.get("available", 0))
        product.variant_nums.append(variant.num)
        return variant

    def _add_media(self, spec: Mapping[str, Any], now: datetime) -> _Media:
        content_type = spec.get("media_content_type", "IMAGE")
        if content_type not in _MEDIA_KIND_BY_TYPE:
            raise ValueError(f"unknown media content type {content_type!r}")
        media = _Media(self._next("Media"), spec.get("alt"), content_type, spec["url"], now, now)
        self._media[media.num] = media
        return media

    def _product_summary(self, product: _Product) -> JSON:
        return {
            "id": make_gid("Product", product.num),
            "title": product.title,
            "variants": [
                {
                    "id": make_gid("ProductVariant", v.num),
                    "sku": v.sku,
                    "title": v.title,
                    "price": v.price,
                    "inventory_item_id": make_gid("InventoryItem", v.item_num),
                    "available": self._stock[v.item_num],
                }
                for v in (self._variants[n] for n in product.variant_nums)
            ],
            "media": [
                make_gid(_media_kind(self._media[n].content_type), n) for n in product.media_nums
            ],
        }

    def _build_line(self, order_num: int, spec: Mapping[str, Any]) -> _Line:
        variant = self._line_variant(spec)
        if "price" in spec:
            price = Decimal(spec["price"])
        elif variant is not None:
            price = variant.price
        else:
            raise ValueError(f"a line without a known variant needs a price: {dict(spec)!r}")
        quantity = int(spec.get("quantity", 1))
        product = self._products[variant.product_num] if variant else None
        variant_title = variant.title if variant and variant.title != "Default Title" else None
        return _Line(
            num=self._next("LineItem"),
            order_num=order_num,
            sku=spec.get("sku", variant.sku if variant else None),
            title=spec.get("title")
            or (product.title if product else spec.get("sku") or "Custom item"),
            variant_title=variant_title,
            quantity=quantity,
            current_quantity=int(spec.get("current_quantity", quantity)),
            unit_price=price,
            variant_num=variant.num if variant else None,
            product_num=product.num if product else None,
        )

    def _line_variant(self, spec: Mapping[str, Any]) -> _Variant | None:
        if spec.get("variant_id"):
            num = parse_gid(spec["variant_id"], "ProductVariant")
            if num not in self._variants:
                raise KeyError(f"unknown variant {spec['variant_id']!r}")
            return self._variants[num]
        num = self._variant_by_sku.get(spec.get("sku") or "")
        return None if num is None else self._variants[num]

    def _customer_for(self, customer: Mapping[str, Any], email: str | None) -> int:
        address = customer.get("email", email)
        for existing in self._customers.values():
            if address and existing.email == address:
                return existing.num
        record = _Customer(
            self._next("Customer"), customer.get("first_name"), customer.get("last_name"), address
        )
        self._customers[record.num] = record
        return record.num

    def _open_fulfillment_order(self, order: _Order) -> None:
        fo = _FulfillmentOrder(self._next("FulfillmentOrder"), order.num, order.created_at)
        for line_num in order.line_nums:
            fo_line = _FoLine(self._next("FulfillmentOrderLineItem"), fo.num, line_num)
            self._fo_lines[fo_line.num] = fo_line
            fo.line_nums.append(fo_line.num)
        self._fulfillment_orders[fo.num] = fo
        order.fo_nums.append(fo.num)

    def _remove_quantities(self, order: _Order, removed: Mapping[str, int]) -> None:
        lines = [self._lines[n] for n in order.line_nums]
        for reference, quantity in removed.items():
            line = next(
                (
                    ln
                    for ln in lines
                    if make_gid("LineItem", ln.num) == reference or ln.sku == reference
                ),
                None,
            )
            if line is None:
                raise KeyError(f"order {order.name} has no line {reference!r}")
            line.current_quantity = max(0, line.current_quantity - quantity)

    def _refunded_status(self, order: _Order) -> str:
        lines = [self._lines[n] for n in order.line_nums]
        return "REFUNDED" if all(ln.current_quantity == 0 for ln in lines) else "PARTIALLY_REFUNDED"

    def _cancel(self, order: _Order, when: datetime | None, reason: str | None) -> None:
        order.cancelled_at = _whole_seconds(when) if when else self._now()
        order.cancel_reason = reason or "CUSTOMER"
        paid = order.financial_status in {"PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED"}
        order.financial_status = "REFUNDED" if paid else "VOIDED"
        for num in order.line_nums:
            self._lines[num].current_quantity = 0

    def _check_enums(self, order: _Order) -> None:
        """Refuse seed values the schema could not serialise (a typo fails loudly, here)."""
        checks = {
            "CurrencyCode": (order.currency, order.presentment_currency),
            "OrderDisplayFinancialStatus": (order.financial_status,),
            "OrderDisplayFulfillmentStatus": (order.fulfillment_status,),
            "OrderCancelReason": (order.cancel_reason,),
        }
        for enum_name, values in checks.items():
            enum = SCHEMA.get_type(enum_name)
            allowed = set(getattr(enum, "values", {}))
            for value in values:
                if value is not None and value not in allowed:
                    raise ValueError(f"{value!r} is not a {enum_name}")

    def _require_order(self, order_id: str) -> _Order:
        order = self._orders.get(parse_gid(order_id, "Order") or 0)
        if order is None:
            raise KeyError(f"unknown order {order_id!r}")
        return order

    def _require_product(self, product_id: str) -> _Product:
        product = self._products.get(parse_gid(product_id, "Product") or 0)
        if product is None:
            raise KeyError(f"unknown product {product_id!r}")
        return product

    def _require_variant(self, variant: str) -> _Variant:
        num = parse_gid(variant, "ProductVariant")
        if num is None:
            num = self._variant_by_sku.get(variant)
        record = self._variants.get(num) if num is not None else None
        if record is None:
            raise KeyError(f"unknown variant {variant!r} (neither a variant GID nor a SKU)")
        return record

    def _require_item(self, inventory_item_id: str) -> int:
        num = parse_gid(inventory_item_id, "InventoryItem")
        if num is None or num not in self._stock:
            raise KeyError(f"unknown inventory item {inventory_item_id!r}")
        return num

    # =========================================================================================
    # REST-shaped webhook payloads (https://shopify.dev/docs/api/webhooks?reference=toml)
    # =========================================================================================

    def _rest_order(self, order: _Order) -> JSON:
        lines = [self._lines[n] for n in order.line_nums]
        current = self._current_total(order)
        customer = self._customers.get(order.customer_num or 0)
        return {
            "id": order.num,
            "admin_graphql_api_id": make_gid("Order", order.num),
            "name": order.name,
            "order_number": order.num,
            "number": order.num - FIRST_ORDER_NUMBER + 1,
            "email": order.email,
            "contact_email": order.email,
            "created_at": _rest_time(order.created_at),
            "updated_at": _rest_time(order.updated_at),
            "processed_at": _rest_time(order.created_at),
            "cancelled_at": _rest_time(order.cancelled_at),
            "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
            "closed_at": None,
            "currency": order.currency,
            "presentment_currency": order.presentment_currency,
            "financial_status": order.financial_status.lower(),
            "fulfillment_status": _REST_FULFILLMENT.get(self._fulfillment_status(order)),
            "current_total_price": _money_string(current),
            "current_total_price_set": self._rest_money_set(order, current),
            "total_price": _money_string(self._original_total(order)),
            "total_price_set": self._rest_money_set(order, self._original_total(order)),
            "test": False,
            "confirmed": True,
            "customer": _rest_customer(customer),
            "shipping_address": _rest_address(order.shipping_address),
            "billing_address": None,
            "line_items": [self._rest_line(order, line) for line in lines],
            "fulfillments": [
                self._rest_fulfillment(order, self._fulfillments[n]) for n in order.fulfillment_nums
            ],
            "refunds": [],
            "tags": "",
            "note": None,
        }

    def _rest_line(self, order: _Order, line: _Line) -> JSON:
        variant = self._variants.get(line.variant_num or 0)
        if line.remaining == 0 and line.fulfilled:
            status: str | None = "fulfilled"
        else:
            status = "partial" if line.fulfilled else None
        return {
            "id": line.num,
            "admin_graphql_api_id": make_gid("LineItem", line.num),
            "variant_id": line.variant_num,
            "product_id": line.product_num,
            "sku": line.sku,
            "title": line.title,
            "variant_title": line.variant_title,
            "name": line.title
            if not line.variant_title
            else f"{line.title} - {line.variant_title}",
            "quantity": line.quantity,
            "current_quantity": line.current_quantity,
            "fulfillable_quantity": self._fo_line_remaining(line),
            "fulfillment_status": status,
            "price": _money_string(line.unit_price),
            "price_set": self._rest_money_set(order, line.unit_price),
            "total_discount": "0.00",
            "requires_shipping": True,
            "taxable": True,
            "gift_card": False,
            "vendor": None,
            "product_exists": variant is not None,
        }

    def _rest_fulfillment(self, order: _Order, record: _Fulfillment) -> JSON:
        first = record.tracking[0] if record.tracking else {}
        return {
            "id": record.num,
            "admin_graphql_api_id": make_gid("Fulfillment", record.num),
            "order_id": order.num,
            "name": f"{order.name}-F{record.sequence}",
            "status": "success",
            "created_at": _rest_time(record.created_at),
            "tracking_company": first.get("company"),
            "tracking_number": first.get("number"),
            "tracking_numbers": [t["number"] for t in record.tracking if t.get("number")],
            "tracking_url": first.get("url"),
            "tracking_urls": [t["url"] for t in record.tracking if t.get("url")],
            "line_items": [{"id": n, "quantity": q} for n, q in record.lines],
        }

    def _rest_money_set(self, order: _Order, amount: Decimal) -> JSON:
        bag = self._money_bag(order, amount)
        return {
            "shop_money": {
                "amount": _money_string(Decimal(bag["shopMoney"]["amount"])),
                "currency_code": order.currency,
            },
            "presentment_money": {
                "amount": _money_string(Decimal(bag["presentmentMoney"]["amount"])),
                "currency_code": order.presentment_currency,
            },
        }


# ---------------------------------------------------------------------------------------------
# Module-level helpers used by the sandbox
# ---------------------------------------------------------------------------------------------

_MEDIA_KIND_BY_TYPE = {
    "IMAGE": "MediaImage",
    "EXTERNAL_VIDEO": "ExternalVideo",
    "VIDEO": "Video",
    "MODEL_3D": "Model3d",
}
_MEDIA_KINDS = frozenset(_MEDIA_KIND_BY_TYPE.values())
_REST_FULFILLMENT = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}


def _media_kind(content_type: str) -> str:
    return _MEDIA_KIND_BY_TYPE[content_type]


def _no_view(_record: Any) -> JSON:  # pragma: no cover - lookups of unknown kinds return None
    return {}


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


def _position_key(order: Sequence[int]) -> Callable[[_Media], SortKey]:
    """Media keep their attachment order; the cursor carries the position and the id."""
    positions = {num: index for index, num in enumerate(order)}
    return lambda media: (positions[media.num], media.num)


def _order_by_id(order: _Order) -> SortKey:
    return (order.num, order.num)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


_ORDER_SORTS: dict[str, Callable[[_Order], SortKey]] = {
    "UPDATED_AT": lambda o: (_epoch(o.updated_at), o.num),
    "CREATED_AT": lambda o: (_epoch(o.created_at), o.num),
    "PROCESSED_AT": lambda o: (_epoch(o.created_at), o.num),
    "ID": _order_by_id,
    "ORDER_NUMBER": _order_by_id,
}


def _order_matches(order: _Order, date_filter: DateFilter) -> bool:
    moment = order.updated_at if date_filter.field == "updated_at" else order.created_at
    return date_filter.accepts(moment)


def _graphql_request(raw: bytes) -> tuple[str, JSON, str | None] | None:
    """``(query, variables, operationName)`` from a request body; None when malformed."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    variables = body.get("variables") or {}
    operation_name = body.get("operationName")
    if not isinstance(variables, dict) or not isinstance(operation_name, str | None):
        return None
    return body["query"], variables, operation_name


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _idempotency_key(info: GraphQLResolveInfo[Any]) -> str:
    """The ``@idempotent(key:)`` on this field; a GraphQL error when it is missing."""
    assert IDEMPOTENT_DIRECTIVE is not None
    values = get_directive_values(IDEMPOTENT_DIRECTIVE, info.field_nodes[0], info.variable_values)
    if not values or not values.get("key"):
        raise GraphQLError(
            f"The @idempotent directive is required for {info.field_name} from API version "
            "2026-04.",
            extensions={"code": "BAD_REQUEST"},
        )
    return str(values["key"])


def _no_subscription(error: JSON) -> JSON:
    return {"webhookSubscription": None, "userErrors": [error]}


def _max_cost_error(requested: int) -> JSON:
    return {
        "message": (
            f"Query cost is {requested}, which exceeds the single query max cost limit "
            f"({MAX_QUERY_COST})."
        ),
        "extensions": {
            "code": "MAX_COST_EXCEEDED",
            "cost": requested,
            "maxCost": MAX_QUERY_COST,
            "documentation": RATE_LIMIT_DOCS,
        },
    }


def _throttled(requested: int, status: JSON) -> JSON:
    """HTTP 200 with a THROTTLED error, nothing executed, ``actualQueryCost`` null."""
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": status,
            }
        },
    }


def _tracking_entries(tracking: Mapping[str, Any] | None) -> list[JSON]:
    """``FulfillmentTrackingInput`` (number/numbers, url/urls) as FulfillmentTrackingInfo list."""
    if not tracking:
        return []
    numbers = list(tracking.get("numbers") or []) or [tracking.get("number")]
    urls = list(tracking.get("urls") or []) or [tracking.get("url")]
    count = max(len(numbers), len(urls))
    return [
        {
            "company": tracking.get("company"),
            "number": numbers[i] if i < len(numbers) else None,
            "url": urls[i] if i < len(urls) else None,
        }
        for i in range(count)
    ]


def _address_view(order_num: int, address: Mapping[str, Any] | None) -> JSON | None:
    if not address:
        return None
    return {
        "__typename": "MailingAddress",
        "id": make_gid("MailingAddress", order_num),
        "name": address.get("name"),
        "firstName": address.get("first_name"),
        "lastName": address.get("last_name"),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
        "country": address.get("country"),
        "countryCodeV2": address.get("country_code"),
        "phone": address.get("phone"),
    }


_REST_ADDRESS_KEYS = (
    "name",
    "first_name",
    "last_name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "province_code",
    "zip",
    "country",
    "country_code",
    "phone",
)


def _rest_address(address: Mapping[str, Any] | None) -> JSON | None:
    if not address:
        return None
    return {key: address.get(key) for key in _REST_ADDRESS_KEYS}


def _rest_customer(customer: _Customer | None) -> JSON | None:
    if customer is None:
        return None
    return {
        "id": customer.num,
        "admin_graphql_api_id": make_gid("Customer", customer.num),
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
    }
