"""The ASGI application: refget + seqcol routes over a :class:`ServedStore`, and every error as a 4xx/5xx line.

:func:`create_app` builds it; :func:`serve` runs it with uvicorn, bound to
loopback unless told otherwise, with the timeouts of
:mod:`talaria_storage.server.protocol`. Only GET and HEAD are routed (any
other method is 405) and no handler reads a request body. Errors never
carry a traceback: a bad request is the 4xx its
:class:`~talaria_storage.server.ranges.RequestError` says, a route or
method that does not exist is 404/405, a store that cannot be read is 503
naming the object, and anything else is logged and answered with a bare
500 (a bug, which the fuzz tests look for).

CORS is open (``Access-Control-Allow-Origin: *``, GET/HEAD only, no
credentials), as refget asks of public services, so genome browsers can
read a server from another origin; ``Range``, ``ETag``, ``Content-Range``
and ``Accept-Ranges`` are exposed to scripts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from importlib import metadata
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from talaria_storage.config.open_store import open_store
from talaria_storage.core.errors import StorageError
from talaria_storage.server import refget, seqcol_routes
from talaria_storage.server.catalog import ServedStore
from talaria_storage.server.protocol import TimedH11Protocol, timed_protocol
from talaria_storage.server.ranges import RequestError
from talaria_storage.server.responses import ServerState, error_response, json_response
from talaria_storage.server.sequence_reader import SequenceReader
from talaria_storage.server.settings import ServerSettings
from talaria_storage.storage.store import Store

_log = logging.getLogger(__name__)

ENVIRONMENT = "TALARIA_SERVE"  # how serve --workers hands its settings to each worker process
MAX_HEADER_BYTES = 16 * 1024  # request line and headers; an overlong one is answered 400 by uvicorn


def create_app(store: Store, settings: ServerSettings | None = None) -> FastAPI:
    """The refget + seqcol application over ``store`` (read-only; the store stays the caller's)."""
    settings = settings or ServerSettings()
    served = ServedStore(store, settings)  # an unknown --database fails here, before any port is bound

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served.refresh()  # the first view (indexes and collection digests built) before the first request
        yield
        served.close()

    app = FastAPI(
        title="talaria-storage refget + seqcol",
        version=_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        redirect_slashes=False,  # a trailing slash is another (unknown) path: 404, not a redirect
        lifespan=lifespan,
    )
    app.state.talaria = ServerState(served, SequenceReader(settings), settings, _version())
    app.include_router(refget.router)
    app.include_router(seqcol_routes.router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD"],
        allow_headers=["Accept", "Range", "If-None-Match", "If-Range"],
        expose_headers=["ETag", "Content-Range", "Accept-Ranges", "Content-Length"],
    )

    @app.api_route("/", methods=["GET", "HEAD"])
    def index(request: Request) -> Response:
        """Where things are (for a person with curl)."""
        return json_response(
            {
                "refget": ["/sequence/service-info", "/sequence/{id}", "/sequence/{id}/metadata"],
                "seqcol": ["/service-info", "/collection/{digest}?level=1|2", "/comparison/{a}/{b}",
                           "/list/collection", "/attribute/collection/{attribute}/{digest}"],
                "openapi": "/openapi.json",
            },
            request,
        )

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path[:100]} (see / for the endpoints)"
        elif exc.status_code == 405:
            message = f"{request.method[:10]} is not served: this server is read-only (GET and HEAD)"
        else:
            message = str(exc.detail)[:200]
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, "malformed request: " + "; ".join(str(e.get("msg", e)) for e in exc.errors())[:200])

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> Response:
        _log.error("store error answering %s: %s", request.url.path[:200], exc)
        return error_response(503, f"the store could not be read: {str(exc)[:300]}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("unexpected error answering %s", request.url.path[:200])
        return error_response(500, "internal error (logged by the server)")

    return app


def serve(
    store: Store,
    settings: ServerSettings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    location: str | None = None,
    config_path: str | None = None,
    log_level: str = "info",
) -> None:
    """Run the server until interrupted.

    One worker: in this process, over ``store``. Several: uvicorn starts
    ``workers`` processes sharing the port, each opening the store again from
    ``location`` / ``config_path`` (as the CLI did) through
    :func:`app_from_environment`. Each process builds its own view; a lookup
    index on RocksDB admits one process, so the others fall back to a
    private in-memory index -- set ``[index] type = "sqlite"`` to share one.
    """
    if workers <= 1:
        uvicorn_server(create_app(store, settings), settings, host=host, port=port, log_level=log_level).run()
        return
    os.environ[ENVIRONMENT] = json.dumps(
        {"location": location, "config_path": config_path, "settings": settings_to_dict(settings)}
    )
    uvicorn.run(
        f"{__name__}:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="talaria_storage.server.protocol:TimedH11Protocol",
        **_uvicorn_options(settings, log_level),
    )


def _uvicorn_options(settings: ServerSettings, log_level: str) -> dict[str, Any]:
    """What ``serve`` and the tests' in-thread server configure alike: timeouts, limits, logging."""
    return {
        "ws": "none",
        "lifespan": "on",
        "log_level": log_level,
        "timeout_keep_alive": max(1, int(settings.keep_alive_timeout)),
        "limit_concurrency": settings.max_connections or None,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "server_header": False,
        "access_log": log_level == "debug",
    }


def app_from_environment() -> FastAPI:
    """The application of one ``serve --workers`` process, from what :func:`serve` put in ``TALARIA_SERVE``."""
    given = json.loads(os.environ[ENVIRONMENT])
    settings = ServerSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in given["settings"].items()}
    )
    TimedH11Protocol.header_timeout = settings.header_timeout
    TimedH11Protocol.send_timeout = settings.send_timeout
    store = open_store(given["location"], config_path=given["config_path"], create=False)
    return create_app(store, settings)


def settings_to_dict(settings: ServerSettings) -> dict[str, Any]:
    """The constructor arguments of ``settings`` as JSON-able values."""
    return {f.name: getattr(settings, f.name) for f in fields(settings) if f.init}


def uvicorn_server(
    app: FastAPI, settings: ServerSettings, *, host: str, port: int, log_level: str = "info"
) -> uvicorn.Server:
    """A configured ``uvicorn.Server`` for ``app`` (tests run it in a thread)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=timed_protocol(settings.header_timeout, settings.send_timeout),  # type: ignore[arg-type]
        **_uvicorn_options(settings, log_level),
    )
    return uvicorn.Server(config)


def _version() -> str:
    try:
        return metadata.version("talaria-storage")
    except metadata.PackageNotFoundError:
        return "0.1.0"
