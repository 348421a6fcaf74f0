"""Transport for Shopify's GraphQL Admin API: cost-aware rate limiting and error classification.

Shopify counts a leaky bucket of *points* per app and shop, and a query must fit its *requested*
cost into the bucket before it runs. We compute that cost ourselves from the document (so the
shared limiter can hold a call back before anything is sent), then adopt the server's own
``throttleStatus`` after every response. Errors are classified from the body first, because
Shopify reports throttling, access problems and its own failures inside an HTTP 200.

References: https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits (cost rules,
``extensions.cost``), https://shopify.dev/docs/api/usage/response-codes (status and error codes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import httpx
from graphql import parse
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

from connectors.contract import (
    AuthError,
    AuthorizationRejected,
    ConnectorConfig,
    ConnectorError,
    PermanentError,
    RateLimited,
    ShopContext,
    TransientError,
)
from connectors.http import (
    MARKETPLACE_MESSAGE_CHARS,
    MAX_RETRY_AFTER_SECONDS,
    build_client,
    decode_json,
    error_for_status,
    parse_retry_after,
    send,
)
from connectors.ratelimit import CostBucket, RateLimiter

MARKETPLACE = "shopify"
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 (a header name)
# https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
OAUTH_ACCESS_TOKEN_PATH = "/admin/oauth/access_token"  # noqa: S105 (a path)
# Standard plan figures; the server's throttleStatus replaces them after the first response.
COST_BUCKET = CostBucket(MARKETPLACE, capacity=1000, restore_per_second=100)
# Reported bucket figures at or above this are not Shopify's (plans run to a few tens of
# thousands of points): treated as absent rather than adopted.
MAX_COST_FIGURE = 10**9

_CONNECTION_COST = 2
_OBJECT_COST = 1
_MUTATION_COST = 10
_PAGE_ARGUMENTS = ("first", "last")
_LIST_ARGUMENTS = ("ids",)
_IGNORED_FIELDS = frozenset({"pageInfo", "__typename"})

_AUTH_CODES = frozenset({"ACCESS_DENIED", "SHOP_INACTIVE"})
_TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR"})
_THROTTLED = "THROTTLED"
IDEMPOTENT_DIRECTIVE = "idempotent"


# --------------------------------------------------------------------------------------------
# Requested cost, computed as Shopify does before it runs a query
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Count:
    """How many items a list field may return: a literal or a variable (a number or a list)."""

    literal: int | None = None
    variable: str | None = None

    def evaluate(self, variables: Mapping[str, Any]) -> int:
        if self.literal is not None:
            return self.literal
        value = variables.get(self.variable or "")
        if isinstance(value, bool) or value is None:
            raise ValueError(f"variable ${self.variable} is needed to compute the query cost")
        if isinstance(value, int):
            return value
        if isinstance(value, list | tuple):
            return len(value)
        raise ValueError(f"variable ${self.variable} is not a count or a list")


@dataclass(frozen=True)
class _Selection:
    fields: tuple[_Field, ...]
    alternatives: tuple[_Selection, ...]  # inline fragments: the dearest one counts

    def cost(self, variables: Mapping[str, Any]) -> int:
        own = sum(item.cost(variables) for item in self.fields)
        return own + max((choice.cost(variables) for choice in self.alternatives), default=0)


@dataclass(frozen=True)
class _Field:
    base: int  # 0 scalar, 1 object, 2 connection, 10 mutation; 0 for a list fetched by ids
    count: _Count | None  # set for connections and lists: the node cost is multiplied by it
    node: _Selection | None  # what one item (or the object itself) selects

    def cost(self, variables: Mapping[str, Any]) -> int:
        inner = self.node.cost(variables) if self.node is not None else 0
        if self.count is None:
            return self.base + inner
        return self.base + self.count.evaluate(variables) * (_OBJECT_COST + inner)


@dataclass(frozen=True)
class _CostPlan:
    operation_name: str
    root: _Selection
    resend_safe: bool  # a query, or a mutation Shopify dedupes by its @idempotent key

    def cost(self, variables: Mapping[str, Any]) -> int:
        return self.root.cost(variables)


def requested_cost(document: str, variables: Mapping[str, Any] | None = None) -> int:
    """The points Shopify reserves before running ``document``: its worst case.

    Scalars and enums cost 0, objects 1, a connection 2 plus ``first`` times the cost of one
    node, a list fetched by ids the number of ids times one node, and a mutation's root field 10
    (plus what its payload selects). ``pageInfo`` is free. Inline fragments count the dearest
    alternative, as Shopify does for interfaces and unions. The document is analysed once.
    """
    return _plan(document).cost(variables or {})


def operation_name(document: str) -> str:
    """The document's operation name, for error messages that say which call failed."""
    return _plan(document).operation_name


def resend_safe(document: str) -> bool:
    """Whether sending ``document`` twice has the effect of sending it once.

    Queries are; a mutation is only when it carries ``@idempotent(key:)``, which Shopify
    dedupes (https://shopify.dev/docs/api/usage/idempotent-requests). Without it, a timeout
    leaves us not knowing whether the write happened, so it must not be re-sent blindly.
    """
    return _plan(document).resend_safe


@lru_cache(maxsize=256)
def _plan(document: str) -> _CostPlan:
    tree = parse(document)
    fragments = {
        definition.name.value: definition
        for definition in tree.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    operation = _single_operation(tree)
    root = _compile_selection(operation.selection_set, fragments)
    if operation.operation is OperationType.MUTATION:
        root = _Selection(
            tuple(
                _Field(_MUTATION_COST, item.count, item.node) if item.count is None else item
                for item in root.fields
            ),
            root.alternatives,
        )
    name = operation.name.value if operation.name else "anonymous"
    return _CostPlan(name, root, _resend_safe(operation))


def _resend_safe(operation: OperationDefinitionNode) -> bool:
    if operation.operation is not OperationType.MUTATION:
        return True
    fields = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    return bool(fields) and all(
        any(directive.name.value == IDEMPOTENT_DIRECTIVE for directive in field.directives or ())
        for field in fields
    )


def _single_operation(tree: DocumentNode) -> OperationDefinitionNode:
    operations = [d for d in tree.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise ValueError("a Shopify document must hold exactly one operation")
    return operations[0]


def _compile_selection(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> _Selection:
    if selection_set is None:
        return _Selection((), ())
    fields: list[_Field] = []
    alternatives: list[_Selection] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value not in _IGNORED_FIELDS:
                fields.append(_compile_field(selection, fragments))
        elif isinstance(selection, InlineFragmentNode):
            alternatives.append(_compile_selection(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            definition = fragments[selection.name.value]
            alternatives.append(_compile_selection(definition.selection_set, fragments))
    return _Selection(tuple(fields), tuple(alternatives))


def _compile_field(field: FieldNode, fragments: Mapping[str, FragmentDefinitionNode]) -> _Field:
    if field.selection_set is None:
        return _Field(0, None, None)  # scalar or enum
    arguments = {argument.name.value: argument.value for argument in field.arguments or ()}
    page = next((arguments[name] for name in _PAGE_ARGUMENTS if name in arguments), None)
    if page is not None:
        return _Field(_CONNECTION_COST, _count(page), _node_selection(field, fragments))
    listed = next((arguments[name] for name in _LIST_ARGUMENTS if name in arguments), None)
    if listed is not None:
        return _Field(0, _count(listed), _compile_selection(field.selection_set, fragments))
    return _Field(_OBJECT_COST, None, _compile_selection(field.selection_set, fragments))


def _node_selection(
    field: FieldNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> _Selection:
    """One node of a connection: under ``nodes`` or ``edges { node }``, else the list itself."""
    assert field.selection_set is not None
    for selection in field.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.selection_set is None:
            continue
        if selection.name.value == "nodes":
            return _compile_selection(selection.selection_set, fragments)
        if selection.name.value == "edges":
            for inner in selection.selection_set.selections:
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    return _compile_selection(inner.selection_set, fragments)
    return _compile_selection(field.selection_set, fragments)


def _count(value: ValueNode) -> _Count:
    if isinstance(value, IntValueNode):
        return _Count(literal=int(value.value))
    if isinstance(value, ListValueNode):
        return _Count(literal=len(value.values))
    if isinstance(value, VariableNode):
        return _Count(variable=value.name.value)
    raise ValueError("a page size or id list must be an integer, a list or a variable")


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class ShopifyGraphQLClient:
    """Sends one GraphQL document for one shop and returns its ``data``, or raises its error.

    One httpx client per base URL (a shop's domain, or a sandbox shared by many shops), created
    lazily under a lock so worker threads share connections. The access token travels per
    request and is never stored, logged or shown in a repr.
    """

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        api_version: str,
        rate_limiter: RateLimiter,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = config
        self._path = f"/admin/api/{api_version}/graphql.json"
        self._limiter = rate_limiter
        self._sleep = sleep
        self._transport = transport
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ShopifyGraphQLClient(path={self._path!r}, clients={len(self._clients)})"

    def execute(
        self, shop: ShopContext, document: str, variables: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Reserve the requested cost, send, feed the bucket back, classify, return ``data``.

        Quick transient retries apply only to documents that are safe to send twice; any other
        write is sent once and a transient failure is left to the caller, who reads the remote
        state before trying again.
        """
        token = _access_token(shop)
        variables = dict(variables or {})
        cost = requested_cost(document, variables)
        self._limiter.acquire(COST_BUCKET, account=shop.external_id, cost=cost)
        reader = _ResponseReader(self._limiter, shop, operation_name(document), cost)
        client = self._client_for(_base_url(shop))
        request: dict[str, Any] = {
            "json": {"query": document, "variables": variables},
            "headers": {ACCESS_TOKEN_HEADER: token},
        }
        try:
            send(
                client,
                "POST",
                self._path,
                marketplace=MARKETPLACE,
                classify_body=reader.classify,
                sleep=self._sleep,
                retry_transient=resend_safe(document),
                **request,
            )
        finally:
            if not reader.fed_back:
                # No cost report (a 401, a 5xx, a timeout): Shopify charged nothing we know of,
                # so give the reservation back instead of starving the next call.
                self._limiter.refund(COST_BUCKET, shop.external_id, cost)
        return reader.data()

    def exchange_authorization_code(
        self, base_url: str, *, client_id: str, client_secret: str, code: str
    ) -> dict[str, Any]:
        """``POST {base_url}/admin/oauth/access_token`` -> ``{"access_token", "scope", ...}``.

        Sent once: a code is single-use, so a blind retry after a lost answer could only be
        refused. A 400 (a used, expired or unknown code, or wrong client credentials) is an
        ``AuthorizationRejected``; other failures keep their usual classes.
        """
        client = self._client_for(base_url.rstrip("/"))
        response = send(
            client,
            "POST",
            OAUTH_ACCESS_TOKEN_PATH,
            marketplace=MARKETPLACE,
            classify_body=_refused_code,
            sleep=self._sleep,
            retry_transient=False,
            json={"client_id": client_id, "client_secret": client_secret, "code": code},
        )
        try:
            body = decode_json(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise PermanentError(
                "shopify: the access token response carries no access_token",
                marketplace=MARKETPLACE,
                marketplace_message=response.text[:MARKETPLACE_MESSAGE_CHARS],
            )
        return body

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client_for(self, base_url: str) -> httpx.Client:
        with self._lock:
            client = self._clients.get(base_url)
            if client is None:
                client = build_client(
                    self._config,
                    base_url=base_url,
                    headers={"Accept": "application/json"},
                    transport=self._transport,
                )
                self._clients[base_url] = client
            return client


def _refused_code(response: httpx.Response) -> ConnectorError | None:
    """The token endpoint's 400 ``{"error", "error_description"}``: the callback's code cannot
    become a token (used, expired, unknown, or the app's credentials are wrong)."""
    if response.status_code != 400:
        return None
    try:
        body = decode_json(response.content)
    except ValueError:
        body = None
    detail = response.text[:MARKETPLACE_MESSAGE_CHARS]
    if isinstance(body, dict):
        parts = [str(body.get(key)) for key in ("error", "error_description") if body.get(key)]
        detail = ": ".join(parts) or detail
    return AuthorizationRejected(
        f"shopify: the authorization code was refused ({detail}); start the installation again",
        marketplace=MARKETPLACE,
        status=response.status_code,
    )


def _access_token(shop: ShopContext) -> str:
    token = shop.credentials.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError(
            f"shopify shop {shop.external_id} (id {shop.shop_id}): no access token stored; "
            "connect the shop again",
            marketplace=MARKETPLACE,
        )
    return token


def _base_url(shop: ShopContext) -> str:
    if shop.api_base_url:
        return shop.api_base_url.rstrip("/")
    return f"https://{shop.external_id}"


class _ResponseReader:
    """Reads one call's responses: adopts ``throttleStatus``, classifies, keeps the body.

    ``connectors.http.send`` calls ``classify`` for every attempt, so the body is parsed once
    per response and the last successful one is kept for ``data()``.
    """

    def __init__(
        self, limiter: RateLimiter, shop: ShopContext, operation: str, requested: int
    ) -> None:
        self._limiter = limiter
        self._shop = shop
        self._operation = operation
        self._requested = requested
        self._body: Any = None
        self.fed_back = False

    def classify(self, response: httpx.Response) -> ConnectorError | None:
        try:
            self._body = decode_json(response.content)
        except ValueError:
            self._body = None
            return None  # not GraphQL (an HTML 502, say): the status table decides
        if not isinstance(self._body, dict):
            return None
        self._feed_back(self._body)
        errors = self._body.get("errors")
        if isinstance(errors, list) and errors:
            return self._graphql_error(response, errors)
        return None

    def data(self) -> dict[str, Any]:
        body = self._body
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise PermanentError(
                f"{self._what()}: the response carries no GraphQL data",
                marketplace=MARKETPLACE,
                marketplace_message=str(body)[:MARKETPLACE_MESSAGE_CHARS],
            )
        return data

    def _feed_back(self, body: Mapping[str, Any]) -> None:
        status = _throttle_status(body)
        if status is None:
            return
        available, maximum, restore = status
        self.fed_back = True
        self._limiter.feedback(
            COST_BUCKET,
            self._shop.external_id,
            available=available,
            capacity=maximum,
            restore_per_second=restore,
        )

    def _graphql_error(self, response: httpx.Response, errors: list[Any]) -> ConnectorError | None:
        codes = {_error_code(error) for error in errors}
        message = _error_messages(errors)
        status = response.status_code
        if _THROTTLED in codes:
            return RateLimited(
                f"{self._what()}: throttled by Shopify; retry later",
                retry_after=self._throttle_wait(response),
                marketplace=MARKETPLACE,
                status=status,
            )
        if codes & _AUTH_CODES:
            return AuthError(
                f"{self._what()}: {message}; reconnect the shop or grant the missing scope",
                marketplace=MARKETPLACE,
                status=status,
            )
        if codes & _TRANSIENT_CODES:
            return TransientError(
                f"{self._what()}: Shopify failed internally: {message}",
                marketplace=MARKETPLACE,
                status=status,
            )
        if status >= 400:
            return error_for_status(response, marketplace=MARKETPLACE, message=message)
        return PermanentError(
            f"{self._what()}: {message}",
            marketplace_message=message,
            marketplace=MARKETPLACE,
            status=status,
        )

    def _throttle_wait(self, response: httpx.Response) -> float:
        """Until the bucket holds the requested cost again: (requested - available) / rate."""
        body = self._body if isinstance(self._body, dict) else {}
        reported = _cost_number(_cost_field(body, "requestedQueryCost"))
        requested = reported or float(self._requested)
        status = _throttle_status(body)
        available, maximum, restore = status or (0.0, requested, COST_BUCKET.restore_per_second)
        # Never wait for more than the whole bucket holds: that much refills in capacity/rate.
        wait = max((min(requested, maximum) - available) / restore, 1.0 / restore)
        header = parse_retry_after(response.headers.get("retry-after"))
        return min(max(wait, header or 0.0), MAX_RETRY_AFTER_SECONDS)

    def _what(self) -> str:
        return f"shopify shop {self._shop.external_id}: {self._operation}"


def _throttle_status(body: Any) -> tuple[float, float, float] | None:
    """``(currentlyAvailable, maximumAvailable, restoreRate)`` when all three are plausible.

    ``extensions`` is whatever JSON the answer (or a proxy in front of it) carries, so a
    status that is not three finite numbers with ``0 <= available <= maximum`` and positive
    rates counts as absent: adopting it would poison the shared bucket (a zero rate divides
    by zero, a negative capacity never lets a call through).
    """
    status = _cost_field(body, "throttleStatus")
    if not isinstance(status, Mapping):
        return None
    available = _cost_number(status.get("currentlyAvailable"), allow_zero=True)
    maximum = _cost_number(status.get("maximumAvailable"))
    restore = _cost_number(status.get("restoreRate"))
    if available is None or maximum is None or restore is None or available > maximum:
        return None
    return available, maximum, restore


def _cost_field(body: Any, name: str) -> Any:
    """``extensions.cost[name]``, or None where any level is not a JSON object."""
    extensions = body.get("extensions") if isinstance(body, Mapping) else None
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    return cost.get(name) if isinstance(cost, Mapping) else None


def _cost_number(value: Any, *, allow_zero: bool = False) -> float | None:
    """A reported cost figure as a float, or None unless it is a finite JSON number (not a
    boolean, not a string) that is positive, or zero when ``allow_zero``, and below
    ``MAX_COST_FIGURE``."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None  # a Decimal NaN would raise on comparison
    if not 0 <= value < MAX_COST_FIGURE:  # a float NaN fails this; huge ints never reach float()
        return None
    number = float(value)
    return number if number > 0 or (allow_zero and number == 0) else None


def _error_code(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return code if isinstance(code, str) else None


def _error_messages(errors: list[Any]) -> str:
    messages = [
        str(error.get("message", "")) if isinstance(error, Mapping) else str(error)
        for error in errors
    ]
    return "; ".join(message for message in messages if message)[:MARKETPLACE_MESSAGE_CHARS]
