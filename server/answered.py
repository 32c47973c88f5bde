"""ASGI middleware: answer a ``/sparql`` query already in the result cache without
going through the framework.

A cached answer needs no worker, no graph pin and no routing: looking it up and sending
it costs a few tens of microseconds, while Starlette's routing, dependency solving and
request objects cost more than that again.  Anything that is not a plain query with a
cached answer (updates, other parameters, a miss, a chunked body) goes on to the app
unchanged, with the body it read replayed, so the two paths cannot disagree: the app
computed and stored every answer served here, under the key ``sparql.cache_key`` gives.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.backend import Backend, Cached
from server.sparql import add_body_params, body_limit, cache_key, not_modified

# Parameters a cached answer depends on; any other one (timeout=, dataset IRIs, update=)
# is checked by the app, so such requests take the full path.
_SIMPLE = frozenset({"query", "format"})


class CachedAnswers:
    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/sparql":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = _headers(scope)
        if method == "GET":
            params = _params(parse_qsl(scope["query_string"].decode("latin-1"), True))
            entry = self._lookup(params, headers)
            if entry is not None:
                await _send(send, entry, headers)
                return
        elif method == "POST":
            body = await _read(receive, headers, self.backend.config.max_query_bytes)
            if body is not None:
                params = _post_params(scope, headers, body)
                entry = self._lookup(params, headers) if params is not None else None
                if entry is not None:
                    await _send(send, entry, headers)
                    return
                receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _lookup(
        self, params: dict[str, list[str]] | None, headers: dict[str, str]
    ) -> Cached | None:
        if not params or not params.keys() <= _SIMPLE:
            return None
        query, fmt = params.get("query", []), params.get("format", [None])
        if len(query) != 1 or len(fmt) != 1:
            return None
        return self.backend.cache_get(
            cache_key(query[0], None, None, fmt[0], headers.get("accept"))
        )


def _headers(scope: Scope) -> dict[str, str]:
    # The first of repeated headers, as Starlette's ``request.headers.get`` gives.
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        headers.setdefault(k.decode("latin-1"), v.decode("latin-1"))
    return headers


def _params(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for k, v in pairs:
        params.setdefault(k, []).append(v)
    return params


def _post_params(scope: Scope, headers: dict[str, str], body: bytes) -> dict[str, list[str]] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the app answers 400
    params = _params(parse_qsl(scope["query_string"].decode("latin-1"), True))
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    return params if add_body_params(params, ctype, text) else None


async def _read(receive: Receive, headers: dict[str, str], max_query: int) -> bytes | None:
    """The whole body when its declared length is one a query can have, else None
    (nothing read: the app enforces the limits and answers 413 itself)."""
    declared = headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > body_limit(max_query):
        return None
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # disconnected: the app sees a short body and the disconnect
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when it comes

    return replayed


async def _send(send: Send, entry: Cached, request_headers: dict[str, str]) -> None:
    # The headers the endpoint sends (``sparql.sparql_endpoint``); CORS is added by the
    # middleware around this one.
    headers: list[tuple[bytes, bytes]] = [
        (b"etag", entry.etag.encode()),
        (b"cache-control", b"no-cache"),
        *((k.lower().encode(), v.encode()) for k, v in entry.headers.items()),
        (b"vary", b"Accept"),
        (b"access-control-expose-headers", b"ETag"),
    ]
    if not_modified(request_headers.get("if-none-match"), entry.etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(entry.body)).encode()))
    headers.append((b"content-type", entry.media_type.encode()))
    message: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": headers}
    await send(message)
    await send({"type": "http.response.body", "body": entry.body})
