"""Hypothesis strategies for marketplace payloads: arbitrary JSON as ``decode_json`` gives it,
mutations of recorded payloads, raw webhook bodies and header maps.

Values are what a connector can really be handed: ``connectors.http.decode_json`` turns every
JSON number with a fraction or an exponent into a ``Decimal`` (any exponent, ``1e999999999``
included), integers stay ``int`` (at most 4300 digits: Python refuses longer ones), and the
bare constants ``NaN``/``Infinity`` become floats. Finite floats are drawn too: a mapper must
refuse them as money, not crash on them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

PAYLOADS = Path(__file__).resolve().parent.parent / "contract" / "payloads"

# Numbers at the edges: int64, JavaScript's safe integers, epoch seconds past year 9999, and
# a few huge ones (a timestamp or id that no datetime or database column can hold).
EDGE_INTEGERS = (
    0,
    1,
    -1,
    2**31 - 1,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**64,
    253402300800,  # 10000-01-01T00:00:00Z
    -62135596801,  # before 0001-01-01
    10**18,
    10**100,
    -(10**300),
)
EDGE_DECIMALS = tuple(
    Decimal(text)
    for text in (
        "0",
        "-0",
        "0.00",
        "1.5",
        "-19.99",
        "12.0",
        "1e3",
        "1E+30",
        "1e999999999",
        "-1e999999999",
        "1e-999999999",
        "123456789012345678901234567890.123456789",
        "0.000000000000000000000000000001",
    )
)
# Strings that a careless ``Decimal(...)``, ``int(...)`` or ``fromisoformat`` would choke on,
# or accept when it should not.
TRICKY_STRINGS = (
    "",
    " ",
    "NaN",
    "nan",
    "sNaN",
    "-NaN",
    "Infinity",
    "-inf",
    "1e999999999",
    "-1E-999999999",
    "1_000",
    "0x10",
    "12,50",
    " 12.50 ",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() takes it
    "\u00b2",  # SUPERSCRIPT TWO: isdigit() is true, int() refuses it
    "\x00",
    "0001-01-01T00:00:00+01:00",  # before the minimum once moved to UTC
    "9999-12-31T23:59:59-01:00",  # after the maximum once moved to UTC
    "2026-03-02T10:00:00",
    "2026-03-02T10:00:00Z",
    "2026-02-30T10:00:00",
    "gid://shopify/Order/1",
    "[",
    "http://[",
)

json_integers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(EDGE_INTEGERS)
)
json_decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from(EDGE_DECIMALS),
)
json_strings = st.one_of(st.text(max_size=30), st.sampled_from(TRICKY_STRINGS))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    json_integers,
    json_decimals,
    json_strings,
    st.floats(allow_nan=True, allow_infinity=True),
)


def json_values(keys: Sequence[str] = (), *, max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Arbitrary decoded JSON; object keys are often one of ``keys`` (the fields a mapper
    reads), so generated objects reach past the first missing-field check."""
    key = st.one_of(st.sampled_from(tuple(keys)), st.text(max_size=8)) if keys else st.text()
    return st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(key, children, max_size=6),
        ),
        max_leaves=max_leaves,
    )


def json_objects(keys: Sequence[str] = (), *, max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Arbitrary JSON objects (a mapper's usual argument type, with anything inside)."""
    key = st.one_of(st.sampled_from(tuple(keys)), st.text(max_size=8)) if keys else st.text()
    return st.dictionaries(key, json_values(keys, max_leaves=max_leaves), max_size=8)


def deeply_nested(depth: int, leaf: Any = 1) -> Any:
    """A list or object nested ``depth`` times: deeper than any mapper looks, shallower than
    the JSON decoder's own recursion limit (about 1000)."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def load_payload(marketplace: str, name: str) -> Any:
    """A recorded payload as ``decode_json`` reads it (fractions as ``Decimal``)."""
    return json.loads((PAYLOADS / marketplace / f"{name}.json").read_bytes(), parse_float=Decimal)


def raw_payload(marketplace: str, name: str) -> bytes:
    return (PAYLOADS / marketplace / f"{name}.json").read_bytes()


# --------------------------------------------------------------------------------------------
# Mutations of a documented payload
# --------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _paths(document: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path to a value inside ``document`` (the root excluded), depth first."""
    found: list[Path_] = []
    if isinstance(document, dict):
        items: list[tuple[str | int, Any]] = list(document.items())
    elif isinstance(document, list):
        items = list(enumerate(document))
    else:
        return found
    for key, value in items:
        path = (*prefix, key)
        found.append(path)
        found.extend(_paths(value, path))
    return found


def _parent(document: Any, path: Path_) -> Any:
    node = document
    for key in path[:-1]:
        node = node[key]
    return node


def _depth(document: Any) -> int:
    """How deeply lists and objects nest in ``document`` (without recursing)."""
    deepest, stack = 0, [(document, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return deepest


# A mutation nests a value at most this deep, and only inside a document that is still shallow:
# deep enough that no mapper could walk it by accident, shallow enough that the decoder (and
# ``copy.deepcopy`` in the tests) stays below Python's recursion limit.
MAX_NESTING = 150


EDGE_VALUES: tuple[Any, ...] = (
    None,
    True,
    [],
    {},
    *EDGE_INTEGERS,
    *EDGE_DECIMALS,
    *TRICKY_STRINGS,
    float("nan"),
    1.5,
)


def _negated(value: Any) -> Any:
    """A number's negation (a Decimal without its context: ``1E+999999999`` overflows it)."""
    if isinstance(value, Decimal):
        return value.copy_negate()
    return -value if isinstance(value, int) and not isinstance(value, bool) else value


def _replacements(*, deep: bool) -> st.SearchStrategy[Callable[[Any], Any]]:
    """What a mutation does to the value at a path (the value is passed in); edge values
    (the ones that break parsers) are drawn most often."""
    edge = st.sampled_from(EDGE_VALUES).map(lambda new: lambda _old: copy.deepcopy(new))
    nest: st.SearchStrategy[Callable[[Any], Any]] = (
        st.integers(min_value=1, max_value=MAX_NESTING).map(
            lambda depth: lambda old: deeply_nested(depth, old)
        )
        if deep
        else st.just(lambda old: [old])
    )
    return st.one_of(
        edge,
        edge,
        edge,
        json_scalars.map(lambda new: lambda _old: new),
        json_values(max_leaves=6).map(lambda new: lambda _old: new),
        nest,
        st.just(lambda old: [old]),  # a scalar where the schema says object, or vice versa
        st.just(lambda old: {"value": old}),
        st.just(lambda old: str(old)),
        st.just(_negated),
    )


@st.composite
def mutated(draw: st.DrawFn, seed: Any, keys: Sequence[str] = (), *, max_mutations: int = 4) -> Any:
    """``seed`` after 1 to ``max_mutations`` edits, each at a path inside it, most often at
    one of ``keys`` (the fields the code under test reads): a key dropped, a list item
    duplicated (the same line id twice), or a value replaced (``None``, another type, a huge
    number, a NaN-ish string, the value nested a hundred deep)."""
    document = copy.deepcopy(seed)
    wanted = frozenset(keys)
    count = draw(st.sampled_from([1, 1, 1, 2, 2, 3, max_mutations]))
    for _ in range(count):
        paths = _paths(document)
        if not paths:
            return draw(json_values(keys))
        focused = [
            path
            for path in paths
            if path[-1] in wanted
            or (len(path) > 1 and isinstance(path[-1], int) and path[-2] in wanted)
        ]
        prefer_focused = bool(focused) and draw(st.booleans())
        path = draw(st.sampled_from(focused if prefer_focused else paths))
        parent, key = _parent(document, path), path[-1]
        action = draw(st.sampled_from(("replace", "replace", "replace", "drop", "duplicate")))
        if action == "drop":
            del parent[key]
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(parent[int(key)]))
        else:
            shallow = _depth(document) < MAX_NESTING // 3
            parent[key] = draw(_replacements(deep=shallow))(parent[key])
    return document


def variants_of(seeds: Sequence[Any], keys: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    """Mutations of one of ``seeds`` (see ``mutated``)."""
    return st.sampled_from(tuple(seeds)).flatmap(lambda seed: mutated(seed, keys))


def payloads(seeds: Sequence[Any], keys: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    """Mostly mutations of documented payloads, sometimes arbitrary JSON, sometimes a seed
    as is (so the happy path stays exercised)."""
    return st.one_of(
        variants_of(seeds, keys),
        variants_of(seeds, keys),
        variants_of(seeds, keys),
        json_objects(keys),
        json_values(keys),
        st.sampled_from(tuple(seeds)),
    )


# --------------------------------------------------------------------------------------------
# Webhook deliveries
# --------------------------------------------------------------------------------------------


def json_bytes(document: Any) -> bytes:
    """``document`` as a JSON body. A ``Decimal`` is written as ``str`` gives it, a valid
    JSON number that keeps its exponent (``1E+999999999`` stays short, where the fixed-point
    digits would take a gigabyte); NaN and infinities as Python's ``json`` spells them."""
    return "".join(_json_tokens(document)).encode("utf-8", "surrogatepass")


def _json_tokens(value: Any) -> Iterator[str]:
    if isinstance(value, Decimal):
        yield str(value)
    elif isinstance(value, dict):
        yield "{"
        for position, (key, item) in enumerate(value.items()):
            yield ("," if position else "") + json.dumps(str(key)) + ":"
            yield from _json_tokens(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for position, item in enumerate(value):
            yield "," if position else ""
            yield from _json_tokens(item)
        yield "]"
    else:
        yield json.dumps(value)


def bodies(
    seeds: Sequence[bytes] = (), *, past_decoder_limit: bool = True
) -> st.SearchStrategy[bytes]:
    """Raw bodies: bytes, text, JSON of any shape, mutated recorded bodies, deeply nested JSON
    (past the decoder's recursion limit of about 1000 unless ``past_decoder_limit`` is false),
    invalid UTF-8, and activation-ping-like form bodies."""
    documents = [json.loads(seed, parse_float=Decimal) for seed in seeds]
    deepest = 3000 if past_decoder_limit else 500
    strategies: list[st.SearchStrategy[bytes]] = [
        st.binary(max_size=64),
        st.text(max_size=40).map(str.encode),
        json_values().map(json_bytes),
        st.integers(min_value=1, max_value=deepest).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=deepest // 3, max_value=deepest).map(
            lambda n: b'{"a":' * n + b"1" + b"}" * n
        ),
        st.just(b"\xff\xfe{}"),
        st.from_regex(rb"\A\s*webhook_id=[0-9]{0,12}\s*\Z"),
    ]
    if documents:
        strategies.append(st.sampled_from(tuple(seeds)))
        strategies.append(variants_of(documents).map(json_bytes))
    return st.one_of(strategies)


# Header values as an ASGI server hands them over (latin-1 decoded), and as anything else.
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=40),
    st.text(max_size=40),
    st.sampled_from(TRICKY_STRINGS),
    json_integers.map(str),
)


def headers(names: Sequence[str]) -> st.SearchStrategy[dict[str, str]]:
    """Header maps: the marketplace's own names (in any case) and others, any values."""
    name = st.one_of(
        st.sampled_from(tuple(names)),
        st.sampled_from(tuple(names)).map(str.upper),
        st.text(min_size=1, max_size=12),
    )
    return st.dictionaries(name, header_values, max_size=len(names) + 2)
