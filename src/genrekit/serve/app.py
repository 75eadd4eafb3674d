"""The FastAPI application: routers, the page, error answers, the access log, start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from genrekit.core.version import __version__
from genrekit.library.catalogue import model_id
from genrekit.serve import api, stream
from genrekit.serve.accesslog import AccessLog
from genrekit.serve.config import ServeConfig
from genrekit.serve.pool import WorkerPool

LOGGER = logging.getLogger("genrekit.serve")
STATIC_DIR = Path(str(resources.files("genrekit.serve") / "static"))
"""The web page's files (package data)."""


@dataclass
class Service:
    """What the routes share, at ``app.state.service``.

    Attributes
    ----------
    config : ServeConfig
        The settings.
    pool : WorkerPool
        The worker processes and the request slots.
    upload_dir : Path
        The folder of temporary uploads (removed at shutdown).
    model : dict
        The model's metadata as ``/v1/model`` returns it.
    streams : int
        Live-mode connections open now.
    """

    config: ServeConfig
    pool: WorkerPool
    upload_dir: Path
    model: dict
    streams: int = 0


def model_info(model) -> dict:
    """Return the metadata of a :class:`~genrekit.GenreModel` that ``/v1/model`` returns.

    Parameters
    ----------
    model : GenreModel
        The loaded model.

    Returns
    -------
    dict
        ``id`` (:func:`genrekit.library.catalogue.model_id`, as the catalogue and
        ``genrekit model info`` show it), ``kind``, ``classes``,
        ``metrics`` (protocol figures), ``recipe``, ``table`` (name, SHA-256, rows),
        ``calibration``, ``created``, ``genrekit_version`` (that trained it),
        ``format_version`` and ``server_version``.
    """
    meta = model.metadata
    weights_sha = meta.get("weights", {}).get("sha256", "")
    novelty = meta.get("calibration", {}).get("novelty") or {}
    return {
        "id": model_id(meta),
        "kind": meta.get("kind"),
        "classes": [str(c) for c in model.classes_],
        "metrics": meta.get("metrics"),
        "recipe": meta.get("recipe"),
        "table": meta.get("data"),
        "weights_sha256": weights_sha,
        "calibration": {"temperature": model.temperature, "novelty_threshold": novelty.get("threshold")},
        "created": meta.get("created"),
        "genrekit_version": meta.get("genrekit_version"),
        "format_version": meta.get("format_version"),
        "server_version": __version__,
    }


def create_app(config: ServeConfig, model: dict, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    config : ServeConfig
        The settings.
    model : dict
        The model's metadata (:func:`model_info`); the workers load the model themselves.
    routers : sequence of APIRouter
        More routes to serve (e.g. a library view); they share ``app.state.service``.

    Returns
    -------
    FastAPI
        The application; its lifespan starts the workers and creates the upload folder.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upload_dir = Path(tempfile.mkdtemp(prefix="genrekit-serve-"))
        model_dir = None if config.model_dir is None else str(config.model_dir)
        pool = WorkerPool(model_dir, config.workers, config.queue, config.detect_music, config.taggers)
        app.state.service = Service(config, pool, upload_dir, model)
        warm_up = asyncio.create_task(pool.warm_up())
        warm_up.add_done_callback(_log_failure)
        try:
            yield
        finally:
            warm_up.cancel()
            pool.shutdown()
            shutil.rmtree(upload_dir, ignore_errors=True)

    app = FastAPI(
        title="genrekit",
        version=__version__,
        summary="The genre of music from the 57 GTZAN audio features.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(AccessLog)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal_error)
    for router in (api.health, api.v1, stream.router, *routers):
        app.include_router(router)
    app.add_api_route("/", _page, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_api_docs(app)
    return app


def _add_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from the files of the swagger-ui-bundle package (works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="genrekit API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, include_in_schema=False)


def _page() -> FileResponse:
    """Return the web page."""
    return FileResponse(STATIC_DIR / "index.html")


def _log_failure(task: asyncio.Task) -> None:
    """Log why the workers could not start (the service then stays not ready)."""
    if not task.cancelled() and task.exception() is not None:
        LOGGER.error("worker processes failed to start: %s", task.exception())


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Errors as ``{"error": message}`` with their status and headers."""
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Bad parameters: 422 naming each one and what is wrong with it."""
    problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    return JSONResponse({"error": "invalid request: " + "; ".join(problems)}, status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer a bug: logged with its traceback on the server, a plain message for the client."""
    LOGGER.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error; the server log has the details"}, status_code=500)
