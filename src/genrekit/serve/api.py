"""The HTTP API: ``/v1/predict``, ``/v1/features``, ``/v1/tags``, ``/v1/model``, ``/healthz``, ``/readyz``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from genrekit.audio.decode import TooLongError
from genrekit.core.errors import GenrekitError
from genrekit.prediction.model import TOP_TAGS
from genrekit.serve import work
from genrekit.serve.limits import Upload, received_upload, require_token, work_slot
from genrekit.serve.pool import WorkerDiedError

AUDIO_BODY: dict = {
    "requestBody": {
        "required": True,
        "description": "One audio file, as a multipart form field `file` or as the raw body "
        "(then `?filename=` or the Content-Type tells its format).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
"""The request body as the OpenAPI docs show it (the service reads it as a stream itself)."""

ERRORS: dict = {
    401: {"description": "missing or wrong token"},
    408: {"description": "upload stalled or slower than the server's minimum rate"},
    413: {"description": "upload or audio over the server's limits"},
    422: {"description": "empty, truncated or non-audio upload; bad parameters"},
    503: {"description": "too many requests at work; see Retry-After"},
}

TAGS_OFF = "tags are off on this server: start it with `genrekit serve --tags` (needs the tagger weights)"
"""Why a service without ``--tags`` refuses tags (404 on ``/v1/tags``, 422 for ``/v1/predict?tags=``)."""

MIN_SEGMENT_SECONDS = 1.0
"""Shortest ``segment_seconds``: it bounds the segments, hence the work, per second of audio."""

UploadedFile = Annotated[Upload, Depends(received_upload)]
"""The request's audio, streamed to a temporary file (deleted when the request ends)."""


class Tag(BaseModel):
    """One tag of a file, as ``genrekit tags --format json`` lists it."""

    tagger: str = Field(description="the tagger: msd (Million Song Dataset tags) or mtt (MagnaTagATune)")
    tag: str = Field(description="the tag, e.g. rock, jazz, female vocalists, guitar")
    probability: float = Field(description="the mean over 3-s patches of the tag's probability (multi-label)")


class TagsAnswer(BaseModel):
    """The answer of ``/v1/tags``: the record of ``genrekit tags --format json``."""

    file: str = Field(description="the upload's name")
    tags: list[Tag] = Field(description="each tagger's `top` tags, most probable first, taggers in order")


health = APIRouter(tags=["health"])
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], tags=["v1"], responses=ERRORS)


@health.get("/healthz")
def healthz() -> dict:
    """Liveness: the server answers."""
    return {"status": "ok"}


@health.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the worker processes have loaded the model (503 until then); what is in progress."""
    service = request.app.state.service
    if not service.pool.ready:
        return JSONResponse(
            {"error": "starting: the worker processes are loading the model"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    pool = service.pool
    return JSONResponse(
        {
            "status": "ready",
            "model": service.model["id"],
            "workers": pool.workers,
            "requests_in_progress": pool.active,
            "queue_limit": pool.capacity,
            "live_streams": service.streams,
        }
    )


@v1.get("/model")
def model(request: Request) -> dict:
    """Return the loaded model's metadata: id, classes, protocol figures, table SHA-256, versions.

    Also ``taggers``: the musicnn taggers of ``/v1/tags`` (empty when the service runs without ``--tags``).
    """
    service = request.app.state.service
    return {**service.model, "taggers": list(service.config.taggers)}


def require_tags(request: Request) -> None:
    """Refuse a tag request (404, before its upload is read) when the service runs without ``--tags``."""
    if not request.app.state.service.config.taggers:
        raise HTTPException(404, TAGS_OFF)


def tagger_names(text: str, enabled: tuple[str, ...], parameter: str) -> tuple[str, ...]:
    """Parse ``?tagger=`` or ``?tags=`` (`parameter`): comma-separated tagger names, in order, no duplicates.

    Raises
    ------
    HTTPException
        422 naming `parameter` when the service has no taggers, for an unknown tagger or an empty list.
    """
    if not enabled:
        raise HTTPException(422, f"invalid request: {parameter}: {TAGS_OFF}")
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in enabled]
    if unknown or not names:
        given, choices = ", ".join(unknown) or repr(text), ", ".join(enabled)
        message = f"invalid request: {parameter}: unknown tagger {given}; choose from {choices}"
        raise HTTPException(422, message)
    return names


@v1.post("/predict", openapi_extra=AUDIO_BODY)
async def predict(
    request: Request,
    upload: UploadedFile,
    top_k: int = Query(2, ge=1, le=100, description="genres listed in `top_k`"),
    min_confidence: float | None = Query(
        None, ge=0, le=1, description="top probability below which the genre is 'uncertain' (default 0.5)"
    ),
    tags: str | None = Query(
        None,
        description="also the file's deep tags (`deep_tags`) from these taggers, comma-separated: msd, mtt "
        "(needs `genrekit serve --tags`)",
    ),
    top_tags: int = Query(TOP_TAGS, ge=1, le=50, description="with `tags`: tags per tagger"),
) -> dict:
    """Predict the genre of one audio file: the record of `genrekit predict --format json`, plus `model`."""
    service = request.app.state.service
    threshold = service.config.min_confidence if min_confidence is None else min_confidence
    taggers = () if tags is None else tagger_names(tags, service.config.taggers, "tags")
    record = await _work(
        service,
        work.predict_task,
        str(upload.path),
        upload.name,
        service.config.max_seconds,
        threshold,
        top_k,
        taggers,
        top_tags,
    )
    return {**record, "model": service.model["id"]}


@v1.post(
    "/tags",
    openapi_extra=AUDIO_BODY,
    response_model=TagsAnswer,
    dependencies=[Depends(require_tags)],
    responses={404: {"description": "the service runs without `--tags`"}},
)
async def tags(
    request: Request,
    upload: UploadedFile,
    tagger: str = Query("msd", description="comma-separated taggers: msd, mtt"),
    top: int = Query(TOP_TAGS, ge=1, le=50, description="tags per tagger"),
) -> dict:
    """Tag one audio file with the pretrained musicnn taggers: the record of `genrekit tags --format json`.

    Genres, moods, eras, instruments and voice; the probabilities are independent (multi-label).
    Needs `genrekit serve --tags`.
    """
    service = request.app.state.service
    names = tagger_names(tagger, service.config.taggers, "tagger")
    return await _work(
        service, work.tags_task, str(upload.path), upload.name, service.config.max_seconds, names, top
    )


@v1.post("/features", openapi_extra=AUDIO_BODY)
async def features(
    request: Request,
    upload: UploadedFile,
    segment_seconds: float | None = Query(
        None,
        ge=MIN_SEGMENT_SECONDS,
        le=30,
        description="also the features of each segment of this length (3: the 3-s table); 1 to 30",
    ),
) -> dict:
    """Compute the 57 GTZAN features of one audio file (and of its segments on request)."""
    service = request.app.state.service
    return await _work(
        service,
        work.features_task,
        str(upload.path),
        upload.name,
        service.config.max_seconds,
        segment_seconds,
    )


async def _work(service, fn, *args) -> dict:
    """Run `fn` on the pool in a request slot; turn the errors a client caused into 413/422 answers."""
    try:
        with work_slot(service.pool):
            return await service.pool.run(fn, *args)
    except TooLongError as exc:
        raise HTTPException(413, str(exc)) from None
    except GenrekitError as exc:
        raise HTTPException(422, str(exc)) from None
    except WorkerDiedError as exc:
        raise HTTPException(500, str(exc)) from None
