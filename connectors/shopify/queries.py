"""Every GraphQL document the Shopify connector sends, in one place.

The sandbox serves a schema that must accept each of these unchanged (a test validates them all),
and page sizes are chosen so each query's *requested* cost stays within Shopify's 1,000-point
maximum: connection = 2 + first x node cost, object = 1, scalar = 0, mutation = 10.
Reference: https://shopify.dev/docs/api/usage/limits (cost calculation).
"""

from __future__ import annotations

# Line items fetched with the order; an order with more pages of lines is completed with
# ORDER_LINE_ITEMS. 10 lines keep a 14-order page at 954 points (see ORDERS_PAGE_SIZE).
ORDER_LINES_PER_PAGE = 10
ORDERS_PAGE_SIZE = 14
LINE_ITEMS_PAGE_SIZE = 100
VARIANTS_PAGE_SIZE = 100
MEDIA_PAGE_SIZE = 100
FULFILLMENT_ORDERS_PAGE_SIZE = 10
FULFILLMENT_ORDER_LINES_PAGE_SIZE = 20
INVENTORY_BATCH_SIZE = 250
# productVariantsBulkUpdate takes one product's variants; like every input array, at most 250
# (https://shopify.dev/docs/api/usage/limits: "Input arguments that accept an array have a
# maximum size of 250").
PRICE_BATCH_SIZE = 250
WEBHOOKS_PAGE_SIZE = 100
LOCATIONS_PAGE_SIZE = 50
MAX_QUERY_COST = 1000

MONEY_BAG = """{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"""

LINE_ITEM_FIELDS = f"""
  id
  sku
  name
  quantity
  currentQuantity
  variant {{ id }}
  product {{ id }}
  originalUnitPriceSet {MONEY_BAG}
"""

ORDER_FIELDS = f"""
  id
  name
  email
  createdAt
  updatedAt
  cancelledAt
  displayFinancialStatus
  displayFulfillmentStatus
  currencyCode
  presentmentCurrencyCode
  currentTotalPriceSet {MONEY_BAG}
  customer {{ id displayName }}
  shippingAddress {{ name address1 address2 city province zip countryCodeV2 phone }}
  lineItems(first: {ORDER_LINES_PER_PAGE}) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {LINE_ITEM_FIELDS} }}
  }}
"""

# Orders changed since a time, oldest change first, so the cursor can advance per page.
ORDERS_UPDATED_SINCE = f"""
query OrdersUpdatedSince($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {ORDER_FIELDS} }}
  }}
}}
"""

ORDER_BY_ID = f"""
query OrderById($id: ID!) {{
  order(id: $id) {{ {ORDER_FIELDS} }}
}}
"""

ORDER_LINE_ITEMS = f"""
query OrderLineItems($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    lineItems(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {LINE_ITEM_FIELDS} }}
    }}
  }}
}}
"""

PRODUCT_VARIANTS = """
query ProductVariants($first: Int!, $after: String) {
  productVariants(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      sku
      title
      price
      product { id title }
      inventoryItem { id }
    }
  }
}
"""

# Absolute quantities with compare-and-swap; the idempotency key is mandatory from 2026-04.
INVENTORY_SET_QUANTITIES = """
mutation InventorySet($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

# Absolute prices for variants of one product, all or nothing (allowPartialUpdates defaults to
# false). ``price`` is a ``Money`` decimal string in the shop's currency.
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/productVariantsBulkUpdate
PRODUCT_VARIANTS_BULK_UPDATE = """
mutation SetVariantPrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id price }
    userErrors { field message code }
  }
}
"""

INVENTORY_LEVELS = """
query InventoryLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) {
        quantities(names: ["available"]) { name quantity }
      }
    }
  }
}
"""

PRODUCT_MEDIA = f"""
query ProductMedia($id: ID!) {{
  product(id: $id) {{
    id
    media(first: {MEDIA_PAGE_SIZE}) {{
      nodes {{ id alt mediaContentType }}
    }}
  }}
}}
"""

# Detach media from the product (the file stays in the store's Files until cleaned up).
FILE_UPDATE = """
mutation DetachMedia($files: [FileUpdateInput!]!) {
  fileUpdate(files: $files) {
    files { id }
    userErrors { field message code }
  }
}
"""

PRODUCT_ADD_MEDIA = """
mutation AddProductMedia($product: ProductUpdateInput!, $media: [CreateMediaInput!]) {
  productUpdate(product: $product, media: $media) {
    product {
      id
      media(first: 20) { nodes { id alt mediaContentType } }
    }
    userErrors { field message }
  }
}
"""

ORDER_FULFILLMENT_STATE = f"""
query OrderFulfillmentState($id: ID!) {{
  order(id: $id) {{
    id
    fulfillments(first: 50) {{
      id
      status
      trackingInfo {{ company number url }}
    }}
    fulfillmentOrders(first: {FULFILLMENT_ORDERS_PAGE_SIZE}) {{
      nodes {{
        id
        status
        lineItems(first: {FULFILLMENT_ORDER_LINES_PAGE_SIZE}) {{
          nodes {{ id remainingQuantity lineItem {{ id }} }}
        }}
      }}
    }}
  }}
}}
"""

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}
"""

# -- onboarding: the shop's identity, and the webhook subscriptions that keep it live ----------

# The shop and its locations, read with a fresh token to complete an installation
# (https://shopify.dev/docs/api/admin-graphql/latest/queries/shop,
# https://shopify.dev/docs/api/admin-graphql/latest/queries/locations: active ones by default).
SHOP_IDENTITY = f"""
query ShopIdentity {{
  shop {{ id name myshopifyDomain currencyCode }}
  locations(first: {LOCATIONS_PAGE_SIZE}) {{ nodes {{ id name isActive }} }}
}}
"""

# ``uri`` is the address field since the webhook surfaces were consolidated (``callbackUrl`` is
# deprecated): https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces
WEBHOOK_SUBSCRIPTION_FIELDS = "id topic uri"

WEBHOOK_SUBSCRIPTIONS = f"""
query WebhookSubscriptions($after: String) {{
  webhookSubscriptions(first: {WEBHOOKS_PAGE_SIZE}, after: $after) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {WEBHOOK_SUBSCRIPTION_FIELDS} }}
  }}
}}
"""

WEBHOOK_SUBSCRIPTION = f"""
query WebhookSubscription($id: ID!) {{
  webhookSubscription(id: $id) {{ {WEBHOOK_SUBSCRIPTION_FIELDS} }}
}}
"""

# https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionCreate
WEBHOOK_SUBSCRIPTION_CREATE = f"""
mutation WebhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!
) {{
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {{
    webhookSubscription {{ {WEBHOOK_SUBSCRIPTION_FIELDS} }}
    userErrors {{ field message }}
  }}
}}
"""

ALL_DOCUMENTS: dict[str, str] = {
    "OrdersUpdatedSince": ORDERS_UPDATED_SINCE,
    "OrderById": ORDER_BY_ID,
    "OrderLineItems": ORDER_LINE_ITEMS,
    "ProductVariants": PRODUCT_VARIANTS,
    "InventorySet": INVENTORY_SET_QUANTITIES,
    "InventoryLevels": INVENTORY_LEVELS,
    "SetVariantPrices": PRODUCT_VARIANTS_BULK_UPDATE,
    "ProductMedia": PRODUCT_MEDIA,
    "DetachMedia": FILE_UPDATE,
    "AddProductMedia": PRODUCT_ADD_MEDIA,
    "OrderFulfillmentState": ORDER_FULFILLMENT_STATE,
    "FulfillmentCreate": FULFILLMENT_CREATE,
    "ShopIdentity": SHOP_IDENTITY,
    "WebhookSubscriptions": WEBHOOK_SUBSCRIPTIONS,
    "WebhookSubscription": WEBHOOK_SUBSCRIPTION,
    "WebhookSubscriptionCreate": WEBHOOK_SUBSCRIPTION_CREATE,
}
