"""The rendition spec table: marketplace defaults, fingerprints and the JSON override."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from imaging.specs import (
    DEFAULT_SPECS,
    ETSY_MAX_BYTES,
    SHOPIFY_MAX_PIXELS,
    SHOPIFY_MAX_SIDE,
    RenditionSpec,
    load_specs,
)


class TestDefaults:
    def test_shopify_is_2048_on_the_long_side_within_its_limits(self) -> None:
        spec = DEFAULT_SPECS["shopify"]
        assert spec.long_side == 2048
        assert spec.long_side <= SHOPIFY_MAX_SIDE
        assert spec.long_side**2 <= SHOPIFY_MAX_PIXELS  # even a square fits 20 MP

    def test_etsy_is_2000_under_its_file_size_cap(self) -> None:
        spec = DEFAULT_SPECS["etsy"]
        assert (spec.long_side, spec.max_bytes) == (2000, ETSY_MAX_BYTES)

    def test_woocommerce_is_1200(self) -> None:
        assert DEFAULT_SPECS["woocommerce"].long_side == 1200

    def test_every_default_is_a_jpeg_named_after_its_key(self) -> None:
        for name, spec in DEFAULT_SPECS.items():
            assert (spec.name, spec.format, spec.extension, spec.content_type) == (
                name,
                "JPEG",
                "jpg",
                "image/jpeg",
            )


class TestFingerprint:
    def test_is_short_hex_and_stable(self) -> None:
        spec = RenditionSpec(name="shopify", long_side=2048, max_bytes=None)
        assert spec.fingerprint() == RenditionSpec("shopify", 2048, None).fingerprint()
        assert len(spec.fingerprint()) == 16
        int(spec.fingerprint(), 16)

    @pytest.mark.parametrize(
        "change",
        [
            {"name": "other"},
            {"long_side": 2047},
            {"max_bytes": 1_000_000},
            {"quality": 89},
            {"min_quality": 59},
            {"subsampling": "4:4:4"},
        ],
    )
    def test_changes_with_every_field(self, change: dict[str, object]) -> None:
        spec = DEFAULT_SPECS["shopify"]
        assert replace(spec, **change).fingerprint() != spec.fingerprint()  # type: ignore[arg-type]

    def test_every_field_is_covered_by_the_parametrised_changes(self) -> None:
        # The test above must grow with the dataclass (format has a single allowed value).
        assert {f.name for f in fields(RenditionSpec)} == {
            "name",
            "long_side",
            "max_bytes",
            "format",
            "quality",
            "min_quality",
            "subsampling",
        }


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"long_side": 0}, "long_side must be at least 1"),
            ({"long_side": True}, "long_side must be an integer"),
            ({"max_bytes": 0}, "max_bytes must be at least 1"),
            ({"format": "PNG"}, "format 'PNG' is not supported"),
            ({"quality": 96}, "quality must be at least 1 and at most 95"),
            ({"min_quality": 91}, "min_quality must be at least 1 and at most 90"),
            ({"subsampling": "4:1:1"}, "subsampling '4:1:1'"),
        ],
    )
    def test_bad_values_raise_with_the_field(self, kwargs: dict[str, object], message: str) -> None:
        base: dict[str, object] = {"name": "etsy", "long_side": 2000, "max_bytes": None}
        with pytest.raises(ValueError, match=message):
            RenditionSpec(**{**base, **kwargs})  # type: ignore[arg-type]

    def test_shopify_above_its_pixel_limit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="exceeds Shopify's 4472 px"):
            RenditionSpec(name="shopify", long_side=4473, max_bytes=None)


class TestLoadSpecs:
    def test_none_or_blank_gives_the_defaults(self) -> None:
        assert load_specs(None) == DEFAULT_SPECS
        assert load_specs("  ") == DEFAULT_SPECS

    def test_merges_fields_over_a_default(self) -> None:
        table = load_specs(json.dumps({"etsy": {"max_bytes": 1_000_000, "quality": 85}}))
        assert table["etsy"] == RenditionSpec("etsy", 2000, 1_000_000, quality=85)
        assert table["shopify"] == DEFAULT_SPECS["shopify"]

    def test_adds_a_new_rendition_and_drops_one_with_null(self) -> None:
        table = load_specs(json.dumps({"thumb": {"long_side": 400}, "woocommerce": None}))
        assert table["thumb"] == RenditionSpec("thumb", 400, None)
        assert "woocommerce" not in table

    @pytest.mark.parametrize(
        ("override", "message"),
        [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "expected a JSON object"),
            ('{"etsy": 5}', "rendition spec 'etsy': expected an object"),
            ('{"etsy": {"longside": 5}}', r"unknown field\(s\) \['longside'\]"),
            ('{"etsy": {"long_side": "big"}}', "long_side must be an integer"),
            ('{"etsy": {"name": "shopify"}}', "differs from its key"),
            ('{"thumb": {"quality": 80}}', "a new rendition needs long_side"),
            ('{"shopify": {"long_side": 5000}}', "exceeds Shopify's"),
        ],
    )
    def test_bad_overrides_raise_value_error(self, override: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            load_specs(override)
