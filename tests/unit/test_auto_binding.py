"""The SKU matcher: only unambiguous matches bind; everything else is reported, never guessed."""

from __future__ import annotations

import json

from hub.domain.auto_binding import (
    REMOTE_BOUND_TO_ANOTHER_VARIANT,
    SEVERAL_OF_OUR_VARIANTS,
    SEVERAL_REMOTE_AND_OURS,
    SEVERAL_REMOTE_VARIANTS,
    BindingReport,
    Conflict,
    Proposal,
    RemoteVariant,
    match_by_sku,
)


def remote(
    sku: str | None, listing: str = "P1", variant: str | None = None, item: str | None = None
) -> RemoteVariant:
    variant = variant or f"V-{sku}"
    return RemoteVariant(listing, variant, item or f"I-{variant}", sku, f"Tee / {sku}")


def test_an_exact_sku_match_binds_a_new_variant() -> None:
    tee = remote("TEE-M")
    report = match_by_sku([tee], {"TEE-M": [7]}, {})
    assert report.bound == (Proposal("TEE-M", 7, tee, None),)
    assert report.already_bound == 0
    assert report.unknown_skus == report.missing_sku == ()
    assert report.conflicts == ()


def test_skus_compare_exactly() -> None:
    report = match_by_sku([remote("tee-m "), remote("TEE-M")], {"TEE-M": [7]}, {})
    assert [p.sku for p in report.bound] == ["TEE-M"]
    assert [v.sku for v in report.unknown_skus] == ["tee-m "]


def test_an_unknown_sku_is_reported_with_its_remote_ids() -> None:
    report = match_by_sku([remote("GHOST", "P9")], {}, {})
    assert report.bound == ()
    assert report.unknown_skus == (remote("GHOST", "P9"),)
    assert report.as_dict()["unknown_skus"] == [
        {
            "sku": "GHOST",
            "listing_id": "P9",
            "remote_variant_id": "V-GHOST",
            "inventory_item_id": "I-V-GHOST",
            "title": "Tee / GHOST",
        }
    ]


def test_a_sku_with_an_empty_list_of_ours_is_unknown() -> None:
    report = match_by_sku([remote("GHOST")], {"GHOST": []}, {})
    assert report.unknown_skus == (remote("GHOST"),)


def test_remote_variants_without_a_sku_are_reported() -> None:
    blank, spaces = remote(None, variant="V1"), remote("  ", variant="V2")
    report = match_by_sku([blank, spaces], {"  ": [3]}, {})
    assert report.missing_sku == (blank, spaces)
    assert report.bound == ()
    assert report.unknown_skus == ()


def test_one_sku_on_two_remote_variants_is_a_conflict_and_binds_neither() -> None:
    first, second = remote("TEE-M", "P1", "V1"), remote("TEE-M", "P2", "V2")
    report = match_by_sku([second, first], {"TEE-M": [7]}, {7: ("P1", "V1", "I-V1")})
    assert report.bound == ()
    assert report.already_bound == 0
    assert report.conflicts == (Conflict("TEE-M", SEVERAL_REMOTE_VARIANTS, (first, second), (7,)),)


def test_the_same_remote_variant_listed_twice_is_no_conflict() -> None:
    tee = remote("TEE-M")
    report = match_by_sku([tee, tee], {"TEE-M": [7]}, {})
    assert report.conflicts == ()
    assert [p.variant_id for p in report.bound] == [7]


def test_two_of_our_variants_with_one_sku_is_a_conflict() -> None:
    tee = remote("TEE-M")
    report = match_by_sku([tee], {"TEE-M": [9, 7]}, {})
    assert report.bound == ()
    assert report.conflicts == (Conflict("TEE-M", SEVERAL_OF_OUR_VARIANTS, (tee,), (7, 9)),)


def test_several_on_both_sides_is_one_conflict() -> None:
    first, second = remote("TEE-M", "P1", "V1"), remote("TEE-M", "P2", "V2")
    report = match_by_sku([first, second], {"TEE-M": [7, 9]}, {})
    assert [(c.reason, c.our_variant_ids) for c in report.conflicts] == [
        (SEVERAL_REMOTE_AND_OURS, (7, 9))
    ]


def test_a_binding_already_on_the_same_remote_ids_is_counted_and_left_alone() -> None:
    tee = remote("TEE-M", "P1", "V1", "I1")
    report = match_by_sku([tee], {"TEE-M": [7]}, {7: ("P1", "V1", "I1")})
    assert report.bound == ()
    assert report.already_bound == 1


def test_a_binding_whose_remote_ids_changed_is_updated_with_its_previous_ids() -> None:
    tee = remote("TEE-M", "P2", "V2", "I2")
    report = match_by_sku([tee], {"TEE-M": [7]}, {7: ("P1", "V1", "I1")})
    assert report.bound == (Proposal("TEE-M", 7, tee, ("P1", "V1", "I1")),)
    assert report.already_bound == 0
    assert report.as_dict()["bound"][0]["previous"] == {
        "listing_id": "P1",
        "remote_variant_id": "V1",
        "inventory_item_id": "I1",
    }


def test_a_changed_inventory_item_alone_is_a_change() -> None:
    tee = remote("TEE-M", "P1", "V1", "I2")
    report = match_by_sku([tee], {"TEE-M": [7]}, {7: ("P1", "V1", "I1")})
    assert [p.previous for p in report.bound] == [("P1", "V1", "I1")]


def test_a_remote_variant_still_bound_to_another_of_ours_is_a_conflict() -> None:
    # Our variant 8 is bound to V1 (its SKU was renamed); V1 now carries variant 7's SKU.
    tee = remote("TEE-M", "P1", "V1", "I1")
    report = match_by_sku([tee], {"TEE-M": [7]}, {8: ("P1", "V1", "I1")})
    assert report.bound == ()
    assert report.conflicts == (Conflict("TEE-M", REMOTE_BOUND_TO_ANOTHER_VARIANT, (tee,), (7, 8)),)


def test_swapped_skus_rebind_both_variants() -> None:
    a, b = remote("A", "P1", "V1", "I1"), remote("B", "P1", "V2", "I2")
    report = match_by_sku([a, b], {"A": [7], "B": [8]}, {7: b.ids, 8: a.ids})
    assert [(p.sku, p.variant_id, p.remote.variant_id) for p in report.bound] == [
        ("A", 7, "V1"),
        ("B", 8, "V2"),
    ]
    assert report.conflicts == ()


def test_a_refused_change_keeps_its_variant_in_place_and_blocks_what_followed_it() -> None:
    # 7 would move V1 -> V2, but V2 stays with 9 (ambiguous SKU); so 8 cannot take V1 either.
    v1, v2 = remote("B", "P1", "V1", "I1"), remote("A", "P1", "V2", "I2")
    dup = remote("C", "P2", "V3", "I3")
    report = match_by_sku(
        [v1, v2, dup, remote("C", "P3", "V4", "I4")],
        {"A": [7], "B": [8], "C": [9]},
        {7: v1.ids, 9: v2.ids},
    )
    assert report.bound == ()
    assert [(c.sku, c.reason) for c in report.conflicts] == [
        ("A", REMOTE_BOUND_TO_ANOTHER_VARIANT),
        ("B", REMOTE_BOUND_TO_ANOTHER_VARIANT),
        ("C", SEVERAL_REMOTE_VARIANTS),
    ]


def test_the_report_is_json_ready_and_stable() -> None:
    variants = [remote(sku) for sku in ("B", "A", "GHOST", None, "DUP", "DUP")]
    variants[-1] = remote("DUP", "P2")
    ours = {"A": [1], "B": [2], "DUP": [3]}
    first = match_by_sku(variants, ours, {2: ("P1", "V-B", "I-V-B")})
    second = match_by_sku(list(reversed(variants)), ours, {2: ("P1", "V-B", "I-V-B")})
    assert first == second
    document = first.as_dict()
    assert json.loads(json.dumps(document)) == document
    assert list(document) == ["bound", "already_bound", "unknown_skus", "missing_sku", "conflicts"]
    assert [entry["sku"] for entry in document["bound"]] == ["A"]
    assert document["already_bound"] == 1
    assert [c["sku"] for c in document["conflicts"]] == ["DUP"]
    assert [r["listing_id"] for r in document["conflicts"][0]["remote"]] == ["P1", "P2"]


def test_nothing_remote_is_an_empty_report() -> None:
    assert match_by_sku([], {}, {7: ("P1", "V1", "I1")}) == BindingReport((), 0, (), (), ())
