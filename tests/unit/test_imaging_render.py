"""Rendering: accuracy against a full-size LANCZOS reference, colour, alpha, orientation,
encoding, byte caps and determinism. Sources are small synthetic images made in memory."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from imaging import render
from imaging.render import ImageRejected, Resized, encode, encode_jpeg, render_all, render_pixels
from imaging.specs import DEFAULT_SPECS, RenditionSpec
from imaging.synthetic import adobe_rgb_like_profile, photo

MAX_PIXELS = 50_000_000
MAE_BOUND = 2.0  # /255
P999_BOUND = 32.0  # /255
PSNR_BOUND = 30.0  # dB


@pytest.fixture(autouse=True)
def limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure() changes process-wide state: give it back after each test."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    monkeypatch.setattr(render, "_limits", render._limits)
    render.configure(max_pixels=MAX_PIXELS, concurrency=2)


@cache
def source_bytes(
    kind: str, width: int, height: int, *, alpha: bool = False, seed: int = 0
) -> bytes:
    image = photo(width, height, alpha=alpha, seed=seed)
    buffer = io.BytesIO()
    if kind == "PNG":
        image.save(buffer, "PNG", compress_level=1)
    elif kind == "JPEG":
        image.save(buffer, "JPEG", quality=92)
    elif kind == "TIFF":
        image.save(buffer, "TIFF", compression="tiff_lzw")
    else:
        image.save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def saved(image: Image.Image, kind: str, **options: Any) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    buffer.seek(0)
    return buffer


def specs(*long_sides: int, max_bytes: int | None = None) -> list[RenditionSpec]:
    return [RenditionSpec(f"r{side}", side, max_bytes) for side in long_sides]


def as_array(image: Image.Image) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def psnr(data: bytes, pixels: Image.Image) -> float:
    difference = as_array(decoded(data)).astype(np.float64) - as_array(pixels)
    mse = float(np.mean(difference**2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


class Spy:
    """Wraps a function and keeps what it returned, to prove a code path was taken."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.results: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.function(*args, **kwargs)
        self.results.append(result)
        return result


class TestAccuracyAgainstFullSizeLanczos:
    """Each rendition's pixels before encoding against one LANCZOS of the full-size image,
    and the encoded JPEG against those pixels."""

    CASES = {
        # name: (source kind, width, height, alpha, long sides, draft scale, reduction factor)
        "rgba png, box-reduced base": ("PNG", 2400, 2880, True, (800, 780, 470), None, 2),
        "jpeg decoded at 1/2": ("JPEG", 2400, 1800, False, (900, 700, 400), 2, 1),
        "jpeg decoded at 1/4": ("JPEG", 2400, 1800, False, (280, 140), 4, 1),
        "jpeg decoded at 1/8": ("JPEG", 2400, 1800, False, (140,), 8, 1),
        "rgb png, marketplace defaults": ("PNG", 3000, 2000, False, (2048, 2000, 1200), None, 1),
    }

    @pytest.mark.parametrize("case", CASES)
    def test_within_bounds(self, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
        kind, width, height, alpha, sides, draft_scale, factor = self.CASES[case]
        data = source_bytes(kind, width, height, alpha=alpha, seed=len(case))
        drafts: list[Any] = []
        original_draft = JpegImagePlugin.JpegImageFile.draft

        def draft(image: Any, mode: str | None, size: tuple[int, int] | None) -> Any:
            drafts.append(original_draft(image, mode, size))
            return drafts[-1]

        factors = Spy(render._reduction_factor)
        monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
        monkeypatch.setattr(render, "_reduction_factor", factors)

        results = render_pixels(io.BytesIO(data), specs(*sides), max_pixels=MAX_PIXELS)

        # The fast paths this case is about were really taken.
        if draft_scale is None:
            assert drafts == []
        else:
            assert [box[2] for _, box in drafts] == [width / draft_scale]
        assert factors.results == [factor]
        for resized in results:
            reference = render.reference_pixels(
                io.BytesIO(data), resized.spec, max_pixels=MAX_PIXELS
            )
            assert resized.image.size == reference.size
            error = np.abs(as_array(resized.image) - as_array(reference))
            assert error.mean() <= MAE_BOUND, resized.spec.name
            assert np.percentile(error, 99.9) <= P999_BOUND, resized.spec.name
            data_out, _ = encode(resized.image, resized.spec)
            assert psnr(data_out, resized.image) >= PSNR_BOUND, resized.spec.name

    def test_the_bounds_catch_a_misaligned_resample(self) -> None:
        """The check has teeth: the same filter, misregistered by a few source pixels, fails."""
        data = source_bytes("PNG", 2400, 2880, alpha=True, seed=5)
        spec = RenditionSpec("r", 800, None)
        reference = as_array(render.reference_pixels(io.BytesIO(data), spec, max_pixels=MAX_PIXELS))
        with Image.open(io.BytesIO(data)) as image:
            flat = render._normalise(image, 1, None)
        shifted = flat.resize(
            (reference.shape[1], reference.shape[0]),
            Image.Resampling.LANCZOS,
            box=(4.0, 4.0, float(flat.width), float(flat.height)),
        )
        error = np.abs(as_array(shifted) - reference)
        assert error.mean() > MAE_BOUND or np.percentile(error, 99.9) > P999_BOUND


class TestSourceFormats:
    @pytest.mark.parametrize("kind", ["TIFF", "WEBP", "PNG", "JPEG"])
    def test_accepted_and_rendered(self, kind: str) -> None:
        data = source_bytes(kind, 1500, 1000, seed=3)
        (rendition,) = render_all(io.BytesIO(data), specs(600), max_pixels=MAX_PIXELS)
        assert (rendition.width, rendition.height) == (600, 400)
        assert decoded(rendition.data).format == "JPEG"

    def test_inspect_reads_the_header(self) -> None:
        data = source_bytes("PNG", 2400, 2880, alpha=True, seed=5)
        info = render.inspect(io.BytesIO(data))
        assert info == render.SourceInfo(
            width=2400, height=2880, format="PNG", mode="RGBA", has_alpha=True
        )


class TestOrientation:
    @staticmethod
    def marked(orientation: int) -> io.BytesIO:
        """A 400x300 JPEG, red in its stored top-left corner, with an EXIF orientation."""
        image = Image.new("RGB", (400, 300), (20, 60, 200))
        image.paste((230, 20, 20), (0, 0, 80, 80))
        exif = Image.Exif()
        exif[0x0112] = orientation
        return saved(image, "JPEG", quality=95, exif=exif.tobytes())

    def test_orientation_6_comes_out_rotated_clockwise(self) -> None:
        (resized,) = render_pixels(self.marked(6), specs(2048), max_pixels=MAX_PIXELS)
        assert resized.image.size == (300, 400)
        # Stored top-left is displayed top-right after a quarter turn clockwise.
        assert resized.image.getpixel((260, 40))[0] > 200  # type: ignore[index]
        assert resized.image.getpixel((40, 40))[0] < 60  # type: ignore[index]

    def test_orientation_applies_after_resizing_and_draft(self) -> None:
        (resized,) = render_pixels(self.marked(8), specs(100), max_pixels=MAX_PIXELS)
        assert resized.image.size == (75, 100)
        # Orientation 8 (a quarter turn anticlockwise): stored top-left goes bottom-left.
        assert resized.image.getpixel((8, 92))[0] > 200  # type: ignore[index]
        assert resized.image.getpixel((8, 8))[0] < 60  # type: ignore[index]


class TestColour:
    COLOUR = (60, 180, 90)

    def render_flat(self, **options: Any) -> tuple[int, ...]:
        image = Image.new("RGB", (64, 64), self.COLOUR)
        (resized,) = render_pixels(saved(image, "PNG", **options), specs(64), max_pixels=10**6)
        pixel = resized.image.getpixel((32, 32))
        assert isinstance(pixel, tuple)
        return pixel

    def test_converted_to_srgb_through_the_embedded_profile(self) -> None:
        profile = adobe_rgb_like_profile()
        transform = ImageCms.buildTransform(
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            ImageCms.createProfile("sRGB"),
            "RGB",
            "RGB",
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
        expected = ImageCms.applyTransform(Image.new("RGB", (1, 1), self.COLOUR), transform)
        assert expected is not None

        tagged = self.render_flat(icc_profile=profile)

        assert tagged == expected.getpixel((0, 0))
        untagged = self.render_flat()
        assert untagged == self.COLOUR
        assert max(abs(a - b) for a, b in zip(tagged, untagged, strict=True)) >= 10

    def test_an_srgb_profile_changes_nothing(self) -> None:
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        assert self.render_flat(icc_profile=srgb) == self.COLOUR

    def test_an_unreadable_profile_is_ignored_like_browsers_do(self) -> None:
        assert self.render_flat(icc_profile=b"not a profile at all") == self.COLOUR

    def test_sixteen_bit_greyscale_is_scaled_not_clipped(self) -> None:
        levels = np.full((32, 32), 100 * 257, dtype=np.uint16)  # 8-bit level 100, in 16 bits
        image = Image.fromarray(levels)
        assert image.mode == "I;16"
        (resized,) = render_pixels(saved(image, "PNG"), specs(32), max_pixels=10**6)
        assert resized.image.getpixel((16, 16)) == (100, 100, 100)

    def test_cmyk_becomes_rgb(self) -> None:
        image = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # full magenta + yellow = red
        (resized,) = render_pixels(saved(image, "JPEG"), specs(64), max_pixels=10**6)
        red, green, blue = resized.image.getpixel((32, 32))  # type: ignore[misc]
        assert resized.image.mode == "RGB"
        assert red > 200
        assert green < 60
        assert blue < 60


class TestAlpha:
    @staticmethod
    def half_transparent() -> Image.Image:
        """Left: fully transparent black. Right: half-transparent red."""
        image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        image.paste((255, 0, 0, 128), (32, 0, 64, 64))
        return image

    def test_flattened_onto_white(self) -> None:
        (resized,) = render_pixels(
            saved(self.half_transparent(), "PNG"), specs(64), max_pixels=10**6
        )
        assert resized.image.mode == "RGB"
        assert resized.image.getpixel((8, 32)) == (255, 255, 255)
        red, green, blue = resized.image.getpixel((56, 32))  # type: ignore[misc]
        assert red == 255
        assert 126 <= green <= 128
        assert 126 <= blue <= 128

    def test_flattened_when_resized(self) -> None:
        (resized,) = render_pixels(
            saved(self.half_transparent(), "PNG"), specs(16), max_pixels=10**6
        )
        assert resized.image.getpixel((1, 8)) == (255, 255, 255)

    def test_palette_transparency_is_flattened_too(self) -> None:
        image = Image.new("P", (32, 32), 0)
        image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
        image.paste(1, (16, 0, 32, 32))
        (resized,) = render_pixels(saved(image, "PNG", transparency=0), specs(32), max_pixels=10**6)
        assert resized.image.getpixel((4, 16)) == (255, 255, 255)
        assert resized.image.getpixel((28, 16)) == (10, 200, 30)


class TestEncoding:
    @staticmethod
    def tagged_jpeg() -> io.BytesIO:
        """A JPEG carrying every kind of metadata we must not pass on."""
        exif = Image.Exif()
        exif[0x010F] = "TestCam"  # Make
        exif[0x0112] = 1
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        return saved(
            photo(800, 600, seed=9),
            "JPEG",
            quality=92,
            exif=exif.tobytes(),
            icc_profile=icc,
            xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret-location</x:xmpmeta>",
            comment=b"internal comment",
        )

    def test_progressive_jpeg(self) -> None:
        (rendition,) = render_all(self.tagged_jpeg(), specs(500), max_pixels=MAX_PIXELS)
        assert decoded(rendition.data).info.get("progressive")
        assert b"\xff\xc2" in rendition.data  # SOF2: progressive DCT
        assert (rendition.content_type, rendition.extension) == ("image/jpeg", "jpg")

    def test_metadata_stripped(self) -> None:
        (rendition,) = render_all(self.tagged_jpeg(), specs(500), max_pixels=MAX_PIXELS)
        image = decoded(rendition.data)
        for key in ("exif", "icc_profile", "xmp", "comment"):
            assert key not in image.info
        for marker in (b"Exif\0", b"ICC_PROFILE", b"ns.adobe.com", b"TestCam", b"internal"):
            assert marker not in rendition.data

    def test_same_input_same_bytes(self) -> None:
        data = source_bytes("PNG", 2400, 2880, alpha=True, seed=5)
        wanted = list(DEFAULT_SPECS.values()) + specs(300)
        first = render_all(io.BytesIO(data), wanted, max_pixels=MAX_PIXELS)
        second = render_all(io.BytesIO(bytes(data)), wanted, max_pixels=MAX_PIXELS)
        assert [r.data for r in first] == [r.data for r in second]
        assert len({r.data for r in first}) == len(wanted)

    def test_results_follow_the_order_of_the_specs(self) -> None:
        wanted = specs(300, 900, 600)
        data = source_bytes("JPEG", 2400, 1800, seed=2)
        renditions = render_all(io.BytesIO(data), wanted, max_pixels=MAX_PIXELS)
        assert [(r.name, r.width) for r in renditions] == [
            ("r300", 300),
            ("r900", 900),
            ("r600", 600),
        ]

    def test_never_upscaled(self) -> None:
        small = saved(photo(500, 300, seed=1), "PNG")
        renditions = render_all(small, list(DEFAULT_SPECS.values()), max_pixels=MAX_PIXELS)
        assert {(r.width, r.height) for r in renditions} == {(500, 300)}

    def test_portrait_keeps_its_aspect(self) -> None:
        tall = saved(photo(1200, 3000, seed=1), "PNG", compress_level=1)
        (rendition,) = render_all(tall, specs(1000), max_pixels=MAX_PIXELS)
        assert (rendition.width, rendition.height) == (400, 1000)


class TestByteCap:
    @staticmethod
    def noisy() -> Resized:
        data = source_bytes("PNG", 1600, 1200, seed=4)
        (resized,) = render_pixels(io.BytesIO(data), specs(1600), max_pixels=MAX_PIXELS)
        return resized

    def test_quality_searched_down_to_fit(self) -> None:
        resized = self.noisy()
        spec = RenditionSpec("capped", 1600, None)
        full = len(encode_jpeg(resized.image, spec, spec.quality))
        cap = int(full * 0.6)
        capped = RenditionSpec("capped", 1600, cap)

        data, quality = encode(resized.image, capped)

        assert len(data) <= cap
        assert capped.min_quality <= quality < capped.quality
        # The highest quality that fits: one step up does not.
        assert len(encode_jpeg(resized.image, capped, quality + 1)) > cap
        assert data == encode_jpeg(resized.image, capped, quality)

    def test_first_quality_used_when_it_fits(self) -> None:
        resized = self.noisy()
        _, quality = encode(resized.image, RenditionSpec("roomy", 1600, 50_000_000))
        assert quality == 90

    def test_refused_when_even_min_quality_is_too_big(self) -> None:
        data = source_bytes("PNG", 1600, 1200, seed=4)
        with pytest.raises(ImageRejected, match="over its cap of 10,000") as refused:
            render_all(io.BytesIO(data), specs(1600, max_bytes=10_000), max_pixels=MAX_PIXELS)
        assert refused.value.reason == "over_byte_cap"
