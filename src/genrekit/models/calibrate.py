"""Calibration for prediction: temperature-scaled probabilities and a novelty check.

A network trained to near-perfect training accuracy is over-confident. Two
checks keep it honest on audio it was not trained for:

* **Temperature scaling** (Guo et al., 2017): logits are divided by one scalar
  `T`, fitted by minimising the log loss of held-out (out-of-fold) logits. It
  changes no prediction, only how sure the probabilities are.
* **Novelty**: the Mahalanobis distance of a window's standardized features
  from the training rows (covariance with Ledoit-Wolf shrinkage). Windows
  farther than a high quantile of the distances of held-out training rows are
  unlike any training music (silence, nature sounds, very short clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_CONFIDENCE: float = 0.5
"""Top probability below which a prediction is reported as uncertain."""

NOVELTY_QUANTILE: float = 0.995
"""Share of held-out training rows whose distance lies within the novelty threshold."""


def fit_temperature(logits: np.ndarray, codes: np.ndarray) -> float:
    """Return the temperature that minimises the mean log loss of `logits`.

    Parameters
    ----------
    logits : ndarray of shape (n, n_classes)
        Held-out logits (not those of training rows).
    codes : ndarray of int, shape (n,)
        True class index of each row.

    Returns
    -------
    float
        The temperature ``T > 0``; probabilities are ``softmax(logits / T)``.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(codes))

    def loss(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[rows, codes].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


def scaled_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Return ``softmax(logits / temperature)`` row by row."""
    from genrekit.models.portable_nets import softmax

    return softmax(np.asarray(logits, dtype=np.float64) / temperature)


@dataclass(frozen=True)
class FeatureNovelty:
    """Mahalanobis distance from the training feature distribution.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        Mean of the training features.
    scale : ndarray of shape (n_features,)
        Standard deviation of the training features.
    precision : ndarray of shape (n_features, n_features)
        Inverse of the shrunk covariance of the standardized features.
    threshold : float
        Distance above which a row counts as unlike the training data.
    """

    mean: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    threshold: float = np.inf

    @classmethod
    def fit(cls, X: np.ndarray) -> FeatureNovelty:
        """Fit the distribution of the training rows `X` (threshold left at infinity)."""
        from sklearn.covariance import LedoitWolf

        X = np.asarray(X, dtype=np.float64)
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        precision = LedoitWolf().fit((X - mean) / scale).get_precision()
        return cls(mean, scale, precision)

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Return the Mahalanobis distance of each row of `X`."""
        Z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        return np.sqrt(np.einsum("ij,jk,ik->i", Z, self.precision, Z))

    def with_threshold(
        self, heldout_distances: np.ndarray, quantile: float = NOVELTY_QUANTILE
    ) -> FeatureNovelty:
        """Return a copy whose threshold is the `quantile` of distances of held-out rows."""
        threshold = float(np.quantile(heldout_distances, quantile))
        return FeatureNovelty(self.mean, self.scale, self.precision, threshold)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (see :meth:`from_dict`)."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "precision": self.precision.tolist(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FeatureNovelty:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["precision"], dtype=np.float64),
            float(data["threshold"]),
        )
