"""The paper's metrics on fixed arrays: closed forms, hand-computed cases, and the release's own figures."""

from __future__ import annotations

import numpy as np
import pytest

from engine import metrics


def test_fid_of_identical_sets_is_zero() -> None:
    embeddings = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(metrics.fid(embeddings, embeddings)) < 1e-8
    assert metrics.fid(embeddings, embeddings + 1.0) == pytest.approx(8.0, abs=1e-6)  # a shift of 1 in 8 dimensions


def test_frechet_distance_of_known_gaussians_matches_the_closed_form() -> None:
    """Commuting covariances R D R^T: the distance is |mu1 - mu2|^2 + sum(d1 + d2 - 2 sqrt(d1 d2))."""
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    d1, d2 = np.array([1.0, 2.0, 0.5, 4.0]), np.array([3.0, 0.5, 0.5, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    expected = 5.0 + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    got = metrics.frechet_distance(mu1, rotation @ np.diag(d1) @ rotation.T, mu2, rotation @ np.diag(d2) @ rotation.T)
    assert got == pytest.approx(expected, rel=1e-9)
    # fitted to samples, FID approaches the closed form (one-dimensional: (m1 - m2)^2 + (s1 - s2)^2)
    rng = np.random.default_rng(2)
    samples = metrics.fid(rng.normal(0.0, 1.0, (200_000, 1)), rng.normal(0.5, 2.0, (200_000, 1)))
    assert samples == pytest.approx(0.25 + 1.0, abs=0.02)


def test_r_precision_of_a_perfect_matcher_is_one() -> None:
    text = np.random.default_rng(3).normal(size=(32, 16))
    assert metrics.r_precision_hits(text, text.copy()).tolist() == [32, 32, 32]
    assert metrics.matching_distance_sum(text, text.copy()) == pytest.approx(0.0, abs=1e-5)


def test_r_precision_and_matching_distance_by_hand() -> None:
    """Texts at 0, 1, 10 and their motions at 0.4, 0, 9 on a line: text 0's nearest motion is motion 1
    (0 away) before its own (0.4); text 1's nearest is motion 0 (0.6) before its own (1); text 2's is its own."""
    text, motion = np.array([[0.0], [1.0], [10.0]]), np.array([[0.4], [0.0], [9.0]])
    assert metrics.r_precision_hits(text, motion).tolist() == [1, 3, 3]
    assert metrics.matching_distance_sum(text, motion) == pytest.approx(0.4 + 1.0 + 1.0)
    assert np.allclose(metrics.distance_matrix(text, motion), np.abs(text - motion.T))


def test_diversity_and_multimodality_by_hand() -> None:
    """The pairs drawn by a seeded generator, measured by hand."""
    embeddings = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0], [1.0, 0.0]])
    pick = np.random.default_rng(4)
    first, second = pick.choice(5, 3, replace=False), pick.choice(5, 3, replace=False)
    expected = np.mean([np.hypot(*(embeddings[a] - embeddings[b])) for a, b in zip(first, second)])
    assert metrics.diversity(embeddings, 3, np.random.default_rng(4)) == pytest.approx(expected)
    # two texts, four generations each at 0, 1, 2, 3 (text 0) and 0, 2, 4, 6 (text 1) on a line
    generations = np.array([[[0.0], [1.0], [2.0], [3.0]], [[0.0], [2.0], [4.0], [6.0]]])
    pick = np.random.default_rng(5)
    first, second = pick.choice(4, 2, replace=False), pick.choice(4, 2, replace=False)
    expected = np.mean([abs(a - b) * scale for scale in (1.0, 2.0) for a, b in zip(first, second)])
    assert metrics.multimodality(generations, 2, np.random.default_rng(5)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="more than 5"):
        metrics.diversity(embeddings, 5, np.random.default_rng(0))


def test_figures_of_the_release_implementation() -> None:
    """Values that MoMask's utils/metrics.py gives on these arrays (computed once with its code)."""
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(256, 16)), rng.normal(0.3, 1.2, size=(256, 16))
    assert metrics.fid(real, generated) == pytest.approx(3.213947382636192, rel=1e-9)
    text = rng.normal(size=(32, 16))
    motion = text + rng.normal(0, 3.0, size=(32, 16))
    assert metrics.r_precision_hits(text, motion).tolist() == [1, 4, 5]
    assert metrics.matching_distance_sum(text, motion) == pytest.approx(371.72400168492175, rel=1e-9)


def test_confidence_interval_over_repeats() -> None:
    mean, half_width = metrics.confidence_interval([0.08, 0.09, 0.085, 0.07])
    assert mean == pytest.approx(0.08125)
    assert half_width == pytest.approx(np.sqrt(0.0000546875) * 1.96 / 2)  # population std, as the release
    assert metrics.diversity_pairs(301) == 300 and metrics.diversity_pairs(300) == 100
