"""Renditions: one decode of a source image, every marketplace's JPEG made from it.

The pipeline, and why each step is where it is:

1. **Open and check the header.** Only PNG, JPEG, WebP and TIFF are opened (Pillow identifies
   nothing else), and ``width x height`` is checked against the configured maximum straight
   after ``Image.open``, before a single pixel is decoded. Pillow's own check raises only at
   twice ``MAX_IMAGE_PIXELS`` and merely warns below it, so ``configure`` sets that limit and
   turns the warning into an error as well (DESIGN.md, "Pitfalls": Pillow).
2. **Decode once, as small as accuracy allows.** A JPEG is decoded at ½, ¼ or ⅛ scale by
   libjpeg (``draft``) when the largest rendition is at most half the source (with a margin of
   ``DRAFT_GAP``): its scaled inverse DCT is a good low-pass filter and the full-size pixels
   never exist in memory. Other formats cannot be decoded at reduced scale.
3. **Normalise in horizontal bands.** Colour to sRGB through the embedded ICC profile, alpha
   flattened onto white, then an integer box reduction (``Image.reduce``) while the image is
   still at least ``REDUCE_GAP`` times the largest rendition. Working band by band keeps a
   second full-size copy (an RGBA print file of 12,000² px is 576 MB) out of memory, and
   flattening before filtering equals filtering premultiplied alpha and flattening after,
   because both are linear. The decoded image is then dropped, and only this shared reduced
   base is kept.
4. **One LANCZOS pass per rendition from the shared base** (largest first, in bands of output
   rows), with the fractional ``box`` that maps the base exactly onto the source, then EXIF
   orientation (an exact pixel permutation, so it is cheapest on the small result). Each
   rendition is resampled from the base rather than from the previous, larger rendition:
   cascading would filter twice and add error at every step, while the base keeps every
   rendition within the bounds checked against a full-size LANCZOS reference (mean error
   <= 2/255, 99.9th percentile <= 32/255; see ``reference_pixels`` and the tests).
5. **Encode.** Progressive, Huffman-optimised JPEG with fixed options and no metadata: no
   EXIF, XMP, comment or ICC profile. Output is plain sRGB, and an untagged JPEG is read as
   sRGB by browsers and by the marketplaces, so no profile is embedded. The quality is searched
   downwards from the spec's ``quality`` to the highest that fits ``max_bytes``; if even
   ``min_quality`` does not fit, the source is refused (``over_byte_cap``) rather than rendered
   smaller than its spec says. The same input and spec give the same bytes (with the same
   Pillow/libjpeg build).

Decoding holds a process-wide semaphore (``configure``'s ``concurrency``) until only the
reduced base is left, so a process never holds more than that many full-size decodes at once.
Every failure of the source itself (corrupt, truncated, unsupported, too many pixels) raises
``ImageRejected`` with a reason code and a message; nothing here has side effects, so a
refused job touches nothing else.
"""

from __future__ import annotations

import io
import math
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO, Literal

from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from imaging.specs import RenditionSpec

DEFAULT_MAX_PIXELS = 150_000_000  # 12,000 x 12,000 print files (144 MP) pass
DEFAULT_CONCURRENCY = 1
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")
JPEG_FORMATS = ("JPEG", "MPO")  # Pillow reports multi-picture camera JPEGs as MPO

# Decode a JPEG at reduced scale only if the result keeps this margin over the largest target.
DRAFT_GAP = 1.25
# Box-reduce the decoded image only while it stays this many times the largest target.
REDUCE_GAP = 1.5
# Rows per band when normalising (rounded to a multiple of the reduction factor).
BAND_ROWS = 256
# Output rows per band when resampling.
RESAMPLE_ROWS = 256
WHITE = (255, 255, 255)

RejectReason = Literal[
    "unsupported_format", "corrupt", "truncated", "too_many_pixels", "over_byte_cap"
]

# What Pillow's plugins raise on malformed data (besides UnidentifiedImageError).
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)
_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)
# EXIF orientation -> the transposition that displays the image upright (as ImageOps does).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112
_PROFILE_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK", "Lab": "LAB"}
_SRGB_NAME = re.compile(r"\bsRGB\b")

Source = str | Path | BinaryIO


class ImageRejected(Exception):
    """The source image cannot be rendered; ``reason`` is a code, the message says why."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message


@dataclass(frozen=True)
class SourceInfo:
    width: int  # as stored, before EXIF orientation
    height: int
    format: str
    mode: str
    has_alpha: bool


@dataclass(frozen=True)
class Rendition:
    name: str
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str
    quality: int


@dataclass(frozen=True)
class Resized:
    """A rendition's pixels before encoding: RGB, sRGB, flattened, upright, final size."""

    spec: RenditionSpec
    image: Image.Image


class _Limits:
    """Process-wide render limits; replaced by ``configure`` at process start."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.gate = threading.BoundedSemaphore(concurrency)


_limits = _Limits(DEFAULT_CONCURRENCY)


def configure(max_pixels: int = DEFAULT_MAX_PIXELS, concurrency: int = DEFAULT_CONCURRENCY) -> None:
    """Process start: Pillow's pixel limit, its bomb warning as an error, the render semaphore.

    Call it once per process before rendering (each worker process after fork). Pillow raises
    ``DecompressionBombError`` only above twice ``MAX_IMAGE_PIXELS`` and merely warns between
    the two, so the warning is made an error too; ``render_all`` also checks its own
    ``max_pixels`` from the header, whatever the global settings are.
    """
    if max_pixels < 1 or concurrency < 1:
        raise ValueError(
            f"imaging limits: max_pixels ({max_pixels}) and concurrency ({concurrency}) "
            "must be at least 1"
        )
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is refused, never padded grey
    global _limits
    _limits = _Limits(concurrency)


def inspect(source: Source, *, max_pixels: int | None = None) -> SourceInfo:
    """Format, size and mode from the header only (nothing is decoded); refuses what
    ``render_all`` would refuse before decoding: unsupported, unreadable or too large."""
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    with _opened(source, limit or DEFAULT_MAX_PIXELS) as im:
        return SourceInfo(
            width=im.width,
            height=im.height,
            format=str(im.format),
            mode=im.mode,
            has_alpha=_has_alpha(im),
        )


def render_all(
    source: Source, specs: Sequence[RenditionSpec], *, max_pixels: int
) -> list[Rendition]:
    """Every spec's rendition from one open and one decode, in the order of ``specs``.

    Each rendition is encoded as soon as its pixels exist and its pixels are dropped before
    the next is resampled, so at most one rendition's pixels are alive next to the base.
    """
    renditions: dict[int, Rendition] = {}
    with closing(_iter_resized(source, specs, max_pixels)) as resized_images:
        for index, resized in resized_images:
            data, quality = encode(resized.image, resized.spec)
            renditions[index] = Rendition(
                name=resized.spec.name,
                data=data,
                width=resized.image.width,
                height=resized.image.height,
                content_type=resized.spec.content_type,
                extension=resized.spec.extension,
                quality=quality,
            )
            del resized  # its pixels go before the next rendition's are made
    return [renditions[index] for index in range(len(specs))]


def render_pixels(
    source: Source, specs: Sequence[RenditionSpec], *, max_pixels: int
) -> list[Resized]:
    """The renditions' pixels before encoding (what ``render_all`` encodes), in spec order."""
    with closing(_iter_resized(source, specs, max_pixels)) as resized_images:
        found = dict(resized_images)
    return [found[index] for index in range(len(specs))]


def _iter_resized(
    source: Source, specs: Sequence[RenditionSpec], max_pixels: int
) -> Generator[tuple[int, Resized]]:
    """(index in ``specs``, pixels) for every spec, largest first, from one decode."""
    if not specs:
        return
    with _opened(source, max_pixels) as im:
        raw_width, raw_height = im.size
        # Targets in stored orientation: the long side does not change when rotated.
        targets = [target_size(raw_width, raw_height, spec.long_side) for spec in specs]
        largest = max(targets, key=lambda size: size[0] * size[1])
        with _limits.gate:
            box = _decode(im, draft_for=largest)
            orientation = _orientation(im)
            transform = _srgb_transform(im)
            factor = _reduction_factor(box, largest)
            base = _converted(im, factor, transform)
            box = (0.0, 0.0, box[2] / factor, box[3] / factor)
            if base is not im:
                _release_pixels(im)  # the full-size decode goes before the semaphore does
        order = sorted(range(len(specs)), key=lambda i: -(targets[i][0] * targets[i][1]))
        for index in order:
            # No local keeps the previous rendition alive while the next one is resampled.
            yield (
                index,
                Resized(
                    spec=specs[index],
                    image=_orient(_resample(base, targets[index], box), orientation),
                ),
            )


def reference_pixels(source: Source, spec: RenditionSpec, *, max_pixels: int) -> Image.Image:
    """The accuracy oracle: full-size decode, sRGB, flattened, upright, one LANCZOS to size.

    Slow and memory-hungry on purpose (no draft, no reduction); tests and the benchmark
    compare ``render_pixels`` against it.
    """
    with _opened(source, max_pixels) as im:
        im.load()
        full = _converted(im, 1, _srgb_transform(im))
        if full is im:
            full = im.copy()
        full = _orient(full, _orientation(im))
    size = target_size(full.width, full.height, spec.long_side)
    if size == full.size:
        return full
    return full.resize(size, Image.Resampling.LANCZOS)


def encode(image: Image.Image, spec: RenditionSpec) -> tuple[bytes, int]:
    """The JPEG at the highest quality from ``spec.quality`` down that fits ``max_bytes``.

    Binary search over the integer qualities (file size grows with quality): the first try
    at ``spec.quality`` usually fits, so the common case is one encode. If ``min_quality``
    does not fit either, raises ``ImageRejected("over_byte_cap")``: shrinking the image
    instead would silently break the spec's long side (and its cache key would lie).
    """
    data = encode_jpeg(image, spec, spec.quality)
    if spec.max_bytes is None or len(data) <= spec.max_bytes:
        return data, spec.quality
    cap = spec.max_bytes
    smallest = encode_jpeg(image, spec, spec.min_quality)
    if len(smallest) > cap:
        raise ImageRejected(
            "over_byte_cap",
            f"rendition {spec.name!r} ({image.width}x{image.height}): even quality "
            f"{spec.min_quality} gives {len(smallest):,} bytes, over its cap of {cap:,}; "
            f"raise max_bytes or lower min_quality for {spec.name!r} in the rendition specs",
        )
    best, best_quality = smallest, spec.min_quality
    low, high = spec.min_quality + 1, spec.quality - 1
    while low <= high:
        middle = (low + high + 1) // 2
        attempt = encode_jpeg(image, spec, middle)
        if len(attempt) <= cap:
            best, best_quality = attempt, middle
            low = middle + 1
        else:
            high = middle - 1
    return best, best_quality


def encode_jpeg(image: Image.Image, spec: RenditionSpec, quality: int) -> bytes:
    """One encode with the fixed options: progressive, optimised, no metadata at all."""
    if image.mode != "RGB":
        raise ValueError(f"encode_jpeg expects an RGB image, got {image.mode}")
    buffer = io.BytesIO()
    image.save(
        buffer,
        format=spec.format,
        quality=quality,
        subsampling=spec.subsampling,
        progressive=True,
        optimize=True,
        exif=b"",
        comment=b"",  # Pillow would otherwise copy a comment from image.info
    )
    return buffer.getvalue()


# -- opening and decoding ---------------------------------------------------------------------


@contextmanager
def _opened(source: Source, max_pixels: int) -> Iterator[ImageFile.ImageFile]:
    """Open ``source`` (only the accepted formats), refuse it if its header is too large."""
    if isinstance(source, str | Path):
        with Path(source).open("rb") as fp, _open_checked(fp, max_pixels) as im:
            yield im
    else:
        with _open_checked(source, max_pixels) as im:
            yield im


@contextmanager
def _open_checked(fp: BinaryIO, max_pixels: int) -> Iterator[ImageFile.ImageFile]:
    try:
        im = Image.open(fp, formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise _unidentified(fp) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected("too_many_pixels", f"image refused from its header: {error}") from None
    except _DECODE_ERRORS as error:
        raise ImageRejected("corrupt", f"unreadable image header: {error}") from None
    with im:
        width, height = im.size
        if width < 1 or height < 1:
            raise ImageRejected("corrupt", f"{im.format} header gives a size of {width}x{height}")
        if width * height > max_pixels:
            raise ImageRejected(
                "too_many_pixels",
                f"{im.format} of {width}x{height} = {width * height:,} pixels is over the "
                f"limit of {max_pixels:,}; refused from its header, nothing decoded",
            )
        yield im


def _unidentified(fp: BinaryIO) -> ImageRejected:
    try:
        fp.seek(0)
        head = fp.read(16)
    except (OSError, ValueError):
        head = b""
    if head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return ImageRejected("corrupt", "unreadable header of a PNG, JPEG, WebP or TIFF file")
    return ImageRejected(
        "unsupported_format",
        "not a PNG, JPEG, WebP or TIFF file; export the image in one of these formats",
    )


def _decode(
    im: ImageFile.ImageFile, *, draft_for: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Decode the pixels (a JPEG possibly at reduced scale); return the box of the decoded
    image that covers the whole source, in decoded pixels."""
    width, height = im.size
    box = (0.0, 0.0, float(width), float(height))
    request = (math.ceil(draft_for[0] * DRAFT_GAP), math.ceil(draft_for[1] * DRAFT_GAP))
    # libjpeg scales by ½, ¼ or ⅛ only, so draft helps only at half the size or less.
    if im.format in JPEG_FORMATS and 2 * request[0] <= width and 2 * request[1] <= height:
        drafted = im.draft(None, request)
        if drafted is not None:
            box = drafted[1]
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected("too_many_pixels", str(error)) from None
    except _DECODE_ERRORS as error:
        text = str(error)
        reason: RejectReason = (
            "truncated" if isinstance(error, EOFError) or "truncat" in text.lower() else "corrupt"
        )
        raise ImageRejected(reason, f"{im.format} could not be decoded: {text}") from None
    return box


def _release_pixels(im: Image.Image) -> None:
    """Free the decoded pixels now. ``ImageFile.close`` would also close the caller's stream,
    so only the base ``Image.close`` (which drops the core image) is called."""
    Image.Image.close(im)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1  # malformed EXIF: shown as stored, as browsers do
    return value if isinstance(value, int) and value in _ORIENTATION else 1


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION.get(orientation)
    return image if method is None else image.transpose(method)


# -- colour, alpha and reduction ------------------------------------------------------------


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _colour_mode(im: Image.Image) -> str:
    """The colour space of the image's colour channels (what its profile must describe)."""
    if im.mode in ("L", "LA", "La", "1") or im.mode.startswith("I"):
        return "L"
    if im.mode in ("CMYK", "LAB"):
        return im.mode
    return "RGB"


def _srgb_transform(im: Image.Image) -> ImageCms.ImageCmsTransform | None:
    """The embedded profile's transform to sRGB, or None to use the pixels as sRGB.

    A profile that is unreadable, already sRGB, or describes another colour space than the
    pixels is ignored, as browsers do; the pixels are then taken to be sRGB.
    """
    icc = im.info.get("icc_profile")
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = str(profile.profile.xcolor_space).strip()
        in_mode = _PROFILE_MODES.get(space)
        if in_mode is None or in_mode != _colour_mode(im):
            return None
        if in_mode == "RGB" and _SRGB_NAME.search(str(profile.profile.profile_description)):
            return None
        return ImageCms.buildTransform(
            profile,
            _srgb_profile(),
            in_mode,
            "RGB",
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _reduction_factor(box: tuple[float, float, float, float], target: tuple[int, int]) -> int:
    ratio = min(box[2] / target[0], box[3] / target[1])
    return max(1, math.floor(ratio / REDUCE_GAP))


def _converted(
    im: Image.Image, factor: int, transform: ImageCms.ImageCmsTransform | None
) -> Image.Image:
    """``_normalise``, refusing a pixel mode that Pillow cannot convert to RGB."""
    try:
        return _normalise(im, factor, transform)
    except (ValueError, OSError, ImageCms.PyCMSError) as error:
        raise ImageRejected(
            "unsupported_format",
            f"{im.format} pixels in mode {im.mode} cannot be converted: {error}",
        ) from None


def _normalise(
    im: Image.Image, factor: int, transform: ImageCms.ImageCmsTransform | None
) -> Image.Image:
    """RGB, sRGB, alpha flattened onto white, box-reduced by ``factor``; band by band."""
    if im.mode == "RGB" and transform is None and "transparency" not in im.info:
        return im if factor == 1 else im.reduce(factor)  # RGB reduce allocates only the output
    width, height = im.size
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = max(1, BAND_ROWS // factor) * factor
    for top in range(0, height, rows):
        band = _to_srgb(im.crop((0, top, width, min(height, top + rows))), transform)
        if factor > 1:
            band = band.reduce(factor)
        out.paste(band, (0, top // factor))
    return out


def _to_srgb(band: Image.Image, transform: ImageCms.ImageCmsTransform | None) -> Image.Image:
    colour, alpha = _split_alpha(band)
    if transform is not None and colour.mode == transform.input_mode:
        rgb = transform.apply(colour)
    else:
        rgb = colour if colour.mode == "RGB" else colour.convert("RGB")
    if alpha is None:
        return rgb
    flat = Image.new("RGB", rgb.size, WHITE)
    flat.paste(rgb, (0, 0), alpha)
    return flat


def _split_alpha(band: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """The colour channels (L, RGB, CMYK or LAB) and the alpha channel, if any."""
    mode = band.mode
    if mode.startswith("I"):  # 16-bit greyscale: to 8 bits (rounded), tRNS as a mask
        wide = band.convert("I")
        transparent = band.info.get("transparency")
        alpha = None
        if isinstance(transparent, int):
            alpha = wide.point(_sixteen_bit_mask(transparent), "L")
        return wide.point(_sixteen_to_eight_bits(), "L"), alpha
    if mode in ("LA", "La"):
        la = band.convert("LA") if mode == "La" else band
        return la.getchannel("L"), la.getchannel("A")
    if _has_alpha(band):
        rgba = band if mode == "RGBA" else band.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    if mode in ("1", "F"):
        return band.convert("L"), None
    if mode in ("L", "RGB", "CMYK", "LAB"):
        return band, None
    return band.convert("RGB"), None


@cache
def _sixteen_to_eight_bits() -> list[int]:
    return [min(255, (value + 128) // 257) for value in range(65536)]


@cache
def _sixteen_bit_mask(transparent: int) -> list[int]:
    return [0 if value == transparent else 255 for value in range(65536)]


def target_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """``long_side`` on the long side, aspect kept; never larger than the source."""
    longest = max(width, height)
    if longest <= long_side:
        return width, height
    scale = long_side / longest
    if width >= height:
        return long_side, max(1, round(height * scale))
    return max(1, round(width * scale)), long_side


def _resample(
    base: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    """LANCZOS from ``box`` of ``base`` to ``size``, in bands of output rows.

    Pillow's filter reads outside the box (up to the image's edges), so each band gets the
    same filter weights as one whole resize (Pillow may order the two passes differently for a
    band, which moves a pixel by a rounding step or two, never more); banding keeps the first
    pass's intermediate (source rows x target width) from existing for the whole image.
    """
    if size == base.size and box == (0.0, 0.0, float(base.width), float(base.height)):
        image = base.copy()
        image.info = {}  # no source metadata travels with the pixels
        return image
    width, height = size
    left, top, right, bottom = box
    scale = (bottom - top) / height
    image = Image.new("RGB", size)
    for row in range(0, height, RESAMPLE_ROWS):
        rows = min(RESAMPLE_ROWS, height - row)
        band_box = (left, top + row * scale, right, top + (row + rows) * scale)
        image.paste(base.resize((width, rows), Image.Resampling.LANCZOS, box=band_box), (0, row))
    return image
