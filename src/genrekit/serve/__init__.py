"""``genrekit serve``: genre prediction as an HTTP service with a web page and a live mode.

The service is a FastAPI application (:func:`~genrekit.serve.app.create_app`) run by uvicorn:

- :mod:`~genrekit.serve.api`: ``/v1/predict``, ``/v1/features``, ``/v1/tags`` (with ``--tags``),
  ``/v1/model``, ``/healthz``, ``/readyz``;
- :mod:`~genrekit.serve.stream`: the live mode, a WebSocket at ``/v1/stream``;
- :mod:`~genrekit.serve.limits`: the token, the bounded request queue and streamed uploads;
- :mod:`~genrekit.serve.pool` and :mod:`~genrekit.serve.work`: the worker processes that do the CPU work;
- :mod:`~genrekit.serve.accesslog`: one structured log line per request;
- ``static/``: the web page served at ``/`` (plain HTML, CSS and JavaScript).

It needs the ``serve`` extra: ``pip install 'genrekit[serve]'``.
"""

from __future__ import annotations
