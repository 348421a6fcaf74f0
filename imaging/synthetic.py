"""Deterministic synthetic sources for the imaging tests and ``bench/imaging.py``.

Photo-like on purpose: smooth gradients and low-frequency waves (what resampling must keep),
Gaussian noise (so PNGs do not compress to nothing and filters are stressed), and hard-edged
blocks (where ringing and chroma subsampling show). Needs NumPy, a development dependency:
nothing in the render path imports this module.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

BAND_ROWS = 512  # generated in bands: a 6000x7200 float image would be ~700 MB


def photo(
    width: int, height: int, *, alpha: bool = False, seed: int = 0, noise: float = 7.0
) -> Image.Image:
    """An RGB (or RGBA: an opaque soft-edged oval on a transparent surround) test image."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGBA" if alpha else "RGB", (width, height))
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    blocks_x = (np.arange(width) // max(1, width // 11)) % 2 == 1
    for top in range(0, height, BAND_ROWS):
        rows = min(BAND_ROWS, height - top)
        ys = (np.arange(top, top + rows, dtype=np.float32) / max(1, height - 1))[:, None]
        red = 40 + 160 * xs + 40 * np.sin(ys * 17.0 + xs * 5.0)
        green = 60 + 120 * ys + 50 * np.cos(xs * 23.0 - ys * 7.0)
        blue = 200 - 110 * xs * ys + 30 * np.sin((xs + ys) * 41.0)
        channels = [
            channel + rng.normal(0.0, noise, (rows, width)).astype(np.float32)
            for channel in (red, green, blue)
        ]
        # Hard-edged saturated blocks across one horizontal stripe (a printed design's edges).
        in_stripe = ((ys >= 0.30) & (ys < 0.42)) & blocks_x[None, :]
        for channel, value in zip(channels, (230.0, 30.0, 40.0), strict=True):
            channel[in_stripe] = value
        if alpha:
            distance = ((xs - 0.5) / 0.42) ** 2 + ((ys - 0.5) / 0.45) ** 2
            channels.append(np.clip((1.0 - distance) * 900.0, 0.0, 255.0))
        pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
        image.paste(Image.fromarray(pixels, image.mode), (0, top))
    return image


def adobe_rgb_like_profile() -> bytes:
    """A minimal ICC v2 RGB matrix/TRC profile with Adobe RGB (1998) primaries and gamma 2.2.

    Wider gamut than sRGB, so its pixels convert to visibly different sRGB values: what a
    test needs to tell "converted through the profile" from "profile ignored".
    """
    d50 = (0.9642, 1.0, 0.8249)
    primaries = {  # Adobe RGB (1998) colorants, chromatically adapted to D50
        b"rXYZ": (0.60974, 0.31111, 0.01947),
        b"gXYZ": (0.20528, 0.62567, 0.06087),
        b"bXYZ": (0.14919, 0.06322, 0.74457),
    }
    gamma = struct.pack(">4sII H2x", b"curv", 0, 1, 563)  # u8Fixed8 563/256 = 2.1992

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(struct.pack(">i", round(v * 65536)) for v in values)

    def description(text: str) -> bytes:
        ascii_text = text.encode("ascii") + b"\0"
        body = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text
        return body + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67

    tags: list[tuple[bytes, bytes]] = [
        (b"desc", description("Adobe RGB (1998)-like test profile")),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, test data\0"),
        (b"wtpt", xyz(d50)),
        *((signature, xyz(value)) for signature, value in primaries.items()),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        padded = body + b"\0" * (-len(body) % 4)
        table += struct.pack(">4sII", signature, offset + len(data), len(body))
        data += padded
    size = offset + len(data)
    header = struct.pack(
        ">I4sI4s4s4s6H4s4sI4s4s8sI3i4s16s28s",
        size,
        b"lcms",
        0x02100000,
        b"mntr",
        b"RGB ",
        b"XYZ ",
        2024,
        1,
        1,
        0,
        0,
        0,
        b"acsp",
        b"\0\0\0\0",
        0,
        b"\0\0\0\0",
        b"\0\0\0\0",
        b"\0" * 8,
        0,
        *(round(v * 65536) for v in d50),
        b"\0\0\0\0",
        b"\0" * 16,
        b"\0" * 28,
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data
