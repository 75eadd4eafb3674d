"""Defaults of learning a library's own genres, kept apart so that ``--help`` imports no scikit-learn."""

from __future__ import annotations

DEFAULT_MODELS: tuple[str, ...] = ("logreg", "gbm")
"""Registry recipes :func:`compare_options` measures by default: a linear model, which needs few
files, and gradient-boosted trees, which gain most from many (see the README's curve)."""

DEFAULT_FOLDS: int = 5
"""Folds of the grouped cross-validation (fewer when a class has fewer files)."""

DEFAULT_AUDIT_CONFIDENCE: float = 0.6
"""Out-of-fold probability of another genre from which a tag is listed by :func:`audit`."""
