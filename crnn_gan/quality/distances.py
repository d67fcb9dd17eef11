"""mgeval's set measures (Yang & Lerch 2020, "On the evaluation of generative models in
music"): L1 distances between the per-song features of `crnn_gan.quality.features`.

* intra-set diversity: `mean_pairwise_distance` over all pairs of songs of one set;
  `diversity` compares a generated set's with real windows'.
* `overlapping_area` of the intra-set and inter-set distance distributions (`overlaps`): how
  far the generated songs sit from real music, as real windows sit from each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from crnn_gan.quality.features import FEATURES, feature_matrix


def _l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L1 distances between every row of ``a [n, d]`` and of ``b [m, d]``: ``[n, m]``."""
    out = np.zeros((len(a), len(b)))
    for start in range(0, len(a), 256):
        out[start:start + 256] = np.abs(a[start:start + 256, None, :] - b[None]).sum(-1)
    return out


def intra_set_distances(features: ArrayLike) -> np.ndarray:
    """L1 distances of every pair ``i < j`` of the rows of ``features [N, d]``:
    float64 ``[N (N - 1) / 2]`` (the absolute difference for d = 1)."""
    f = np.asarray(features, dtype=np.float64)
    f = f.reshape(len(f), -1)
    upper = np.triu_indices(len(f), k=1)
    return _l1(f, f)[upper]


def inter_set_distances(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """L1 distances of every pair (row of ``a [N, d]``, row of ``b [M, d]``): ``[N * M]``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return _l1(a.reshape(len(a), -1), b.reshape(len(b), -1)).reshape(-1)


def mean_pairwise_distance(features: ArrayLike) -> float:
    """Intra-set diversity: the mean L1 distance over all pairs ``i < j`` of songs.

    Args:
        features: float ``[N, d]`` (or ``[N]``), N >= 2.

    Returns:
        ``sum_{i<j} |f_i - f_j|_1 / (N (N - 1) / 2)``.

    Raises:
        ValueError: for fewer than 2 songs.
    """
    f = np.asarray(features, dtype=np.float64)
    if len(f) < 2:
        raise ValueError(f"mean_pairwise_distance needs at least 2 songs, got {len(f)}")
    return float(intra_set_distances(f).mean())


def diversity(generated: ArrayLike, real: ArrayLike | Sequence[ArrayLike],
              features: Sequence[str] = tuple(FEATURES)) -> dict[str, dict[str, float | None]]:
    """Mean pairwise distance within the generated songs and within the real windows.

    Returns:
        ``feature -> {"generated", "real", "ratio"}`` with ``ratio = generated / real``
        (None when the real distance is 0).
    """
    out = {}
    for feature in features:
        gen = mean_pairwise_distance(feature_matrix(generated, feature))
        real_distance = mean_pairwise_distance(feature_matrix(real, feature))
        out[feature] = {"generated": gen, "real": real_distance,
                        "ratio": gen / real_distance if real_distance > 0 else None}
    return out


def _scott_bandwidth(x: np.ndarray) -> float:
    """Scott's rule for one dimension, ``std * n ** (-1/5)`` (scipy's gaussian_kde)."""
    return float(np.std(x, ddof=1) * len(x) ** -0.2) if len(x) > 1 else 0.0


def overlapping_area(a: ArrayLike, b: ArrayLike, grid_points: int = 2048) -> float:
    """Overlapping area ``integral min(p_a, p_b)`` of two Gaussian KDEs (mgeval's OA).

    Each sample set gets its own Scott bandwidth (``std * n**-0.2``, as scipy's
    ``gaussian_kde``). The KDEs are evaluated by linear binning on a common grid of
    ``grid_points`` points spanning both sets plus 4 bandwidths (exact to the grid's
    resolution) and normalised to integrate to 1 on it. A set whose values are all equal
    (bandwidth 0) is a point mass: it lands in one grid cell.

    Args:
        a, b: float ``[n]`` and ``[m]`` samples (n, m >= 1; non-finite values are not
            allowed).
        grid_points: grid resolution.

    Returns:
        A number in 0..1: 1 for identical distributions, 0 for disjoint ones.

    Raises:
        ValueError: an empty or non-finite sample.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    for name, x in (("a", a), ("b", b)):
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"overlapping_area: {name} must be a non-empty finite sample")
    bandwidths = (_scott_bandwidth(a), _scott_bandwidth(b))
    pad = 4 * max(bandwidths)
    lo, hi = min(a.min(), b.min()) - pad, max(a.max(), b.max()) + pad
    if hi - lo <= 0:
        return 1.0  # both are the same point mass
    grid = np.linspace(lo, hi, grid_points)
    dx = grid[1] - grid[0]

    def density(x, bandwidth):
        position = (x - lo) / dx
        left = np.clip(np.floor(position).astype(np.int64), 0, grid_points - 2)
        weight = np.clip(position - left, 0.0, 1.0)
        counts = (np.bincount(left, 1 - weight, minlength=grid_points)
                  + np.bincount(left + 1, weight, minlength=grid_points))
        sigma = bandwidth / dx
        if sigma > 0.25:
            half = int(np.ceil(5 * sigma))
            offsets = np.arange(-half, half + 1)
            kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
            # "full" then the centre: right whatever the kernel's length against the grid's.
            counts = np.convolve(counts, kernel / kernel.sum(), mode="full")[
                half:half + grid_points]
        return counts / (counts.sum() * dx)

    p, q = density(a, bandwidths[0]), density(b, bandwidths[1])
    return float(min(1.0, np.minimum(p, q).sum() * dx))


def overlaps(generated: ArrayLike, real: ArrayLike | Sequence[ArrayLike],
             features: Sequence[str] = tuple(FEATURES)) -> dict[str, dict[str, float]]:
    """mgeval's overlapping areas for each feature.

    For each feature: the intra-set distances of the real windows, of the generated songs,
    and the inter-set distances (every real window against every generated song).
    ``real_intra_vs_inter`` is ``overlapping_area(real intra, inter)``: near 1 when a
    generated song lies as far from real windows as real windows lie from each other.
    ``generated_intra_vs_inter`` is the same seen from the generated side.

    Returns:
        ``feature -> {"real_intra_vs_inter", "generated_intra_vs_inter"}``.
    """
    out = {}
    for feature in features:
        gen = feature_matrix(generated, feature)
        ref = feature_matrix(real, feature)
        inter = inter_set_distances(ref, gen)
        out[feature] = {
            "real_intra_vs_inter": overlapping_area(intra_set_distances(ref), inter),
            "generated_intra_vs_inter": overlapping_area(intra_set_distances(gen), inter),
        }
    return out
