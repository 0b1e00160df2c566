"""Checks a test makes before it compares two paths' outputs, so the comparison can fail."""

from collections.abc import Sequence

import numpy as np


def assert_informative(texts: Sequence[str]) -> None:
    """Every output says something, and not every input gave the same output."""
    assert len(texts) >= 2, f"need at least two outputs to compare paths on: {texts}"
    assert all(text.strip() for text in texts), f"an output is empty: {texts}"
    assert len(set(texts)) >= 2, f"every input gave the same output: {texts}"


def assert_varied_rows(vectors: np.ndarray, atol: float = 1e-3) -> None:
    """At least two rows, finite, and not all (nearly) the same row."""
    vectors = np.asarray(vectors)
    assert vectors.ndim == 2 and len(vectors) >= 2, vectors.shape
    assert np.isfinite(vectors).all()
    assert np.abs(vectors - vectors[0]).max() > atol, "every input gave the same vector"
