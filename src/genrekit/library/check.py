"""The shift of a library catalogue from the training music of the model that classified it.

``genrekit library check --db``, the ``library tag`` guard, ``scan``'s summary and
``/v1/library/stats`` measure the catalogue's stored 30-s windows with
:func:`genrekit.shift.shift_of_rows` (see :mod:`genrekit.shift`).
"""

from __future__ import annotations

import os

import numpy as np

from genrekit.library.catalogue import Catalogue, model_id
from genrekit.models.io import SHIPPED_MODELS
from genrekit.prediction.model import GenreModel, load_model
from genrekit.shift import ShiftReport, model_reference, shift_of_rows, window_rows

FORCE_HINT: str = (
    "its genres would often be wrong here; learn the collection's own genres from its tagged files "
    "with `genrekit library learn --db DB` and tag with `--model learned`, or pass --force to tag anyway"
)
"""What ``library tag`` suggests when it refuses."""


def catalogue_rows(catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Return the stored window features of the analysed files and the file of each window.

    A catalogue of more than :data:`genrekit.shift.MAX_GROUPS` files gives a seeded uniform sample of them.
    """
    return window_rows((stored.path, stored) for stored in catalogue.stored())


def catalogue_shift(
    catalogue: Catalogue,
    model: GenreModel,
    model_path: str | os.PathLike[str] | None = None,
    reference_table: str | os.PathLike[str] | None = None,
    **options,
) -> ShiftReport:
    """Measure the shift of the catalogue's stored windows from `model`'s training distribution.

    Parameters
    ----------
    catalogue : Catalogue
        An open catalogue.
    model : GenreModel
        The model (loaded from `model_path`; None: the shipped one).
    model_path : path-like, optional
        Where `model` was loaded from: its ``shift.json`` is the reference.
    reference_table : path-like, optional
        The model's training table, to fit the reference from instead.
    **options
        Passed to :func:`genrekit.shift.measure_shift`.

    Raises
    ------
    ShiftError
        If the model has no reference and no table is given.
    """
    reference = model_reference(model, model_path, reference_table)
    features, groups = catalogue_rows(catalogue)
    return shift_of_rows(model, reference, features, groups, **options)


def shipped_model_shift(catalogue: Catalogue) -> ShiftReport | None:
    """Return the catalogue's shift when its genres come from a shipped model, else None.

    ``library tag`` refuses (unless ``--force``) when the report says :attr:`ShiftReport.shifted`;
    ``/v1/library/stats`` shows it. A catalogue classified by the user's own model is not checked
    here: that model was trained on music they chose (``library check --model DIR`` measures it).
    """
    models = catalogue.counts()["models"]
    for name in (None, *SHIPPED_MODELS):
        model = load_model(name)
        if model_id(model.metadata) in models:
            return catalogue_shift(catalogue, model, name)
    return None
