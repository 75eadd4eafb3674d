"""Temperature scaling and the novelty distance."""

from __future__ import annotations

import numpy as np

from genrekit.models.calibrate import FeatureNovelty, fit_temperature, scaled_probabilities


def test_temperature_recovers_the_one_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20000, 5))
    proba = scaled_probabilities(logits, temperature=2.5)
    codes = np.array([rng.choice(5, p=p) for p in proba])
    assert abs(fit_temperature(logits, codes) - 2.5) < 0.15


def test_scaled_probabilities_keep_the_ranking() -> None:
    logits = np.array([[3.0, 1.0, -2.0], [0.0, 5.0, 1.0]])
    for temperature in (0.5, 1.0, 4.0):
        proba = scaled_probabilities(logits, temperature)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(proba.argmax(axis=1), [0, 1])
    assert scaled_probabilities(logits, 4.0).max() < scaled_probabilities(logits, 1.0).max()


def test_novelty_is_small_inside_and_large_outside_the_training_data() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(2000, 6)) * [1, 2, 3, 1, 1, 10] + 5
    novelty = FeatureNovelty.fit(train)
    heldout = rng.normal(size=(500, 6)) * [1, 2, 3, 1, 1, 10] + 5
    novelty = novelty.with_threshold(novelty.distance(heldout), quantile=0.99)
    assert np.mean(novelty.distance(heldout) <= novelty.threshold) >= 0.99
    far = train.mean(axis=0) + 8 * train.std(axis=0)
    assert novelty.distance(far[None, :])[0] > novelty.threshold
    again = FeatureNovelty.from_dict(novelty.to_dict())
    np.testing.assert_allclose(again.distance(heldout), novelty.distance(heldout))
    assert again.threshold == novelty.threshold
