"""The text-to-motion metrics of Guo et al. 2022, computed as MoMask's and MoSa's eval_t2m.py do.

All work on embeddings from the text-motion matching evaluator (engine.evaluator):
- FID: Frechet distance between Gaussians fitted to real and generated motion embeddings;
- R-precision top-k: in each batch, how often a text's own motion is among its k nearest motions;
- MM-Dist (the release's "matching score"): mean distance from a text to its own motion;
- diversity: mean distance between randomly paired motions;
- multimodality: mean distance between two generations of the same text.
Random pairings take a numpy Generator, so a repeat is reproducible; the release draws from the
global numpy state. Confidence intervals over repeats are mean +- 1.96 std / sqrt(n), std with
ddof 0, as the release prints them.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def distance_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Euclidean distances (N1, N2) between the rows of first (N1, D) and second (N2, D).

    The release's expansion |a|^2 - 2ab + |b|^2; clipped at 0 before the root, where rounding
    would otherwise give the release a NaN for (near) identical rows.
    """
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != second.shape[1]:
        raise ValueError(f"expected two (N, D) arrays of the same D, got {first.shape} and {second.shape}")
    squared = -2 * first @ second.T + np.sum(first**2, axis=1, keepdims=True) + np.sum(second**2, axis=1)
    return np.sqrt(np.maximum(squared, 0.0))


def r_precision_hits(text: np.ndarray, motion: np.ndarray, top_k: int = 3) -> np.ndarray:
    """(top_k,) counts: rows whose own motion (same row index) is among its k nearest, k = 1..top_k.

    Summed over a batch; the release divides the sum over batches by the number of samples.
    """
    order = np.argsort(distance_matrix(text, motion), axis=1)[:, :top_k]
    own = order == np.arange(len(text))[:, None]
    return np.cumsum(own, axis=1).astype(bool).sum(axis=0)


def matching_distance_sum(text: np.ndarray, motion: np.ndarray) -> float:
    """Sum over rows of the distance from each text to its own motion (trace of the distance matrix)."""
    return float(np.trace(distance_matrix(text, motion)))


def gaussian_statistics(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) embeddings (covariance with N - 1)."""
    return embeddings.mean(axis=0), np.cov(embeddings, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with the release's fallback for a singular product."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in size: means {mu1.shape} / {mu2.shape}, covariances {sigma1.shape} / {sigma2.shape}"
        )
    difference = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"the covariance product's square root has an imaginary part of {np.max(np.abs(covmean.imag)):.3g}"
            )
        covmean = covmean.real
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between two sets of (N, D) embeddings."""
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(generated))


def diversity(embeddings: np.ndarray, pairs: int, rng: np.random.Generator) -> float:
    """Mean distance between `pairs` random pairs of rows (each side drawn without replacement)."""
    if embeddings.ndim != 2 or len(embeddings) <= pairs:
        raise ValueError(
            f"diversity of {pairs} pairs needs more than {pairs} embeddings (N, D); got {embeddings.shape}"
        )
    first = rng.choice(len(embeddings), pairs, replace=False)
    second = rng.choice(len(embeddings), pairs, replace=False)
    return float(np.linalg.norm(embeddings[first] - embeddings[second], axis=1).mean())


def multimodality(embeddings: np.ndarray, pairs: int, rng: np.random.Generator) -> float:
    """Mean distance between `pairs` random pairs of generations of each text; embeddings (texts, generations, D)."""
    if embeddings.ndim != 3 or embeddings.shape[1] <= pairs:
        raise ValueError(
            f"multimodality of {pairs} pairs needs more than {pairs} generations per text (N, S, D); got {embeddings.shape}"
        )
    first = rng.choice(embeddings.shape[1], pairs, replace=False)
    second = rng.choice(embeddings.shape[1], pairs, replace=False)
    return float(np.linalg.norm(embeddings[:, first] - embeddings[:, second], axis=2).mean())


def diversity_pairs(samples: int) -> int:
    """The release's count of diversity pairs: 300 when there are more than 300 samples, else 100."""
    return 300 if samples > 300 else 100


def confidence_interval(values: list[float] | np.ndarray) -> tuple[float, float]:
    """(mean, half-width of the 95 % interval) over repeats: 1.96 std / sqrt(n), std with ddof 0."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty list of values, got shape {values.shape}")
    return float(values.mean()), float(values.std() * 1.96 / np.sqrt(len(values)))
