"""Differentially private counts: the discrete Laplace (two-sided geometric) mechanism.

A count to which one person adds at most ``sensitivity`` gets integer noise ``X`` with
``P(X = x) ∝ α^|x|``, ``α = exp(-ε / sensitivity)`` (Ghosh, Roughgarden, Sundararajan 2009:
the two-sided geometric mechanism, ε-differentially private for integer counts, with no
floating-point rounding of the released value). The groups of a table are the groups the data
holds, so a group's very presence could tell of one person: a noisy count is released only
when it reaches :func:`threshold`, set so that a group of fewer than ``sensitivity`` persons
appears with probability at most δ ("τ-thresholding", as in Korolova et al. 2009 and the
stability-based histograms of Bun, Nissim, Stemmer): (ε, δ)-differential privacy for the
whole table. Everything after the noise (the threshold, no negative counts) is
post-processing and costs no privacy.

The noise comes from a NumPy ``Generator`` seeded from :mod:`secrets` (128 bits) per table,
so no seed can be given or guessed.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Cell = tuple[str, ...]

#: The δ of one aggregate release: the chance that a group too small to show is shown anyway.
DELTA = 1e-6
MECHANISM = "discrete Laplace (two-sided geometric)"


def generator() -> np.random.Generator:
    """A generator seeded from the operating system's cryptographic source."""
    return np.random.Generator(np.random.PCG64(secrets.randbits(128)))


def alpha(epsilon: float, sensitivity: int) -> float:
    """The noise's decay: ``exp(-ε / sensitivity)``."""
    return math.exp(-epsilon / sensitivity)


def threshold(epsilon: float, sensitivity: int, delta: float = DELTA) -> int:
    """The least noisy count released: the groups one person alone makes (``sensitivity`` at
    most, each of count 1) reach it with probability at most ``delta`` in all."""
    a = alpha(epsilon, sensitivity)
    # P(noise >= t) = α^t / (1 + α) for t >= 1; a count of 1 is released when noise >= τ - 1.
    return 1 + max(0, math.ceil(math.log(sensitivity / ((1 + a) * delta)) / -math.log(a)))


@dataclass(frozen=True)
class NoisyCounts:
    """The released counts and how they were made."""

    counts: dict[Cell, int]
    epsilon: float
    sensitivity: int
    threshold: int
    delta: float = DELTA

    def describe(self) -> dict[str, object]:
        """How the counts were made, for the release's metadata."""
        return {
            "mechanism": MECHANISM,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "sensitivity": self.sensitivity,
            "noise": f"P(noise = x) ∝ exp(-{self.epsilon:g}·|x| / {self.sensitivity})",
            "threshold": self.threshold,
            "small_counts": f"a group is listed only when its noisy count is at least "
            f"{self.threshold}; a group not listed holds fewer persons or none",
        }


def noisy_counts(
    counts: Mapping[Cell, int],
    *,
    epsilon: float,
    sensitivity: int,
    rng: np.random.Generator | None = None,
) -> NoisyCounts:
    """Noise every count and keep those at or above the threshold (never negative)."""
    if not epsilon > 0 or sensitivity < 1:
        raise ValueError("epsilon must be positive and sensitivity at least 1")
    cells = sorted(counts)
    rng = rng or generator()
    p = 1 - alpha(epsilon, sensitivity)
    noise = rng.geometric(p, len(cells)) - rng.geometric(p, len(cells))
    tau = threshold(epsilon, sensitivity)
    released = {
        cell: value
        for cell, extra in zip(cells, noise.tolist(), strict=True)
        if (value := counts[cell] + int(extra)) >= tau
    }
    return NoisyCounts(released, epsilon, sensitivity, tau)
