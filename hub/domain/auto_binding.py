"""Catalog binding: match a shop's remote listings to our variants by SKU, never by guessing.

A remote variant is bound only when its SKU names exactly one remote variant and exactly one of
our variants. Everything else is reported for an operator: SKUs we do not have, remote variants
without a SKU, and conflicts (one SKU on several remote variants, several of our variants with one
SKU, or a remote variant that another of our variants is still bound to). SKUs compare exactly:
no trimming or case folding, since "TEE-M" and "tee-m " may well be different products.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RemoteIds = tuple[str | None, str | None, str | None]  # (listing, variant, inventory item)

SEVERAL_REMOTE_VARIANTS = "sku_on_several_remote_variants"
SEVERAL_OF_OUR_VARIANTS = "sku_on_several_of_our_variants"
SEVERAL_REMOTE_AND_OURS = "sku_on_several_remote_variants_and_several_of_ours"
REMOTE_BOUND_TO_ANOTHER_VARIANT = "remote_variant_bound_to_another_of_our_variants"


@dataclass(frozen=True)
class RemoteVariant:
    """One sellable item of a listing on the marketplace, as its listing call reports it."""

    listing_id: str
    variant_id: str | None
    inventory_item_id: str | None
    sku: str | None
    title: str

    @property
    def ids(self) -> RemoteIds:
        return (self.listing_id, self.variant_id, self.inventory_item_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "listing_id": self.listing_id,
            "remote_variant_id": self.variant_id,
            "inventory_item_id": self.inventory_item_id,
            "title": self.title,
        }


@dataclass(frozen=True)
class Proposal:
    """Bind (or re-bind) one of our variants to one remote variant; ``previous`` is what the
    binding pointed at before, None for a new binding."""

    sku: str
    variant_id: int
    remote: RemoteVariant
    previous: RemoteIds | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "variant_id": self.variant_id,
            "listing_id": self.remote.listing_id,
            "remote_variant_id": self.remote.variant_id,
            "inventory_item_id": self.remote.inventory_item_id,
            "title": self.remote.title,
            "previous": _ids_dict(self.previous) if self.previous is not None else None,
        }


@dataclass(frozen=True)
class Conflict:
    """A SKU that cannot be bound without guessing: ``reason`` says why."""

    sku: str
    reason: str
    remote: tuple[RemoteVariant, ...]
    our_variant_ids: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "reason": self.reason,
            "remote": [variant.as_dict() for variant in self.remote],
            "our_variant_ids": list(self.our_variant_ids),
        }


@dataclass(frozen=True)
class BindingReport:
    bound: tuple[Proposal, ...]  # new bindings and bindings whose remote ids changed
    already_bound: int  # our variants already bound to exactly the matched remote ids
    unknown_skus: tuple[RemoteVariant, ...]  # remote SKUs none of our variants has
    missing_sku: tuple[RemoteVariant, ...]  # remote variants without a SKU
    conflicts: tuple[Conflict, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, in a stable order (the lists are sorted by SKU, then remote ids)."""
        return {
            "bound": [proposal.as_dict() for proposal in self.bound],
            "already_bound": self.already_bound,
            "unknown_skus": [variant.as_dict() for variant in self.unknown_skus],
            "missing_sku": [variant.as_dict() for variant in self.missing_sku],
            "conflicts": [conflict.as_dict() for conflict in self.conflicts],
        }


def match_by_sku(
    remote: Sequence[RemoteVariant],
    ours: Mapping[str, list[int]],
    existing: Mapping[int, RemoteIds],
) -> BindingReport:
    """Match remote variants to ours (SKU -> our variant ids) given the shop's current
    bindings (our variant id -> its remote ids)."""
    by_sku: dict[str, list[RemoteVariant]] = defaultdict(list)
    missing: list[RemoteVariant] = []
    seen: set[tuple[str | None, ...]] = set()
    for variant in remote:
        identity = (*variant.ids, variant.sku)
        if identity in seen:
            continue  # the same remote variant listed twice (a page boundary shifted)
        seen.add(identity)
        if variant.sku is None or not variant.sku.strip():
            missing.append(variant)
        else:
            by_sku[variant.sku].append(variant)

    unknown: list[RemoteVariant] = []
    conflicts: list[Conflict] = []
    matched: dict[int, Proposal] = {}
    for sku, candidates in by_sku.items():
        mine = tuple(sorted(set(ours.get(sku, ()))))
        if not mine:
            unknown.extend(candidates)
            continue
        reason = _ambiguity(len(candidates), len(mine))
        if reason is not None:
            conflicts.append(Conflict(sku, reason, _sorted(candidates), mine))
            continue
        (variant_id,), (found,) = mine, candidates
        matched[variant_id] = Proposal(sku, variant_id, found, existing.get(variant_id))

    proposals, taken = _drop_taken_remotes(matched, existing)
    conflicts.extend(taken)
    changed = [p for p in proposals.values() if p.previous != p.remote.ids]
    return BindingReport(
        bound=tuple(sorted(changed, key=lambda p: (p.sku, p.variant_id))),
        already_bound=len(proposals) - len(changed),
        unknown_skus=_sorted(unknown),
        missing_sku=_sorted(missing),
        conflicts=tuple(sorted(conflicts, key=lambda c: (c.sku, c.reason, c.our_variant_ids))),
    )


def _ambiguity(remote_count: int, our_count: int) -> str | None:
    if remote_count > 1 and our_count > 1:
        return SEVERAL_REMOTE_AND_OURS
    if remote_count > 1:
        return SEVERAL_REMOTE_VARIANTS
    if our_count > 1:
        return SEVERAL_OF_OUR_VARIANTS
    return None


def _drop_taken_remotes(
    matched: Mapping[int, Proposal], existing: Mapping[int, RemoteIds]
) -> tuple[dict[int, Proposal], list[Conflict]]:
    """Refuse a change whose remote variant another of our variants would still be bound to
    once the run is applied (two bindings on one remote variant make order lines ambiguous).
    Swaps within one run are fine; refusing one change keeps its variant where it was, which
    may block another, so repeat until nothing changes. Unchanged bindings are left alone."""
    proposals = dict(matched)
    conflicts: list[Conflict] = []
    while True:
        final = {**existing, **{v: p.remote.ids for v, p in proposals.items()}}
        holders: dict[tuple[str | None, str | None], set[int]] = defaultdict(set)
        for variant_id, ids in final.items():
            if any(part is not None for part in ids):
                holders[_remote_key(ids)].add(variant_id)
        blocked = [
            proposal
            for proposal in proposals.values()
            if proposal.previous != proposal.remote.ids
            and holders[_remote_key(proposal.remote.ids)] - {proposal.variant_id}
        ]
        if not blocked:
            return proposals, conflicts
        for proposal in blocked:
            others = holders[_remote_key(proposal.remote.ids)] - {proposal.variant_id}
            del proposals[proposal.variant_id]
            conflicts.append(
                Conflict(
                    proposal.sku,
                    REMOTE_BOUND_TO_ANOTHER_VARIANT,
                    (proposal.remote,),
                    tuple(sorted({proposal.variant_id, *others})),
                )
            )


def _remote_key(ids: RemoteIds) -> tuple[str | None, str | None]:
    """A remote variant is its (listing, variant) pair; inventory items follow the variant."""
    return (ids[0], ids[1])


def _sorted(variants: Sequence[RemoteVariant]) -> tuple[RemoteVariant, ...]:
    return tuple(
        sorted(
            variants,
            key=lambda v: (
                v.sku or "",
                v.listing_id,
                v.variant_id or "",
                v.inventory_item_id or "",
            ),
        )
    )


def _ids_dict(ids: RemoteIds) -> dict[str, str | None]:
    listing_id, variant_id, inventory_item_id = ids
    return {
        "listing_id": listing_id,
        "remote_variant_id": variant_id,
        "inventory_item_id": inventory_item_id,
    }
