"""The library view's API (``genrekit serve --db library.db``): ``/v1/library/...``.

Every request opens the catalogue read-only (a scanner may be writing it) and
closes it before answering. The catalogue is the one named on the command line:
no path is ever taken from a client; tracks are named by their row id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query

from genrekit.core.errors import GenrekitError
from genrekit.library import query
from genrekit.library.catalogue import Catalogue
from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE
from genrekit.serve.api import ERRORS
from genrekit.serve.limits import require_token

LEARNED_LIST = 20
"""Files listed in the audit and in the suggestions of ``/v1/library/learned``."""


def catalogue_shift(catalogue: Catalogue, cache: dict) -> dict | None:
    """Return the catalogue's shift from the shipped model's training music (None: not classified by it).

    Measured again only when the catalogue (or its write-ahead log) changed since the last request.
    """
    from genrekit.library.check import shipped_model_shift

    files = (catalogue.path, catalogue.path.with_name(catalogue.path.name + "-wal"))
    key = tuple((s.st_size, s.st_mtime_ns) for s in (f.stat() for f in files if f.exists()))
    if cache.get("key") != key:
        try:
            report = shipped_model_shift(catalogue)
            shift = None if report is None else report.to_dict()
        except GenrekitError as exc:  # a damaged reference: the counts are still answered
            shift = {"level": "unknown", "shifted": False, "summary": f"shift not measured: {exc}"}
        cache.update(key=key, shift=shift)
    return cache["shift"]


def library_router(db: Path) -> APIRouter:
    """Return the routes of the library view of the catalogue `db`.

    Parameters
    ----------
    db : Path
        The catalogue (checked by the caller; opened read-only per request).

    Returns
    -------
    APIRouter
        ``GET /v1/library/stats``, ``/tracks``, ``/map``, ``/tracks/{id}/similar`` and ``/learned``,
        under the same token rule as the other ``/v1`` routes.
    """
    router = APIRouter(
        prefix="/v1/library", dependencies=[Depends(require_token)], tags=["library"], responses=ERRORS
    )

    @contextmanager
    def opened() -> Iterator[Catalogue]:
        """Open the catalogue read-only; its errors become 404 answers naming it."""
        try:
            with Catalogue(db, readonly=True) as catalogue:
                yield catalogue
        except GenrekitError as exc:
            raise HTTPException(404, str(exc)) from None

    shift_cache: dict = {}

    @router.get("/stats")
    def stats() -> dict:
        """Count the catalogue's files (analysed, failed, gone, hours, per genre, uncertain); its shift."""
        with opened() as catalogue:
            counts = query.stats(catalogue)
            return {"catalogue": db.name, **counts, "shift": catalogue_shift(catalogue, shift_cache)}

    @router.get("/tracks")
    def tracks(
        q: str = Query("", max_length=200, description="text the path must contain"),
        genre: str | None = Query(None, max_length=100, description="stored genre ('uncertain' included)"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> dict:
        """List the catalogue's files whose path contains `q`, by path, with their stored prediction."""
        with opened() as catalogue:
            found = query.tracks(catalogue, q, genre, limit, offset)
        return {"tracks": found, "limit": limit, "offset": offset}

    @router.get("/map")
    def projection() -> dict:
        """Map the library in 2-D: the files on the first two principal components of their features."""
        with opened() as catalogue:
            return query.projection(catalogue)

    @router.get("/tracks/{track_id}/similar")
    def similar(track_id: int, n: int = Query(10, ge=1, le=100, description="how many tracks")) -> dict:
        """List the `n` tracks nearest to track `track_id` (standardised features), nearest first."""
        with opened() as catalogue:
            path = catalogue.path_of(track_id)
            if path is None:
                raise HTTPException(404, f"track {track_id}: no such track in the catalogue {db.name}")
            return {"id": track_id, "path": path, "similar": query.similar(catalogue, path, n)}

    @router.get("/learned")
    def learned() -> dict:
        """Show the learned model (``library learn``): taxonomy, figures, audit, suggestions."""
        from genrekit.library.learned import audit_library, suggest_library, view_library

        try:
            view = view_library(db)
        except GenrekitError as exc:
            raise HTTPException(404, str(exc)) from None
        found, changed = audit_library(view, DEFAULT_MIN_CONFIDENCE)
        summary = view.learned.summary
        return {
            "taxonomy": summary.get("taxonomy"),
            "classes": summary.get("classes"),
            "display": summary.get("display"),
            "training_files": summary.get("training_files"),
            "figures": summary.get("figures"),
            "min_confidence": DEFAULT_MIN_CONFIDENCE,
            "audit": found[:LEARNED_LIST],
            "changed_since_learn": changed,
            "suggestions": suggest_library(view, LEARNED_LIST),
        }

    return router
