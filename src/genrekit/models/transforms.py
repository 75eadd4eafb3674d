"""Feature transforms that are part of a model's pipeline (fitted on its training rows only).

:class:`FeatureTransform` compresses the long-tailed GTZAN variance columns with
``log1p`` and z-scores every column. Its fitted state is three arrays, which
:mod:`genrekit.models.export` saves and :mod:`genrekit.models.portable` applies in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from genrekit.core.schema import FEATURE_NAMES
from genrekit.models.portable import signed_log1p


def variance_columns(n_features: int, names: Any = None) -> np.ndarray:
    """Return the indices of the ``*_var`` columns of the GTZAN features.

    Parameters
    ----------
    n_features : int
        Columns of the input.
    names : array-like of str, optional
        Column names (a DataFrame's); without them the columns are taken to be
        the 57 GTZAN features in order when there are 57, and none otherwise.

    Returns
    -------
    numpy.ndarray of int64
    """
    if names is None:
        names = FEATURE_NAMES if n_features == len(FEATURE_NAMES) else ()
    return np.asarray([i for i, name in enumerate(names) if str(name).endswith("_var")], dtype=np.int64)


class FeatureTransform(TransformerMixin, BaseEstimator):
    """``log1p`` of the variance columns (optional), then z-scores fitted on the training rows.

    Parameters
    ----------
    log_variance : bool, default=True
        Replace each ``*_var`` column ``x`` by ``sign(x) log(1 + |x|)`` (``log1p``:
        variances are never negative) before z-scoring.
    standardize : bool, default=True
        Subtract the training mean and divide by the training standard
        deviation (1 for constant columns).

    Attributes
    ----------
    log_columns_ : numpy.ndarray of int64
        Columns that were log-transformed.
    mean_, scale_ : numpy.ndarray of shape (n_features,)
        z-score statistics (0 and 1 without standardisation).
    n_features_in_ : int
        Number of input columns.
    """

    def __init__(self, log_variance: bool = True, standardize: bool = True) -> None:
        self.log_variance = log_variance
        self.standardize = standardize

    def fit(self, X: Any, y: Any = None) -> FeatureTransform:
        """Fit the statistics on the rows of `X`; `y` is ignored."""
        names = getattr(X, "columns", None)
        X = validate_data(self, X, dtype=np.float64)
        if self.log_variance:
            self.log_columns_ = variance_columns(X.shape[1], None if names is None else list(names))
        else:
            self.log_columns_ = np.zeros(0, dtype=np.int64)
        Z = self._log(X)
        if self.standardize:
            scale = Z.std(axis=0)
            self.mean_, self.scale_ = Z.mean(axis=0), np.where(scale > 0, scale, 1.0)
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        return self

    def _log(self, X: np.ndarray) -> np.ndarray:
        Z = np.array(X, dtype=np.float64)
        Z[:, self.log_columns_] = signed_log1p(Z[:, self.log_columns_])
        return Z

    def transform(self, X: Any) -> np.ndarray:
        """Return the transformed rows of `X`."""
        check_is_fitted(self, "mean_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return (self._log(X) - self.mean_) / self.scale_

    def describe(self) -> str:
        """Return a one-line description for a model's metadata."""
        parts = ["log1p of the *_var columns"] if self.log_variance else []
        parts += ["z-score (training rows)"] if self.standardize else []
        return ", then ".join(parts) or "none"
