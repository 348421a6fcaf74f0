"""Benchmark: the three marketplace renditions of a large print file, ours against the naive way.

Question it answers: does one decode with a shared reduced base (JPEG ``draft``, a band-wise
box ``reduce``, then one LANCZOS per rendition) render the Shopify, Etsy and WooCommerce
JPEGs at least twice as fast as rendering each from scratch, and with a lower memory
high-water mark (at most half for a JPEG, at most 0.9 for a PNG, which Pillow cannot decode
at reduced scale), without leaving the LANCZOS accuracy bounds?

What it does, and why that way:

* Two deterministic sources in a temporary folder: a 6000x7200 RGBA PNG (gradients, waves,
  noise and hard-edged blocks on a soft-edged transparent surround, so it neither compresses
  to nothing nor spares the filters) and a 4500x5400 baseline JPEG of the same kind (quality
  92, as a camera or an export would write it).
* Every measurement is a fresh process (this script with ``--child``): peak memory is the
  process's high-water mark (``ru_maxrss``), so two variants in one process would hide each
  other. Both variants import the same modules and call ``imaging.render.configure`` before
  the clock starts; the figures time only the rendering (open to encoded bytes).
* Naive: for each rendition, open the source, ``resize(LANCZOS)`` straight to the target
  size, flatten alpha onto white, convert to RGB and save with the same JPEG settings
  (quality 90, 4:2:0, progressive, optimised). Ours: ``imaging.render.render_all``.
* Repetitions interleave the variants (ours, naive, naive, ours, ...) so drift on this shared
  host hits both alike; the time is the median, the peak memory the highest of the runs.
* One more child per source checks accuracy at full size: each rendition's pixels against a
  full-size LANCZOS reference (mean and 99.9th percentile of the absolute error) and the
  encoded JPEG against its own pixels (PSNR).

Run ``.venv/bin/python bench/imaging.py`` (about 75 s on 2 cores; ``--repeats`` to change).
Results: ``bench/results/imaging.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import PIL  # noqa: E402
from PIL import Image  # noqa: E402

from imaging import render  # noqa: E402
from imaging.specs import DEFAULT_SPECS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "imaging.json"
SOURCES = {
    # name: (width, height, alpha, file name, seed)
    "png": (6000, 7200, True, "print.png", 1),
    "jpeg": (4500, 5400, False, "photo.jpg", 2),
}
TARGET_SPEEDUP = 2.0
TARGET_RSS_SHARE = {"png": 0.9, "jpeg": 0.5}
MAX_PIXELS = render.DEFAULT_MAX_PIXELS
SPECS = list(DEFAULT_SPECS.values())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--child", choices=["generate", "ours", "naive", "accuracy"], help=argparse.SUPPRESS
    )
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- children -----------------------------------------------------------------------------------


def render_naive(path: Path) -> list[dict[str, Any]]:
    """Each rendition from scratch: open, LANCZOS to size, flatten, convert, save."""
    outputs = []
    for spec in SPECS:
        with Image.open(path) as image:
            image.load()
            size = render.target_size(image.width, image.height, spec.long_side)
            resized = image.resize(size, Image.Resampling.LANCZOS)
            if resized.mode == "RGBA":
                flat = Image.new("RGB", resized.size, render.WHITE)
                flat.paste(resized, (0, 0), resized.getchannel("A"))
                resized = flat
            resized = resized.convert("RGB")
            buffer = io.BytesIO()
            resized.save(
                buffer,
                "JPEG",
                quality=spec.quality,
                subsampling=spec.subsampling,
                progressive=True,
                optimize=True,
            )
            outputs.append(_output(spec.name, resized.size, len(buffer.getvalue()), spec.quality))
    return outputs


def render_ours(path: Path) -> list[dict[str, Any]]:
    renditions = render.render_all(path, SPECS, max_pixels=MAX_PIXELS)
    return [_output(r.name, (r.width, r.height), len(r.data), r.quality) for r in renditions]


def _output(name: str, size: tuple[int, int], length: int, quality: int) -> dict[str, Any]:
    return {"name": name, "width": size[0], "height": size[1], "bytes": length, "quality": quality}


def accuracy(path: Path) -> list[dict[str, Any]]:
    """Our pixels against the full-size LANCZOS reference; each JPEG against its pixels."""
    import numpy as np

    figures = []
    for resized in render.render_pixels(path, SPECS, max_pixels=MAX_PIXELS):
        reference = render.reference_pixels(path, resized.spec, max_pixels=MAX_PIXELS)
        ours = np.asarray(resized.image, dtype=np.int16)
        error = np.abs(ours - np.asarray(reference, dtype=np.int16))
        data, quality = render.encode(resized.image, resized.spec)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
        mse = float(np.mean((decoded - ours) ** 2))
        figures.append(
            {
                "name": resized.spec.name,
                "mean_abs_error_255": round(float(error.mean()), 4),
                "p999_abs_error_255": float(np.percentile(error, 99.9)),
                "max_abs_error_255": int(error.max()),
                "psnr_db": round(10 * np.log10(255**2 / mse), 2) if mse else None,
                "quality": quality,
            }
        )
    return figures


def run_child(variant: str, path: Path) -> int:
    if variant == "generate":
        make_sources(path)
        return 0
    render.configure(max_pixels=MAX_PIXELS, concurrency=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if variant == "ours":
        outputs: list[dict[str, Any]] = render_ours(path)
    elif variant == "naive":
        outputs = render_naive(path)
    else:
        outputs = accuracy(path)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak / 1024,
                "rss_before_work_mb": before / 1024,
                "vm_hwm_mb": _vm_hwm_kib() / 1024,
                "outputs": outputs,
            }
        )
    )
    return 0


def _vm_hwm_kib() -> int:
    """This process's own high-water mark (Linux), a cross-check of ``ru_maxrss``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# -- parent ---------------------------------------------------------------------------------


def source_paths(folder: Path) -> dict[str, Path]:
    return {name: folder / spec[3] for name, spec in SOURCES.items()}


def make_sources(folder: Path) -> None:
    """Run in a child: a parent that once held these images would pass its memory high-water
    mark on to every child it starts (Linux folds it into ``ru_maxrss`` at exec)."""
    from imaging.synthetic import photo

    for name, path in source_paths(folder).items():
        width, height, alpha, _, seed = SOURCES[name]
        image = photo(width, height, alpha=alpha, seed=seed)
        if name == "png":
            image.save(path, "PNG")  # zlib level 6, as most exports write it
        else:
            image.save(path, "JPEG", quality=92)  # baseline, 4:2:0
        image.close()


def spawn(variant: str, path: Path) -> dict[str, Any] | None:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--source", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"child {variant} on {path.name} exited {completed.returncode}: "
            f"{completed.stderr.strip().splitlines()[-3:]}"
        )
    if not completed.stdout.strip():
        return None
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def measure(variant: str, path: Path) -> dict[str, Any]:
    result = spawn(variant, path)
    if result is None:
        raise RuntimeError(f"child {variant} on {path.name} printed no figures")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args.child, args.source)
    scratch = Path(tempfile.mkdtemp(prefix="imaging-bench-"))
    try:
        began = time.monotonic()
        spawn("generate", scratch)
        paths = source_paths(scratch)
        generate_seconds = time.monotonic() - began
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"ours": [], "naive": []} for name in paths
        }
        for repeat in range(args.repeats):
            order = ("ours", "naive") if repeat % 2 == 0 else ("naive", "ours")
            for name, path in paths.items():
                for variant in order:
                    runs[name][variant].append(measure(variant, path))
        checks = {name: measure("accuracy", path)["outputs"] for name, path in paths.items()}
        sizes = {name: path.stat().st_size for name, path in paths.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # Imported here, not at the top: it pulls in the hub's stack, and the children's memory
    # high-water marks should hold only what rendering needs.
    from bench.order_reads import git_state

    sources: dict[str, Any] = {}
    for name, variants in runs.items():
        ours, naive = variants["ours"], variants["naive"]
        ours_s = statistics.median(run["seconds"] for run in ours)
        naive_s = statistics.median(run["seconds"] for run in naive)
        width, height, alpha, _, _ = SOURCES[name]
        sources[name] = {
            "source": f"{width}x{height} {'RGBA PNG' if alpha else 'RGB JPEG'}",
            "source_bytes": sizes[name],
            "speedup_vs_naive": round(naive_s / ours_s, 2),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in ours), 1),
            "naive_peak_rss_mb": round(max(run["peak_rss_mb"] for run in naive), 1),
            "seconds_median": round(ours_s, 3),
            "naive_seconds_median": round(naive_s, 3),
            "seconds": [round(run["seconds"], 3) for run in ours],
            "naive_seconds": [round(run["seconds"], 3) for run in naive],
            "rss_before_work_mb": round(ours[0]["rss_before_work_mb"], 1),
            "naive_rss_before_work_mb": round(naive[0]["rss_before_work_mb"], 1),
            "vm_hwm_mb": round(max(run["vm_hwm_mb"] for run in ours), 1),
            "naive_vm_hwm_mb": round(max(run["vm_hwm_mb"] for run in naive), 1),
            "renditions": ours[0]["outputs"],
            "naive_renditions": naive[0]["outputs"],
            "accuracy": checks[name],
        }
    figures: dict[str, Any] = {
        "benchmark": "imaging",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_state(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "settings": {
            "repeats": args.repeats,
            "specs": {spec.name: asdict(spec) for spec in SPECS},
            "max_pixels": MAX_PIXELS,
            "concurrency": 1,
            "draft_gap": render.DRAFT_GAP,
            "reduce_gap": render.REDUCE_GAP,
            "band_rows": render.BAND_ROWS,
            "generate_seconds": round(generate_seconds, 1),
        },
        **sources,
    }

    def check(value: float, threshold: float, op: str) -> dict[str, Any]:
        passed = value >= threshold if op == ">=" else value <= threshold
        return {"value": value, "threshold": round(threshold, 1), "op": op, "pass": passed}

    targets = {}
    for name, share in TARGET_RSS_SHARE.items():
        figures_for = sources[name]
        targets[f"{name}.speedup_vs_naive >= {TARGET_SPEEDUP:g}"] = check(
            figures_for["speedup_vs_naive"], TARGET_SPEEDUP, ">="
        )
        targets[f"{name}.peak_rss_mb <= {share:g} x naive"] = check(
            figures_for["peak_rss_mb"], share * figures_for["naive_peak_rss_mb"], "<="
        )
        worst_mae = max(item["mean_abs_error_255"] for item in figures_for["accuracy"])
        worst_p999 = max(item["p999_abs_error_255"] for item in figures_for["accuracy"])
        worst_psnr = min(item["psnr_db"] or 99.0 for item in figures_for["accuracy"])
        targets[f"{name}.mean_abs_error <= 2/255"] = check(worst_mae, 2, "<=")
        targets[f"{name}.p999_abs_error <= 32/255"] = check(worst_p999, 32, "<=")
        targets[f"{name}.psnr_db >= 30"] = check(worst_psnr, 30, ">=")
    figures["targets"] = targets
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    for name, result in targets.items():
        if not result["pass"]:
            print(f"MISSED {name}: {result['value']} (target {result['op']} {result['threshold']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
