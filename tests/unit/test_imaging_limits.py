"""Limits: what is refused (and how early), the process-wide settings and the render semaphore."""

from __future__ import annotations

import io
import struct
import threading
import time
import warnings
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from imaging import render
from imaging.render import ImageRejected, render_all, render_pixels
from imaging.specs import RenditionSpec
from imaging.synthetic import photo

SPECS = [RenditionSpec("shop", 300, None)]


@pytest.fixture(autouse=True)
def limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure() changes process-wide state: give it back after each test."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", ImageFile.LOAD_TRUNCATED_IMAGES)
    monkeypatch.setattr(render, "_limits", render._limits)
    render.configure(max_pixels=render.DEFAULT_MAX_PIXELS, concurrency=1)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to decode pixels fails the test."""

    def load(self: ImageFile.ImageFile) -> Any:
        raise AssertionError(f"{self.format} pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def png_header(width: int, height: int, idat: bytes = b"\x00" * 16) -> io.BytesIO:
    """A PNG whose header claims ``width`` x ``height`` RGB, followed by whatever ``idat`` is."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return io.BytesIO(data)


def encoded(kind: str, width: int = 600, height: int = 400, **options: Any) -> bytes:
    buffer = io.BytesIO()
    photo(width, height, seed=11).save(buffer, kind, **options)
    return buffer.getvalue()


def refusal(source: Any, max_pixels: int = render.DEFAULT_MAX_PIXELS) -> ImageRejected:
    with pytest.raises(ImageRejected) as refused:
        render_all(source, SPECS, max_pixels=max_pixels)
    return refused.value


class TestTooManyPixels:
    @pytest.mark.usefixtures("no_decoding")
    def test_refused_from_the_header_before_decoding(self) -> None:
        # 2,000 x 1,001 is over a 2 MP limit but far under Pillow's own (default) check.
        refused = refusal(png_header(2000, 1001), max_pixels=2_000_000)
        assert refused.reason == "too_many_pixels"
        assert "2000x1001 = 2,002,000 pixels is over the limit of 2,000,000" in str(refused)

    @pytest.mark.usefixtures("no_decoding")
    def test_pillow_warning_band_is_an_error_after_configure(self) -> None:
        # Between MAX_IMAGE_PIXELS and twice it, Pillow alone would only warn.
        render.configure(max_pixels=1_000_000, concurrency=1)
        refused = refusal(png_header(1200, 1000), max_pixels=10**9)
        assert refused.reason == "too_many_pixels"

    @pytest.mark.usefixtures("no_decoding")
    def test_a_huge_header_is_refused_by_inspect(self) -> None:
        with pytest.raises(ImageRejected) as refused:
            render.inspect(png_header(100_000, 100_000))
        assert refused.value.reason == "too_many_pixels"

    def test_12000_square_print_files_pass_the_default(self) -> None:
        assert render.DEFAULT_MAX_PIXELS >= 12_000 * 12_000
        info = render.inspect(png_header(12_000, 12_000))
        assert (info.width, info.height) == (12_000, 12_000)

    def test_at_the_limit_renders(self) -> None:
        data = encoded("PNG", 600, 400)
        (rendition,) = render_all(io.BytesIO(data), SPECS, max_pixels=600 * 400)
        assert rendition.width == 300


class TestBrokenFiles:
    @pytest.mark.parametrize("kind", ["JPEG", "PNG", "TIFF"])
    def test_truncated_file_refused(self, kind: str) -> None:
        data = encoded(kind)
        refused = refusal(io.BytesIO(data[: len(data) * 6 // 10]))
        assert refused.reason == "truncated"
        assert "truncated" in str(refused)

    def test_truncated_webp_refused(self) -> None:
        data = encoded("WEBP", lossless=True)
        assert refusal(io.BytesIO(data[: len(data) // 2])).reason == "corrupt"

    def test_truncated_even_when_pillow_was_told_to_pad(self) -> None:
        ImageFile.LOAD_TRUNCATED_IMAGES = True  # as some other library might set it
        render.configure(max_pixels=render.DEFAULT_MAX_PIXELS, concurrency=1)
        data = encoded("JPEG")
        assert refusal(io.BytesIO(data[: len(data) // 2])).reason == "truncated"

    def test_corrupt_pixel_data_refused(self) -> None:
        garbage = bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8))
        refused = refusal(png_header(64, 64, idat=garbage))
        assert refused.reason == "corrupt"

    def test_corrupt_header_of_a_known_format_refused(self) -> None:
        refused = refusal(io.BytesIO(b"\xff\xd8\xff\xe0" + b"\x13" * 200))
        assert refused.reason == "corrupt"

    def test_random_bytes_refused(self) -> None:
        noise = bytes(np.random.default_rng(4).integers(0, 256, 4096, dtype=np.uint8))
        assert refusal(io.BytesIO(noise)).reason == "unsupported_format"

    @pytest.mark.parametrize("kind", ["GIF", "BMP"])
    def test_other_formats_refused(self, kind: str) -> None:
        refused = refusal(io.BytesIO(encoded(kind)))
        assert refused.reason == "unsupported_format"
        assert "PNG, JPEG, WebP or TIFF" in str(refused)

    def test_a_refusal_touches_nothing_else(self) -> None:
        data = encoded("JPEG")
        stream = io.BytesIO(data[: len(data) // 2])
        refusal(stream)
        assert not stream.closed  # the caller's stream is the caller's
        assert render._limits.gate.acquire(blocking=False)  # the semaphore was released
        render._limits.gate.release()
        (rendition,) = render_all(io.BytesIO(data), SPECS, max_pixels=10**6)
        assert rendition.width == 300

    def test_a_path_source_is_closed_after_a_refusal(self, tmp_path: Any) -> None:
        path = tmp_path / "cut.jpg"
        data = encoded("JPEG")
        path.write_bytes(data[: len(data) // 2])
        assert refusal(path).reason == "truncated"
        path.unlink()  # nothing holds it open


class TestConfigure:
    def test_sets_pillow_limit_and_makes_its_warning_an_error(self) -> None:
        render.configure(max_pixels=1234, concurrency=3)
        assert Image.MAX_IMAGE_PIXELS == 1234
        assert render._limits.concurrency == 3
        with pytest.raises(Image.DecompressionBombWarning):
            warnings.warn("too big", Image.DecompressionBombWarning, stacklevel=1)

    def test_rejects_nonsense(self) -> None:
        with pytest.raises(ValueError, match="must be at least 1"):
            render.configure(max_pixels=0, concurrency=1)


class TestConcurrency:
    def test_decodes_capped_per_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        render.configure(max_pixels=render.DEFAULT_MAX_PIXELS, concurrency=2)
        active = 0
        most = 0
        lock = threading.Lock()
        original = render._decode

        def slow_decode(im: Any, *, draft_for: tuple[int, int]) -> Any:
            nonlocal active, most
            with lock:
                active += 1
                most = max(most, active)
            time.sleep(0.05)
            try:
                return original(im, draft_for=draft_for)
            finally:
                with lock:
                    active -= 1

        monkeypatch.setattr(render, "_decode", slow_decode)
        data = encoded("PNG", 400, 300)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                render_pixels(io.BytesIO(data), SPECS, max_pixels=10**6)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert most == 2
