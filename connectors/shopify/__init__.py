"""The Shopify connector (GraphQL Admin API) and its sandbox."""
