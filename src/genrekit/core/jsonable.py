"""Plain JSON types out of NumPy values: what genrekit writes as JSON."""

from __future__ import annotations

import math

import numpy as np


def jsonable(obj):
    """Return `obj` with NumPy values and tuples made plain and NaN made None, for strict JSON."""
    if isinstance(obj, dict):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
