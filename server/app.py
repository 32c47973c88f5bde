"""Application wiring: routes, middleware, error handling, life cycle."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from server import admin, canned_http, openapi, pages, sparql
from server.answered import CachedAnswers
from server.backend import Backend, Config, ServiceError
from server.remote import RemoteConfig, RemoteError

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    data: Path | None,
    store_dir: Path | None = None,
    update_token: str | None = None,
    timeout: float = 10.0,
    max_rows: int = 10000,
    workers: int | None = None,
    max_query_bytes: int = 64 * 1024,
    queries_dir: Path | None = None,
    remote: RemoteConfig | None = None,
    refresh: float = 60.0,
    reload_dirs: list[Path] | None = None,
) -> FastAPI:
    """Load ``data`` (+ ontology), or reach the ``remote`` store, and build the app.

    Raises ``StoreError`` for a bad dump, ``RemoteError`` for an unusable remote (both
    ``QueryError``: one line).  Call this before starting threads: it forks the
    nursery that every query-worker zygote is forked from (``processes.py``).
    """
    if remote is not None and update_token and not remote.update_endpoint:
        raise RemoteError("--update-token with --backend sparql needs --update-endpoint")
    config = Config(
        data=Path(data) if data is not None else None,
        store_dir=Path(store_dir) if store_dir else None,
        update_token=update_token or None,
        timeout=timeout,
        max_rows=max_rows,
        max_query_bytes=max_query_bytes,
        workers=workers or max(2, os.cpu_count() or 2),
        remote=remote,
        refresh=refresh,
        reload_dirs=[Path(d) for d in reload_dirs or []],
    )
    if queries_dir is not None:
        config.queries_dir = Path(queries_dir)
    backend = Backend(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await backend.start()
        try:
            yield
        finally:
            await backend.close()

    app = FastAPI(
        title="Jiceng KG",
        summary="SPARQL endpoint and canned queries: grassroots Party building in Zhengzhou",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.add_middleware(PinGraph, backend=backend)
    # Outside the pin and the router, inside CORS: a cached answer needs neither.
    app.add_middleware(CachedAnswers, backend=backend)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
        expose_headers=["ETag", sparql.TRUNCATED_HEADER],
    )

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own answers (no such route, wrong method) in the same plain text
        # as every other error, not a JSON body no route documents.
        return PlainTextResponse(
            f"{exc.detail}\n", status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return PlainTextResponse(
            f"bad request: {where}: {first.get('msg', 'invalid')}\n", status_code=400
        )

    app.include_router(sparql.router)
    app.include_router(admin.router)
    canned_http.install(app, backend.queries)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    openapi.install(app, set(backend.queries))
    return app


class PinGraph:
    """ASGI middleware: each HTTP request runs on the graph current when it arrived
    (``Backend.pinned``), however long it takes and whatever reloads meanwhile."""

    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.backend.pinned():
            await self.app(scope, receive, send)
