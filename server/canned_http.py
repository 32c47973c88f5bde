"""HTTP side of the canned queries: ``/queries`` and one documented route per ``.rq`` file."""

from __future__ import annotations

import inspect
import json
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from server import canned, conneg
from server.backend import Backend, Cached, ServiceError
from server.pages import render, rows_for_html
from server.sparql import TRUNCATED_HEADER, etag_response

SUFFIXES = {"json": "json", "csv": "csv", "tsv": "tsv", "html": "html", "rq": "rq"}
TABLE_MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}


def describe(cq: canned.CannedQuery, base: str = "") -> dict[str, Any]:
    return {
        "name": cq.name,
        "summary": cq.summary,
        "description": cq.description,
        "tags": cq.tags,
        "columns": cq.columns,
        "params": [
            {
                "name": p.name,
                "type": p.type,
                "required": p.required,
                "default": p.default,
                "enum": p.enum,
                "classes": p.classes,
                "description": p.description,
            }
            for p in cq.params
        ],
        "url": f"{base}/queries/{cq.name}",
        "sparql": f"{base}/queries/{cq.name}.rq",
    }


def _args(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


async def run_canned_http(request: Request, cq: canned.CannedQuery, ext: str | None) -> Response:
    be: Backend = request.app.state.backend
    args = _args(request)
    accept = request.headers.get("accept")
    fmt = ext or conneg.choose(args.get("format"), accept, conneg.TABLE)
    if fmt is None:
        raise ServiceError(
            406, "available: json, csv, tsv, html (Accept or a .json/.csv/.tsv suffix)"
        )
    if fmt == "rq":
        return Response(cq.text, media_type="application/sparql-query; charset=utf-8")
    params = {k: v for k, v in args.items() if k not in canned.RESERVED}
    timeout = be.timeout_for(args.get("timeout"))
    try:
        text = canned.prepare(cq, params, be.index)
    except canned.Ambiguous as exc:
        if fmt == "html":
            return render(request, "ambiguous.html", status=300, cq=cq, exc=exc, params=params)
        return JSONResponse(exc.as_json(), status_code=300)
    except canned.CannedError as exc:
        if fmt == "html":
            return render(
                request,
                "query.html",
                status=exc.status,
                cq=cq,
                params=params,
                error=exc.message,
                rows=None,
            )
        raise ServiceError(exc.status, exc.message) from None
    if fmt == "html":
        variables, rows, truncated = await _rows(be, text, timeout)
        return render(
            request,
            "query.html",
            cq=cq,
            params=params,
            error=None,
            columns=variables,
            rows=rows_for_html(rows, be.config.resource_base),
            truncated=truncated,
        )
    entry = await _answer(be, text, fmt, timeout)
    return etag_response(
        request,
        entry,
        {"Vary": "Accept", "Access-Control-Expose-Headers": "ETag, " + TRUNCATED_HEADER},
    )


async def _answer(be: Backend, text: str, fmt: str, timeout: float) -> Cached:
    """The answer of a prepared canned query, from the cache or computed and kept."""
    key = ("canned", text, fmt)
    entry = be.cache_get(key)
    if entry is None:
        reply = await be.run(
            {"kind": "query", "query": text, "format": fmt, "max_rows": be.config.max_rows},
            timeout,
        )
        extra = {TRUNCATED_HEADER: "true"} if reply["truncated"] else {}
        entry = be.cache_put(key, TABLE_MEDIA[fmt], reply["body"], **extra)
    return entry


async def prewarm(be: Backend) -> None:
    """Answer each canned query without parameters, in each table format, as soon as a
    graph is loaded: their URLs are the bookmarked ones, and on a large graph the first
    answer costs up to a few hundred milliseconds.  One query at a time, so the other
    workers stay free for requests; a query over the time limit is left to requests."""
    for cq in be.queries.values():
        if any(p.required for p in cq.params):
            continue
        for fmt in ("json", "csv", "tsv"):
            with be.pinned() as graph:
                if graph.generation != be.current.generation:
                    return  # replaced meanwhile: its own warm-up has started
                try:
                    text = canned.prepare(cq, {}, be.index)
                    await _answer(be, text, fmt, be.config.timeout)
                except (ServiceError, canned.CannedError):
                    continue


async def _rows(be: Backend, text: str, timeout: float) -> tuple[list[str], list[Any], bool]:
    reply = await be.run({"kind": "rows", "query": text, "max_rows": be.config.max_rows}, timeout)
    return reply["vars"], reply["rows"], reply["truncated"]


def _endpoint(cq: canned.CannedQuery, ext: str | None):
    async def endpoint(request: Request, **_: Any) -> Response:
        return await run_canned_http(request, cq, ext)

    if ext is None:
        # A signature FastAPI can read: one documented query parameter per canned parameter.
        # Values are checked by canned.bind (clear 400/404 messages), not by FastAPI.
        sig = [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            )
        ]
        for p in cq.params:
            extra: dict[str, Any] = {}
            if p.enum:
                extra["enum"] = p.enum if p.required else ["", *p.enum]  # "": any
            if p.classes and p.type in canned.ENTITY_KINDS:
                extra["x-jiceng-classes"] = p.classes
            desc = p.description or p.name
            kind = "name or IRI, resolved via labels" if p.type in canned.ENTITY_KINDS else p.type
            sig.append(
                inspect.Parameter(
                    p.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=str | None,
                    default=Query(
                        p.default,
                        description=f"{desc} ({kind}{', required' if p.required else ''})",
                        json_schema_extra=extra or None,
                    ),
                )
            )
        for name, desc in (
            ("format", "json, csv, tsv or html (default: by Accept)"),
            ("timeout", "seconds; lowers the server's time limit"),
        ):
            sig.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=str | None,
                    default=Query(None, description=desc),
                )
            )
    else:
        sig = [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            )
        ]
    endpoint.__signature__ = inspect.Signature(sig)  # type: ignore[attr-defined]
    endpoint.__name__ = f"canned_{cq.name.replace('-', '_')}_{ext or 'main'}"
    return endpoint


def install(app: FastAPI, queries: dict[str, canned.CannedQuery]) -> None:
    """Add /queries, /queries/{name}[.json|.csv|.tsv|.html|.rq] for each canned query."""
    app.state.backend.warmers.append(prewarm)

    @app.get("/queries.json", include_in_schema=False)
    async def list_queries_json(request: Request) -> Response:
        return await list_queries(request, "json")

    @app.get("/queries", summary="List the canned queries", tags=["canned queries"])
    async def list_queries(request: Request, format: str | None = None) -> Response:
        """JSON list (name, summary, parameters, URLs); HTML in a browser."""
        base = str(request.base_url).rstrip("/")
        fmt = (format or "").lower()
        if fmt not in ("", "json", "html"):
            raise ServiceError(406, "available: json, html")
        if fmt == "html" or (not fmt and conneg.wants_html(request.headers.get("accept"))):
            return render(request, "queries.html", queries=list(queries.values()))
        data = [describe(cq, base) for cq in queries.values()]
        return Response(
            json.dumps(data, ensure_ascii=False, indent=1), media_type="application/json"
        )

    for cq in queries.values():
        doc = cq.description or cq.summary
        doc += (
            "\n\nColumns: " + ", ".join(cq.columns) + ".  Answers JSON (SPARQL results), CSV, "
            "TSV or HTML by `Accept`, `format=` or a `.json`/`.csv`/`.tsv` suffix; the SPARQL "
            f"is at `/queries/{cq.name}.rq`.  An ambiguous name answers 300 with the candidates; "
            "an unknown one 404."
        )
        app.add_api_route(
            f"/queries/{cq.name}",
            _endpoint(cq, None),
            methods=["GET"],
            summary=cq.summary or cq.name,
            description=doc,
            tags=["canned queries"],
            operation_id=cq.name,
            responses={
                300: {"description": "ambiguous name: candidates"},
                404: {"description": "unknown name"},
            },
        )
        for ext in SUFFIXES:
            app.add_api_route(
                f"/queries/{cq.name}.{ext}",
                _endpoint(cq, ext),
                methods=["GET"],
                include_in_schema=False,
            )

    @app.get("/queries/{name}", include_in_schema=False)
    async def unknown_query(name: str) -> Response:
        raise ServiceError(404, f"no canned query {name!r}; see /queries")

    _mark_required(app, queries)


def _mark_required(app: FastAPI, queries: dict[str, canned.CannedQuery]) -> None:
    """Show required canned parameters as required in OpenAPI (FastAPI does not enforce it)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for cq in queries.values():
            op = schema.get("paths", {}).get(f"/queries/{cq.name}", {}).get("get")
            if not op:
                continue
            required = {p.name for p in cq.params if p.required}
            for prm in op.get("parameters", []):
                if prm.get("name") in required:
                    prm["required"] = True
                    prm["schema"] = {"type": "string", "minLength": 1}  # "" means unset
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
